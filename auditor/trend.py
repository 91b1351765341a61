"""Trends over an archive: each checklist section's pass rate per run, and time to remediate.

Pass rates come from ``pass_rates``, the same function the nightly report's own trend uses; pandas rolls up the
time to remediate, imported here only (it costs about a second at start-up), so every other command stays fast.
The pass rate of a section is passed items over items with a verdict (pass, fail,
waived); items not assessed or not applicable do not count either way, and are reported beside it.
Time to remediate: a failing finding (check and subject) is open from the first report that has it to the
first later report that does not; resolved ones give days to fix, open ones their age at the last report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from auditor.models import subject_text


def _date(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


RECENT_RUNS = 30


def pass_rates(report: Mapping[str, Any]) -> tuple[float | None, dict[str, float | None]]:
    """Overall and per-section pass rate of one report: passed items over items with a verdict."""
    rates: dict[str, float | None] = {}
    passed = judged = 0
    for s in report["summary"]["sections"]:
        n = s["pass"] + s["fail"] + s.get("waived", 0)
        rates[s["section"]] = round(s["pass"] / n, 3) if n else None
        passed, judged = passed + s["pass"], judged + n
    return (round(passed / judged, 3) if judged else None), rates


def recent(store: Any, profile_id: str, current: Mapping[str, Any], limit: int = RECENT_RUNS) -> dict[str, Any]:
    """The report's own trend: pass rates of this profile's last archived reports and of this one (no pandas:
    it runs on every archived audit). Unreadable entries are skipped and counted."""
    numbers = store.entries(profile_id) if store.exists() else []
    runs, skipped = [], 0
    for number in numbers[-(limit - 1) :] if limit > 1 else []:
        try:
            old = json.loads(store.read(profile_id, number, "report.json") or b"")
            overall, sections = pass_rates(old)
            when = str(old["report"]["generated_at"])
        except (ValueError, KeyError, TypeError):
            skipped += 1
            continue
        runs.append({"sequence": number, "generated_at": when, "pass_rate": overall, "sections": sections})
    overall, sections = pass_rates(current)
    runs.append(
        {
            "sequence": None,
            "generated_at": str(current["report"]["generated_at"]),
            "pass_rate": overall,
            "sections": sections,
        }
    )
    return {"runs": runs, "unreadable_entries": skipped}


def trend(store: Any) -> dict[str, Any]:
    """Per profile: the runs (sequence, time, pass rate per section, as ``pass_rates`` gives them for each report)
    and time to remediate."""
    out: dict[str, Any] = {}
    for pid in store.profiles():
        runs, seen = [], []
        for number in store.entries(pid):
            raw = store.read(pid, number, "report.json")
            if raw is None:
                continue
            report: Mapping[str, Any] = json.loads(raw)
            when = str(report["report"]["generated_at"])
            if report["summary"]["sections"]:
                runs.append(
                    {
                        "sequence": number,
                        "time": when,
                        "sections": pass_rates(report)[1],
                        "not_assessed": sum(s["not_assessed"] for s in report["summary"]["sections"]),
                    }
                )
            failing = {(f["check"], subject_text(f["subject"])) for f in report["findings"] if f["status"] == "fail"}
            seen.append((when, failing))
        if runs:
            out[pid] = {"runs": runs, "remediation": _remediation(seen)}
    return out


def _remediation(seen: list[tuple[str, set[tuple[str, str]]]]) -> dict[str, Any]:
    import pandas as pd

    first: dict[tuple[str, str], str] = {}
    fixed: list[dict[str, Any]] = []
    previous: set[tuple[str, str]] = set()
    for when, failing in seen:
        for key in failing - previous:
            first.setdefault(key, when)
        for key in previous - failing:
            days = (_date(when) - _date(first.pop(key))).total_seconds() / 86400
            fixed.append({"check": key[0], "subject": key[1], "days": round(days, 1), "resolved_at": when})
        previous = failing
    last = seen[-1][0] if seen else None
    open_ages = [(_date(last) - _date(t)).total_seconds() / 86400 for t in first.values()] if last else []
    days = pd.Series([f["days"] for f in fixed], dtype="float64")
    return {
        "resolved": len(fixed),
        "median_days_to_fix": None if days.empty else float(days.median()),
        "open": len(first),
        "oldest_open_days": round(max(open_ages), 1) if open_ages else None,
        "fixed": fixed,
    }


def render_text(data: Mapping[str, Any]) -> list[str]:
    lines = []
    for pid, t in data.items():
        lines.append(f"{pid}: {len(t['runs'])} runs")
        shown_runs = t["runs"][-14:]
        lines.append(f"  {'run (sequence)':<34} " + " ".join(f"{'#' + str(r['sequence']):>5}" for r in shown_runs))
        lines.append(f"  {'  dated (month-day)':<34} " + " ".join(f"{str(r['time'])[5:10]:>5}" for r in shown_runs))
        sections = sorted({s for r in t["runs"] for s in r["sections"]})
        for section in sections:
            rates = [r["sections"].get(section) for r in t["runs"]]
            shown = " ".join("    -" if x is None else f"{x * 100:4.0f}%" for x in rates[-14:])
            lines.append(f"  {section[:34]:<34} {shown}")
        lines.append(
            f"  {'items not assessed (not in rates)':<34} " + " ".join(f"{r['not_assessed']:>5}" for r in shown_runs)
        )
        rem = t["remediation"]
        median = "n/a" if rem["median_days_to_fix"] is None else f"{rem['median_days_to_fix']:.1f} days"
        oldest = "" if rem["oldest_open_days"] is None else f", oldest open {rem['oldest_open_days']:.1f} days"
        lines.append(f"  remediation: {rem['resolved']} resolved (median {median}), {rem['open']} open{oldest}")
    return lines
