"""Compare two reports: what is newly failing, what was resolved, what still fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditor.errors import InputError
from auditor.models import subject_text


def load_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable report.json ({exc})") from None
    if not isinstance(data, dict) or "findings" not in data or "items" not in data:
        raise InputError(f"{path}: not an auditor report (no findings/items)")
    return data


def _subject_label(subject: dict[str, Any]) -> str:
    return subject_text(subject)


def _failing(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for f in report["findings"]:
        if f["status"] == "fail":
            label = _subject_label(f["subject"])
            out[(f["check"], label)] = {
                "check": f["check"],
                "subject": label,
                "message": f["message"],
                "severity": f["severity"],
            }
    return out


def diff_reports(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    before, after = _failing(old), _failing(new)
    old_items = {i["key"]: i["status"] for i in old["items"]}
    changed = [
        {"key": i["key"], "old": old_items.get(i["key"], "absent"), "new": i["status"]}
        for i in new["items"]
        if old_items.get(i["key"]) != i["status"]
    ]
    return {
        "old_report": old["report"]["id"],
        "new_report": new["report"]["id"],
        "new": [after[k] for k in sorted(set(after) - set(before))],
        "resolved": [before[k] for k in sorted(set(before) - set(after))],
        "still_failing": [after[k] for k in sorted(set(after) & set(before))],
        "items_changed": changed,
    }


def baseline_result(new: dict[str, Any], *, old_path: str) -> dict[str, Any]:
    """The first run of a nightly diff: no previous report yet, so NEW is the baseline and nothing is new.

    Same keys as ``diff_reports`` (all empty) plus ``baseline: true`` and NEW's ``failing`` findings.
    """
    return {
        "baseline": True,
        "old_report": None,
        "old_path": old_path,
        "new_report": new["report"]["id"],
        "new": [],
        "resolved": [],
        "still_failing": [],
        "items_changed": [],
        "failing": list(_failing(new).values()),
    }
