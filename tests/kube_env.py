"""The `kube_env` fixture: a real kube-apiserver and etcd on loopback (scripts/testenv up kube).

Brought up once per test session and shared with the other test sessions running at the same
time; the last of them takes it down, when a test session started it (a developer's own
`scripts/testenv up` is left running). Use it from a test module with

    from tests.kube_env import KubeEnv, kube_env_fixture  # noqa: F401  (the fixture `kube_env`)

and read `kube_env.kubeconfig` (admin, system:masters) or `kube_env.auditor_kubeconfig` (the
ServiceAccount auditor-system/auditor, bound to deploy/'s read-only ClusterRole).

Never skipped in CI (CI=true): scripts/setup.sh builds the binaries there. Elsewhere it skips, with
the reason, only when there is no Go toolchain to build them with.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTENV = REPO / "scripts" / "testenv"


@dataclass(frozen=True)
class KubeEnv:
    kubeconfig: Path
    auditor_kubeconfig: Path
    kubectl: Path
    env: dict[str, str]
    load_report: dict[str, object]


def run_testenv(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TESTENV), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
    )


def parse_env(text: str) -> dict[str, str]:
    """KEY=VALUE lines as `scripts/testenv env` prints them (a value may be single-quoted)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("'\\''", "'")
        env[key] = value
    return env


def part_is_up(part: str) -> bool:
    """Whether `scripts/testenv status` says PART is up."""
    return any(line.startswith(f"{part}: up") for line in run_testenv("status", timeout=60).stdout.splitlines())


def binaries_cached(*patterns: str) -> bool:
    """Whether scripts/testenv's binary cache holds a file for every glob pattern."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "auditor-testenv" / "bin"
    return all(any(cache.glob(pattern)) for pattern in patterns)


def state_dir() -> Path:
    """scripts/testenv's state folder (the same rule as the script's)."""
    if os.environ.get("AUDITOR_TESTENV_STATE"):
        return Path(os.environ["AUDITOR_TESTENV_STATE"])
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "auditor-testenv"


@contextmanager
def leases_locked(part: str) -> Iterator[Path]:
    """The folder of test sessions' leases on one part, locked against other sessions."""
    name = "test-leases" if part == "kube" else f"test-leases-{part}"
    leases = state_dir() / name
    leases.mkdir(parents=True, exist_ok=True)
    with (state_dir() / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield leases


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def shared_part(
    part: str, *, up_timeout: float, builds: str, cached: Sequence[str], keys: Sequence[str] = ()
) -> Iterator[dict[str, str]]:
    """PART of scripts/testenv for this test session, shared with every test session on this machine that runs
    at the same time; yields `scripts/testenv env`, which must hold ``keys``.

    Skipped outside CI when Go cannot build ``builds`` and the cache lacks a binary for a ``cached`` pattern (never
    skipped in CI: scripts/setup.sh builds them there). A session takes a lease; the last session to leave takes
    the part down, when a test session started it (a part a developer started with `scripts/testenv up PART`
    stays up).
    """
    if not os.environ.get("CI") and shutil.which("go") is None and not binaries_cached(*cached):
        pytest.skip(f"scripts/testenv needs Go to build {builds} (none on PATH, none cached)")
    lease_name = str(os.getpid())
    with leases_locked(part) as leases:
        if not part_is_up(part):
            (leases / "started-by-tests").touch()
        up = run_testenv("up", part, timeout=up_timeout)
        if up.returncode != 0:
            pytest.fail(f"scripts/testenv up {part} failed ({up.returncode}):\n{up.stderr[-4000:]}")
        (leases / lease_name).touch()
    try:
        env = parse_env(run_testenv("env", timeout=60).stdout)
        missing = [key for key in keys if key not in env]
        assert not missing, f"scripts/testenv env lacks {missing}"
        yield env
    finally:
        with leases_locked(part) as leases:
            (leases / lease_name).unlink(missing_ok=True)
            others = []
            for lease in (p for p in leases.iterdir() if p.name.isdigit()):
                if pid_alive(int(lease.name)):
                    others.append(lease)
                else:  # a session that died without its teardown
                    lease.unlink(missing_ok=True)
            if not others and (leases / "started-by-tests").exists():
                down = run_testenv("down", part, timeout=300)
                assert down.returncode == 0, down.stderr
                (leases / "started-by-tests").unlink()


@pytest.fixture(scope="session", name="kube_env")
def kube_env_fixture() -> Iterator[KubeEnv]:
    """The kube part, shared by every test session on this machine that runs at the same time.

    A session takes a lease; the last session to leave takes the part down, when a test session
    started it (a part a developer started with `scripts/testenv up` stays up).
    """
    with shared_part(  # a cold build takes minutes; scripts/setup.sh did it
        "kube", up_timeout=3600, builds="kube-apiserver and etcd", cached=("kube-apiserver-*", "etcd-*")
    ) as env:
        kubeconfig = Path(env["AUDITOR_TEST_KUBECONFIG"])
        report_path = kubeconfig.parent / "load-report.json"
        yield KubeEnv(
            kubeconfig=kubeconfig,
            auditor_kubeconfig=Path(env["AUDITOR_TEST_AUDITOR_KUBECONFIG"]),
            kubectl=Path(env["AUDITOR_TEST_KUBECTL"]),
            env=env,
            load_report=json.loads(report_path.read_text()),
        )
