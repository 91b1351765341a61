"""Pod hardening: the seven ``pod.*`` items, judged per workload across all its containers.

Container-level securityContext fields override pod-level ones, as the kubelet applies them.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures, effective
from auditor.kube import WORKLOAD_KINDS, Workload, as_list, as_mapping
from auditor.models import Result, Severity

_KINDS = tuple(sorted(WORKLOAD_KINDS))
_PSS = "Kubernetes Pod Security Standards"


def _windows(w: Workload) -> bool:
    """A pod declared to run on Windows nodes (``spec.os.name: windows``).

    The API server rejects Linux-only securityContext fields on such pods (allowPrivilegeEscalation,
    capabilities, seccompProfile, readOnlyRootFilesystem...), so requiring them would fail a pod that
    cannot comply; the Pod Security Standards exempt Windows pods from those controls for the same reason.
    See https://kubernetes.io/docs/concepts/security/pod-security-standards/#os-specific-policy-controls
    """
    return as_mapping(w.pod_spec.get("os")).get("name") == "windows"


def _run_as_non_root(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        f = Failures(w.subject)
        pod_sc = w.pod_security_context
        for c in w.containers():
            sc = c.security_context
            non_root = effective(sc, pod_sc, "runAsNonRoot")
            uid = effective(sc, pod_sc, "runAsUser")
            if uid == 0:
                f.add("uid-0", f"container {c.name}: runAsUser is 0 (root)")
            elif non_root is not True and not (isinstance(uid, int) and uid > 0):
                why = (
                    "runAsNonRoot is false"
                    if non_root is False
                    else "neither runAsNonRoot: true nor a non-zero runAsUser"
                )
                f.add("root-allowed", f"container {c.name}: {why}")
        yield f.result("no container can run as UID 0")


RUN_AS_NON_ROOT = Check(
    CheckMeta(
        id="pod-run-as-non-root",
        title="Containers cannot run as root",
        items=("pod.run-as-non-root",),
        severity=Severity.HIGH,
        kinds=_KINDS,
        rationale="A process running as UID 0 turns any container escape or writable host mount into host root.",
        remediation="Set securityContext.runAsNonRoot: true (pod or container) and a non-zero runAsUser; never runAsUser: 0.",
        references=("CIS Kubernetes Benchmark 5.2.7", f"{_PSS} (restricted)"),
        facets={"uid-0": "runAsUser: 0", "root-allowed": "nothing prevents UID 0"},
        facet_severity={"root-allowed": Severity.MEDIUM},
    ),
    _run_as_non_root,
)


def _read_only_root_fs(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        f = Failures(w.subject)
        if _windows(w):
            yield f.result("Windows pod: readOnlyRootFilesystem cannot be set (the API server rejects it)")
            continue
        for c in w.containers(include_init=True):
            if c.security_context.get("readOnlyRootFilesystem") is not True:
                f.add("writable-root", f"container {c.name}: readOnlyRootFilesystem is not true")
        yield f.result("every container has a read-only root filesystem")


READ_ONLY_ROOT_FS = Check(
    CheckMeta(
        id="pod-read-only-root-fs",
        title="Root filesystems are read-only",
        items=("pod.read-only-root-fs",),
        severity=Severity.MEDIUM,
        kinds=_KINDS,
        rationale="A writable root filesystem lets an intruder drop tools and persist changes the image never shipped.",
        remediation="Set securityContext.readOnlyRootFilesystem: true; mount an emptyDir where the application must write.",
        references=("CIS Kubernetes Benchmark 5.7.3",),
        facets={"writable-root": "readOnlyRootFilesystem not true"},
    ),
    _read_only_root_fs,
)


def _no_privilege(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        f = Failures(w.subject)
        pod_sc = w.pod_security_context
        windows = _windows(w)
        for c in w.containers():
            sc = c.security_context
            if sc.get("privileged") is True:
                f.add("privileged", f"container {c.name}: privileged: true")
            if not windows and sc.get("allowPrivilegeEscalation") is not False:
                f.add("privilege-escalation", f"container {c.name}: allowPrivilegeEscalation is not false")
            host_process = effective(
                as_mapping(sc.get("windowsOptions")), as_mapping(pod_sc.get("windowsOptions")), "hostProcess"
            )
            if host_process is True:
                f.add("host-process", f"container {c.name}: windowsOptions.hostProcess: true")
        yield f.result("no privileged container and privilege escalation disabled everywhere")


NO_PRIVILEGE = Check(
    CheckMeta(
        id="pod-no-privilege",
        title="No privileged containers, no privilege escalation",
        items=("pod.no-privilege",),
        severity=Severity.CRITICAL,
        kinds=_KINDS,
        rationale="Privileged containers and setuid escalation give a compromised process the host's full power.",
        remediation="Remove privileged: true and set allowPrivilegeEscalation: false on every container.",
        references=(
            "CIS Kubernetes Benchmark 5.2.2",
            "CIS Kubernetes Benchmark 5.2.6",
            "CIS Kubernetes Benchmark 5.2.11",
            f"{_PSS} (baseline, restricted)",
        ),
        facets={
            "privileged": "privileged: true",
            "privilege-escalation": "allowPrivilegeEscalation not false",
            "host-process": "Windows HostProcess container",
        },
        facet_severity={"privilege-escalation": Severity.HIGH},
    ),
    _no_privilege,
)


def _capabilities_dropped(ctx: CheckContext) -> Iterator[Result]:
    allowed = {str(c) for c in ctx.param("allowed_capabilities", list, ["NET_BIND_SERVICE"])}
    for w in ctx.workloads:
        f = Failures(w.subject)
        if _windows(w):
            yield f.result("Windows pod: Linux capabilities do not apply (the API server rejects them)")
            continue
        for c in w.containers():
            caps = as_mapping(c.security_context.get("capabilities"))
            drop = {str(x) for x in as_list(caps.get("drop"))}
            if "ALL" not in drop:
                f.add("drop-all-missing", f"container {c.name}: capabilities.drop does not include ALL")
            added = sorted({str(x) for x in as_list(caps.get("add"))} - allowed - {""})
            if added:
                f.add("added-capabilities", f"container {c.name}: adds {', '.join(added)}")
        yield f.result("every container drops ALL capabilities and adds only allowed ones")


CAPABILITIES_DROPPED = Check(
    CheckMeta(
        id="pod-capabilities-dropped",
        title="Capabilities dropped; nothing added outside the allow-list",
        items=("pod.capabilities-dropped",),
        severity=Severity.HIGH,
        kinds=_KINDS,
        rationale="Default capabilities (NET_RAW, SETUID...) are rarely needed and widen every exploit.",
        remediation="Set capabilities.drop: [ALL]; add back only what the profile allows (default NET_BIND_SERVICE).",
        references=(
            "CIS Kubernetes Benchmark 5.2.8",
            "CIS Kubernetes Benchmark 5.2.9",
            "CIS Kubernetes Benchmark 5.2.10",
            f"{_PSS} (restricted)",
        ),
        facets={"drop-all-missing": "ALL not dropped", "added-capabilities": "capability added outside allow-list"},
        facet_severity={"drop-all-missing": Severity.MEDIUM},
    ),
    _capabilities_dropped,
)


def _seccomp(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        f = Failures(w.subject)
        if _windows(w):
            yield f.result("Windows pod: seccomp does not apply (the API server rejects seccompProfile)")
            continue
        pod_profile = as_mapping(w.pod_security_context.get("seccompProfile")).get("type")
        for c in w.containers():
            own = as_mapping(c.security_context.get("seccompProfile")).get("type")
            kind = own if own is not None else pod_profile
            if kind not in ("RuntimeDefault", "Localhost"):
                shown = "not set" if kind is None else str(kind)
                f.add("seccomp-unconfined", f"container {c.name}: seccomp profile {shown}")
        yield f.result("every container runs under seccomp RuntimeDefault or Localhost")


SECCOMP = Check(
    CheckMeta(
        id="pod-seccomp",
        title="Seccomp RuntimeDefault or Localhost",
        items=("pod.seccomp",),
        severity=Severity.MEDIUM,
        kinds=_KINDS,
        rationale="Without a seccomp profile every syscall is reachable, including those used by known kernel escapes.",
        remediation="Set securityContext.seccompProfile.type: RuntimeDefault at pod level.",
        references=("CIS Kubernetes Benchmark 5.7.2", f"{_PSS} (restricted)"),
        facets={"seccomp-unconfined": "no RuntimeDefault/Localhost seccomp profile"},
    ),
    _seccomp,
)


def _no_host_access(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        f = Failures(w.subject)
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if w.pod_spec.get(field) is True:
                f.add("host-namespaces", f"{field}: true")
        for vol in as_list(w.pod_spec.get("volumes")):
            vol = as_mapping(vol)
            if "hostPath" in vol:
                path = as_mapping(vol.get("hostPath")).get("path", "?")
                f.add("host-path", f"volume {vol.get('name', '?')}: hostPath {path}")
        for c in w.containers():
            for port in as_list(c.spec.get("ports")):
                host_port = as_mapping(port).get("hostPort")
                if host_port not in (None, 0):
                    f.add("host-port", f"container {c.name}: hostPort {host_port}")
        yield f.result("no host namespaces, hostPath volumes or hostPorts")


NO_HOST_ACCESS = Check(
    CheckMeta(
        id="pod-no-host-access",
        title="No host namespaces, hostPath or hostPort",
        items=("pod.no-host-access",),
        severity=Severity.HIGH,
        kinds=_KINDS,
        rationale="Host namespaces and mounts break the isolation that keeps one tenant's compromise out of the node.",
        remediation="Remove hostNetwork/hostPID/hostIPC, hostPath volumes and hostPort; use Services and PersistentVolumes.",
        references=(
            "CIS Kubernetes Benchmark 5.2.3",
            "CIS Kubernetes Benchmark 5.2.4",
            "CIS Kubernetes Benchmark 5.2.5",
            "CIS Kubernetes Benchmark 5.2.12",
            "CIS Kubernetes Benchmark 5.2.13",
            f"{_PSS} (baseline)",
        ),
        facets={
            "host-namespaces": "hostNetwork/hostPID/hostIPC",
            "host-path": "hostPath volume",
            "host-port": "hostPort",
        },
    ),
    _no_host_access,
)


def _resources(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        f = Failures(w.subject)
        for c in w.containers(include_ephemeral=False):
            res = as_mapping(c.spec.get("resources"))
            requests, limits = as_mapping(res.get("requests")), as_mapping(res.get("limits"))
            missing = [
                f"{kind}.{r}"
                for kind, block in (("requests", requests), ("limits", limits))
                for r in ("cpu", "memory")
                if not block.get(r)
            ]
            for m in missing:
                facet = "cpu-limit" if m == "limits.cpu" else "memory-limit" if m == "limits.memory" else "requests"
                f.add(facet, f"container {c.name}: no {m}")
        yield f.result("every container sets CPU and memory requests and limits")


RESOURCES = Check(
    CheckMeta(
        id="pod-resources",
        title="CPU and memory requests and limits",
        items=("pod.resources",),
        severity=Severity.MEDIUM,
        kinds=_KINDS,
        rationale="Without requests the scheduler overcommits; without limits one noisy pod starves the wallet next to it.",
        remediation="Set resources.requests and resources.limits for cpu and memory on every container.",
        references=("ISO/IEC 27001:2022 A.8.14",),
        facets={
            "requests": "missing cpu or memory request",
            "cpu-limit": "missing CPU limit",
            "memory-limit": "missing memory limit",
        },
        facet_severity={"cpu-limit": Severity.LOW},
    ),
    _resources,
)
