"""Availability and release safety: PDBs, priority, replicas, autoscaling, rollout strategy."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures, condition, not_applicable, not_assessed, passed
from auditor.kube import (
    REPLICATED_KINDS,
    SYSTEM_PRIORITY_CLASSES,
    WORKLOAD_KINDS,
    Workload,
    as_list,
    as_mapping,
    scaled_int_or_percent,
    selector_matches,
)
from auditor.models import K8sObject, Result, Severity, Subject

_AVAIL_REFS = ("ISO/IEC 27001:2022 A.8.14",)


def _allowed_disruptions(pdb: K8sObject, replicas: int) -> int | None:
    """Evictions the PDB allows with all ``replicas`` healthy, as the disruption controller computes it."""
    spec = pdb.spec
    if "maxUnavailable" in spec:
        value = scaled_int_or_percent(spec.get("maxUnavailable"), replicas, round_up=True)
        return None if value is None else max(0, value)
    if "minAvailable" in spec:
        value = scaled_int_or_percent(spec.get("minAvailable"), replicas, round_up=True)
        return None if value is None else max(0, replicas - value)
    return None


def _pdb_present(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        replicas = ctx.min_replicas(w)
        if replicas is None:
            yield not_applicable(w.subject, f"{w.kind} is not replicated")
            continue
        f = Failures(w.subject)
        pdbs = ctx.selecting("PodDisruptionBudget", w.namespace, w.pod_labels)
        if replicas <= 1:
            # No PDB is required, but one that forbids the only eviction still hangs every node drain.
            blocking = [p for p in pdbs if (_allowed_disruptions(p, max(replicas, 1)) or 0) < 1]
            if not blocking:
                yield not_applicable(w.subject, f"runs {replicas} replica(s)")
                continue
            f.add(
                "pdb-blocks-eviction",
                f"PDB {blocking[0].name} allows 0 evictions of its single replica; node drains will hang",
            )
        elif not pdbs:
            f.add("no-pdb", f"{replicas} replicas and no PodDisruptionBudget selects its pods")
        elif len(pdbs) > 1:
            names = ", ".join(sorted(p.name for p in pdbs))
            f.add(
                "multiple-pdbs", f"pods are selected by several PDBs ({names}); the eviction API refuses to evict them"
            )
        else:
            allowed = _allowed_disruptions(pdbs[0], replicas)
            if allowed is None:
                f.add("pdb-invalid", f"PDB {pdbs[0].name} sets neither a valid minAvailable nor maxUnavailable")
            elif allowed < 1:
                at = (
                    f"at the autoscaler's minimum of {replicas} replicas"
                    if w.replicas is not None and replicas != w.replicas
                    else f"at {replicas} replicas"
                )
                f.add("pdb-blocks-eviction", f"PDB {pdbs[0].name} allows 0 evictions {at}; node drains will hang")
        name = pdbs[0].name if pdbs else ""
        yield f.result(f"PDB {name} covers its {replicas} replicas and allows at least one eviction")
    for pdb in ctx.objects("PodDisruptionBudget"):
        subject = Subject.of(pdb)
        f = Failures(subject)
        max_unavailable = pdb.spec.get("maxUnavailable")
        min_available = pdb.spec.get("minAvailable")
        if max_unavailable in ("0", "0%") or (isinstance(max_unavailable, int) and max_unavailable < 1):
            f.add("pdb-blocks-eviction", f"maxUnavailable is {max_unavailable}: no pod may ever be evicted")
        if min_available == "100%":
            f.add("pdb-blocks-eviction", "minAvailable is 100%: no pod may ever be evicted")
        yield f.result("allows voluntary evictions")


PDB_PRESENT = Check(
    CheckMeta(
        id="pdb-present",
        title="PodDisruptionBudget covers replicated workloads and allows eviction",
        items=("pdb.present",),
        severity=Severity.HIGH,
        kinds=("Deployment", "StatefulSet", "ReplicaSet", "Rollout", "PodDisruptionBudget"),
        reads=("PodDisruptionBudget", "HorizontalPodAutoscaler", "ScaledObject"),
        rationale=(
            "A node drain without a PDB can take every wallet replica at once; a PDB that allows no eviction "
            "blocks the drain and stalls cluster upgrades and security patching."
        ),
        remediation="Add one PDB whose selector matches the pod labels, with maxUnavailable: 1 (or minAvailable below the replica count).",
        references=_AVAIL_REFS,
        facets={
            "no-pdb": "no PDB selects the pods",
            "multiple-pdbs": "more than one PDB selects the pods",
            "pdb-blocks-eviction": "the PDB allows no eviction",
            "pdb-invalid": "PDB without a usable budget",
        },
    ),
    _pdb_present,
)


def _priority_class(ctx: CheckContext) -> Iterator[Result]:
    defined = {o.name for o in ctx.objects("PriorityClass")} | SYSTEM_PRIORITY_CLASSES
    global_default = next((o.name for o in ctx.objects("PriorityClass") if o.raw.get("globalDefault") is True), None)
    for w in ctx.workloads:
        f = Failures(w.subject)
        name = w.pod_spec.get("priorityClassName")
        if not name:
            if global_default:
                yield passed(w.subject, f"no priorityClassName; the global default class {global_default} applies")
                continue
            f.add("no-priority-class", "no priorityClassName and no globalDefault PriorityClass in the evidence")
        elif str(name) not in defined:
            f.add(
                "undefined-priority-class",
                f"priorityClassName {name} is not defined in the evidence nor a system class",
            )
        yield f.result(f"uses PriorityClass {name}")


PRIORITY_CLASS = Check(
    CheckMeta(
        id="priority-class",
        title="Pods name an existing PriorityClass",
        items=("priority.class",),
        severity=Severity.MEDIUM,
        kinds=tuple(sorted(WORKLOAD_KINDS)),
        reads=("PriorityClass",),
        rationale="Under node pressure the scheduler preempts by priority; without one, a batch job can evict the payment API.",
        remediation="Define PriorityClasses per tier and set priorityClassName on every pod template.",
        references=_AVAIL_REFS,
        facets={
            "no-priority-class": "no priorityClassName",
            "undefined-priority-class": "names a class that does not exist",
        },
    ),
    _priority_class,
)


def _is_critical(labels: Mapping[str, str], selector: Mapping[str, object]) -> bool:
    return bool(selector) and all(labels.get(k) == str(v) for k, v in selector.items())


def _replicas_ha(ctx: CheckContext) -> Iterator[Result]:
    selector = ctx.param("critical_selector", dict, {"tier": "critical"})
    minimum = ctx.param("min_replicas_critical", int, 2)
    for w in ctx.workloads:
        replicas = ctx.min_replicas(w)
        if replicas is None:
            yield not_applicable(w.subject, f"{w.kind} is not replicated")
            continue
        if not (_is_critical(w.obj.labels, selector) or _is_critical(w.pod_labels, selector)):
            yield not_applicable(w.subject, "not in the critical tier (parameters.critical_selector)")
            continue
        f = Failures(w.subject)
        if replicas < minimum:
            f.add("too-few-replicas", f"critical-tier workload runs {replicas} replica(s), minimum is {minimum}")
        yield f.result(f"critical-tier workload runs at least {replicas} replicas (minimum {minimum})")


REPLICAS_HA = Check(
    CheckMeta(
        id="replicas-ha",
        title="Critical-tier workloads run the minimum replicas",
        items=("replicas.ha",),
        severity=Severity.HIGH,
        kinds=tuple(sorted(REPLICATED_KINDS)),
        reads=("HorizontalPodAutoscaler", "ScaledObject"),
        rationale="One replica of a wallet or bet service means every restart, node failure or rollout is an outage.",
        remediation="Run at least parameters.min_replicas_critical replicas (or an autoscaler minimum that high), spread across zones.",
        references=_AVAIL_REFS,
        facets={"too-few-replicas": "fewer replicas than the profile's minimum"},
    ),
    _replicas_ha,
)

_AUTOSCALED_KINDS = ("Deployment", "StatefulSet", "Rollout", "DeploymentConfig")


def _autoscaled(ctx: CheckContext) -> Iterator[Result]:
    """The profile decides which workloads must autoscale (parameters.autoscale_selector, a label selector on the
    workload's or its pods' labels): a container port does not make a database or a leader-elected controller one."""
    selector = ctx.param("autoscale_selector", dict, {})
    for w in ctx.workloads:
        if w.kind not in _AUTOSCALED_KINDS:
            yield not_applicable(w.subject, f"{w.kind} is not scaled by an autoscaler")
            continue
        if not selector:
            yield not_assessed(
                w.subject,
                "the profile does not say which workloads must autoscale (parameters.autoscale_selector, "
                "e.g. {matchExpressions: [{key: tier, operator: In, values: [api, realtime]}]})",
            )
            continue
        if not (selector_matches(selector, w.obj.labels) or selector_matches(selector, w.pod_labels)):
            yield not_applicable(w.subject, "not selected by parameters.autoscale_selector (API and realtime tiers)")
            continue
        scalers = ctx.scalers_for(w)
        f = Failures(w.subject)
        if not scalers:
            f.add("no-autoscaler", "no HorizontalPodAutoscaler or KEDA ScaledObject targets it")
        for scaler in scalers:  # live state: an autoscaler that cannot scale protects nothing
            for kind in ("AbleToScale", "ScalingActive") if scaler.kind == "HorizontalPodAutoscaler" else ("Ready",):
                state = condition(scaler, kind)
                if state is not None and state.get("status") == "False":
                    f.add(
                        "autoscaler-inactive",
                        f"{scaler.kind} {scaler.name}: {kind} is False ({state.get('reason', '?')}: "
                        f"{str(state.get('message', ''))[:140]})",
                    )
        names = ", ".join(f"{s.kind} {s.name}" for s in scalers)
        metrics = [
            str(as_mapping(as_mapping(m).get(str(as_mapping(m).get("type", "")).lower() or "-")).get("metric", ""))
            for s in scalers
            for m in as_list(as_mapping(s.raw.get("status")).get("currentMetrics"))
        ]
        shown = f"; reporting {len(metrics)} current metric(s)" if metrics else ""
        yield f.result(f"scaled by {names}{shown}")


AUTOSCALED = Check(
    CheckMeta(
        id="scale-autoscaled",
        title="API and realtime workloads autoscale",
        items=("scale.autoscaled",),
        severity=Severity.MEDIUM,
        kinds=_AUTOSCALED_KINDS,
        reads=("HorizontalPodAutoscaler", "ScaledObject", "Service"),
        rationale="Match-day and promotion peaks multiply load within minutes; fixed replica counts either fall over or waste money.",
        remediation="Add a HorizontalPodAutoscaler (autoscaling/v2) or KEDA ScaledObject targeting the workload.",
        references=_AVAIL_REFS,
        facets={
            "no-autoscaler": "no HPA or ScaledObject",
            "autoscaler-inactive": "the autoscaler reports it cannot scale (live state)",
        },
    ),
    _autoscaled,
)

_RESOURCE_METRICS = frozenset({"cpu", "memory"})


def _non_cpu_metric(ctx: CheckContext) -> Iterator[Result]:
    for scaler in ctx.objects("HorizontalPodAutoscaler", "ScaledObject"):
        subject = Subject.of(scaler)
        f = Failures(subject)
        used: list[str] = []
        if scaler.kind == "ScaledObject":
            for trig in as_list(scaler.spec.get("triggers")):
                used.append(str(as_mapping(trig).get("type", "?")))
        elif scaler.api_version == "autoscaling/v1":
            used.append("cpu")
        else:
            metrics = as_list(scaler.spec.get("metrics"))
            if not metrics:
                used.append("cpu")  # autoscaling/v2 defaults to 80% average CPU
            for m in metrics:
                m = as_mapping(m)
                mtype = str(m.get("type", "?"))
                if mtype in ("Resource", "ContainerResource"):
                    block = as_mapping(m.get("resource") if mtype == "Resource" else m.get("containerResource"))
                    used.append(str(block.get("name", "?")))
                else:
                    used.append(mtype)
        if not any(u not in _RESOURCE_METRICS for u in used):
            f.add("cpu-memory-only", f"scales on {', '.join(used) or 'nothing'} only; no application metric")
        yield f.result(f"scales on application metrics ({', '.join(u for u in used if u not in _RESOURCE_METRICS)})")


NON_CPU_METRIC = Check(
    CheckMeta(
        id="scale-non-cpu-metric",
        title="Autoscaling on an application metric",
        items=("scale.non-cpu-metric",),
        severity=Severity.LOW,
        kinds=("HorizontalPodAutoscaler", "ScaledObject"),
        rationale="Websocket game tiers and queue consumers saturate on connections or lag long before CPU moves.",
        remediation="Add a Pods/Object/External metric (RPS, p95 latency, queue lag) or a KEDA trigger other than cpu/memory.",
        references=_AVAIL_REFS,
        facets={"cpu-memory-only": "only CPU/memory metrics"},
    ),
    _non_cpu_metric,
)


_SINGLE_ATTACH = frozenset({"ReadWriteOnce", "ReadWriteOncePod"})


def _read_write_once_claims(ctx: CheckContext, w: Workload) -> list[str]:
    """PersistentVolumeClaims the pods mount that the evidence shows as ReadWriteOnce(Pod)."""
    claims = {o.name: o for o in ctx.objects("PersistentVolumeClaim") if o.namespace == w.namespace}
    out = []
    for vol in as_list(w.pod_spec.get("volumes")):
        claim = as_mapping(as_mapping(vol).get("persistentVolumeClaim")).get("claimName")
        pvc = claims.get(str(claim)) if claim else None
        if pvc is not None and _SINGLE_ATTACH & {str(m) for m in as_list(pvc.spec.get("accessModes"))}:
            out.append(f"PersistentVolumeClaim {pvc.name}")
    return out


def _safe_strategy(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        f = Failures(w.subject)
        spec = w.obj.spec
        if w.kind == "Rollout":
            yield passed(w.subject, "rollout owned by Argo Rollouts (canary/blue-green controller)")
            continue
        if w.kind == "Deployment":
            replicas = ctx.min_replicas(w) or 1
            strategy = as_mapping(spec.get("strategy"))
            if strategy.get("type") == "Recreate":
                rwo = _read_write_once_claims(ctx, w)
                if rwo:
                    yield passed(
                        w.subject,
                        f"Recreate, as its ReadWriteOnce volume ({', '.join(rwo)}) cannot be attached to an old and "
                        "a new pod at once",
                    )
                    continue
                f.add("recreate", "strategy Recreate stops every pod before starting new ones")
            else:
                rolling = as_mapping(strategy.get("rollingUpdate"))
                unavailable = scaled_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
                surge = scaled_int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
                if unavailable is None or surge is None:
                    f.add(
                        "invalid-strategy", "rollingUpdate maxUnavailable/maxSurge are not valid int-or-percent values"
                    )
                else:
                    if unavailable >= replicas:
                        every = "its only replica" if replicas == 1 else f"all {replicas} replicas"
                        f.add("all-unavailable", f"maxUnavailable lets {every} go down at once during a rollout")
                    if surge < 1:
                        f.add("no-surge", "maxSurge is 0: capacity drops during every rollout")
        elif w.kind in ("DaemonSet", "StatefulSet"):
            update = as_mapping(spec.get("updateStrategy"))
            rolling = as_mapping(update.get("rollingUpdate"))
            if rolling.get("maxUnavailable") == "100%":
                f.add("all-unavailable", "rollingUpdate.maxUnavailable is 100%")
        else:
            yield not_applicable(w.subject, f"{w.kind} has no rollout strategy")
            continue
        yield f.result("rolling update keeps capacity")


SAFE_STRATEGY = Check(
    CheckMeta(
        id="rollout-safe-strategy",
        title="Rolling updates keep capacity",
        items=("rollout.safe-strategy",),
        severity=Severity.HIGH,
        kinds=("Deployment", "DaemonSet", "StatefulSet", "Rollout"),
        reads=("PersistentVolumeClaim", "HorizontalPodAutoscaler", "ScaledObject"),
        rationale="A release that takes every replica down at once is an outage scheduled by the deploy pipeline.",
        remediation="Use RollingUpdate with maxUnavailable below the replica count and maxSurge of at least 1, or hand the rollout to Argo Rollouts/Flagger.",
        references=("ISO/IEC 27001:2022 A.8.32", *_AVAIL_REFS),
        facets={
            "recreate": "Recreate strategy",
            "all-unavailable": "all replicas may be down",
            "no-surge": "no surge capacity",
            "invalid-strategy": "unparseable strategy values",
        },
    ),
    _safe_strategy,
)
