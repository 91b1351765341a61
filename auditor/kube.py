"""Pure helpers for Kubernetes object semantics that several checks share.

Pod-template extraction lives here and only here: every pod-level check sees a
:class:`Workload`, whatever controller (Pod, Deployment, CronJob, Rollout...) owns it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.models import K8sObject, Subject, cached

# kind -> path from the object to its pod template's *spec parent* (the object holding
# metadata + spec of the pod).
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Rollout": ("spec", "template"),
    "DeploymentConfig": ("spec", "template"),  # OpenShift (apps.openshift.io/v1)
}
WORKLOAD_KINDS = frozenset({"Pod", *TEMPLATE_PATHS})
# Where kinds the auditor does not know keep a standard pod template (Knative Service, KubeVirt-like
# controllers, operators' own workload kinds): such objects are judged as workloads, never ignored.
_GENERIC_TEMPLATE_PATHS = (("spec", "template"), ("spec", "jobTemplate", "spec", "template"))


def template_path_of(raw: Any) -> tuple[str, ...] | None:
    """Path from an object to its pod template (metadata + spec), for known kinds and for any other kind
    whose ``spec.template`` (or ``spec.jobTemplate.spec.template``) holds a pod spec with containers."""
    if not isinstance(raw, dict):
        return None
    known = TEMPLATE_PATHS.get(str(raw.get("kind")))
    if known is not None:
        return known
    if raw.get("kind") in ("Pod", "PodTemplate", None):
        return None
    spec = raw.get("spec")
    if not isinstance(spec, dict) or ("template" not in spec and "jobTemplate" not in spec):
        return None  # most objects (Services, PDBs, RBAC...): no template to look for
    for path in _GENERIC_TEMPLATE_PATHS:
        if isinstance(dig(raw, *path, "spec", "containers"), list):
            return path
    return None


def pod_spec_of(raw: Any) -> dict[str, Any] | None:
    """The pod spec inside a raw object (Pod, or any kind with a pod template), or None."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("kind")
    if kind == "Pod":
        spec = raw.get("spec")
        return spec if isinstance(spec, dict) else None
    path = template_path_of(raw)
    if path is None:
        return None
    template = dig(raw, *path)
    spec = template.get("spec") if isinstance(template, dict) else None
    return spec if isinstance(spec, dict) else None


REPLICATED_KINDS = frozenset(
    {"Deployment", "StatefulSet", "ReplicaSet", "Rollout", "ReplicationController", "DeploymentConfig"}
)
SERVING_KINDS = frozenset(
    {"Deployment", "StatefulSet", "ReplicaSet", "Rollout", "DaemonSet", "Pod", "DeploymentConfig"}
)
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


_EMPTY: Mapping[str, Any] = {}


def as_mapping(value: Any) -> Mapping[str, Any]:
    """The value if it is a mapping, else an empty one (shape errors are caught by the source).

    Evidence holds plain JSON types, so ``dict`` is checked, not the (much slower) ``Mapping`` ABC.
    """
    return value if isinstance(value, dict) else _EMPTY


def as_list(value: Any) -> Sequence[Any]:
    """The value if it is a list, else an empty one."""
    return value if isinstance(value, list) else ()


def dig(obj: Any, *path: str) -> Any:
    """Follow mapping keys; ``None`` where any step is missing or not a mapping."""
    cur = obj
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


@dataclass(frozen=True)
class Container:
    """One container of a pod template, with its pod-level context."""

    name: str
    spec: Mapping[str, Any]
    field: str
    """``containers``, ``initContainers`` or ``ephemeralContainers``."""

    @property
    def image(self) -> str:
        return str(self.spec.get("image", ""))

    @property
    def security_context(self) -> Mapping[str, Any]:
        return as_mapping(self.spec.get("securityContext"))

    @property
    def is_sidecar(self) -> bool:
        """Native sidecar: an init container that keeps running (restartPolicy: Always)."""
        return self.field == "initContainers" and self.spec.get("restartPolicy") == "Always"


@dataclass(frozen=True)
class Workload:
    """An object that owns a pod template, and that template."""

    obj: K8sObject
    pod_meta: Mapping[str, Any]
    pod_spec: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return self.obj.kind

    @property
    def name(self) -> str:
        return self.obj.name

    @property
    def namespace(self) -> str | None:
        return self.obj.namespace

    @cached
    def subject(self) -> Subject:
        # cached: every check asks for it (frozen dataclass: cached_property writes __dict__ directly)
        return Subject.of(self.obj)

    @cached
    def pod_labels(self) -> Mapping[str, str]:
        return as_mapping(self.pod_meta.get("labels"))

    @property
    def pod_annotations(self) -> Mapping[str, str]:
        return as_mapping(self.pod_meta.get("annotations"))

    @property
    def pod_security_context(self) -> Mapping[str, Any]:
        return as_mapping(self.pod_spec.get("securityContext"))

    @cached
    def _containers(self) -> tuple[Container, ...]:
        return tuple(
            Container(name=str(spec.get("name", f"#{i}")), spec=spec, field=fld)
            for fld in CONTAINER_FIELDS
            for i, spec in enumerate(as_list(self.pod_spec.get(fld)))
            if isinstance(spec, dict)
        )

    def containers(self, *, include_init: bool = True, include_ephemeral: bool = True) -> Iterator[Container]:
        """Every container of the pod template, init and ephemeral ones included by default."""
        for c in self._containers:
            if (c.field == "initContainers" and not include_init) or (
                c.field == "ephemeralContainers" and not include_ephemeral
            ):
                continue
            yield c

    def app_containers(self) -> Iterator[Container]:
        """Long-running containers: regular ones and native sidecars."""
        for c in self.containers(include_ephemeral=False):
            if c.field == "containers" or c.is_sidecar:
                yield c

    @property
    def replicas(self) -> int | None:
        """Declared replica count (Kubernetes defaults an omitted count to 1); None for non-replicated kinds."""
        if self.kind not in REPLICATED_KINDS:
            return None
        value = self.obj.spec.get("replicas", 1)
        return value if isinstance(value, int) and not isinstance(value, bool) else 1


