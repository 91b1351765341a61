"""What a check is, and what it is given.

A check is metadata plus a pure function of a :class:`CheckContext`. It never
touches the network, the clock or a source; the run's time and the profile's
parameters come in through the context.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from auditor.errors import ProfileError
from auditor.kube import Workload, as_list, as_mapping, dig, map_selector_matches, selector_matches, workloads
from auditor.models import (
    EvidenceKind,
    EvidenceSet,
    K8sObject,
    Result,
    Severity,
    SourceLocation,
    Status,
    Subject,
    cached,
)

T = TypeVar("T")


@dataclass(frozen=True)
class CheckMeta:
    """Everything a catalog, a profile and a report need to know about a check."""

    id: str
    title: str
    items: tuple[str, ...]
    severity: Severity
    rationale: str
    remediation: str
    kinds: tuple[str, ...]
    """Kubernetes kinds whose objects are the check's subjects."""
    reads: tuple[str, ...] = ()
    """Kinds it reads besides its subjects (a PDB check reads PodDisruptionBudgets): when a cluster would not
    let the auditor list one of them, the check is not assessed there, never judged on half the evidence."""
    needs: frozenset[EvidenceKind] = frozenset({EvidenceKind.K8S_OBJECTS})
    references: tuple[str, ...] = ()
    facets: Mapping[str, str] = field(default_factory=dict)
    """The named ways the check can fail, with what each means."""
    facet_severity: Mapping[str, Severity] = field(default_factory=dict)
    """Facets less severe than the check itself (e.g. an unset allowPrivilegeEscalation next to privileged: true);
    a finding's severity follows the most severe facet that failed."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "items": list(self.items),
            "severity": self.severity.value,
            "needs": sorted(k.value for k in self.needs),
            "kinds": list(self.kinds),
            "reads": list(self.reads),
            "rationale": self.rationale,
            "remediation": self.remediation,
            "references": list(self.references),
            "facets": dict(self.facets),
            "facet_severity": {k: v.value for k, v in sorted(self.facet_severity.items())},
        }


@dataclass(frozen=True)
class Check:
    """A check: metadata and the function that judges evidence."""

    meta: CheckMeta
    run: Callable[[CheckContext], Iterable[Result]]


class CheckContext:
    """The evidence and profile parameters one check run sees, with shared indexes built once."""

    def __init__(self, evidence: EvidenceSet, params: Mapping[str, Any], as_of: str) -> None:
        self.evidence = evidence
        self.params = params
        self.as_of = as_of
        self.cluster = evidence.objects[0].cluster if evidence.objects else ""
        """The cluster this context judges (the assessment runs checks once per cluster); empty for manifests."""

    def param(self, name: str, kind: type[T], default: T) -> T:
        """A profile parameter, type-checked (a wrong type is a profile error naming the field)."""
        value = self.params.get(name, default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProfileError(f"parameters.{name}: expected {kind.__name__}, got {type(value).__name__}")
        return value

    @cached
    def workloads(self) -> Sequence[Workload]:
        return list(workloads(self.evidence.objects))

    @cached
    def _workloads_by_namespace(self) -> Mapping[str, Sequence[Workload]]:
        index: dict[str, list[Workload]] = defaultdict(list)
        for w in self.workloads:
            index[w.namespace or ""].append(w)
        return index

    def workloads_of(self, namespace: str) -> Sequence[Workload]:
        return self._workloads_by_namespace.get(namespace, ())

    @cached
    def by_kind(self) -> Mapping[str, Sequence[K8sObject]]:
        index: dict[str, list[K8sObject]] = defaultdict(list)
        for obj in self.evidence.objects:
            index[obj.kind].append(obj)
        return index

    def objects(self, *kinds: str) -> Iterable[K8sObject]:
        for kind in kinds:
            yield from self.by_kind.get(kind, ())

    @cached
    def namespaces(self) -> Sequence[str]:
        """Every namespace the evidence names: Namespace objects and namespaced objects' namespaces."""
        names = {o.name for o in self.objects("Namespace")}
        names.update(o.namespace for o in self.evidence.objects if o.namespace)
        return sorted(names)

    @cached
    def _namespace_locations(self) -> Mapping[str, SourceLocation]:
        """Where each namespace is defined: its Namespace object, else the first object read in it."""
        out: dict[str, SourceLocation] = {}
        for o in self.objects("Namespace"):
            out.setdefault(o.name, o.location)
        for o in self.evidence.objects:
            if o.namespace:
                out.setdefault(o.namespace, o.location)
        return out

    def namespace_subject(self, ns: str) -> Subject:
        """A namespace as the subject of a namespace-level result, located where it is defined or first used."""
        return Subject(
            kind="Namespace", name=ns, namespace=ns, cluster=self.cluster, location=self._namespace_locations.get(ns)
        )

    @cached
    def _selector_index(self) -> Mapping[tuple[str, str], Mapping[str, Sequence[K8sObject]]]:
        """(namespace, kind) -> first matchLabel 'k=v' (or '' for others) -> objects, for fast selection."""
        index: dict[tuple[str, str], dict[str, list[K8sObject]]] = defaultdict(lambda: defaultdict(list))
        for obj in self.objects("PodDisruptionBudget", "Service", "NetworkPolicy"):
            if obj.kind == "Service":
                selector = as_mapping(obj.spec.get("selector"))
                key = next(iter(sorted(selector.items())), None)
            else:
                selector = as_mapping(obj.spec.get("selector" if obj.kind != "NetworkPolicy" else "podSelector"))
                match = as_mapping(selector.get("matchLabels"))
                key = next(iter(sorted(match.items())), None)
            bucket = f"{key[0]}={key[1]}" if key else ""
            index[(obj.namespace or "", obj.kind)][bucket].append(obj)
        return index

    def selecting(self, kind: str, namespace: str | None, labels: Mapping[str, str]) -> list[K8sObject]:
        """Objects of ``kind`` in ``namespace`` whose selector selects pods with ``labels``."""
        buckets = self._selector_index.get((namespace or "", kind), {})
        candidates: list[K8sObject] = list(buckets.get("", ()))
        for k, v in labels.items():
            candidates.extend(buckets.get(f"{k}={v}", ()))
        found = []
        for obj in candidates:
            if kind == "Service":
                ok = map_selector_matches(obj.spec.get("selector"), labels)
            elif kind == "NetworkPolicy":
                ok = selector_matches(obj.spec.get("podSelector"), labels)
            else:
                ok = selector_matches(obj.spec.get("selector"), labels)
            if ok:
                found.append(obj)
        return found

    @cached
    def _owned(self) -> Mapping[tuple[str, str, str], Sequence[K8sObject]]:
        """(namespace, owner kind, owner name) -> the Pods, ReplicaSets and Jobs it controls (ownerReferences)."""
        index: dict[tuple[str, str, str], list[K8sObject]] = defaultdict(list)
        for obj in self.objects("Pod", "ReplicaSet", "Job"):
            for ref in as_list(obj.metadata.get("ownerReferences")):
                ref = as_mapping(ref)
                index[(obj.namespace or "", str(ref.get("kind", "")), str(ref.get("name", "")))].append(obj)
        return index

    def pods_of(self, w: Workload) -> list[K8sObject]:
        """The running Pods a workload controls, through its ReplicaSets or Jobs (live clusters only)."""
        if w.kind == "Pod":
            return [w.obj]
        out: list[K8sObject] = []
        todo = [(w.kind, w.name)]
        while todo:
            kind, name = todo.pop()
            for child in self._owned.get((w.namespace or "", kind, name), ()):
                if child.kind == "Pod":
                    out.append(child)
                else:
                    todo.append((child.kind, child.name))
        return sorted(out, key=lambda p: p.name)

    @cached
    def scalers_by_target(self) -> Mapping[tuple[str, str, str], Sequence[K8sObject]]:
        """(namespace, kind, name) of a scale target -> HPAs and KEDA ScaledObjects that target it."""
        index: dict[tuple[str, str, str], list[K8sObject]] = defaultdict(list)
        for obj in self.objects("HorizontalPodAutoscaler", "ScaledObject"):
            ref = as_mapping(obj.spec.get("scaleTargetRef"))
            kind = str(ref.get("kind") or "Deployment")  # KEDA defaults the kind to Deployment
            index[(obj.namespace or "", kind, str(ref.get("name", "")))].append(obj)
        return index

    def scalers_for(self, w: Workload) -> Sequence[K8sObject]:
        return self.scalers_by_target.get((w.namespace or "", w.kind, w.name), ())

    def min_replicas(self, w: Workload) -> int | None:
        """Replicas the workload runs at least: the declared count, or the autoscaler's minimum."""
        declared = w.replicas
        if declared is None:
            return None
        mins = []
        for scaler in self.scalers_for(w):
            key = "minReplicas" if scaler.kind == "HorizontalPodAutoscaler" else "minReplicaCount"
            default = 1 if scaler.kind == "HorizontalPodAutoscaler" else 0
            value = scaler.spec.get(key, default)
            if isinstance(value, int) and not isinstance(value, bool):
                mins.append(value)
        return min(mins) if mins else declared

    def is_serving(self, w: Workload) -> bool:
        """A workload serves traffic if a container declares ports or a Service selects its pods."""
        if w.kind not in ("Deployment", "StatefulSet", "ReplicaSet", "Rollout", "DaemonSet", "Pod"):
            return False
        if any(c.spec.get("ports") for c in w.app_containers()):
            return True
        return bool(self.selecting("Service", w.namespace, w.pod_labels))

    @cached
    def bindings_by_role(self) -> Mapping[tuple[str, str, str], Sequence[K8sObject]]:
        """(binding namespace or '', role kind, role name) -> bindings referring to it."""
        index: dict[tuple[str, str, str], list[K8sObject]] = defaultdict(list)
        for b in self.objects("RoleBinding", "ClusterRoleBinding"):
            ref = as_mapping(b.raw.get("roleRef"))
            kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
            if kind == "ClusterRole":
                index[("", kind, name)].append(b)
            else:
                index[(b.namespace or "", kind, name)].append(b)
        return index

    def bindings_of(self, role: K8sObject) -> Sequence[K8sObject]:
        ns = "" if role.kind == "ClusterRole" else (role.namespace or "")
        return self.bindings_by_role.get((ns, role.kind, role.name), ())

    @cached
    def stateful(self) -> Mapping[str, Sequence[K8sObject]]:
        """Namespace -> the objects that hold its state: PersistentVolumeClaims, StatefulSets with volume claim
        templates, and database operators' clusters (CloudNativePG). Backups, drills and residency judge these."""
        index: dict[str, list[K8sObject]] = defaultdict(list)
        for obj in self.evidence.objects:
            if not obj.namespace:
                continue
            if (
                obj.kind == "PersistentVolumeClaim"
                or (obj.kind == "StatefulSet" and as_list(obj.spec.get("volumeClaimTemplates")))
                or is_kind(obj, CNPG, "Cluster")
            ):
                index[obj.namespace].append(obj)
        return index

    def of_group(self, group: str, kind: str) -> list[K8sObject]:
        """Objects of one kind in one API group (Velero's Backup and CloudNativePG's Backup share a kind)."""
        return [o for o in self.by_kind.get(kind, ()) if group_of(o) == group]

    @property
    def has_cluster_state(self) -> bool:
        """Whether the evidence came from a live cluster (status fields, not just declarations)."""
        return EvidenceKind.CLUSTER_STATE in self.evidence.kinds


