"""The evidence snapshot: canonical, content-addressed, tamper-evident, and equivalent to direct audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor import evidence
from auditor.errors import EvidenceError

from .conftest import AS_OF, FIXTURES, collect, run_audit, run_cli

DEMO = FIXTURES / "demo" / "manifests"


def test_snapshot_round_trips_with_same_digest(tmp_path: Path) -> None:
    ev = collect(DEMO)
    path = tmp_path / "ev.json"
    evidence.save(ev, path)
    loaded = evidence.load(path)
    assert loaded.digest == ev.digest and loaded.digest.startswith("sha256:")
    assert [o.raw for o in loaded.objects] == [o.raw for o in ev.objects]
    assert evidence.dumps(loaded) == path.read_bytes()


def test_tampered_snapshot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ev.json"
    evidence.save(collect(DEMO), path)
    data = json.loads(path.read_text())
    data["objects"][0]["object"]["metadata"]["labels"] = {"market": "none"}
    path.write_text(json.dumps(data))
    with pytest.raises(EvidenceError, match="digest mismatch"):
        evidence.load(path)


def test_not_a_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ev.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(EvidenceError, match="not an auditor evidence snapshot"):
        evidence.load(path)


def test_collect_then_audit_equals_direct_audit_byte_for_byte(tmp_path: Path) -> None:
    ev_path = tmp_path / "ev.json"
    assert run_cli("collect", "--manifests", str(DEMO), "--as-of", AS_OF, "--out", str(ev_path)).returncode == 0
    direct = run_audit(DEMO, ["baseline"], tmp_path / "direct")
    via = run_cli(
        "audit",
        "--evidence",
        str(ev_path),
        "--profile",
        "baseline",
        "--as-of",
        AS_OF,
        "--out",
        str(tmp_path / "via"),
        "--format",
        "json",
    )
    assert direct.returncode == via.returncode == 1, (direct.stderr, via.stderr)
    a = (tmp_path / "direct" / "baseline" / "report.json").read_bytes()
    b = (tmp_path / "via" / "baseline" / "report.json").read_bytes()
    assert a == b
    report = json.loads(a)
    assert report["report"]["evidence"]["sha256"] == json.loads(ev_path.read_text())["digest"]


def test_same_evidence_and_profile_give_identical_json(tmp_path: Path) -> None:
    for run in ("one", "two"):
        proc = run_audit(DEMO, ["ukgc"], tmp_path / run)
        assert proc.returncode in (1, 3), proc.stderr
    assert (tmp_path / "one" / "ukgc" / "report.json").read_bytes() == (
        tmp_path / "two" / "ukgc" / "report.json"
    ).read_bytes()
