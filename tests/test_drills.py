"""Drill records (auditor/sources/drills.py) and the two DR checks (checks/drills.py): the source on good and
hostile input, the snapshot round trip, the checks' semantics, and the command line end to end."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor import evidence
from auditor.checkapi import Check, CheckContext
from auditor.errors import EvidenceError, ProfileError
from auditor.models import EvidenceKind, EvidenceSet, Result, Status
from auditor.sources.drills import DrillsSource, parse_duration, parse_when, record_problem

from .conftest import AS_OF, FIXTURE_PARAMS, FIXTURES, ROOT, collect, collect_fixture

DEMO = FIXTURES / "demo" / "manifests"
_DRILL_CHECKS = importlib.import_module("auditor_checks.drills")  # the catalog installs as auditor_checks
RESTORE_TESTED = cast(Check, _DRILL_CHECKS.RESTORE_TESTED)
CUTOVER_TESTED = cast(Check, _DRILL_CHECKS.CUTOVER_TESTED)
duration_text = cast(Callable[[int], str], _DRILL_CHECKS.duration_text)
CHECKS = {"dr-restore-tested": RESTORE_TESTED, "dr-cutover-tested": CUTOVER_TESTED}

GOOD = """\
# restore drills of the UK brand
kind: RestoreDrill
id: DRILL-2026-10-uk
date: "2026-10-02T09:00:00Z"
scope:
  namespaces: [wallet-uk, bets-*]
  clusters: [prod-uk]
  databases: [wallet-db]
