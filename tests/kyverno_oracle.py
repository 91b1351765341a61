"""Run the auditor's checks against Kyverno's own test cases (shared/corpus/kyverno/expected.json).

Only policies that overlap a checklist item are mapped, each to (check, facets): a
Kyverno ``fail`` agrees with a result of that check failing on one of those facets.
Policies with no checklist counterpart (SELinux, AppArmor, sysctls, procMount, volume
types, supplemental groups, NET_RAW-only, probe-difference, node proxy, escalate
verbs, empty-podSelector, system-group bindings, CRI sockets) are not mapped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor import evidence
from auditor.checkapi import CheckContext
from auditor.models import EvidenceSet, Result, Status
from auditor.sources.manifests import ManifestSource

from .conftest import AS_OF, FIXTURE_PARAMS, check_by_id

PSS_BASELINE_CAPS = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
]


@dataclass(frozen=True)
class Mapping_:
    check: str
    facets: frozenset[str]
    params: Mapping[str, Any] | None = None


def m(check: str, *facets: str, params: Mapping[str, Any] | None = None) -> Mapping_:
    return Mapping_(check, frozenset(facets), params)


# (policy, rule) -> mapping; rule None means the policy as a whole (chainsaw admission cases).
RULES: dict[tuple[str, str], Mapping_] = {
    ("disallow-capabilities", "adding-capabilities"): m(
        "pod-capabilities-dropped", "added-capabilities", params={"allowed_capabilities": PSS_BASELINE_CAPS}
    ),
    ("disallow-capabilities-strict", "require-drop-all"): m("pod-capabilities-dropped", "drop-all-missing"),
    ("disallow-capabilities-strict", "adding-capabilities-strict"): m("pod-capabilities-dropped", "added-capabilities"),
    ("disallow-host-namespaces", "host-namespaces"): m("pod-no-host-access", "host-namespaces"),
    ("disallow-host-path", "host-path"): m("pod-no-host-access", "host-path"),
    ("disallow-host-ports", "host-ports-none"): m("pod-no-host-access", "host-port"),
    ("disallow-host-process", "host-process-containers"): m("pod-no-privilege", "host-process"),
    ("disallow-privilege-escalation", "privilege-escalation"): m("pod-no-privilege", "privilege-escalation"),
    ("disallow-privileged-containers", "privileged-containers"): m("pod-no-privilege", "privileged"),
    ("require-run-as-nonroot", "run-as-non-root"): m("pod-run-as-non-root", "root-allowed", "uid-0"),
    ("require-run-as-non-root-user", "run-as-non-root-user"): m("pod-run-as-non-root", "uid-0"),
    ("restrict-seccomp-strict", "check-seccomp-strict"): m("pod-seccomp", "seccomp-unconfined"),
    ("require-ro-rootfs", "validate-readOnlyRootFilesystem"): m("pod-read-only-root-fs", "writable-root"),
    ("drop-all-capabilities", "require-drop-all"): m("pod-capabilities-dropped", "drop-all-missing"),
    ("require-requests-limits", "validate-resources"): m("pod-resources", "requests", "memory-limit"),
    ("require-cpu-limits", "check-cpu-limits"): m("pod-resources", "cpu-limit"),
    ("disallow-latest-tag", "require-image-tag"): m("image-pinned-digest", "no-tag"),
    ("disallow-latest-tag", "validate-image-tag"): m("image-pinned-digest", "latest"),
    ("require-image-checksum", "require-image-checksum"): m(
        "image-pinned-digest", "no-tag", "latest", "mutable-tag", "no-image"
    ),
    ("require-pdb", "require-pdb"): m("pdb-present", "no-pdb"),
    ("pdb-maxunavailable", "pdb-maxunavailable"): m("pdb-present", "pdb-blocks-eviction"),
    ("pdb-minavailable-check", "pdb-minavailable"): m("pdb-present", "pdb-blocks-eviction"),
    ("require-pod-priorityclassname", "check-priorityclassname"): m("priority-class", "no-priority-class"),
    ("restrict-automount-sa-token", "validate-automountServiceAccountToken"): m("sa-token-scoped", "token-automounted"),
    ("restrict-binding-clusteradmin", "clusteradmin-bindings"): m(
        "rbac-cluster-admin-restricted", "cluster-admin-binding"
    ),
    ("restrict-wildcard-verbs", "wildcard-verbs"): m("rbac-no-wildcards", "wildcard-verbs"),
    ("restrict-wildcard-resources", "wildcard-resources"): m("rbac-no-wildcards", "wildcard-resources"),
    ("restrict-secret-role-verbs", "secret-verbs"): m("rbac-secrets-read-restricted", "secret-read"),
    ("secrets-not-from-env-vars", "secrets-not-from-env-vars"): m("secrets-mounted-not-env", "env-secret-ref"),
    ("secrets-not-from-env-vars", "secrets-not-from-envfrom"): m("secrets-mounted-not-env", "envfrom-secret"),
}


def policy_mapping(policy: str) -> list[Mapping_]:
    return [v for (p, _r), v in RULES.items() if p == policy]


@dataclass(frozen=True)
class Case:
    policy: str
    rule: str | None
    resource_file: str
    kind: str
    name: str
    expected: str
    context_files: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    case: Case
    ours: str
    """fail / pass / none (no result for that object) / rejected (input gap)."""
    agreed: bool
    detail: str


def load_cases(root: Path) -> list[Case]:
    raw = json.loads((root / "expected.json").read_text())["cases"]
    seen: dict[tuple[Any, ...], Case] = {}
    for c in raw:
        key = (c["policy"], c["rule"], c["resource_file"], c["kind"], c["name"])
        if key in seen:
            continue
        if c["rule"] is None and not policy_mapping(c["policy"]):
            continue
        if c["rule"] is not None and (c["policy"], c["rule"]) not in RULES:
            continue
        expected = c["expected"] if c["rule"] is not None else c["policy_expected"]
        seen[key] = Case(
            c["policy"], c["rule"], c["resource_file"], c["kind"], c["name"], expected, tuple(c["context_files"])
        )
    return list(seen.values())


@functools.cache
def _evidence(root: Path, files: tuple[str, ...]) -> EvidenceSet:
    source = ManifestSource([str(root / f) for f in files])
    return evidence.build([source.collect()], collected_at=AS_OF)


@functools.cache
def _results(root: Path, files: tuple[str, ...], check_id: str, params_key: str) -> tuple[Result, ...]:
    params = {**FIXTURE_PARAMS, **json.loads(params_key)}
    ctx = CheckContext(_evidence(root, files), params, AS_OF)
    return tuple(check_by_id(check_id).run(ctx))


def judge(root: Path, case: Case) -> Outcome:
    mappings = [RULES[(case.policy, case.rule)]] if case.rule else policy_mapping(case.policy)
    files = (case.resource_file, *case.context_files)
    ev = _evidence(root, files)
    present = any(o.kind == case.kind and o.name == case.name for o in ev.objects)
    failing_facets: set[str] = set()
    found = False
    for mp in mappings:
        params_key = json.dumps(dict(mp.params or {}), sort_keys=True)
        for r in _results(root, files, mp.check, params_key):
            if r.subject.kind == case.kind and r.subject.name == case.name:
                found = True
                if r.status is Status.FAIL:
                    failing_facets |= set(r.facets) & mp.facets
    if not present:
        ours = "rejected"
    elif failing_facets:
        ours = "fail"
    elif found:
        ours = "pass"
    else:
        ours = "none"
    # pass or skip: Kyverno admits it, so we must not fail it on the mapped facets
    agreed = ours == "fail" if case.expected == "fail" else ours in ("pass", "none")
    return Outcome(case, ours, agreed, ",".join(sorted(failing_facets)))
