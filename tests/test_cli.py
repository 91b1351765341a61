"""The command-line contract: exit codes, verdict lines, formats, catalog, diff."""

from __future__ import annotations

import json
import shutil
import subprocess
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
    assert len(catalog) == 51
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


# ---------------------------------------------------------------------- positional paths


def test_positional_paths_add_to_manifests(tmp_path: Path) -> None:
    proc = run_cli("gate", str(DEMO), "--profile", "ukgc", "--as-of", AS_OF)
    assert proc.returncode == 1 and proc.stdout.startswith("ukgc: BLOCKED (exit 1)")

    out = tmp_path / "r"
    proc = run_cli("audit", str(DEMO), "--profile", "ukgc", "--out", str(out), "--format", "json", "--as-of", AS_OF)
    assert proc.returncode == 1 and (out / "ukgc" / "report.json").is_file()

    files = sorted(DEMO.glob("*.yaml"))
    mixed = run_cli(
        "collect", str(files[0]), str(files[1]), "--manifests", str(files[2]), "--out", str(tmp_path / "m.json")
    )
    whole = run_cli("collect", *map(str, files[:3]), "--out", str(tmp_path / "w.json"))
    assert mixed.returncode == whole.returncode == 0, mixed.stderr + whole.stderr
    mixed_ev, whole_ev = (json.loads((tmp_path / n).read_text()) for n in ("m.json", "w.json"))
    assert len(mixed_ev["objects"]) == len(whole_ev["objects"]) > 0
    # --manifests first, then the positional paths, in the order given
    assert mixed_ev["objects"][0]["location"]["file"] == str(files[2])


# ---------------------------------------------------------------------- tool errors: exit 2, one line naming the path


def _one_error_line(proc: subprocess.CompletedProcess[str], path: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("auditor: error: ") and path in line
    return line


def test_unwritable_out_is_a_tool_error_naming_the_path(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    below_a_file = a_file / "reports"
    proc = run_audit(DEMO, ["ukgc"], below_a_file)
    assert "Not a directory" in _one_error_line(proc, str(below_a_file))

    proc = run_audit(DEMO, ["ukgc"], a_file)  # an existing file where the directory should go
    assert "not a directory" in _one_error_line(proc, str(a_file))

    proc = run_cli("gate", str(DEMO), "--profile", "ukgc", "--out", "/proc/auditor-reports", "--format", "sarif")
    _one_error_line(proc, "/proc/auditor-reports")


def test_full_disk_while_writing_is_a_tool_error(tmp_path: Path) -> None:
    proc = run_cli("collect", str(DEMO), "--out", "/dev/full")
    assert "No space left on device" in _one_error_line(proc, "/dev/full")

    out = tmp_path / "r"
    (out / "ukgc").mkdir(parents=True)
    (out / "ukgc" / "report.json").symlink_to("/dev/full")  # the report lands on a full device
    proc = run_audit(DEMO, ["ukgc"], out)
    assert "No space left on device" in _one_error_line(proc, str(out / "ukgc" / "report.json"))

    proc = run_cli("collect", str(DEMO), "--out", str(tmp_path))  # a directory where the snapshot should go
    _one_error_line(proc, str(tmp_path))


# ---------------------------------------------------------------------- diff: the first nightly run


def test_diff_without_a_previous_report_makes_new_the_baseline(tmp_path: Path) -> None:
    run_audit(DEMO, ["mga"], tmp_path / "today")
    new = tmp_path / "today" / "mga" / "report.json"
    missing = tmp_path / "yesterday" / "mga" / "report.json"
    proc = run_cli("diff", str(missing), str(new))
    assert proc.returncode == 0, proc.stderr
    assert f"no previous report at {missing}" in proc.stdout and "baseline" in proc.stdout

    proc = run_cli("diff", str(missing), str(new), "--format", "json")
    result = json.loads(proc.stdout)
    report = json.loads(new.read_text())
    assert proc.returncode == 0 and result["baseline"] is True and result["new"] == []
    assert len(result["failing"]) == sum(f["status"] == "fail" for f in report["findings"]) > 0

    proc = run_cli("diff", str(new), str(missing))  # NEW missing stays an error
    assert proc.returncode == 2 and str(missing) in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------- profiles and the checklist


def test_profiles_lists_and_shows_the_shipped_file() -> None:
    listing = run_cli("profiles")
    assert listing.returncode == 0
    assert [line.split()[0] for line in listing.stdout.splitlines()] == ["agco-on", "baseline", "mga", "ukgc"]
    shown = run_cli("profiles", "show", "ukgc")
    assert shown.returncode == 0
    assert shown.stdout == (FIXTURES.parent / "auditor" / "data" / "profiles" / "ukgc.yaml").read_text()
    unknown = run_cli("profiles", "show", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr and "ukgc" in unknown.stderr


def test_checklist_lists_every_item_with_its_checks() -> None:
    from auditor.checklist import ITEMS

    proc = run_cli("checklist", "--format", "json")
    assert proc.returncode == 0
    rows = json.loads(proc.stdout)
    assert len(rows) == len(ITEMS) == 51
    assert {"key", "section", "title", "phase", "evidence", "checks"} <= set(rows[0])
    by_key = {r["key"]: r for r in rows}
    assert (
        by_key["pod.no-privilege"]["checks"] == ["pod-no-privilege"]
        and by_key["pod.no-privilege"]["phase"] == "release"
    )
    assert by_key["backup.recent"]["checks"] == ["backup-recent"] and by_key["backup.recent"]["phase"] == "runtime"
    # every checklist item has at least one check
    assert [r["key"] for r in rows if not r["checks"]] == []

    markdown = run_cli("checklist", "--format", "markdown").stdout
    assert sum(line.startswith("| `") for line in markdown.splitlines()) == 51

    text = run_cli("checklist").stdout
    assert "pod.no-privilege" in text and text.rstrip().endswith("CHECKLIST.md")

    path = Path(run_cli("checklist", "--path").stdout.strip())
    assert path.read_text() == (FIXTURES.parent / "auditor" / "data" / "CHECKLIST.md").read_text()