result: success
rpo_achieved: 5m
rto_achieved: 42m
signoff: {name: J. Okafor, role: Head of Infrastructure, date: "2026-10-03"}
notes: restored into drill-uk
evidence: [https://tickets.example/INC-1]
---
kind: DRCutover
date: 2026-11-08T06:00:00+01:00
scope: {namespaces: [wallet-uk]}
result: partial
steps:
  - {step: freeze-writes, result: success, at: "2026-11-08T05:00:00Z"}
  - {step: shift-traffic, result: failed, stages: [10, 50]}
"""


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# ---------------------------------------------------------------------- the source


def test_good_records_are_normalised(tmp_path: Path) -> None:
    path = _write(tmp_path, "uk.yaml", GOOD)
    found = DrillsSource([str(path)]).collect()
    assert found.gaps == []
    assert [(s.type, s.target) for s in found.sources] == [("drills", str(path))]
    restore, cutover = found.records
    assert restore == {
        "kind": "restore-drill",
        "id": "DRILL-2026-10-uk",
        "file": str(path),
        "line": 2,
        "date": "2026-10-02T09:00:00Z",
        "scope": {"namespaces": ["wallet-uk", "bets-*"], "clusters": ["prod-uk"], "databases": ["wallet-db"]},
        "result": "success",
        "rpo_achieved_seconds": 300,
        "rto_achieved_seconds": 2520,
        "signoff": {"name": "J. Okafor", "role": "Head of Infrastructure", "date": "2026-10-03T00:00:00Z"},
        "steps": [],
        "pitr_window": None,
        "evidence": ["https://tickets.example/INC-1"],
    }
    assert "notes" not in restore  # free text is never kept
    assert cutover["kind"] == "dr-cutover" and cutover["line"] == 16
    assert cutover["id"] == f"{path}#2"  # no id: the file and the record's index
    assert cutover["date"] == "2026-11-08T05:00:00Z"  # converted to UTC
    assert cutover["steps"] == [
        {"step": "freeze-writes", "result": "success", "at": "2026-11-08T05:00:00Z", "stages": []},
        {"step": "shift-traffic", "result": "failed", "at": None, "stages": [10, 50]},
    ]
    assert cutover["signoff"] is None and cutover["rto_achieved_seconds"] is None


def test_lists_json_directories_and_backup_runs(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "a/list.yaml",
        "- kind: BackupRun\n  id: B-2\n  date: 2026-11-26\n  scope: {databases: [ledger-db]}\n  result: success\n"
        "  pitr_window: {from: '2026-11-01', to: '2026-11-26T23:00:00Z'}\n"
        "- kind: BackupRun\n  id: B-1\n  date: 2026-11-25\n  scope: {databases: [ledger-db]}\n  result: failed\n",
    )
    _write(
        tmp_path,
        "b/records.json",
        '[\n  {"kind": "RestoreDrill", "id": "R-1", "date": "2026-11-01", "scope": {"namespaces": ["x"]},\n'
        '   "result": "success"},\n  {"kind": "DRCutover", "id": "C-1", "date": "2026-11-02",\n'
        '   "scope": {"clusters": ["dr"]}, "result": "success"}\n]\n',
    )
    _write(tmp_path, "b/ignored.txt", "not a record file")
    found = DrillsSource([str(tmp_path)]).collect()
    assert found.gaps == []
    assert [(r["id"], r["kind"], Path(r["file"]).name, r["line"]) for r in found.records] == [
        ("R-1", "restore-drill", "records.json", 2),
        ("C-1", "dr-cutover", "records.json", 4),
        ("B-1", "backup-run", "list.yaml", 7),
        ("B-2", "backup-run", "list.yaml", 1),
    ]
    assert found.records[-1]["pitr_window"] == {"from": "2026-11-01T00:00:00Z", "to": "2026-11-26T23:00:00Z"}


def test_records_inside_a_git_work_tree_name_the_commit(tmp_path: Path) -> None:
    inside = str(FIXTURES / "checks" / "dr-restore-tested" / "pass.drills.yaml")
    outside = str(_write(tmp_path, "r.yaml", GOOD))
    sources = DrillsSource([inside, outside]).collect().sources
    commit = sources[0].git_commit
    assert (ROOT / ".git").exists() and commit is not None and re.fullmatch(r"[0-9a-f]{40}", commit)
    assert sources[1].git_commit is None


VALID = "kind: RestoreDrill\nid: OK-1\ndate: 2026-11-01\nscope: {namespaces: [shop]}\nresult: success\n"


@pytest.mark.parametrize(
    ("name", "text", "gap", "line", "reason"),
    [
        ("broken.yaml", VALID + "---\nkind: RestoreDrill\ndate: [2026\n", "malformed", 8, "invalid YAML"),
        ("dupe.yaml", VALID + "---\nkind: RestoreDrill\nresult: success\nresult: failed\n", "malformed", 9, "dupl"),
        (
            "kind.yaml",
            VALID + "---\nkind: BackupDrill\ndate: 2026-11-01\nscope: {namespaces: [a]}\nresult: success\n",
            "invalid-object",
            7,
            "kind: 'BackupDrill' is not one of RestoreDrill, DRCutover, BackupRun",
        ),
        (
            "typo.yaml",
            VALID + "---\nkind: RestoreDril\ndate: 2026-11-01\nscope: {namespaces: [a]}\nresult: success\n",
            "invalid-object",
            7,
            "is not one of RestoreDrill, DRCutover, BackupRun (did you mean 'RestoreDrill'?)",
        ),
        (
            "nokind.yaml",
            VALID + "---\ndate: 2026-11-01\nscope: {namespaces: [a]}\nresult: success\n",
            "invalid-object",
            7,
            "kind: missing",
        ),
        (
            "date.yaml",
            VALID + "---\nkind: RestoreDrill\nscope: {namespaces: [a]}\nresult: success\n",
            "invalid-object",
            7,
            "date: missing",
        ),
        (
            "baddate.yaml",
            VALID + "---\nkind: RestoreDrill\ndate: 2026-13-01\nscope: {namespaces: [a]}\nresult: success\n",
            "invalid-object",
            7,
            "date: '2026-13-01' is not an ISO 8601 date",
        ),
        (
            "intdate.yaml",
            VALID + "---\nkind: RestoreDrill\ndate: 20261101\nscope: {namespaces: [a]}\nresult: success\n",
            "invalid-object",
            7,
            "date: 20261101 is not an ISO 8601 date",
        ),
        (
            "result.yaml",
            VALID + "---\nkind: RestoreDrill\ndate: 2026-11-01\nscope: {namespaces: [a]}\n",
            "invalid-object",
            7,
            "result: missing",
        ),
        (
            "ok.yaml",
            VALID + "---\nkind: RestoreDrill\ndate: 2026-11-01\nscope: {namespaces: [a]}\nresult: ok\n",
            "invalid-object",
            7,
            "result: 'ok' is not one of success, failed, partial",
        ),
        (
            "scope.yaml",
            VALID + "---\nkind: RestoreDrill\ndate: 2026-11-01\nresult: success\n",
            "invalid-object",
            7,
            "scope: missing",
        ),
        (
            "scopestr.yaml",
            VALID + "---\nkind: RestoreDrill\ndate: 2026-11-01\nscope: {namespaces: shop}\nresult: success\n",
            "invalid-object",
            7,
            "scope.namespaces: expected a list of names, got string 'shop'",
        ),
        (
            "scopeempty.yaml",
            VALID + "---\nkind: RestoreDrill\ndate: 2026-11-01\nscope: {}\nresult: success\n",
            "invalid-object",
            7,
            "scope: names nothing",
        ),
        (
            "rto.yaml",
            VALID + "---\nkind: RestoreDrill\ndate: 2026-11-01\nscope: {namespaces: [a]}\nresult: success\n"
            "rto_achieved: 42\n",
            "invalid-object",
            7,
            "rto_achieved: 42 is not a duration",
        ),
        (
            "steps.yaml",
            VALID + "---\nkind: DRCutover\ndate: 2026-11-01\nscope: {namespaces: [a]}\nresult: success\n"
            "steps: [{step: shift-traffic, stages: [10, fifty]}]\n",
            "invalid-object",
            7,
            "steps[0].stages[1]",
        ),
        (
            "signoff.yaml",
            VALID + "---\nkind: DRCutover\ndate: 2026-11-01\nscope: {namespaces: [a]}\nresult: success\n"
            "signoff: {role: CTO}\n",
            "invalid-object",
            7,
            "signoff.name: missing",
        ),
        ("scalar.yaml", VALID + "---\njust a string\n", "invalid-object", 7, "expected a record"),
        ("list.yaml", "- " + VALID.replace("\n", "\n  ").rstrip() + "\n- 42\n", "invalid-object", 6, "got number 42"),
        (
            "bad.json",
            '[{"kind": "RestoreDrill", "id": "OK-1", "date": "2026-11-01", "scope": {"namespaces": ["shop"]},'
            ' "result": "success"},\n {"kind": "RestoreDrill", "date": "2026-11-01", "scope": {"namespaces": []}, '
            '"result": "success"}]',
            "invalid-object",
            2,
            "scope: names nothing",
        ),
    ],
)
def test_bad_records_are_gaps_naming_file_line_and_field(
    tmp_path: Path, name: str, text: str, gap: str, line: int, reason: str
) -> None:
    path = _write(tmp_path, name, text)
    found = DrillsSource([str(tmp_path)]).collect()
    assert [r["id"] for r in found.records] == ["OK-1"], found.gaps  # the good record beside it still loads
    (g,) = found.gaps
    assert (g.source, g.target, g.gap) == ("drills", f"{path}:{line}", gap), g
    assert reason in g.reason, g.reason


@pytest.mark.parametrize(
    ("name", "data", "gap", "reason"),
    [
        ("binary.yaml", b"kind: RestoreDrill\x00\x01\x02", "unreadable", "binary file"),
        ("latin1.yaml", "notes: caf\u00e9\n".encode("latin-1"), "unreadable", "not UTF-8"),
        ("broken.json", b'{"kind": "RestoreDrill",\n "date": }', "malformed", "invalid JSON"),
        ("dupe.json", b'{"kind": "RestoreDrill", "kind": "DRCutover"}', "malformed", "duplicate key 'kind'"),
        (
            "bomb.yaml",
            b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + b"".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n".encode() for p, c in zip("abcdefg", "bcdefgh", strict=True)
            )
            + b"kind: RestoreDrill\n",
            "too-large",
            "alias",
        ),
    ],
)
def test_hostile_files_are_gaps_and_never_raise(tmp_path: Path, name: str, data: bytes, gap: str, reason: str) -> None:
    _write(tmp_path, "good.yaml", VALID)
    path = _write(tmp_path, name, data)
    found = DrillsSource([str(tmp_path)]).collect()
    assert [r["id"] for r in found.records] == ["OK-1"]
    (g,) = found.gaps
    assert g.target.split(":")[0] == str(path) and g.gap == gap and reason in g.reason, g


def test_files_over_8_mib_are_refused_unread(tmp_path: Path) -> None:
    _write(tmp_path, "good.yaml", VALID)
    big = tmp_path / "huge.yaml"
    with big.open("wb") as fh:
        fh.write(b"# padding\n" * (8 * 1024 * 1024 // 10 + 1))
    found = DrillsSource([str(tmp_path)]).collect()
    assert [r["id"] for r in found.records] == ["OK-1"]
    (g,) = found.gaps
    assert (g.target, g.gap) == (str(big), "too-large") and "8 MiB" in g.reason


def test_missing_paths_empty_folders_unknown_fields_and_duplicate_ids(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    path = _write(tmp_path, "r/typo.yaml", VALID + "rto_acheived: 5m\n---\n" + VALID)
    found = DrillsSource([str(tmp_path / "nope"), str(tmp_path / "empty"), str(tmp_path / "r")]).collect()
    assert len(found.records) == 2  # an unknown field is named, the record is still used
    gaps = {(g.target, g.gap): g.reason for g in found.gaps}
    assert gaps[(str(tmp_path / "nope"), "unreadable")] == "no such file or directory"
    assert (str(tmp_path / "empty"), "empty") in gaps
    assert "rto_acheived: unknown field (did you mean 'rto_achieved'?)" in gaps[(f"{path}:1", "unknown-field")]
    assert "record id OK-1 is used by 2 records" in gaps[(f"{path}:1", "duplicate-id")]


def test_evidence_links_with_credentials_are_redacted(tmp_path: Path) -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    path = _write(
        tmp_path, "r.yaml", VALID + f"evidence: [https://tickets.example/1, 'https://x.example/?t={token}']\n"
    )
    (record,) = DrillsSource([str(path)]).collect().records
    assert record["evidence"][0] == "https://tickets.example/1"
    assert token not in json.dumps(record) and record["evidence"][1].startswith("<redacted secret-like text")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_FIELD_VALUES = st.fixed_dictionaries(
    {},
    optional={
        k: _JSON | st.sampled_from(["RestoreDrill", "DRCutover", "success", "2026-11-01", "5m", "PT1H"])
        for k in ("kind", "id", "date", "scope", "result", "rpo_achieved", "rto_achieved", "signoff", "steps",
                  "pitr_window", "evidence", "notes")
    },
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=_FIELD_VALUES, noise=st.binary(max_size=200))
def test_any_input_is_records_or_gaps_never_an_exception(tmp_path: Path, record: dict[str, Any], noise: bytes) -> None:
    _write(tmp_path, "a.json", json.dumps(record, allow_nan=True))
    _write(tmp_path, "b.yaml", noise)
    found = DrillsSource([str(tmp_path)]).collect()
    json_file = str(tmp_path / "a.json")
    assert any(r["file"] == json_file for r in found.records) or any(
        g.target.startswith(json_file) and g.gap != "unknown-field" for g in found.gaps
    )
    for r in found.records:  # whatever loads is what a snapshot accepts
        assert record_problem(r) is None, r
    evidence.canonical_json(found.records)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("PT42M", 2520),
        ("pt5m", 300),
        ("P1DT2H", 93600),
        ("PT1H5M30S", 3930),
        ("P1W", 604800),
        ("42", None),
        ("5 minutes", None),
        ("", None),
        ("P", None),
        ("PT", None),
        ("-5m", None),
    ],
)
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(42) is None
    if seconds:
        assert parse_duration(duration_text(seconds)) == seconds  # what the checks print reads back


def test_dates() -> None:
    assert parse_when("2026-10-02") == "2026-10-02T00:00:00Z"
    assert parse_when("2026-10-02T09:00:00") == "2026-10-02T09:00:00Z"  # no zone: UTC
    assert parse_when("2026-10-02T09:00:00.5+02:00") == "2026-10-02T07:00:00Z"
    assert parse_when("2026-02-30") is None and parse_when("yesterday") is None and parse_when(None) is None


def test_same_files_give_the_same_records(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", GOOD)
    _write(tmp_path, "b.yaml", VALID)
    first = DrillsSource([str(tmp_path / "b.yaml"), str(tmp_path / "a.yaml")]).collect()
    second = DrillsSource([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]).collect()
    third = DrillsSource([str(tmp_path), str(tmp_path / "a.yaml")]).collect()  # a file named twice is read once
    assert first.records == second.records == third.records
    assert [r["date"] for r in first.records] == sorted(r["date"] for r in first.records)


# ---------------------------------------------------------------------- the snapshot


def _with_drills(ev: EvidenceSet, *paths: Path) -> EvidenceSet:
    found = DrillsSource([str(p) for p in paths]).collect()
    return evidence.with_drills(ev, found.records, found.gaps, found.sources)


def test_snapshot_round_trip_keeps_records_and_digest(tmp_path: Path) -> None:
    base = collect(DEMO)
    assert b'"drills"' not in evidence.dumps(base)  # no records, no section: existing digests are unchanged
    assert not evidence.with_drills(base, [], [], None).drills
    ev = _with_drills(base, _write(tmp_path, "r.yaml", GOOD))
    assert EvidenceKind.DRILLS in ev.kinds and len(ev.drills) == 2 and ev.digest != base.digest
    path = tmp_path / "ev.json"
    evidence.save(ev, path)
    loaded = evidence.load(path)
    assert loaded.digest == ev.digest and list(loaded.drills) == list(ev.drills)
    assert evidence.dumps(loaded) == path.read_bytes()
    assert _with_drills(collect(DEMO), tmp_path / "r.yaml").digest == ev.digest  # same inputs, same digest
    # records added to a loaded snapshot: kept once, in date order
    again = _with_drills(loaded, tmp_path / "r.yaml", _write(tmp_path, "more.yaml", VALID))
    assert [r["id"] for r in again.drills] == ["DRILL-2026-10-uk", "OK-1", f"{tmp_path / 'r.yaml'}#2"]


def _resave(path: Path, data: dict[str, Any]) -> None:
    data.pop("digest", None)
    data["digest"] = "sha256:" + evidence.sha256_hex(evidence.canonical_json(data))
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.__setitem__("drills", {"x": 1}), "drills: expected a list"),
        (lambda d: d["drills"][0].__setitem__("date", "2026-10-02"), "drills[0]: date: expected UTC ISO 8601"),
        (lambda d: d["drills"][0].__setitem__("kind", "Fire"), "drills[0]: kind: 'Fire'"),
        (lambda d: d["drills"][0].__setitem__("rto_achieved_seconds", "42m"), "rto_achieved_seconds: expected"),
        (lambda d: d["drills"][0]["scope"].__setitem__("namespaces", "a"), "drills[0]: scope:"),
        (lambda d: d["drills"][1].pop("steps"), "drills[1]: missing steps"),
        (lambda d: d["drills"][1]["steps"][0].__setitem__("stages", [True]), "drills[1]: steps[0]"),
    ],
)
def test_malformed_drills_in_a_snapshot_are_refused(tmp_path: Path, edit: Any, message: str) -> None:
    path = tmp_path / "ev.json"
    evidence.save(_with_drills(collect(DEMO), _write(tmp_path, "r.yaml", GOOD)), path)
    data = json.loads(path.read_text())
    edit(data)
    _resave(path, data)
    with pytest.raises(EvidenceError, match=re.escape("malformed evidence snapshot (") + ".*" + re.escape(message)):
        evidence.load(path)


# ---------------------------------------------------------------------- the checks


def _run(check: Check, ev: EvidenceSet, params: Mapping[str, Any] | None = None, as_of: str = AS_OF) -> list[Result]:
    return list(check.run(CheckContext(ev, params if params is not None else FIXTURE_PARAMS, as_of)))


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_fixtures(check_id: str) -> None:
    """What tests/test_check_fixtures.py does for every registered check, for these two."""
    folder = FIXTURES / "checks" / check_id
    ev = collect_fixture(folder / "pass.yaml")
    assert not ev.gaps and ev.drills
    results = _run(CHECKS[check_id], ev)
    assert results and {r.status for r in results} == {Status.PASS}, results
    fail = folder / "fail.yaml"
    m = re.search(r"^# expect-facets: (.+)$", fail.read_text(), re.MULTILINE)
    assert m
    ev = collect_fixture(fail)
    assert not ev.gaps
    failing = [r for r in _run(CHECKS[check_id], ev) if r.status is Status.FAIL]
    seen = {f for r in failing for f in r.facets}
    assert {f.strip() for f in m.group(1).split(",")} <= seen <= set(CHECKS[check_id].meta.facets)


def test_pass_message_names_record_date_signoff_and_file() -> None:
    ev = collect_fixture(FIXTURES / "checks" / "dr-restore-tested" / "pass.yaml")
    wallet = next(r for r in _run(RESTORE_TESTED, ev) if r.subject.name == "wallet-uk")
    assert wallet.subject.kind == "Namespace"
    assert wallet.message.startswith(
        "restore drill DRILL-2026-10-uk on 2026-10-02 succeeded (RPO 5m, RTO 42m), signed off by J. Okafor "
        "(Head of Infrastructure, 2026-10-03); 55 days before 2026-11-27, within the 90-day window"
    )
    assert "pass.drills.yaml:2" in wallet.message
    assert any("https://tickets.example/DR-118" in e for e in wallet.evidence)
    # the namespace without state is no subject
    assert "promo-uk" not in {r.subject.name for r in _run(RESTORE_TESTED, ev)}


def test_failure_messages_name_record_date_age_and_file() -> None:
    ev = collect_fixture(FIXTURES / "checks" / "dr-restore-tested" / "fail.yaml")
    by_ns = {r.subject.name: r for r in _run(RESTORE_TESTED, ev)}
    assert "DRILL-2026-05-bets on 2026-05-10, 201 days old (" in by_ns["bets-uk"].message
    assert "fail.drills.yaml:2) on 2026-11-27: over the profile's 90-day window" in by_ns["bets-uk"].message
    assert "DRILL-2026-11-wallet on 2026-11-12, 14 days old (" in by_ns["wallet-uk"].message
    assert "failed; the last successful one was DRILL-2026-10-wallet on 2026-10-02" in by_ns["wallet-uk"].message
    assert "no restore drill on record covers namespace cashier-uk" in by_ns["cashier-uk"].message
    assert "PersistentVolumeClaim documents" in by_ns["cashier-uk"].message
    # a longer window makes the May drill recent enough
    wider = {r.subject.name: r.status for r in _run(RESTORE_TESTED, ev, {"drill_window_days": 365})}
    assert wider["bets-uk"] is Status.PASS


def _drill_ev(tmp_path: Path, records: str, manifests: str | None = None) -> EvidenceSet:
    m = _write(
        tmp_path,
        "m.yaml",
        manifests
        or "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: wallet-uk}\n"
        "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
    )
    return _with_drills(collect(m), _write(tmp_path, "d/r.yaml", records))


CUTOVER = """\
kind: DRCutover
id: C-1
date: "2026-11-20"
scope: {namespaces: [wallet-*], clusters: [prod-uk]}
result: success
rpo_achieved: 2m
rto_achieved: 1h10m
steps:
  - {step: freeze-writes}
  - {step: promote_database}
  - {step: Warm Caches}
  - {step: shift-traffic, stages: [5, 25, 100]}
"""


def test_rto_and_rpo_limits(tmp_path: Path) -> None:
    ev = _drill_ev(tmp_path, CUTOVER)
    (ok,) = _run(CUTOVER_TESTED, ev, {})
    assert ok.status is Status.PASS and "(RPO 2m, RTO 1h10m)" in ok.message and "no sign-off recorded" in ok.message
    (r,) = _run(CUTOVER_TESTED, ev, {"rto_minutes": 60, "rpo_minutes": 5})
    assert r.facets == ("rto-exceeded",) and "achieved an RTO of 1h10m, over the profile's 60 minutes" in r.message
    (r,) = _run(CUTOVER_TESTED, ev, {"rto_minutes": 90, "rpo_minutes": 1})
    assert r.facets == ("rpo-exceeded",)
    ev = _drill_ev(tmp_path, CUTOVER.replace("rpo_achieved: 2m\n", ""))
    (r,) = _run(CUTOVER_TESTED, ev, {"rpo_minutes": 5})
    assert r.facets == ("rpo-exceeded",) and "records no RPO achieved" in r.message
    with pytest.raises(ProfileError, match=r"parameters\.rto_minutes"):
        _run(CUTOVER_TESTED, ev, {"rto_minutes": "1h"})
    with pytest.raises(ProfileError, match=r"parameters\.drill_window_days"):
        _run(CUTOVER_TESTED, ev, {"drill_window_days": 0})


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        (
            "  - {step: freeze-writes}\n  - {step: warm-caches}\n  - {step: promote-database}\n"
            "  - {step: shift-traffic, stages: [10, 100]}\n",
            "not in the order freeze-writes, promote-database",
        ),
        (
            "  - {step: freeze-writes}\n  - {step: promote-database}\n  - {step: warm-caches}\n"
            "  - {step: shift-traffic}\n",
            "shift-traffic moved traffic with no stages recorded",
        ),
        (
            "  - {step: freeze-writes}\n  - {step: promote-database}\n  - {step: warm-caches}\n"
            "  - {step: shift-traffic, stages: [50, 20, 100]}\n",
            "do not rise step by step to 100%",
        ),
        (
            "  - {step: freeze-writes}\n  - {step: promote-database, result: skipped}\n  - {step: warm-caches}\n"
            "  - {step: shift-traffic, stages: [10, 100]}\n",
            "step promote-database skipped",
        ),
        (
            "  - {step: promote-database}\n  - {step: shift-traffic, stages: [10, 100]}\n",
            "no freeze-writes, warm-caches step",
        ),
    ],
)
def test_cutover_steps(tmp_path: Path, steps: str, problem: str) -> None:
    text = CUTOVER.split("steps:\n")[0] + "steps:\n" + steps
    (r,) = _run(CUTOVER_TESTED, _drill_ev(tmp_path, text), {})
    assert r.facets == ("steps-missing",) and problem in r.message, r.message


def test_future_records_clusters_and_kinds(tmp_path: Path) -> None:
    future = CUTOVER.replace('date: "2026-11-20"', 'date: "2026-12-01"')
    (r,) = _run(CUTOVER_TESTED, _drill_ev(tmp_path, future), {})
    assert (
        r.facets == ("no-drill",)
        and "up to the audit time 2026-11-27" in r.message
        and "names it but is dated after that" in r.message
    )
    # a record for another cluster does not cover a live cluster's namespace; manifests have no cluster
    ev = _drill_ev(tmp_path, CUTOVER)
    live = EvidenceSet(
        objects=[type(o)(raw=o.raw, location=o.location, cluster="prod-mt") for o in ev.objects],
        kinds=ev.kinds,
        sources=ev.sources,
        gaps=ev.gaps,
        collected_at=ev.collected_at,
        collector_version=ev.collector_version,
        drills=ev.drills,
    )
    (r,) = _run(CUTOVER_TESTED, live, {})
    assert r.facets == ("no-drill",) and "in cluster prod-mt" in r.message
    # a cutover is not a restore drill
    (r,) = _run(RESTORE_TESTED, ev, {})
    assert r.facets == ("no-drill",)


def test_what_holds_state(tmp_path: Path) -> None:
    manifests = (
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s, namespace: with-claims}\n"
        "spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: "
        "[{name: c, image: i}]}}, volumeClaimTemplates: [{metadata: {name: d}}]}\n---\n"
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s, namespace: no-claims}\n"
        "spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: "
        "[{name: c, image: i}]}}}\n---\n"
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: db, namespace: cnpg}\nspec: {}\n---\n"
        "apiVersion: example.com/v1\nkind: Cluster\nmetadata: {name: other, namespace: not-cnpg}\nspec: {}\n"
    )
    ev = _drill_ev(tmp_path, CUTOVER, manifests)
    assert {r.subject.name for r in _run(RESTORE_TESTED, ev, {})} == {"with-claims", "cnpg"}


# ---------------------------------------------------------------------- the command line

# Runs the real entry point; adds the two checks to the catalog until checks/__init__.py registers them.
_BOOT = (
    "import auditor_checks as c, auditor_checks.drills as d\n"
    "if 'dr-restore-tested' not in {x.meta.id for x in c.ALL_CHECKS}:\n"
    "    c.ALL_CHECKS = (*c.ALL_CHECKS, d.RESTORE_TESTED, d.CUTOVER_TESTED)\n"
    "from auditor.cli import main\n"
    "main()\n"
)


def _auditor(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUDITOR_LOG_FORMAT": "text"}
    return subprocess.run(
        [sys.executable, "-c", _BOOT, *args], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT
    )


def _items(report: Path) -> dict[str, dict[str, Any]]:
    return {i["key"]: i for i in json.loads(report.read_text())["items"]}


def _audit(out: Path, *sources: str) -> subprocess.CompletedProcess[str]:
    return _auditor("audit", *sources, "--profile", "ukgc", "--as-of", AS_OF, "--out", str(out), "--format", "json")


@pytest.fixture
def drills_dir(tmp_path: Path) -> Path:
    """Records for the demo's UK brand: a successful restore drill, and a cutover that never warmed the caches."""
    folder = tmp_path / "drills"
    _write(folder, "restore.yaml", (FIXTURES / "checks" / "dr-restore-tested" / "pass.drills.yaml").read_text())
    _write(folder, "restore-uk.json", json.dumps({
        "kind": "RestoreDrill", "id": "DRILL-2026-11-brand-uk", "date": "2026-11-02T10:00:00Z",
        "scope": {"namespaces": ["brand-*"]}, "result": "success", "rpo_achieved": "5m", "rto_achieved": "40m",
        "signoff": {"name": "J. Okafor", "role": "Head of Infrastructure"},
    }))  # fmt: skip
    _write(folder, "cutover/uk.yaml", CUTOVER.replace("wallet-*", "brand-uk").replace("Warm Caches", "shift-traffic"))
    return folder


def _demo_uk_holds_state() -> bool:
    """Whether the bundled demo's UK namespace holds state (volume claims, StatefulSets with claim templates,
    CloudNativePG clusters): the DR items have a subject there only if it does."""
    ev = _with_drills(collect(DEMO))
    return any(r.subject.name == "brand-uk" for r in _run(RESTORE_TESTED, ev, {}))


def test_cli_demo_with_drills(tmp_path: Path, drills_dir: Path) -> None:
    proc = _audit(tmp_path / "out", str(DEMO), "--drills", str(drills_dir))
    assert proc.returncode in (1, 3), proc.stderr  # the demo's own findings
    report = json.loads((tmp_path / "out" / "ukgc" / "report.json").read_text())
    assert "drills" in report["report"]["evidence"]["kinds"]
    assert {"type": "drills", "target": str(drills_dir)} in report["report"]["evidence"]["sources"]
    assert not [c for c in report["coverage"] if c["source"] == "drills"]
    items = _items(tmp_path / "out" / "ukgc" / "report.json")
    restore, cutover = items["dr.restore-tested"], items["dr.cutover-tested"]
    assert restore["checks"] == ["dr-restore-tested"] and cutover["checks"] == ["dr-cutover-tested"]
    assert "supplied_by" not in restore and "supplied_by" not in cutover  # the evidence kind was given
    if _demo_uk_holds_state():
        assert (restore["status"], cutover["status"]) == ("pass", "fail"), (restore, cutover)
    else:  # nothing in scope holds state: nothing to judge, which is not a pass
        for item in (restore, cutover):
            assert item["status"] == "not_assessed", item
            assert item["reason"] == "no subject of this item was found in scope in the evidence"


def test_cli_judges_stateful_namespaces_from_drill_records(tmp_path: Path, drills_dir: Path) -> None:
    claim = _write(
        tmp_path,
        "state.yaml",
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: wallet-data, namespace: brand-uk}\n"
        "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
    )
    proc = _audit(tmp_path / "out", str(DEMO), str(claim), "--drills", str(drills_dir))
    assert proc.returncode in (1, 3), proc.stderr
    report_path = tmp_path / "out" / "ukgc" / "report.json"
    items = _items(report_path)
    assert items["dr.restore-tested"]["status"] == "pass", items["dr.restore-tested"]
    assert items["dr.cutover-tested"]["status"] == "fail", items["dr.cutover-tested"]
    findings = json.loads(report_path.read_text())["findings"]
    (finding,) = [f for f in findings if f["check"] == "dr-cutover-tested" and f["subject"]["name"] == "brand-uk"]
    assert finding["subject"] == {"kind": "Namespace", "namespace": "brand-uk", "name": "brand-uk"}
    assert finding["facets"] == ["steps-missing"] and finding["items"] == ["dr.cutover-tested"]
    assert "DR cutover C-1 on 2026-11-20 (" in finding["message"] and "cutover/uk.yaml:1)" in finding["message"]
    assert "no warm-caches step" in finding["message"]

    # collect once with the records, assess later: the same report
    snap = tmp_path / "ev.json"
    collected = _auditor(
        "collect", str(DEMO), str(claim), "--drills", str(drills_dir), "--as-of", AS_OF, "--out", str(snap)
    )
    assert collected.returncode == 0, collected.stderr
    assert _audit(tmp_path / "via", "--evidence", str(snap)).returncode == proc.returncode
    assert (tmp_path / "via" / "ukgc" / "report.json").read_bytes() == report_path.read_bytes()


