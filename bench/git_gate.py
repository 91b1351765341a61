"""Benchmark: gating a release over 10,000 commits plus the demo manifests (target: at most 5 s).

    .venv/bin/python bench/git_gate.py [--commits N]

Builds (once, cached in ~/.cache/auditor-bench/git-<N>) a repository with N commits made by
`git fast-import`: a previous release tag at the root, every commit reviewed by a trailer except three,
a runbook, and an SSH-signed release tag at the tip. Then times, in the same run, `auditor gate --git
REPO --tag v2.0.0 --manifests fixtures/demo/manifests --profile ukgc --allowed-signers F` (the median of
three runs) and the floor: the git commands it cannot avoid (`git log` of the range with the fields it
reads, and `git verify-tag`). Writes its section of bench/RESULTS.md between its markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "auditor-bench"
BEGIN, END = "<!-- bench/git_gate.py: begin -->", "<!-- bench/git_gate.py: end -->"
TARGET_SECONDS = 5.0


def say(message: str) -> None:
    print(f"git_gate: {message}", file=sys.stderr, flush=True)


def build(commits: int) -> tuple[Path, Path]:
    """The repository and its allowed-signers file (cached: a repository that is there is reused)."""
    folder = CACHE / f"git-{commits}"
    repo, allowed = folder / "repo", folder / "allowed_signers"
    if (repo / ".git").is_dir() and allowed.is_file():
        return repo, allowed
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    key = folder / "release"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed.write_text(f"release@acme.example {(folder / 'release.pub').read_text().strip()}\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    runbook = b"# Runbook\n## Rollback\n## Switching the payment provider\n## On-call contacts\n"
    chunks: list[bytes] = []
    for i in range(commits):
        trailer = "" if i in (17, commits // 2, commits - 2) else "\n\nReviewed-by: Bob <bob@acme.example>"
        message = f"change {i}{trailer}\n".encode()
        chunks.append(f"commit refs/heads/main\nmark :{i + 1}\n".encode())
        chunks.append(f"committer Dev <dev@acme.example> {1_700_000_000 + i} +0000\ndata {len(message)}\n".encode())
        chunks.append(message)
        if i:
            chunks.append(f"from :{i}\n".encode())
        else:
            chunks.append(f"M 644 inline RUNBOOK.md\ndata {len(runbook)}\n".encode() + runbook + b"\n")
        body = str(i).encode()
        chunks.append(f"M 644 inline src/f{i % 200}.txt\ndata {len(body)}\n".encode() + body + b"\n\n")
        if i == 0:
            chunks.append(b"reset refs/tags/v1.0.0\nfrom :1\n\n")
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=b"".join(chunks), check=True)
    subprocess.run(["git", "-C", str(repo), "reset", "-q", "--hard", "main"], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=Release Bot",
            "-c",
            "user.email=release@acme.example",
            "-c",
            "gpg.format=ssh",
            "-c",
            f"user.signingkey={key}",
            "tag",
            "-s",
            "v2.0.0",
            "-m",
            "v2.0.0",
        ],
        check=True,
    )
    return repo, allowed


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=10_000)
    args = parser.parse_args()
    started = time.perf_counter()
    repo, allowed = build(args.commits)
    say(f"repository with {args.commits} commits ready in {time.perf_counter() - started:.1f} s: {repo}")
    gate = [
        sys.executable,
        "-m",
        "auditor",
        "gate",
        "--git",
        str(repo),
        "--tag",
        "v2.0.0",
        "--manifests",
        str(ROOT / "fixtures" / "demo" / "manifests"),
        "--profile",
        "ukgc",
        "--allowed-signers",
        str(allowed),
        "--out",
        str(CACHE / "git-gate-out"),
        "--format",
        "sarif,junit",
    ]
    runs = []
    code = 0
    for _ in range(3):
        seconds, code = timed(gate)
        runs.append(seconds)
        say(f"auditor gate: {seconds:.2f} s (exit {code})")
    fmt = "--format=%H%x00%P%x00%ae%x00%s%x00%(trailers:key=Reviewed-by,key=Approved-by,valueonly)"
    floor_log, _ = timed(["git", "-C", str(repo), "log", fmt, "v1.0.0..v2.0.0"])
    floor_verify, _ = timed(
        ["git", "-C", str(repo), "-c", f"gpg.ssh.allowedSignersFile={allowed}", "verify-tag", "v2.0.0"]
    )
    median = statistics.median(runs)
    say(f"floor: git log {floor_log:.2f} s, git verify-tag {floor_verify:.2f} s")
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    section = f"""{BEGIN}
## Release gate from Git: {args.commits:,} commits plus the demo manifests

Run {dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")} UTC by `bench/git_gate.py --commits {args.commits}` on:
{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()}.

The repository (made by `git fast-import`, cached): {args.commits:,} commits on `main`, `v1.0.0` at the root,
an SSH-signed `v2.0.0` at the tip, a runbook, three commits without a review trailer. The gate:
`auditor gate --git REPO --tag v2.0.0 --manifests fixtures/demo/manifests --profile ukgc --allowed-signers F
--out DIR --format sarif,junit` (exit {code}: the demo's findings and the three unreviewed commits block).

| run | seconds |
|---|---:|
| auditor gate (median of {", ".join(f"{r:.2f}" for r in runs)}) | {median:.2f} |
| floor: `git log` of the range with the fields the gate reads | {floor_log:.2f} |
| floor: `git verify-tag` | {floor_verify:.2f} |

Against the target (at most {TARGET_SECONDS:.0f} s): {"met" if median <= TARGET_SECONDS else "NOT met"}.
{END}
"""
    from run import replace_section  # bench/ is on sys.path: this script runs from it

    replace_section(RESULTS, BEGIN, END, section)
    say(f"median {median:.2f} s (target {TARGET_SECONDS} s); wrote {RESULTS}")


if __name__ == "__main__":
    main()