CNPG = "postgresql.cnpg.io"
VELERO = "velero.io"


def group_of(obj: K8sObject) -> str:
    return obj.api_version.rpartition("/")[0]


def is_kind(obj: K8sObject, group: str, kind: str) -> bool:
    return obj.kind == kind and group_of(obj) == group


def condition(obj: K8sObject, kind: str) -> Mapping[str, Any] | None:
    """A status condition of the given type, or None when the object reports none."""
    for c in as_list(as_mapping(obj.raw.get("status")).get("conditions")):
        if as_mapping(c).get("type") == kind:
            return as_mapping(c)
    return None


def timestamp(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp (UTC when no zone is given), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def age_hours(value: Any, as_of: str) -> float | None:
    when, now = timestamp(value), timestamp(as_of)
    if when is None or now is None:
        return None
    return (now - when).total_seconds() / 3600


def hours_text(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


# ---------------------------------------------------------------- result helpers


def passed(subject: Subject, message: str, *evidence: str) -> Result:
    return Result(Status.PASS, subject, message, evidence=tuple(evidence))


def not_applicable(subject: Subject, message: str) -> Result:
    return Result(Status.NOT_APPLICABLE, subject, message)


def not_assessed(subject: Subject, reason: str) -> Result:
    return Result(Status.NOT_ASSESSED, subject, reason)


@dataclass
class Failures:
    """Collects (facet, detail) pairs for one subject and turns them into one result."""

    subject: Subject
    found: list[tuple[str, str]] = field(default_factory=list)

    def add(self, facet: str, detail: str) -> None:
        self.found.append((facet, detail))

    def result(self, pass_message: str, *evidence: str) -> Result:
        if not self.found:
            return passed(self.subject, pass_message, *evidence)
        facets = tuple(sorted({f for f, _ in self.found}))
        details = [d for _, d in self.found]
        message = "; ".join(details[:5]) + (f"; and {len(details) - 5} more" if len(details) > 5 else "")
        return Result(Status.FAIL, self.subject, message, facets=facets, evidence=tuple(details))


def effective(container_ctx: Mapping[str, Any], pod_ctx: Mapping[str, Any], key: str) -> Any:
    """A securityContext field as Kubernetes applies it: the container's value wins over the pod's."""
    value = container_ctx.get(key)
    return pod_ctx.get(key) if value is None else value


def annotation_or_param(w: Workload, annotation: str) -> str | None:
    """A per-workload override given as an annotation on the workload or its pod template."""
    value = w.obj.annotations.get(annotation) or w.pod_annotations.get(annotation)
    return str(value) if value is not None else None


__all__ = [
    "Check",
    "CheckContext",
    "CheckMeta",
    "Failures",
    "annotation_or_param",
    "dig",
    "effective",
    "not_applicable",
    "not_assessed",
    "passed",
]
