"""Profiles: shipped ones load, user files load the same way, errors name the field, waivers expire."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from auditor import profiles
from auditor.assessment import assess
from auditor.catalog import all_checks
from auditor.checklist import ITEMS
from auditor.errors import ProfileError

from .conftest import AS_OF, FIXTURES, collect

DEMO = FIXTURES / "demo" / "manifests"


@pytest.mark.parametrize("pid", ["baseline", "ukgc", "mga", "agco-on"])
def test_shipped_profiles_load_and_cover_every_family(pid: str) -> None:
    p = profiles.load(pid)
    assert p.id == pid and p.notice
    for item in ITEMS:
        assert p.controls_for(item.key), f"{pid}: {item.key} maps to no control"
    statuses = {c.status for item in ITEMS for c in p.controls_for(item.key)}
    assert statuses <= {"confirmed", "secondary", "unconfirmed"}


@pytest.mark.parametrize("pid", ["baseline", "ukgc", "mga", "agco-on"])
def test_shipped_profiles_validate_against_the_schema(pid: str) -> None:
    # runs skip schema validation for shipped profiles; this is where they are validated
    text = (resources.files("auditor") / f"data/profiles/{pid}.yaml").read_text("utf-8")
    assert profiles.parse(text, pid, validate=True).id == pid


def test_shipped_ids() -> None:
    assert profiles.shipped_ids() == ["agco-on", "baseline", "mga", "ukgc"]


def test_regulator_profiles_mark_unconfirmed_clauses() -> None:
    ukgc = profiles.load("ukgc")
    by_ref = {c.ref: c.status for item in ITEMS for c in ukgc.controls_for(item.key)}
    assert by_ref["ISO/IEC 27001:2022 Annex A 5.23"] == "confirmed"
    assert by_ref["ISO/IEC 27001:2022 Annex A 8.8"] == "unconfirmed"
    assert "5 years" in ukgc.retention["basis"] and ukgc.retention["status"] == "unconfirmed"


def test_invalid_profile_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("extends: baseline\nid: mine\ngate: {block_on: [hgh]}\n")
    with pytest.raises(ProfileError, match=r"p.yaml: gate.block_on\[0\]: 'hgh' is not one of"):
        profiles.load(str(bad))
    bad.write_text("extends: baseline\nid: mine\nitems: {image.pinned-digests: {severity: high}}\n")
    with pytest.raises(ProfileError, match=r"items.image.pinned-digests: not a checklist item key"):
        profiles.load(str(bad))
    bad.write_text("id: x\n")
    with pytest.raises(
        ProfileError, match=r"p.yaml: \(top level\): '\w+' is a required property \(and 3 more problems\)"
    ):
        profiles.load(str(bad))
    bad.write_text("id: [unclosed\n")
    with pytest.raises(ProfileError, match=r"p.yaml:\d+: profile is not valid YAML"):
        profiles.load(str(bad))


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(ProfileError, match="no shipped profile has this id"):
        profiles.load("ukgcc")


def _profile(tmp_path: Path, body: str) -> profiles.Profile:
    path = tmp_path / "p.yaml"
    path.write_text("extends: baseline\nid: test\nversion: '1'\n" + body)
    return profiles.load(str(path))


WAIVER = """waivers:
  - id: W-1
    check: image-pinned-digest
    subject: {{namespace: brand-uk, name: promo}}
    reason: vendor image re-tagged weekly
    approver: CISO
    ticket: SEC-1
    expires: "{expires}"