def workloads(objects: Sequence[K8sObject]) -> Iterator[Workload]:
    """Every pod template in the objects, with its owner. The single place this is done.

    Objects created by a controller that is itself in the evidence (the Pods and ReplicaSets of a
    Deployment, the Jobs of a CronJob, as `kubectl get all` lists them) are judged through that
    controller, not again.
    """
    present = {(o.kind, o.namespace, o.name) for o in objects if o.kind in _CONTROLLER_KINDS}
    for obj in objects:
        kind = obj.kind
        if present and _controlled_by_present_owner(obj, present):
            continue
        if kind == "Pod":
            yield Workload(obj=obj, pod_meta=obj.metadata, pod_spec=obj.spec)
            continue
        path = template_path_of(obj.raw)
        if path is None:
            continue
        if kind == "Rollout" and obj.spec.get("workloadRef"):
            # An Argo Rollout that points at a Deployment's template: the Deployment
            # (scaled to zero) carries the template and is audited as the workload.
            continue
        template = as_mapping(dig(obj.raw, *path))
        yield Workload(
            obj=obj, pod_meta=as_mapping(template.get("metadata")), pod_spec=as_mapping(template.get("spec"))
        )


_CONTROLLER_KINDS = frozenset(
    {
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "Rollout",
        "ReplicationController",
        "DeploymentConfig",
    }
)


def _controlled_by_present_owner(obj: K8sObject, present: set[tuple[str, str | None, str]]) -> bool:
    """Whether a controller in the evidence owns this object (ownerReferences, or the names and
    ``pod-template-hash`` label a Deployment gives its ReplicaSets and their Pods)."""
    refs = [as_mapping(r) for r in as_list(obj.metadata.get("ownerReferences"))]
    for ref in refs:
        if (str(ref.get("kind", "")), obj.namespace, str(ref.get("name", ""))) in present:
            return True
    if refs:
        return False
    template_hash = obj.labels.get("pod-template-hash")
    if not template_hash or obj.kind not in ("Pod", "ReplicaSet"):
        return False
    owner, sep, _rest = obj.name.partition(f"-{template_hash}")
    if not sep or not owner:
        return False
    if obj.kind == "ReplicaSet":
        return ("Deployment", obj.namespace, owner) in present or ("Rollout", obj.namespace, owner) in present
    return ("ReplicaSet", obj.namespace, f"{owner}-{template_hash}") in present or (
        "Deployment",
        obj.namespace,
        owner,
    ) in present


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels AND matchExpressions).

    An empty selector ({}) matches everything; a null selector matches nothing.
    """
    if not isinstance(selector, Mapping):
        return False
    for key, value in as_mapping(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in as_list(selector.get("matchExpressions")):
        if not isinstance(expr, Mapping):
            return False
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = [str(v) for v in as_list(expr.get("values"))]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def map_selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """Service-style selector (a plain map). An empty or missing map selects nothing."""
    if not isinstance(selector, Mapping) or not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


_PERCENT = re.compile(r"^(\d+)%$")


def scaled_int_or_percent(value: Any, total: int, *, round_up: bool) -> int | None:
    """Resolve an IntOrString (``2`` or ``"25%"``) against a total, as Kubernetes does.

    Returns None for a value Kubernetes would reject.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        m = _PERCENT.match(value)
        if m:
            exact = int(m.group(1)) * total / 100
            return math.ceil(exact) if round_up else math.floor(exact)
    return None


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def running_images(pod: K8sObject) -> list[tuple[str, str]]:
    """(container, ``repository@sha256:...``) for each container a live Pod reports running, from
    ``status.containerStatuses[].imageID`` (``docker-pullable://`` and similar prefixes dropped)."""
    out = []
    status = as_mapping(pod.raw.get("status"))
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for st in as_list(status.get(key)):
            st = as_mapping(st)
            image_id = str(st.get("imageID", "")).split("://", 1)[-1]
            name, at, digest = image_id.rpartition("@")
            if at and name and _DIGEST.search("@" + digest):
                out.append((str(st.get("name", "")), f"{name}@{digest}"))
    return out


def image_has_digest(image: str) -> bool:
    return bool(_DIGEST.search(image))


def image_registry(image: str) -> str:
    """The registry host of an image reference, with Docker Hub's implicit default made explicit."""
    name = image.split("@", 1)[0]
    first, sep, _rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def image_repository(image: str) -> str:
    """``registry/path`` without tag or digest, with Docker Hub's ``library/`` made explicit."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name = name[:colon]
    registry = image_registry(image)
    if registry == "docker.io" and not name.startswith("docker.io/"):
        path = name if "/" in name else f"library/{name}"
        return f"docker.io/{path}"
    return name


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None if it has none."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    return name[colon + 1 :] if colon > last_slash else None


SYSTEM_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})
