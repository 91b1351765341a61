"""Run the auditor's checks against kube-score's own test fixtures (shared/corpus/kube-score/expected.json).

kube-score grades one object per assertion (the first object its check scores). Only checks
that overlap a checklist item are mapped, to (check, facets, target kinds). kube-score's
`warn` grade is advisory: it is counted, but not held against either answer.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from auditor import evidence
from auditor.checkapi import CheckContext
from auditor.models import EvidenceSet, Result, Status
from auditor.sources.manifests import ManifestSource

from .conftest import AS_OF, FIXTURE_PARAMS, check_by_id

_POD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet")


@dataclass(frozen=True)
class Mapped:
    check: str
    facets: frozenset[str]
    kinds: tuple[str, ...]


def _m(check: str, facets: tuple[str, ...], kinds: tuple[str, ...] = _POD_KINDS) -> Mapped:
    return Mapped(check, frozenset(facets), kinds)


CHECKS: dict[str, Mapped] = {
    "Container Image Tag": _m("image-pinned-digest", ("latest", "no-tag")),
    "Container Resources": _m("pod-resources", ("requests", "cpu-limit", "memory-limit")),
    "Container Security Context Privileged": _m("pod-no-privilege", ("privileged",)),
    "Container Security Context ReadOnlyRootFilesystem": _m("pod-read-only-root-fs", ("writable-root",)),
    "Container Seccomp Profile": _m("pod-seccomp", ("seccomp-unconfined",)),
    "Deployment has PodDisruptionBudget": _m(
        "pdb-present", ("no-pdb", "pdb-blocks-eviction", "multiple-pdbs"), ("Deployment",)
    ),
    "StatefulSet has PodDisruptionBudget": _m(
        "pdb-present", ("no-pdb", "pdb-blocks-eviction", "multiple-pdbs"), ("StatefulSet",)
    ),
    "Pod Probes": _m("probe-readiness", ("no-readiness-probe",)),
    "Deployment Strategy": _m("rollout-safe-strategy", ("recreate", "all-unavailable", "no-surge"), ("Deployment",)),
}


@dataclass(frozen=True)
class Case:
    check_name: str
    files: tuple[str, ...]
    expected: str
    test: str


@dataclass(frozen=True)
class Outcome:
    case: Case
    ours: str
    """fail / pass / none (no subject of the target kinds)."""
    agreed: bool | None
    """None for kube-score's advisory `warn`."""


def load_cases(root: Path) -> list[Case]:
    raw = json.loads((root / "expected.json").read_text())["cases"]
    out = []
    for c in raw:
        if c["check_name"] in CHECKS and c["expected"] in ("pass", "fail", "warn"):
            out.append(Case(c["check_name"], tuple(c["resource_files"]), c["expected"], c["test"]))
    return out


@functools.cache
def _evidence(root: Path, files: tuple[str, ...]) -> EvidenceSet:
    return evidence.build([ManifestSource([str(root / f) for f in files]).collect()], collected_at=AS_OF)


def _results(root: Path, files: tuple[str, ...], check_id: str) -> tuple[Result, ...]:
    return tuple(check_by_id(check_id).run(CheckContext(_evidence(root, files), FIXTURE_PARAMS, AS_OF)))


def judge(root: Path, case: Case) -> Outcome:
    mapped = CHECKS[case.check_name]
    ev = _evidence(root, case.files)
    target = next((o for o in ev.objects if o.kind in mapped.kinds), None)
    ours = "none"
    if target is not None:
        for r in _results(root, case.files, mapped.check):
            if r.subject.kind == target.kind and r.subject.name == target.name:
                ours = "fail" if r.status is Status.FAIL and set(r.facets) & mapped.facets else "pass"
                break
    if case.expected == "warn":
        return Outcome(case, ours, None)
    agreed = ours == "fail" if case.expected == "fail" else ours in ("pass", "none")
    return Outcome(case, ours, agreed)