"""


def test_active_waiver_turns_fail_into_waived(tmp_path: Path) -> None:
    p = _profile(
        tmp_path,
        "parameters: {allowed_registries: [registry.acme-gaming.example]}\n" + WAIVER.format(expires="2027-01-31"),
    )
    report = assess(collect(DEMO), p, all_checks(), as_of=AS_OF)
    waived = [f for f in report["findings"] if f["check"] == "image-pinned-digest"]
    assert [f["status"] for f in waived] == ["waived"]
    assert waived[0]["waiver"]["id"] == "W-1"
    item = next(i for i in report["items"] if i["key"] == "image.pinned-digest")
    assert item["status"] == "waived"
    assert [w["id"] for w in report["waivers"]["active"]] == ["W-1"] and not report["waivers"]["expired"]


def test_expired_waiver_stops_applying_and_is_listed(tmp_path: Path) -> None:
    p = _profile(tmp_path, WAIVER.format(expires="2026-11-26"))
    report = assess(collect(DEMO), p, all_checks(), as_of=AS_OF)
    finding = next(f for f in report["findings"] if f["check"] == "image-pinned-digest")
    assert finding["status"] == "fail" and "waiver" not in finding
    assert [w["id"] for w in report["waivers"]["expired"]] == ["W-1"]


def test_scope_selects_by_namespace_label() -> None:
    report = assess(collect(DEMO), profiles.load("mga"), all_checks(), as_of=AS_OF)
    assert report["report"]["scope"]["namespaces"] == ["brand-mt"]
    namespaces = {f["subject"].get("namespace") for f in report["findings"]}
    assert namespaces <= {"brand-mt", None}


def test_scope_without_namespace_labels_is_a_gap_not_a_pass(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text((FIXTURES / "checks" / "pod-no-privilege" / "fail.yaml").read_text())
    report = assess(collect(manifest), profiles.load("ukgc"), all_checks(), as_of=AS_OF)
    assert report["report"]["scope"]["unknown"] == ["shop"]
    assert any(g["gap"] == "scope-unknown" for g in report["coverage"])
    item = next(i for i in report["items"] if i["key"] == "pod.no-privilege")
    assert item["status"] == "not_assessed" and "scope" in item["reason"]


def test_namespace_the_scope_cannot_place_makes_the_verdict_incomplete(tmp_path: Path) -> None:
    import shutil

    src = tmp_path / "in"
    shutil.copytree(DEMO, src)
    # a UK workload in a namespace whose Namespace object (and so its market label) is missing
    extra = (src / "uk.yaml").read_text().split("\n---\n")
    deployment = next(d for d in extra if "kind: Deployment" in d and "name: wallet" in d)
    (src / "zz-unlabelled.yaml").write_text(deployment.replace("namespace: brand-uk", "namespace: brand-uk-2"))
    p = _profile(
        tmp_path,
        "scope: {namespaces: {match_labels: {market: uk}}}\ngate: {block_on: [critical]}\n"
        "parameters: {cluster_admin_subjects: ['Group:acme:platform-breakglass']}\n",
    )
    report = assess(collect(src), p, all_checks(), as_of=AS_OF)
    assert report["report"]["scope"]["unknown"] == ["brand-uk-2"]
    # nothing critical fails, so the unplaceable namespace alone makes the verdict incomplete
    assert (report["summary"]["verdict"], report["summary"]["exit_code"]) == ("incomplete", 3)


def test_profile_mistakes_are_errors_naming_the_field_with_a_suggestion(tmp_path: Path) -> None:
    cases = {
        "parameters: {allowed_registry: [a.example]}\n": r"parameters\.allowed_registry: unknown parameter; did you mean 'allowed_registries'\?",
        "waivers: [{id: W1, check: pod-read-only-rootfs, reason: r, approver: a, ticket: T, expires: '2027-01-01'}]\n": (
            r"waivers\[0\]\.check: 'pod-read-only-rootfs' is not a check id .*did you mean 'pod-read-only-root-fs'\?"
        ),
        "waivers: [{id: W1, item: pod.read-only-rootfs, reason: r, approver: a, ticket: T, expires: '2027-01-01'}]\n": (
            r"waivers\[0\]\.item: 'pod.read-only-rootfs' is not a checklist item key .*CHECKLIST\.md.*did you mean 'pod.read-only-root-fs'\?"
        ),
    }
    for body, pattern in cases.items():
        path = tmp_path / "p.yaml"
        path.write_text("extends: ukgc\nid: mine\nversion: '1'\n" + body)
        with pytest.raises(ProfileError, match=pattern):
            profiles.load(str(path))


def test_extends_accepts_a_company_base_profile_file(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "acme-base.yaml").write_text(
        "extends: ukgc\nid: acme-base\nversion: '1'\nparameters: {allowed_registries: [registry.acme.example]}\n"
    )
    (tmp_path / "brand.yaml").write_text(
        "extends: base/acme-base.yaml\nid: acme-brand-uk\nversion: '2'\nparameters: {startup_seconds: 90}\n"
    )
    p = profiles.load(str(tmp_path / "brand.yaml"))
    assert p.id == "acme-brand-uk"
    assert p.parameters["allowed_registries"] == ["registry.acme.example"]  # from the company base
    assert p.parameters["startup_seconds"] == 90  # own
    assert p.parameters["min_replicas_critical"] == 3  # from ukgc, two levels up
    assert p.jurisdiction["regulator"] == "UK Gambling Commission"
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\nid: loop\nversion: '1'\n")
    with pytest.raises(ProfileError, match="more than 8 levels"):
        profiles.load(str(tmp_path / "loop.yaml"))
    (tmp_path / "missing.yaml").write_text("extends: nowhere.yaml\nid: m\nversion: '1'\n")
    with pytest.raises(ProfileError, match=r"extends: 'nowhere.yaml' is neither a shipped profile"):
        profiles.load(str(tmp_path / "missing.yaml"))


def test_impossible_dates_are_field_errors_not_crashes(tmp_path: Path) -> None:
    for body, pattern in {
        "waivers: [{id: W1, check: pod-seccomp, reason: r, approver: a, ticket: T, expires: 2026-13-01}]\n": (
            r"waivers\[0\]\.expires: '2026-13-01' is not a date"
        ),
        "signoff: {prepared_by: {name: X, date: 2026-02-30}}\n": r"signoff\.prepared_by\.date: '2026-02-30' is not a date",
    }.items():
        path = tmp_path / "p.yaml"
        path.write_text("extends: ukgc\nid: mine\nversion: '1'\n" + body)
        with pytest.raises(ProfileError, match=pattern):
            profiles.load(str(path))
