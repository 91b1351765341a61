"""Kubernetes' own Pod Security Standards evaluator as a test oracle, and the auditor's side of the comparison.

The oracle is ``tests/psa_oracle`` (Go, ``k8s.io/pod-security-admission`` at the version pinned in
its go.mod), built and cached by ``scripts/build-psa-oracle.sh``. It answers one JSON line per pod:
each registered PSA check's verdict, and the overall baseline and restricted verdicts at the latest
policy version.

The auditor's side runs the real ``pod-*`` checks on real evidence (objects read by
:class:`~auditor.sources.manifests.ManifestSource`), with the default profile parameters.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from auditor import evidence
from auditor.checkapi import CheckContext
from auditor.kube import Workload, workloads
from auditor.models import EvidenceKind, K8sObject, Status
from auditor.sources.interface import Collected

from .conftest import AS_OF, ROOT, check_by_id

BUILD_SCRIPT = ROOT / "scripts" / "build-psa-oracle.sh"

# checklist item -> (auditor check, the PSA checks whose conjunction is the item's counterpart).
# pod.seccomp maps to the restricted check alone: at the restricted level it overrides (replaces) the
# baseline check, so for Windows pods, which it exempts, the baseline check's verdict does not apply.
ITEMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pod.no-host-access": ("pod-no-host-access", ("hostNamespaces", "hostPathVolumes", "hostPorts")),
    "pod.no-privilege": ("pod-no-privilege", ("privileged", "allowPrivilegeEscalation", "windowsHostProcess")),
    "pod.run-as-non-root": ("pod-run-as-non-root", ("runAsNonRoot", "runAsUser")),
    "pod.seccomp": ("pod-seccomp", ("seccompProfile_restricted",)),
    "pod.capabilities-dropped": ("pod-capabilities-dropped", ("capabilities_restricted",)),
}

# PSA checks with no counterpart among the checklist's items, and why. Their verdicts are counted,
# never compared; a PSA check in neither table (a new one in a later version) fails the test.
UNMAPPED: dict[str, str] = {
    "seccompProfile_baseline": "subsumed by seccompProfile_restricted, which pod.seccomp maps to",
    "capabilities_baseline": "subsumed by capabilities_restricted: pod.capabilities-dropped requires drop ALL",
    "appArmorProfile": "no checklist item covers AppArmor",
    "seLinuxOptions": "no checklist item covers SELinux options",
    "procMount": "no checklist item covers procMount",
    "procMount_restricted": "no checklist item covers procMount",
    "sysctls": "no checklist item covers sysctls",
    "restrictedVolumes": "volume types other than hostPath are outside pod.no-host-access",
    "hostProbesAndHostLifecycle": "probe and lifecycle hosts are not host access (they address other hosts)",
}


class OracleUnavailable(Exception):
    """The oracle binary could not be built here (no Go toolchain, or no module cache offline)."""


def build_oracle() -> Path:
    """Build (or find, cached) the oracle binary through the project's script; its path."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise OracleUnavailable(
            f"the PSA oracle (tests/psa_oracle) cannot be built: scripts/build-psa-oracle.sh exit {proc.returncode}: {tail}"
        )
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class PsaVerdict:
    """The oracle's answer for one pod."""

    allowed: Mapping[str, bool]
    """PSA check id -> allowed."""
    details: Mapping[str, str]
    """PSA check id -> forbidden reason and detail, for the checks that forbid."""
    baseline: bool
    restricted: bool
    error: str | None = None
    """Set when the pod does not decode as the API server decodes it (then nothing else is)."""

    @staticmethod
    def from_json(line: str) -> PsaVerdict:
        raw = json.loads(line)
        if raw.get("error"):
            return PsaVerdict({}, {}, False, False, str(raw["error"]))
        checks: dict[str, Any] = raw["checks"]
        return PsaVerdict(
            allowed={k: bool(v["allowed"]) for k, v in checks.items()},
            details={k: f"{v.get('reason', '')}: {v.get('detail', '')}" for k, v in checks.items() if not v["allowed"]},
            baseline=bool(raw["baseline"]),
            restricted=bool(raw["restricted"]),
        )

    def item_allowed(self, item: str) -> bool:
        return all(self.allowed[c] for c in ITEMS[item][1])


class PsaOracle:
    """One oracle process, fed JSON lines; many pods go through it."""

    def __init__(self, binary: Path) -> None:
        self._proc = subprocess.Popen(
            [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8"
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin: IO[str] = self._proc.stdin
        self._stdout: IO[str] = self._proc.stdout

    @staticmethod
    def _line(metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
        return json.dumps({"metadata": metadata, "spec": spec}, separators=(",", ":")) + "\n"

    def _answer(self) -> PsaVerdict:
        line = self._stdout.readline()
        if not line:
            raise RuntimeError(f"PSA oracle exited (code {self._proc.poll()})")
        return PsaVerdict.from_json(line)

    def evaluate(self, metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> PsaVerdict:
        self._stdin.write(self._line(metadata, spec))
        self._stdin.flush()
        return self._answer()

    def evaluate_many(self, pods: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> list[PsaVerdict]:
        """Many pods in one stream; a writer thread keeps both pipes moving (no deadlock on full buffers)."""

        def feed() -> None:
            for metadata, spec in pods:
                self._stdin.write(self._line(metadata, spec))
            self._stdin.flush()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        answers = [self._answer() for _ in pods]
        writer.join()
        return answers

    def close(self) -> None:
        self._stdin.close()
        self._proc.wait(timeout=30)


@dataclass(frozen=True)
class ItemVerdict:
    """The auditor's verdict on one item for one pod template."""

    passed: bool
    facets: tuple[str, ...]
    message: str


def auditor_verdicts(obj: K8sObject) -> dict[str, ItemVerdict]:
    """The mapped items' verdicts for the one pod template ``obj`` owns, from the real checks.

    Each object gets evidence of its own, so two corpus objects that share a name cannot merge.
    The profile parameters are the defaults (``allowed_capabilities: [NET_BIND_SERVICE]``).
    """
    ev = evidence.build([Collected(objects=[obj], kinds={EvidenceKind.K8S_OBJECTS})], collected_at=AS_OF)
    ctx = CheckContext(ev, {}, AS_OF)
    out = {}
    for item, (check_id, _psa) in ITEMS.items():
        results = list(check_by_id(check_id).run(ctx))
        assert len(results) == 1, (check_id, results)
        r = results[0]
        assert r.status in (Status.PASS, Status.FAIL), r
        out[item] = ItemVerdict(r.status is Status.PASS, r.facets, r.message)
    return out


def pod_templates(objects: Iterable[K8sObject]) -> list[tuple[K8sObject, Workload]]:
    """Every object that owns a pod template, with that template."""
    return [(w.obj, w) for w in workloads(list(objects))]


def psa_input(w: Workload) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """What the oracle reads for a pod template: its metadata and its spec, as the evidence holds them.

    The source redacts most annotation values, AppArmor's beta annotations among them, so the oracle's
    unmapped ``appArmorProfile`` verdict on corpus pods may forbid a redacted value. No mapped PSA check
    reads annotations at the latest policy version (seccomp annotations stopped counting in 1.19).
    """
    return dict(w.pod_meta), dict(w.pod_spec)
