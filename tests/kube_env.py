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
from collections.abc import Iterator
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


def kube_is_up() -> bool:
    return run_testenv("status", timeout=60).stdout.startswith("kube: up")


def binaries_cached() -> bool:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "auditor-testenv" / "bin"
    return any(cache.glob("kube-apiserver-*")) and any(cache.glob("etcd-*"))


def state_dir() -> Path:
    """scripts/testenv's state folder (the same rule as the script's)."""
    if os.environ.get("AUDITOR_TESTENV_STATE"):
        return Path(os.environ["AUDITOR_TESTENV_STATE"])
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "auditor-testenv"


@contextmanager
def leases_locked() -> Iterator[Path]:
    """The folder of test sessions' leases on the kube part, locked against other sessions."""
    leases = state_dir() / "test-leases"
    leases.mkdir(parents=True, exist_ok=True)
    with (state_dir() / "test-leases.lock").open("w") as lock:
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


@pytest.fixture(scope="session", name="kube_env")
def kube_env_fixture() -> Iterator[KubeEnv]:
    """The kube part, shared by every test session on this machine that runs at the same time.

    A session takes a lease; the last session to leave takes the part down, when a test session
    started it (a part a developer started with `scripts/testenv up` stays up).
    """
    if not os.environ.get("CI") and shutil.which("go") is None and not binaries_cached():
        pytest.skip("scripts/testenv needs Go to build kube-apiserver and etcd (none on PATH, none cached)")
    lease_name = str(os.getpid())
    with leases_locked() as leases:
        if not kube_is_up():
            (leases / "started-by-tests").touch()
        # A cold build takes several minutes; scripts/setup.sh normally did it already.
        up = run_testenv("up", "kube", timeout=3600)
        if up.returncode != 0:
            pytest.fail(f"scripts/testenv up kube failed ({up.returncode}):\n{up.stderr[-4000:]}")
        (leases / lease_name).touch()
    try:
        env = parse_env(run_testenv("env", timeout=60).stdout)
        kubeconfig = Path(env["AUDITOR_TEST_KUBECONFIG"])
        report_path = kubeconfig.parent / "load-report.json"
        yield KubeEnv(
            kubeconfig=kubeconfig,
            auditor_kubeconfig=Path(env["AUDITOR_TEST_AUDITOR_KUBECONFIG"]),
            kubectl=Path(env["AUDITOR_TEST_KUBECTL"]),
            env=env,
            load_report=json.loads(report_path.read_text()),
        )
    finally:
        with leases_locked() as leases:
            (leases / lease_name).unlink(missing_ok=True)
            others = []
            for lease in (p for p in leases.iterdir() if p.name.isdigit()):
                if pid_alive(int(lease.name)):
                    others.append(lease)
                else:  # a session that died without its teardown
                    lease.unlink(missing_ok=True)
            if not others and (leases / "started-by-tests").exists():
                down = run_testenv("down", "kube", timeout=300)
                assert down.returncode == 0, down.stderr
                (leases / "started-by-tests").unlink()
