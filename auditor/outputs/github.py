"""GitHub Actions: workflow annotations on stdout and a Markdown job summary ($GITHUB_STEP_SUMMARY).

Written when the run is inside GitHub Actions (``GITHUB_ACTIONS=true``), beside whatever formats were
asked for: failing findings become ``::error`` (blocking) or ``::warning`` annotations at their file and
line, so they show on the pull request's diff; the summary gives the verdict, the failing items and
the evidence that was missing. SARIF (for code scanning) and JUnit stay files, as the workflow uploads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TextIO

from auditor.models import subject_text

MAX_ANNOTATIONS = 50
"""GitHub shows at most 10 error and 10 warning annotations per step and 50 per job; more are noise."""


def active() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def write_annotations(report: Mapping[str, Any], out: TextIO) -> int:
    """Print workflow commands for failing findings (blocking ones first). Returns how many were printed."""
    blocking = set(report["report"]["gate"]["block_on"])
    failing = [f for f in report["findings"] if f["status"] in ("fail", "error")]
    failing.sort(key=lambda f: (f["severity"] not in blocking, f["check"]))
    written = 0
    for f in failing[:MAX_ANNOTATIONS]:
        level = "error" if f["severity"] in blocking else "warning"
        title = "{} ({})".format(f["check"], f["severity"])
        props = [f"title={_escape_property(title)}"]
        loc = f.get("location")
        if loc and loc.get("file"):
            props.insert(0, f"file={_escape_property(str(loc['file']))}")
            if loc.get("line"):
                props.insert(1, f"line={int(loc['line'])}")
        message = f"{subject_text(f['subject'])}: {f['message']}"
        out.write(f"::{level} {','.join(props)}::{_escape_data(message)}\n")
        written += 1
    return written


def summary(report: Mapping[str, Any]) -> str:
    """The job summary, in GitHub-flavoured Markdown."""
    rep, s = report["report"], report["summary"]
    icon = {"pass": "✅", "blocked": "⛔", "incomplete": "⚠️"}.get(s["verdict"], "")
    lines = [
        f"## {icon} {rep['profile']['id']}: {s['verdict'].upper()} (exit {s['exit_code']})",
        "",
        f"{rep['jurisdiction'].get('name', '')} · profile {rep['profile']['id']} {rep['profile']['version']} · "
        f"evidence `{rep['evidence']['sha256'][:19]}…`",
        "",
        "| items | pass | fail | waived | not assessed | n/a |",
        "|---|---:|---:|---:|---:|---:|",
        "| {} | {pass} | {fail} | {waived} | {not_assessed} | {not_applicable} |".format(
            sum(s["items"].values()), **s["items"]
        ),
        "",
    ]
    failed = [i for i in report["items"] if i["status"] == "fail"]
    if failed:
        lines += ["### Failing items", "", "| item | severity | blocks | first finding |", "|---|---|---|---|"]
        for item in failed:
            first = next((f for f in report["findings"] if item["key"] in f["items"] and f["status"] == "fail"), None)
            text = f"{subject_text(first['subject'])}: {first['message']}" if first else ""
            text = text.replace("|", "\\|")[:300]
            lines.append(f"| `{item['key']}` | {item['severity']} | {'yes' if item['blocking'] else 'no'} | {text} |")
        lines.append("")
    missing = [i for i in report["items"] if i["status"] == "not_assessed" and i["blocking"]]
    if missing:
        lines += ["### Blocking items without evidence", ""]
        for item in missing[:30]:
            lines.append(f"- `{item['key']}`: {str(item.get('reason', '')).replace('|', '/')[:200]}")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_summary(report: Mapping[str, Any]) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(summary(report))
