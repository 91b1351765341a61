"""Off a terminal (cron, CI, a pod's log), stderr is JSON lines a log shipper can parse; results stay on stdout."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import AS_OF, FIXTURES, run_cli


def test_off_a_terminal_logs_are_json_lines_by_default(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x\n")
    good = FIXTURES / "checks" / "pod-no-privilege" / "pass.yaml"
    proc = run_cli("gate", str(good), str(bad), "--profile", "baseline", "--as-of", AS_OF, log_format="")
    assert proc.stdout.startswith("baseline: ")  # the verdict and its explanation are for people: text on stdout
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert records, proc.stderr
    assert all({"level", "message"} <= set(r) for r in records)
    gap = next(r for r in records if "invalid YAML" in r["message"])
    assert gap["level"] == "warning" and str(bad) in gap["message"]


def test_auditor_log_format_text_keeps_text_off_a_terminal(tmp_path: Path) -> None:
    proc = run_cli("gate", str(tmp_path / "missing.yaml"), "--profile", "baseline", log_format="text")
    assert proc.returncode == 2
    assert proc.stderr.startswith("auditor: ") and not proc.stderr.lstrip().startswith("{")
