"""The release gate judges release-time items; runtime items hold a release only when their evidence is given."""

from __future__ import annotations

import json
from pathlib import Path

from auditor.checklist import ITEMS, ITEMS_BY_KEY

from .conftest import AS_OF, FIXTURES, run_audit, run_cli

COMPLIANT = FIXTURES / "checks" / "pod-no-privilege" / "pass.yaml"


def _profile(tmp_path: Path, keep: set[str], extra: str = "") -> Path:
    items = "".join(f"  {i.key}: {{applies: false}}\n" for i in ITEMS if i.key not in keep)
    prof = tmp_path / "p.yaml"
    prof.write_text(f"extends: baseline\nid: gate-test\nversion: '1'\n{extra}items:\n{items}")
    return prof


def _gate(prof: Path, out: Path) -> tuple[int, dict[str, dict[str, object]], str]:
    proc = run_cli(
        "gate",
        "--manifests",
        str(COMPLIANT),
        "--profile",
        str(prof),
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        "--format",
        "json",
    )
    report = json.loads((out / "gate-test" / "report.json").read_text())
    return proc.returncode, {i["key"]: i for i in report["items"]}, proc.stdout + proc.stderr


def test_phases_follow_the_evidence_each_item_needs() -> None:
    assert ITEMS_BY_KEY["pod.no-privilege"].phase == "release"
    assert ITEMS_BY_KEY["image.signed"].phase == "release"
    assert ITEMS_BY_KEY["release.tag-signed"].phase == "release"
    assert ITEMS_BY_KEY["backup.recent"].phase == "runtime"
    assert ITEMS_BY_KEY["policy.admission-enforced"].phase == "runtime"
    assert len(ITEMS) == 51


def test_runtime_item_without_evidence_does_not_hold_a_release(tmp_path: Path) -> None:
    prof = _profile(tmp_path, {"pod.no-privilege", "backup.recent"})
    code, items, output = _gate(prof, tmp_path / "g")
    assert code == 0, output
    assert items["backup.recent"]["status"] == "not_assessed"
    assert items["backup.recent"]["blocking"] is False
    assert "runtime item" in str(items["backup.recent"]["deferred"])
    # The same evidence audited as a running platform fails closed: the runtime item lacks evidence.
    proc = run_audit(COMPLIANT, [str(prof)], tmp_path / "a")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "a" / "gate-test" / "report.json").read_text())
    backup = next(i for i in report["items"] if i["key"] == "backup.recent")
    assert backup["blocking"] is True and "deferred" not in backup


def test_a_runtime_item_failing_on_what_the_release_declares_holds_it(tmp_path: Path) -> None:
    """Fail closed: the release's manifests have workloads and no mesh policy, so net.mtls-strict fails and blocks;
    it is not deferred like a runtime item whose evidence is missing."""
    prof = _profile(tmp_path, {"pod.no-privilege", "net.mtls-strict"})
    code, items, output = _gate(prof, tmp_path / "g")
    assert code == 1, output
    mtls = items["net.mtls-strict"]
    assert mtls["status"] == "fail" and mtls["blocking"] is True and "deferred" not in mtls


def test_profile_can_make_runtime_items_hold_the_release(tmp_path: Path) -> None:
    prof = _profile(tmp_path, {"pod.no-privilege", "backup.recent"}, "gate: {runtime_items_block_release: true}\n")
    code, items, output = _gate(prof, tmp_path / "g")
    assert code == 3, output
    assert items["backup.recent"]["blocking"] is True


def test_missing_release_time_evidence_still_fails_closed_and_names_the_source(tmp_path: Path) -> None:
    prof = _profile(tmp_path, {"pod.no-privilege", "release.tag-signed"})
    code, items, output = _gate(prof, tmp_path / "g")
    assert code == 3, output
    tag = items["release.tag-signed"]
    assert tag["blocking"] is True and tag["phase"] == "release"
    assert "--git REPO --tag T" in str(tag["supplied_by"])
