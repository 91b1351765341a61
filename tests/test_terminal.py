"""What the terminal shows: verdict explanations, -q/-v, JSON logs, colour, progress, shell completion."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from auditor.catalog import all_checks

from .conftest import AS_OF, FIXTURES, ROOT, run_cli

DEMO = FIXTURES / "demo" / "manifests"
COMPLIANT = FIXTURES / "checks" / "pod-no-privilege" / "pass.yaml"
ANSI = "\x1b["


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE")}
    env.update(extra)
    return env


def _run_on_terminal(
    args: Sequence[str],
    *,
    stdin_after: tuple[float, bytes] | None = None,
    env: Mapping[str, str] | None = None,
    stdout_tty: bool = True,
) -> tuple[int, str, str]:
    """Run the CLI with stderr (and stdout, unless told otherwise) on a pseudo-terminal.

    ``stdin_after=(seconds, data)`` keeps stdin open that long before writing ``data``: a phase that
    really takes that long, without a large input.
    """
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditor", *args],
        stdin=subprocess.PIPE,
        stdout=slave if stdout_tty else subprocess.PIPE,
        stderr=slave,
        env=dict(env) if env is not None else _env(),
    )
    os.close(slave)
    assert proc.stdin is not None
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    feed_at = time.monotonic() + stdin_after[0] if stdin_after else None
    if stdin_after is None:
        proc.stdin.close()
    while time.monotonic() < deadline:
        if feed_at is not None and time.monotonic() >= feed_at and stdin_after is not None:
            proc.stdin.write(stdin_after[1])
            proc.stdin.close()
            feed_at = None
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None and feed_at is None:
            # drain what is left, then stop
            while select.select([master], [], [], 0.1)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            break
    code = proc.wait(timeout=60)
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    return code, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n"), stdout


def _two_items_profile(tmp_path: Path) -> Path:
    """Only pod.no-privilege and image.signed apply: image.signed needs registry evidence, so the gate is incomplete."""
    from auditor.checklist import ITEMS

    keep = {"pod.no-privilege", "image.signed"}
    items = "".join(f"  {i.key}: {{applies: false}}\n" for i in ITEMS if i.key not in keep)
    prof = tmp_path / "two-items.yaml"
    prof.write_text(f"extends: baseline\nid: two-items\nversion: '1'\nitems:\n{items}")
    return prof


# ---------------------------------------------------------------------- the gate explains itself


def test_blocked_verdict_lists_blocking_items_with_findings_and_remediation() -> None:
    proc = run_cli("gate", str(DEMO), "--profile", "ukgc", "--as-of", AS_OF)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("ukgc: BLOCKED (exit 1)")
    assert "  FAIL rbac.cluster-admin-restricted (critical): cluster-admin bound only to allow-listed subjects" in lines
    # the finding: subject, file:line, message
    assert any(
        "ClusterRoleBinding platform-breakglass (" in line
        and "00-cluster.yaml:" in line
        and "binds cluster-admin" in line
        for line in lines
    ), proc.stdout
    remediation = next(c.meta.remediation for c in all_checks() if c.meta.id == "rbac-cluster-admin-restricted")
    assert f"    fix (rbac-cluster-admin-restricted): {remediation}" in lines
    # only blocking failures are explained: pod.read-only-root-fs fails in the demo but does not block under ukgc
    report_items = [line for line in lines if line.startswith("  FAIL ")]
    assert all("pod.read-only-root-fs" not in line for line in report_items)


def test_blocked_explanation_shows_at_most_three_findings_per_item(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    deployments = "".join(
        f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app{i}, namespace: shop}}\n"
        "spec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n"
        "    spec:\n      containers: [{name: c, image: 'registry.example.com/app:latest', securityContext: {privileged: true}}]\n"
        for i in range(5)
    )
    (src / "apps.yaml").write_text(deployments)
    proc = run_cli("gate", str(src), "--profile", "baseline", "--as-of", AS_OF)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("  FAIL pod.no-privilege")))
    shown = [line for line in lines[start + 1 : start + 6] if line.startswith("    Deployment shop/app")]
    assert len(shown) == 3
    assert lines[start + 4] == "    ... and 2 more (see the report)"


def test_incomplete_verdict_names_the_missing_evidence_and_its_supplier(tmp_path: Path) -> None:
    proc = run_cli("gate", str(COMPLIANT), "--profile", str(_two_items_profile(tmp_path)), "--as-of", AS_OF)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("two-items: INCOMPLETE (exit 3)")
    assert "  MISSING image.signed" in lines
    supplier = lines[lines.index("  MISSING image.signed") + 1]
    assert supplier.startswith("    supplied by: ") and "--trust-key" in supplier


def test_incomplete_verdict_lists_input_problems_and_scope_gaps(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(COMPLIANT, src / "ok.yaml")
    (src / "broken.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n")
    prof = tmp_path / "labelled.yaml"
    prof.write_text(
        "extends: baseline\nid: labelled\nversion: '1'\n"
        "scope: {namespaces: {match_labels: {market: uk}}}\n"
        "gate: {block_on: [critical], not_assessed_blocks: false}\n"
    )
    proc = run_cli("gate", str(src), "--profile", str(prof), "--as-of", AS_OF)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    out = proc.stdout
    assert "  INPUT PROBLEMS 1" in out and "broken.yaml:4" in out
    assert "  SCOPE GAPS 2" in out and "scope.namespaces.names" in out  # the unlabelled namespace; empty scope


def test_quiet_prints_only_the_verdict_line(tmp_path: Path) -> None:
    bad = tmp_path / "in"
    bad.mkdir()
    shutil.copy(COMPLIANT, bad / "ok.yaml")
    (bad / "broken.yaml").write_text("kind: [\n")
    for args in (("-q", "gate"), ("gate", "-q"), ("gate", "--quiet")):
        proc = run_cli(*args, str(DEMO), "--profile", "ukgc", "--as-of", AS_OF)
        assert proc.returncode == 1
        assert proc.stdout.splitlines() == [proc.stdout.splitlines()[0]]
        assert proc.stdout.startswith("ukgc: BLOCKED (exit 1)")
    proc = run_cli("-q", "gate", str(bad), "--profile", "ukgc", "--as-of", AS_OF)
    assert proc.stderr == ""  # warnings (the coverage gap) are silenced too; errors never are
    proc = run_cli("-q", "gate", str(DEMO), "--profile", "nope")
    assert proc.returncode == 2 and "nope" in proc.stderr


# ---------------------------------------------------------------------- logging


def test_log_format_json_writes_one_object_per_line_with_fields(tmp_path: Path) -> None:
    src = tmp_path / "in"
    shutil.copytree(DEMO, src)
    (src / "broken.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n")
    proc = run_cli("--log-format", "json", "gate", str(src), "--profile", "ukgc", "--as-of", AS_OF)
    assert proc.returncode == 1
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert records and all({"time", "level", "message"} <= set(r) for r in records)
    gap = next(r for r in records if r["level"] == "warning")
    assert gap["target"].endswith("broken.yaml:4") and gap["gap"] == "malformed"
    verdict = next(r for r in records if r.get("profile") == "ukgc")
    assert (verdict["level"], verdict["verdict"], verdict["exit_code"]) == ("info", "blocked", 1)
    assert proc.stdout.startswith("ukgc: BLOCKED (exit 1)")  # results stay text on stdout

    error = run_cli("gate", str(DEMO), "--profile", "nope", "--log-format", "json")
    assert error.returncode == 2
    (record,) = [json.loads(line) for line in error.stderr.splitlines()]
    assert record["level"] == "error" and "nope" in record["message"]

    usage = run_cli("--log-format", "json", "audit", str(DEMO), "--profile", "ukgc")  # no --out
    assert usage.returncode == 2
    (record,) = [json.loads(line) for line in usage.stderr.splitlines()]
    assert record["level"] == "error" and "--out" in record["message"]


def test_verbose_says_what_was_read_and_written(tmp_path: Path) -> None:
    proc = run_cli("-v", "audit", str(DEMO), "--profile", "mga", "--out", str(tmp_path), "--format", "json")
    assert proc.returncode == 1
    assert "auditor: evidence: " in proc.stderr and " objects" in proc.stderr
    assert f"auditor: wrote {tmp_path / 'mga' / 'report.json'}" in proc.stderr


# ---------------------------------------------------------------------- colour and progress


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    args = ["gate", str(DEMO), "--profile", "ukgc", "--as-of", AS_OF]
    code, terminal_out, _ = _run_on_terminal(args)
    assert code == 1
    assert f"{ANSI}31m" in terminal_out and "BLOCKED" in terminal_out  # red verdict
    code, plain, _ = _run_on_terminal(args, env=_env(NO_COLOR="1"))
    assert code == 1 and ANSI not in plain and "ukgc: BLOCKED (exit 1)" in plain
    code, plain, _ = _run_on_terminal([*args, "--no-color"])
    assert code == 1 and ANSI not in plain
    code, _, piped = _run_on_terminal(args, stdout_tty=False)  # stdout is a pipe: no colour there
    assert code == 1 and ANSI not in piped and piped.startswith("ukgc: BLOCKED (exit 1)")
    proc = run_cli(*args)
    assert ANSI not in proc.stdout + proc.stderr


def test_progress_on_a_terminal_for_slow_phases_only() -> None:
    manifests = COMPLIANT.read_bytes()
    args = ["gate", "-", "--profile", "ukgc", "--as-of", AS_OF, "--no-color"]
    code, shown, _ = _run_on_terminal(args, stdin_after=(3.0, manifests), stdout_tty=False)
    assert code in (1, 3), shown
    assert "reading - (" in shown  # the spinner line for the phase that took 3 s
    assert "\x1b[2K" in shown  # and it was cleared

    code, fast, _ = _run_on_terminal(["gate", str(DEMO), "--profile", "ukgc", "--as-of", AS_OF], stdout_tty=False)
    assert code == 1 and "reading" not in fast  # a phase under 2 s shows nothing

    code, quiet, _ = _run_on_terminal(["-q", *args], stdin_after=(3.0, manifests), stdout_tty=False)
    assert "reading - (" not in quiet

    code, as_json, _ = _run_on_terminal(["--log-format", "json", *args], stdin_after=(3.0, manifests), stdout_tty=False)
    assert "reading - (" not in as_json
    assert all(json.loads(line) for line in as_json.splitlines() if line.strip())

    piped = subprocess.run(
        [sys.executable, "-m", "auditor", *args],
        input=manifests,
        capture_output=True,
        timeout=120,
    )
    assert b"reading - (" not in piped.stderr and b"\r" not in piped.stderr


# ---------------------------------------------------------------------- shell completion


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "_AUDITOR_COMPLETE=bash_complete"), ("zsh", "#compdef auditor"), ("fish", "--command auditor")],
)
def test_completion_prints_the_script(shell: str, marker: str) -> None:
    proc = run_cli("completion", shell)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout


def test_bash_completion_completes_commands_and_options(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not installed")
    script = tmp_path / "auditor.bash"
    script.write_text(run_cli("completion", "bash").stdout)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "auditor").write_text(f'#!/bin/sh\nexec {sys.executable} -m auditor "$@"\n')
    (shim / "auditor").chmod(0o755)
    complete = (
        f"source {script}\n"
        'COMP_WORDS=(auditor pro); COMP_CWORD=1; COMPREPLY=(); _auditor_completion auditor; echo "${COMPREPLY[@]}"\n'
        'COMP_WORDS=(auditor gate --fail); COMP_CWORD=2; COMPREPLY=(); _auditor_completion auditor; echo "${COMPREPLY[@]}"\n'
        'COMP_WORDS=(auditor profiles show ""); COMP_CWORD=3; COMPREPLY=(); _auditor_completion auditor; echo "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        [bash, "-c", complete],
        capture_output=True,
        text=True,
        env={**_env(), "PATH": f"{shim}:{os.environ['PATH']}"},
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    commands, options, profile_ids = proc.stdout.splitlines()
    assert commands.split() == ["profiles"]
    assert options.split() == ["--fail-on"]
    assert profile_ids.split() == ["agco-on", "baseline", "mga", "ukgc"]
