"""Benchmark: `auditor verify` over a year of nightly entries for three jurisdictions (target: at most 10 s).

    .venv/bin/python bench/archive_verify.py [--nights 365]

Runs the demo once (real report.json, report.pdf and evidence snapshot for ukgc, mga and agco-on),
then builds an archive of NIGHTS entries per profile with those files (each night's report.json made
distinct), chained and signed by `auditor.archive.append` as `audit --archive` does, cached in
~/.cache/auditor-bench/archive-<NIGHTS>. Times `auditor verify` on it (median of three) against the
floor: `sha256sum` of every file. Writes its section of bench/RESULTS.md between its markers.
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
BEGIN, END = "<!-- bench/archive_verify.py: begin -->", "<!-- bench/archive_verify.py: end -->"
PROFILES = ("ukgc", "mga", "agco-on")
TARGET = 10.0


def say(message: str) -> None:
    print(f"archive_verify: {message}", file=sys.stderr, flush=True)


def build(nights: int) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT))
    from auditor import archive

    folder = CACHE / f"archive-{nights}"
    arch, pub = folder / "archive", folder / "keys" / "auditor-signing.pub"
    if (folder / "complete").is_file():
        return arch, pub
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "auditor", "demo", "--out", str(folder / "demo"), "-q"], check=True, capture_output=True
    )
    key_path, pub = archive.keygen(folder / "keys")
    key = archive.load_signing_key(key_path)
    evidence = subprocess.run(
        [
            sys.executable,
            "-m",
            "auditor",
            "collect",
            str(ROOT / "fixtures" / "demo" / "manifests"),
            "--out",
            str(folder / "evidence.json"),
            "-q",
        ],
        check=True,
        capture_output=True,
    )
    del evidence
    snapshot = (folder / "evidence.json").read_bytes()
    start = dt.date(2025, 11, 28)
    for pid in PROFILES:
        report = (folder / "demo" / pid / "report.json").read_bytes()
        pdf = (folder / "demo" / pid / "report.pdf").read_bytes()
        for night in range(nights):
            day = (start + dt.timedelta(days=night)).isoformat()
            files = {
                "report.json": report.replace(b'"generated_at":"', f'"night":"{day}","generated_at":"'.encode(), 1),
                "report.pdf": pdf,
                "evidence.json": snapshot,
            }
            archive.append(
                arch, {"id": pid, "version": "bench", "sha256": "0" * 64}, files, key, created_at=f"{day}T02:00:00Z"
            )
    (folder / "complete").write_text("ok\n")
    return arch, pub


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nights", type=int, default=365)
    args = parser.parse_args()
    started = time.perf_counter()
    arch, pub = build(args.nights)
    entries = sum(1 for _ in arch.glob("*/[0-9]*"))
    size = sum(p.stat().st_size for p in arch.rglob("*") if p.is_file())
    say(f"archive of {entries} entries ({size / 2**20:.0f} MiB) ready in {time.perf_counter() - started:.1f} s")
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "auditor", "verify", str(arch), "--public-key", str(pub)],
            capture_output=True,
            text=True,
            check=False,
        )
        runs.append(time.perf_counter() - t)
        say(f"auditor verify: {runs[-1]:.2f} s (exit {proc.returncode}) {proc.stdout.strip()[-90:]}")
        if proc.returncode != 0:
            raise SystemExit(f"verify failed: {proc.stdout[-2000:]}")
    files = [str(p) for p in arch.rglob("*") if p.is_file() and p.name != ".lock"]
    t = time.perf_counter()
    for i in range(0, len(files), 500):
        subprocess.run(["sha256sum", *files[i : i + 500]], capture_output=True, check=True)
    floor = time.perf_counter() - t
    median = statistics.median(runs)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    section = f"""{BEGIN}
## Archive verification: {args.nights} nights x {len(PROFILES)} jurisdictions

Run {dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")} UTC by `bench/archive_verify.py --nights {args.nights}` on
{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}. The archive: {entries:,} entries
({size / 2**20:.0f} MiB; each the demo's real report.json, report.pdf and evidence snapshot), hash-chained and
Ed25519-signed by `auditor.archive.append`.

| run | seconds |
|---|---:|
| `auditor verify` (median of {", ".join(f"{r:.2f}" for r in runs)}) | {median:.2f} |
| floor: `sha256sum` of every file | {floor:.2f} |

Against the target (at most {TARGET:.0f} s): {"met" if median <= TARGET else "NOT met"}.
{END}
"""
    from run import replace_section  # bench/ is on sys.path: this script runs from it

    replace_section(RESULTS, BEGIN, END, section)
    say(f"median {median:.2f} s (target {TARGET} s); wrote {RESULTS}")


if __name__ == "__main__":
    main()
