"""Spreadsheets for compliance officers: the documented columns, stable finding ids, every sheet, same bytes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from auditor.outputs.spreadsheet import COVERAGE_COLUMNS, FINDING_COLUMNS, ITEM_COLUMNS, WAIVER_COLUMNS

from .conftest import FIXTURES, run_cli

DEMO = FIXTURES / "demo" / "manifests"


def _audit(out: Path, as_of: str) -> dict[str, object]:
    proc = run_cli(
        "audit",
        str(DEMO),
        "--profile",
        str(FIXTURES / "demo" / "profiles" / "ukgc.yaml"),
        "--out",
        str(out),
        "--format",
        "json,csv,xlsx",
        "--as-of",
        as_of,
    )
    assert proc.returncode == 1, proc.stderr
    return dict(json.loads((out / "ukgc" / "report.json").read_text()))


def test_csv_and_xlsx_hold_the_report_with_the_documented_columns(tmp_path: Path) -> None:
    report = _audit(tmp_path / "a", "2026-11-27T02:00:00Z")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a" / "ukgc" / "report.csv").read_text())))
    assert tuple(rows[0].keys()) == FINDING_COLUMNS
    findings = report["findings"]
    assert isinstance(findings, list) and len(rows) == len(findings)
    promo = next(r for r in rows if r["check"] == "image-pinned-digest")
    assert promo["subject"] == "Deployment brand-uk/promo" and promo["line"] == "671" and promo["officer_notes"] == ""
    sheets = pd.read_excel(tmp_path / "a" / "ukgc" / "report.xlsx", sheet_name=None)
    assert list(sheets) == ["items", "findings", "waivers", "coverage"]
    assert tuple(sheets["items"].columns) == ITEM_COLUMNS and len(sheets["items"]) == 51
    assert tuple(sheets["findings"].columns) == FINDING_COLUMNS and len(sheets["findings"]) == len(findings)
    assert tuple(sheets["waivers"].columns) == WAIVER_COLUMNS
    assert "W-DEMO-UK-001" in set(sheets["waivers"]["id"])
    assert tuple(sheets["coverage"].columns) == COVERAGE_COLUMNS


def test_finding_ids_are_stable_across_nights_and_bytes_are_reproducible(tmp_path: Path) -> None:
    _audit(tmp_path / "a", "2026-11-27T02:00:00Z")
    _audit(tmp_path / "b", "2026-11-27T20:00:00Z")  # a later run on the same recorded state
    _audit(tmp_path / "c", "2026-11-27T02:00:00Z")
    ids = [
        [r["finding_id"] for r in csv.DictReader(io.StringIO((tmp_path / d / "ukgc" / "report.csv").read_text()))]
        for d in ("a", "b")
    ]
    assert ids[0] == ids[1]  # an officer's notes keyed by finding_id carry over to the next night
    for name in ("report.csv", "report.xlsx"):
        assert (tmp_path / "a" / "ukgc" / name).read_bytes() == (tmp_path / "c" / "ukgc" / name).read_bytes(), name


def test_pandas_is_imported_only_for_spreadsheets() -> None:
    probe = "import sys, auditor.cli, auditor.outputs.json_report; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
