#!/usr/bin/env python3
"""Time the auditor and its peers on the same generated workloads, in one run; write bench/RESULTS.md.

    bash bench/install-peers.sh          # once: Checkov venv, kube-score (Go), Polaris attempt
    .venv/bin/python bench/run.py        # generates bench/data/, runs everything, writes RESULTS.md

Each measurement runs in a fresh process; peak memory is that process tree's max RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from generate import generate  # noqa: E402

HOME = Path.home()
CHECKOV = Path(os.environ.get("AUDITOR_BENCH_CACHE", HOME / ".cache/auditor-bench")) / "checkov-venv/bin/checkov"
TOOLS = Path(os.environ.get("AUDITOR_TOOLS", HOME / ".cache/auditor-tools/bin"))
AUDITOR = (
    [str(ROOT / ".venv/bin/auditor")] if (ROOT / ".venv/bin/auditor").exists() else [sys.executable, "-m", "auditor"]
)
# Wrapper: run the command, sample the summed RSS of its whole process tree (parallel parse workers
# included) every 20 ms, print exit code, wall time and peak tree RSS in KiB.
_MEASURE = r"""
import os, subprocess, sys, threading, time
def tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop(); out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            pass
    return out
def rss(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0
t = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
peak = [0]
def sample():
    while proc.poll() is None:
        peak[0] = max(peak[0], sum(rss(p) for p in tree(proc.pid)))
        time.sleep(0.02)
th = threading.Thread(target=sample, daemon=True); th.start()
err = proc.stderr.read(); proc.wait(); wall = time.perf_counter() - t; th.join()
print(proc.returncode, wall, peak[0])
sys.stderr.write(err.decode(errors="replace")[-2000:])
"""


NOTES = """
## Notes

- This machine is shared: absolute times vary between runs (the same build measured 2.7 s and 5.0 s for
  10k workloads to JSON in two runs an hour apart on 2026-11-27). Compare tools within one run.
- Polaris: the Go module proxy answers `403 Forbidden: This module version is not available` for
  `github.com/fairwindsops/polaris` at every path and version tried, so it cannot be built here.
- kube-score grows superlinearly with the number of objects given in one run.
- Checkov tries to reach its SaaS for guideline metadata and fails fast on this network; that is included
  in its time.
"""


@dataclass
class Measurement:
    tool: str
    workloads: int
    seconds: float
    peak_mib: float
    exit_code: int
    note: str = ""


def measure(tool: str, workloads: int, cmd: list[str]) -> Measurement:
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True)
    code, wall, rss = proc.stdout.split()
    note = "" if int(code) in (0, 1, 3) else proc.stderr.strip().splitlines()[-1][:200] if proc.stderr.strip() else ""
    m = Measurement(tool, workloads, float(wall), int(rss) / 1024, int(code), note)
    print(
        f"{tool:<28} {workloads:>6} workloads  {m.seconds:8.2f} s  {m.peak_mib:8.1f} MiB  exit {m.exit_code} {note}",
        flush=True,
    )
    return m


def auditor_cmd(manifests: Path, out: Path, formats: str) -> list[str]:
    return [
        *AUDITOR,
        "audit",
        "--manifests",
        str(manifests),
        "--profile",
        "baseline",
        "--out",
        str(out),
        "--format",
        formats,
    ]


def replace_section(path: Path, begin: str, end: str, section: str) -> None:
    """Put ``section`` (which starts with the ``begin`` marker and ends with the ``end`` marker and a newline) into
    the results file: in place of the marked section already there, or appended. Each benchmark owns its section."""
    text = path.read_text() if path.is_file() else "# Benchmark results\n"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end + "\n")
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kib = int(
            next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1]
        )
        mem = f"{kib / 1048576:.0f} GiB"
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (out.stdout or out.stderr).strip().splitlines()[0][:80]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "not available"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000", help="workload counts for the auditor and kube-score")
    parser.add_argument("--checkov-sizes", default="300,1000", help="workload counts for Checkov (slow)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    checkov_sizes = [int(s) for s in args.checkov_sizes.split(",") if s]
    data = HERE / "data"
    results: list[Measurement] = []
    for n in sorted(set(sizes) | set(checkov_sizes)):
        target = data / f"w{n}"
        if not target.exists():
            generate(n, target)
    work = HERE / "out"
    shutil.rmtree(work, ignore_errors=True)
    for n in sizes:
        d = data / f"w{n}"
        results.append(measure("auditor (json)", n, auditor_cmd(d, work / f"json{n}", "json")))
        results.append(measure("auditor (json+pdf)", n, auditor_cmd(d, work / f"pdf{n}", "json,pdf")))
        if (TOOLS / "kube-score").exists():
            files = sorted(str(p) for p in d.glob("*.yaml"))
            results.append(measure("kube-score (json)", n, [str(TOOLS / "kube-score"), "score", "-o", "json", *files]))
        if (TOOLS / "polaris").exists():
            results.append(
                measure(
                    "polaris (json)", n, [str(TOOLS / "polaris"), "audit", "--audit-path", str(d), "--format", "json"]
                )
            )
    if CHECKOV.exists():
        for n in checkov_sizes:
            d = data / f"w{n}"
            results.append(measure("auditor (json)", n, auditor_cmd(d, work / f"json{n}", "json")))
            results.append(
                measure(
                    "checkov (json)",
                    n,
                    [str(CHECKOV), "-d", str(d), "--framework", "kubernetes", "-o", "json", "--quiet"],
                )
            )
    write_results(args.out, results)


def write_results(path: Path, results: list[Measurement]) -> None:
    def best(tool: str, n: int) -> Measurement | None:
        ms = [m for m in results if m.tool == tool and m.workloads == n]
        return min(ms, key=lambda m: m.seconds) if ms else None

    lines = [
        "# Benchmark results",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bench/run.py` on: {machine()}.",
        "",
        "Inputs: `bench/generate.py` workloads (Deployment + Service + PDB + HPA each, one in seven with a deliberate",
        "violation), 100 workloads per file. Every tool reads the same files in the same run. Wall time includes",
        "start-up; peak memory is the largest summed resident set of the tool's whole process tree (the auditor's\nparallel parse workers included), sampled every 20 ms.",
        "",
        "Versions: "
        + "; ".join(
            [
                f"auditor {version([*AUDITOR, '--version']).split()[-1]}",
                f"checkov {version([str(CHECKOV), '--version'])}",
                "kube-score v1.20.0 (built from its Go module by bench/install-peers.sh)",
                "polaris "
                + (
                    version([str(TOOLS / "polaris"), "version"])
                    if (TOOLS / "polaris").exists()
                    else "not built (the Go module proxy answers 403 for github.com/fairwindsops/polaris at every path and version tried)"
                ),
            ]
        ),
        "",
        "| tool | workloads | seconds | peak MiB | exit |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in results:
        lines.append(f"| {m.tool} | {m.workloads:,} | {m.seconds:.2f} | {m.peak_mib:.0f} | {m.exit_code} |")
    lines += ["", "## Against the targets", ""]
    a10k, p10k = best("auditor (json)", 10000), best("auditor (json+pdf)", 10000)
    if a10k:
        lines.append(
            f"- 10k workloads to JSON: {a10k.seconds:.1f} s (target <= 15 s), peak {a10k.peak_mib:.0f} MiB (target <= 1024 MiB)."
        )
    if a10k and p10k:
        lines.append(
            f"- PDF of the 10k-workload report: {p10k.seconds - a10k.seconds:.1f} s beyond the JSON run ({p10k.seconds:.1f} s for JSON+PDF; target <= 30 s for the PDF)."
        )
    for n in (300, 1000):
        a, c = best("auditor (json)", n), best("checkov (json)", n)
        if a and c:
            lines.append(
                f"- {n:,} workloads: auditor {a.seconds:.2f} s vs Checkov {c.seconds:.1f} s = {c.seconds / a.seconds:.0f}x faster"
                + (" (target >= 40x)." if n == 1000 else ".")
            )
    for n in (1000, 10000):
        a, k = best("auditor (json)", n), best("kube-score (json)", n)
        if a and k:
            lines.append(
                f"- {n:,} workloads: kube-score {k.seconds:.2f} s, auditor {a.seconds:.2f} s (ratio auditor/kube-score {a.seconds / k.seconds:.2f})."
            )
    lines += ["", NOTES.strip()]
    path.write_text("\n".join(lines) + "\n" + kept_sections(path))
    print(f"wrote {path}")
    (HERE / "out" / "results.json").write_text(json.dumps([m.__dict__ for m in results], indent=2))


def kept_sections(path: Path) -> str:
    """The sections other benchmarks keep in this file between their markers (bench/supply_chain.py's),
    carried over when this run rewrites the rest."""
    try:
        old = path.read_text()
    except OSError:
        return ""
    blocks = re.finditer(r"<!-- (bench/[\w.]+): begin -->\n.*?<!-- \1: end -->\n", old, re.S)
    return "".join("\n" + m.group(0) for m in blocks)


if __name__ == "__main__":
    main()
