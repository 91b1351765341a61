"""The command-line contract: exit codes, verdict lines, formats, catalog, diff."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema

from auditor.outputs.json_report import report_schema

from .conftest import AS_OF, FIXTURES, run_audit, run_cli

DEMO = FIXTURES / "demo" / "manifests"
COMPLIANT = FIXTURES / "checks" / "pod-no-privilege" / "pass.yaml"


def _compliant_profile(tmp_path: Path) -> Path:
    """Baseline restricted to what manifests can show, so a compliant input can pass the gate."""
    p = tmp_path / "manifests-only.yaml"
    p.write_text(
        "extends: baseline\nid: manifests-only\nversion: '1'\n"
        "gate: {block_on: [critical, high], not_assessed_blocks: false}\n"
        "parameters: {allowed_registries: [registry.example.com]}\n"
    )
    return p


def test_exit_1_on_blocking_findings_and_verdict_line(tmp_path: Path) -> None:
    proc = run_cli("gate", "--manifests", str(DEMO), "--profile", "ukgc", "--as-of", AS_OF)
    assert proc.returncode == 1
    assert proc.stdout.startswith("ukgc: BLOCKED (exit 1)")
    assert "Traceback" not in proc.stderr


def test_exit_3_when_blocking_item_cannot_be_assessed(tmp_path: Path) -> None:
    from auditor.checklist import ITEMS

    keep = {"pod.no-privilege", "image.signed"}
    items = "".join(f"  {i.key}: {{applies: false}}\n" for i in ITEMS if i.key not in keep)
    prof = tmp_path / "p.yaml"
    prof.write_text(f"extends: baseline\nid: two-items\nversion: '1'\nitems:\n{items}")
    out = tmp_path / "r"
    proc = run_audit(COMPLIANT, [str(prof)], out)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "INCOMPLETE (exit 3)" in proc.stdout
    report = json.loads((out / "two-items" / "report.json").read_text())
    status = {i["key"]: (i["status"], i["blocking"]) for i in report["items"]}
    assert status == {"pod.no-privilege": ("pass", False), "image.signed": ("not_assessed", True)}
    assert "registry" in next(i for i in report["items"] if i["key"] == "image.signed")["reason"]


def test_exit_0_when_nothing_blocks(tmp_path: Path) -> None:
    proc = run_cli(
        "gate",
        "--manifests",
        str(COMPLIANT),
        "--profile",
        str(_compliant_profile(tmp_path)),
        "--fail-on",
        "critical",
        "--as-of",
        AS_OF,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS (exit 0)" in proc.stdout


def test_fail_on_overrides_profile_gate(tmp_path: Path) -> None:
    # the demo's Ontario findings are high/medium/low: --fail-on critical lets them through, --fail-on low blocks
    prof = tmp_path / "on.yaml"
    prof.write_text(
        "extends: agco-on\nid: on-test\nversion: '1'\ngate: {not_assessed_blocks: false}\nparameters: {allowed_registries: [registry.acme-gaming.example], cluster_admin_subjects: ['Group:acme:platform-breakglass']}\n"
    )
    loose = run_cli("gate", "--manifests", str(DEMO), "--profile", str(prof), "--fail-on", "critical", "--as-of", AS_OF)
    strict = run_cli("gate", "--manifests", str(DEMO), "--profile", str(prof), "--fail-on", "low", "--as-of", AS_OF)
    assert (loose.returncode, strict.returncode) == (0, 1), loose.stdout + strict.stdout


def test_exit_2_when_nothing_could_be_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    proc = run_cli("audit", "--manifests", str(bad), "--profile", "baseline", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "nothing could be read" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_exit_2_for_usage_errors(tmp_path: Path) -> None:
    assert run_cli("audit", "--profile", "baseline", "--out", str(tmp_path)).returncode == 2
    proc = run_cli("audit", "--manifests", str(DEMO), "--profile", "nope", "--out", str(tmp_path))
    assert proc.returncode == 2 and "nope" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("audit", "--manifests", str(DEMO), "--profile", "ukgc", "--out", str(tmp_path), "--format", "docx")
    assert proc.returncode == 2 and "docx" in proc.stderr


def test_partial_bad_input_is_assessed_and_reported_as_gap(tmp_path: Path) -> None:
    src = tmp_path / "in"
    shutil.copytree(DEMO, src)
    (src / "broken.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n")
    proc = run_audit(src, ["ukgc"], tmp_path / "o")
    assert proc.returncode == 1  # blocking findings still win over incomplete evidence
    assert "broken.yaml:4" in proc.stderr
    report = json.loads((tmp_path / "o" / "ukgc" / "report.json").read_text())
    assert any(g["target"].endswith("broken.yaml:4") and g["gap"] == "malformed" for g in report["coverage"])


def test_multiple_profiles_write_one_directory_each_and_validate(tmp_path: Path) -> None:
    proc = run_audit(DEMO, ["ukgc", "mga"], tmp_path, "json,sarif,junit")
    assert proc.returncode == 1, proc.stderr
    schema = report_schema()
    for pid in ("ukgc", "mga"):
        report = json.loads((tmp_path / pid / "report.json").read_text())
        jsonschema.validate(report, schema)
        assert report["report"]["profile"]["id"] == pid
        sarif = json.loads((tmp_path / pid / "report.sarif").read_text())
        assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
        assert (tmp_path / pid / "report.junit.xml").read_text().startswith("<?xml")


def test_checks_catalog_json() -> None:
    proc = run_cli("checks", "--format", "json")
    catalog = json.loads(proc.stdout)
    assert len(catalog) == 26
    assert {"id", "title", "items", "severity"} <= set(catalog[0])


def test_docs_catalog_is_current() -> None:
    proc = run_cli("checks", "--format", "markdown")
    assert (FIXTURES.parent / "docs" / "checks.md").read_text() == proc.stdout, (
        "regenerate: auditor checks --format markdown > docs/checks.md"
    )


def test_diff_reports(tmp_path: Path) -> None:
    src = tmp_path / "in"
    shutil.copytree(DEMO, src)
    run_audit(src, ["mga"], tmp_path / "old")
    text = (
        (src / "mt.yaml")
        .read_text()
        .replace(
            "value: demo-not-a-real-key-9f8e7d6c5b4a",
            "valueFrom: {secretKeyRef: {name: bonus-engine-credentials, key: api-key}}",
        )
    )
    (src / "mt.yaml").write_text(text)
    run_audit(src, ["mga"], tmp_path / "new")
    proc = run_cli(
        "diff",
        str(tmp_path / "old" / "mga" / "report.json"),
        str(tmp_path / "new" / "mga" / "report.json"),
        "--format",
        "json",
    )
    result = json.loads(proc.stdout)
    assert [f["check"] for f in result["resolved"]] == ["secrets-no-literal-env"]
    assert [f["check"] for f in result["new"]] == ["secrets-mounted-not-env"]
    assert proc.returncode == 1  # something new fails
