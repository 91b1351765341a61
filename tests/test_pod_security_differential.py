"""Differential testing of the ``pod.*`` checks against Kubernetes' own Pod Security Standards evaluator.

The oracle is ``k8s.io/pod-security-admission`` (tests/psa_oracle, see psa_oracle_client.py). Hypothesis
generates pod specs (pod and container securityContexts, init and ephemeral containers, host namespaces,
volumes, hostPorts, capabilities, seccomp, sysctls, AppArmor, SELinux, procMount, user namespaces, Windows
pods); every pod template in ``shared/corpus`` (kyverno, kube-score, real-manifests) is judged too. For each
mapped checklist item the auditor's verdict must equal the conjunction of its PSA checks' verdicts, or the
disagreement must fall in one of the deliberate, reasoned classes below; anything else fails the test.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auditor.checkapi import effective
from auditor.kube import CONTAINER_FIELDS, as_list, as_mapping
from auditor.sources.manifests import ManifestSource

from .conftest import require_corpus
from .psa_oracle_client import (
    ITEMS,
    UNMAPPED,
    ItemVerdict,
    OracleUnavailable,
    PsaOracle,
    PsaVerdict,
    auditor_verdicts,
    build_oracle,
    pod_templates,
    psa_input,
)

GENERATED_EXAMPLES = 1500
CORPUS_DIRS = ("kyverno", "kube-score", "real-manifests")


@pytest.fixture(scope="module")
def oracle() -> Iterator[PsaOracle]:
    try:
        binary = build_oracle()
    except OracleUnavailable as e:
        pytest.skip(str(e))
    psa = PsaOracle(binary)
    yield psa
    psa.close()


# ---------------------------------------------------------------- justified differences

Spec = Mapping[str, Any]


def _containers(spec: Spec) -> list[Mapping[str, Any]]:
    return [as_mapping(c) for fld in CONTAINER_FIELDS for c in as_list(spec.get(fld))]


def _pod_sc(spec: Spec) -> Mapping[str, Any]:
    return as_mapping(spec.get("securityContext"))


def _sc(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_mapping(container.get("securityContext"))


def _nonzero_uid_accepted(spec: Spec) -> bool:
    """Some container is non-root only through a non-zero runAsUser, without runAsNonRoot: true."""
    pod = _pod_sc(spec)
    for c in _containers(spec):
        uid = effective(_sc(c), pod, "runAsUser")
        if effective(_sc(c), pod, "runAsNonRoot") is not True and isinstance(uid, int) and uid > 0:
            return True
    return False


def _pod_run_as_overridden(spec: Spec) -> bool:
    """The pod sets runAsNonRoot: false or runAsUser: 0, and every container overrides what the pod set."""
    pod = _pod_sc(spec)
    bad_non_root, bad_uid = pod.get("runAsNonRoot") is False, pod.get("runAsUser") == 0
    if not (bad_non_root or bad_uid):
        return False
    return all(
        (not bad_non_root or _sc(c).get("runAsNonRoot") is not None)
        and (not bad_uid or _sc(c).get("runAsUser") is not None)
        for c in _containers(spec)
    )


def _user_namespaces(spec: Spec) -> bool:
    return spec.get("hostUsers") is False


def _pod_host_process_overridden(spec: Spec) -> bool:
    pod = as_mapping(_pod_sc(spec).get("windowsOptions"))
    return pod.get("hostProcess") is True and all(
        as_mapping(_sc(c).get("windowsOptions")).get("hostProcess") is False for c in _containers(spec)
    )


def _pod_seccomp_overridden(spec: Spec) -> bool:
    pod_type = as_mapping(_pod_sc(spec).get("seccompProfile")).get("type")
    return pod_type is not None and pod_type not in ("RuntimeDefault", "Localhost")


@dataclass(frozen=True)
class Justified:
    name: str
    item: str
    auditor_passes: bool
    """The direction: True when the auditor passes what PSA forbids."""
    applies: Callable[[Spec], bool]
    reason: str


JUSTIFIED: list[Justified] = [
    Justified(
        "non-zero runAsUser without runAsNonRoot",
        "pod.run-as-non-root",
        True,
        _nonzero_uid_accepted,
        "the checklist item is 'containers cannot run as UID 0 (runAsNonRoot, or non-zero runAsUser)': an "
        "explicit non-zero UID cannot be UID 0. PSA restricted requires runAsNonRoot: true in every case.",
    ),
    Justified(
        "pod-level runAsNonRoot/runAsUser overridden by every container",
        "pod.run-as-non-root",
        True,
        _pod_run_as_overridden,
        "the pod sets runAsNonRoot: false or runAsUser: 0, but every container sets its own value, which wins "
        "(the kubelet applies the container's): no container runs as root. PSA forbids the pod-level value as "
        "written; the auditor judges the effective value per container.",
    ),
    Justified(
        "user namespaces (hostUsers: false)",
        "pod.run-as-non-root",
        False,
        _user_namespaces,
        "since policy version 1.35 PSA waives runAsNonRoot and runAsUser for pods in a user namespace, where "
        "UID 0 maps to an unprivileged host UID. The checklist item asks that containers not run as UID 0 at "
        "all; the auditor does not relax it for a node feature it cannot see.",
    ),
    Justified(
        "pod-level hostProcess overridden by every container",
        "pod.no-privilege",
        True,
        _pod_host_process_overridden,
        "windowsOptions.hostProcess: true on the pod and false on every container: no container is a "
        "HostProcess container (the API server rejects the mix anyway). PSA forbids the pod-level value as "
        "written; the auditor judges the effective value per container.",
    ),
    Justified(
        "pod-level seccomp profile overridden by every container",
        "pod.seccomp",
        True,
        _pod_seccomp_overridden,
        "the pod sets an Unconfined (or unknown) seccomp profile and every container sets RuntimeDefault or "
        "Localhost, which wins: no container runs unconfined. PSA forbids the pod-level value as written; "
        "the auditor judges the effective profile per container.",
    ),
]


@dataclass(frozen=True)
class Disagreement:
    item: str
    label: str
    ours: ItemVerdict
    psa: PsaVerdict

    def explain(self, spec: Spec) -> Justified | None:
        for j in JUSTIFIED:
            if j.item == self.item and j.auditor_passes == self.ours.passed and j.applies(spec):
                return j
        return None

    def describe(self) -> str:
        psa_detail = "; ".join(f"{c}: {self.psa.details[c]}" for c in ITEMS[self.item][1] if c in self.psa.details)
        ours = "pass" if self.ours.passed else f"fail {self.ours.facets} ({self.ours.message})"
        theirs = "forbidden" if not self.psa.item_allowed(self.item) else "allowed"
        return f"{self.label} {self.item}: auditor {ours}; PSA {theirs} {psa_detail}"


@dataclass
class Tally:
    """Figures for the record: pods judged, agreements per item, differences per class."""

    pods: int = 0
    undecodable: int = 0
    baseline_allowed: int = 0
    restricted_allowed: int = 0
    auditor_all_pass: int = 0
    both_all_pass: int = 0

    def __post_init__(self) -> None:
        self.agreed: Counter[str] = Counter()
        self.justified: Counter[str] = Counter()
        self.psa_forbids: Counter[str] = Counter()
        self.item_allowed: Counter[str] = Counter()
        self.unexplained: list[str] = []

    def judge(self, label: str, spec: Spec, ours: Mapping[str, ItemVerdict], psa: PsaVerdict) -> None:
        if psa.error is not None:
            self.undecodable += 1
            return
        self.pods += 1
        self.baseline_allowed += psa.baseline
        self.restricted_allowed += psa.restricted
        for check, allowed in psa.allowed.items():
            self.psa_forbids[check] += not allowed
        all_pass = all(v.passed for v in ours.values())
        self.auditor_all_pass += all_pass
        self.both_all_pass += all_pass and psa.restricted
        for item in ITEMS:
            self.item_allowed[item] += psa.item_allowed(item)
            if ours[item].passed == psa.item_allowed(item):
                self.agreed[item] += 1
                continue
            d = Disagreement(item, label, ours[item], psa)
            why = d.explain(spec)
            if why is None:
                self.unexplained.append(d.describe())
            else:
                self.justified[why.name] += 1

    def report(self, title: str) -> str:
        lines = [
            f"{title}: {self.pods} pod specs ({self.undecodable} the API server could not decode, not compared); "
            f"PSA baseline allows {self.baseline_allowed}, restricted allows {self.restricted_allowed}; "
            f"the auditor passes all five mapped items on {self.auditor_all_pass} "
            f"({self.both_all_pass} of them also restricted-allowed)",
        ]
        lines += [
            f"  {item}: {self.agreed[item]}/{self.pods} agreed (PSA allows {self.item_allowed[item]})" for item in ITEMS
        ]
        lines += [f"  justified: {name}: {n}" for name, n in sorted(self.justified.items())]
        lines.append("  PSA forbids, per check: " + ", ".join(f"{c} {n}" for c, n in sorted(self.psa_forbids.items())))
        return "\n".join(lines)


# ---------------------------------------------------------------- pod spec strategies

UIDS = st.sampled_from([0, 1, 1000, 65534])
CAPABILITIES = ["NET_BIND_SERVICE", "NET_RAW", "SYS_ADMIN", "CHOWN", "KILL", "ALL"]
SECCOMP = st.sampled_from(
    [
        {"type": "RuntimeDefault"},
        {"type": "Localhost", "localhostProfile": "profiles/audit.json"},
        {"type": "Unconfined"},
    ]
)
APPARMOR = st.sampled_from(
    [{"type": "RuntimeDefault"}, {"type": "Localhost", "localhostProfile": "k8s-deny-write"}, {"type": "Unconfined"}]
)
SELINUX = st.sampled_from(
    [{"type": "container_t"}, {"type": "spc_t"}, {"user": "system_u"}, {"role": "system_r"}, {"level": "s0:c1,c2"}]
)
# allowed by the baseline policy (kernel.shm_rmid_forced, net.ipv4.*) and not (the last three)
SYSCTLS = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_keepalive_time",
    "kernel.msgmax",
    "net.core.somaxconn",
    "vm.swappiness",
]
VOLUMES = st.sampled_from(
    [
        {"hostPath": {"path": "/var/run/docker.sock"}},
        {"hostPath": {"path": "/", "type": "Directory"}},
        {"emptyDir": {}},
        {"configMap": {"name": "settings"}},
        {"secret": {"secretName": "tls"}},
        {"persistentVolumeClaim": {"claimName": "data"}},
        {"projected": {"sources": []}},
        {"nfs": {"server": "nfs.example", "path": "/exports"}},
        {"gitRepo": {"repository": "https://example.com/repo.git"}},
    ]
)

# A hardened container: the restricted profile's values. Generated containers start from nothing or
# from this, then override a few fields, so specs sit near every edge rather than far outside them.
HARDENED_CONTAINER_SC: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
    "readOnlyRootFilesystem": True,
}
HARDENED_POD_SC: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}

CONTAINER_SC_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "runAsNonRoot": st.booleans(),
    "runAsUser": UIDS,
    "privileged": st.booleans(),
    "allowPrivilegeEscalation": st.booleans(),
    "capabilities": st.fixed_dictionaries(
        {},
        optional={
            "add": st.lists(st.sampled_from(CAPABILITIES), max_size=2, unique=True),
            "drop": st.lists(st.sampled_from(["ALL", "NET_RAW", "all"]), max_size=2, unique=True),
        },
    ),
    "seccompProfile": SECCOMP,
    "appArmorProfile": APPARMOR,
    "seLinuxOptions": SELINUX,
    "procMount": st.sampled_from(["Default", "Unmasked"]),
    "windowsOptions": st.fixed_dictionaries({"hostProcess": st.booleans()}),
    "readOnlyRootFilesystem": st.booleans(),
}
POD_SC_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "runAsNonRoot": st.booleans(),
    "runAsUser": UIDS,
    "seccompProfile": SECCOMP,
    "appArmorProfile": APPARMOR,
    "seLinuxOptions": SELINUX,
    "sysctls": st.lists(st.sampled_from(SYSCTLS), max_size=2, unique=True).map(
        lambda names: [{"name": n, "value": "1"} for n in names]
    ),
    "windowsOptions": st.fixed_dictionaries({"hostProcess": st.booleans()}),
}


def _security_context(
    fields: dict[str, st.SearchStrategy[Any]], hardened: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any] | None]:
    """None, or nothing or the hardened values with up to three fields set to any value."""
    one_field = st.one_of(*(st.tuples(st.just(name), values) for name, values in fields.items()))
    overrides = st.lists(one_field, max_size=3).map(dict)
    return st.one_of(
        st.none(),
        st.tuples(st.sampled_from([{}, hardened, hardened]), overrides).map(lambda pair: {**pair[0], **pair[1]}),
    )


def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


CONTAINER = st.fixed_dictionaries(
    {
        "image": st.just("registry.example.com/shop/app:1.0"),
        "securityContext": _security_context(CONTAINER_SC_FIELDS, HARDENED_CONTAINER_SC),
        "ports": st.lists(
            st.fixed_dictionaries({"containerPort": st.just(8080)}, optional={"hostPort": st.sampled_from([0, 8080])}),
            max_size=1,
        ),
    }
).map(_drop_none)

# Fields the API server rejects on a Windows pod (spec.os.name: windows): such pods never reach a
# cluster with them, so a generated Windows pod does not carry them.
LINUX_ONLY_POD = ("seccompProfile", "appArmorProfile", "seLinuxOptions", "runAsUser", "sysctls")
LINUX_ONLY_CONTAINER = (
    "seccompProfile",
    "appArmorProfile",
    "seLinuxOptions",
    "capabilities",
    "readOnlyRootFilesystem",
    "privileged",
    "allowPrivilegeEscalation",
    "procMount",
    "runAsUser",
)


def _strip(sc: Any, fields: tuple[str, ...]) -> Any:
    return {k: v for k, v in sc.items() if k not in fields} if isinstance(sc, dict) else sc


def _pod_spec(parts: dict[str, Any]) -> dict[str, Any]:
    """Assemble a spec: unique container names, and a Windows pod without Linux-only fields."""
    spec = {k: v for k, v in parts.items() if v is not None and v != []}
    windows = as_mapping(spec.get("os")).get("name") == "windows"
    for fld, prefix in (("initContainers", "init"), ("containers", "app"), ("ephemeralContainers", "debug")):
        named = []
        for i, c in enumerate(spec.get(fld, [])):
            c = {"name": f"{prefix}-{i}", **c}
            if windows and "securityContext" in c:
                c["securityContext"] = _strip(c["securityContext"], LINUX_ONLY_CONTAINER)
            named.append(c)
        if named:
            spec[fld] = named
    if windows and "securityContext" in spec:
        spec["securityContext"] = _strip(spec["securityContext"], LINUX_ONLY_POD)
    if "volumes" in spec:
        spec["volumes"] = [{"name": f"vol-{i}", **v} for i, v in enumerate(spec["volumes"])]
    return spec


POD_SPECS = st.fixed_dictionaries(
    {
        "securityContext": _security_context(POD_SC_FIELDS, HARDENED_POD_SC),
        "containers": st.lists(CONTAINER, min_size=1, max_size=3),
        "initContainers": st.lists(CONTAINER, max_size=2),
        "ephemeralContainers": st.lists(CONTAINER, max_size=1),
        "hostNetwork": st.sampled_from([None, False, True]),
        "hostPID": st.sampled_from([None, False, True]),
        "hostIPC": st.sampled_from([None, False, True]),
        "hostUsers": st.sampled_from([None, None, True, False]),
        "os": st.sampled_from([None, None, {"name": "linux"}, {"name": "windows"}]),
        "volumes": st.lists(VOLUMES, max_size=2),
    }
).map(_pod_spec)


def _app(**security_context: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "app-0", "image": "registry.example.com/shop/app:1.0"}
    return {**c, "securityContext": security_context} if security_context else c


# Always run, whatever the generator draws: one pod per justified class, and the Windows pod that led to
# the fix in checks/pod_security.py (Linux-only controls are not required where the API server rejects them).
EXPLICIT_SPECS: list[dict[str, Any]] = [
    {"containers": [_app(runAsUser=1000)]},
    {"securityContext": {"runAsNonRoot": False}, "containers": [_app(runAsNonRoot=True)]},
    {"hostUsers": False, "containers": [_app()]},
    {
        "securityContext": {"windowsOptions": {"hostProcess": True}},
        "containers": [_app(allowPrivilegeEscalation=False, windowsOptions={"hostProcess": False})],
    },
    {
        "securityContext": {"seccompProfile": {"type": "Unconfined"}},
        "containers": [_app(seccompProfile={"type": "RuntimeDefault"})],
    },
    {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}, "containers": [_app()]},
]


def _as_pod(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "generated", "namespace": "psa"}, "spec": spec}


# ---------------------------------------------------------------- the tests


def test_every_psa_check_is_mapped_or_declared_unmapped(oracle: PsaOracle) -> None:
    verdict = oracle.evaluate({}, {"containers": [{"name": "app", "image": "app:1"}]})
    mapped = {c for _check, checks in ITEMS.values() for c in checks}
    assert set(verdict.allowed) == mapped | set(UNMAPPED), "a PSA check is new or gone: map it, or say why not"
    assert not mapped & set(UNMAPPED)


def _explicit_examples(f: Callable[..., None]) -> Callable[..., None]:
    for spec in EXPLICIT_SPECS:
        f = example(spec=spec)(f)
    return f


def test_generated_pod_specs_agree_with_pod_security_standards(oracle: PsaOracle, tmp_path: Path) -> None:
    tally = Tally()
    manifest = tmp_path / "pod.json"

    @settings(
        max_examples=GENERATED_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(spec=POD_SPECS)
    @_explicit_examples
    def agree(spec: dict[str, Any]) -> None:
        before = len(tally.unexplained)
        manifest.write_text(json.dumps(_as_pod(spec)))
        collected = ManifestSource([str(manifest)]).collect()
        assert not collected.gaps, collected.gaps
        (obj,) = collected.objects
        tally.judge("generated pod", spec, auditor_verdicts(obj), oracle.evaluate({}, spec))
        assert len(tally.unexplained) == before, f"{tally.unexplained[-1]}\nspec: {json.dumps(spec)}"

    agree()
    print("\n" + tally.report("generated"))
    assert tally.pods == GENERATED_EXAMPLES + len(EXPLICIT_SPECS)
    assert set(tally.justified) == {j.name for j in JUSTIFIED}, "every justified class is exercised"
    # the generator reaches both of PSA's verdicts on every item: agreement is not agreement on one answer
    for item in ITEMS:
        assert 0 < tally.item_allowed[item] < tally.pods, (item, tally.item_allowed[item])


# (justified class name -> number of corpus pod templates it explains)
CORPUS_JUSTIFIED: dict[str, int] = {
    # kyverno require-run-as-non-root-user good resources (32) and kube-score fixtures (9)
    "non-zero runAsUser without runAsNonRoot": 41,
    # kyverno disallow-proc-mount chainsaw pods: hostUsers: false with procMount: Unmasked
    "user namespaces (hostUsers: false)": 5,
}


def test_corpus_pod_templates_agree_with_pod_security_standards(oracle: PsaOracle) -> None:
    roots = [require_corpus(d) for d in CORPUS_DIRS]
    tally = Tally()
    templates = 0
    for root in roots:
        collected = ManifestSource([str(root)]).collect()
        found = pod_templates(collected.objects)
        templates += len(found)
        verdicts = oracle.evaluate_many([psa_input(w) for _obj, w in found])
        for (obj, w), psa in zip(found, verdicts, strict=True):
            label = f"{obj.location} {obj.kind}/{obj.name}"
            tally.judge(label, w.pod_spec, auditor_verdicts(obj), psa)
    print("\n" + tally.report(f"corpus ({', '.join(CORPUS_DIRS)})"))
    assert not tally.unexplained, "\n".join(tally.unexplained)
    assert dict(tally.justified) == CORPUS_JUSTIFIED
    assert templates >= 500