def test_cli_drills_with_evidence_and_alone(tmp_path: Path, drills_dir: Path) -> None:
    snap = tmp_path / "ev.json"
    assert _auditor("collect", str(DEMO), "--as-of", AS_OF, "--out", str(snap)).returncode == 0
    bad = _write(tmp_path, "bad/r.yaml", VALID + "---\nkind: RestoreDrill\ndate: soon\n")
    proc = _audit(tmp_path / "out", "--evidence", str(snap), "--drills", str(drills_dir), "--drills", str(bad))
    assert proc.returncode in (1, 3), proc.stderr
    report = json.loads((tmp_path / "out" / "ukgc" / "report.json").read_text())
    assert "drills" in report["report"]["evidence"]["kinds"]
    gap = next(c for c in report["coverage"] if c["source"] == "drills")
    assert gap["target"] == f"{bad}:7" and gap["gap"] == "invalid-object" and "date: 'soon'" in gap["reason"]
    assert f"{bad}:7" in proc.stderr  # warned about on the terminal, as other sources' gaps are

    alone = _audit(tmp_path / "alone", "--drills", str(drills_dir))
    assert alone.returncode == 2 and "no sources" in alone.stderr and "--drills adds drill records" in alone.stderr
    assert "Traceback" not in alone.stderr
