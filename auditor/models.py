"""The data types shared by sources, checks, profiles and outputs.

Everything here is immutable. A check never sees a source; it sees an
:class:`EvidenceSet` and yields :class:`Result` values.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

JSONObject = dict[str, Any]

_Owner = TypeVar("_Owner")
_Value = TypeVar("_Value")


class cached(Generic[_Owner, _Value]):
    """``functools.cached_property`` without its per-instance lock (Python 3.11 takes one on every first
    access, which cost a tenth of a second per thousand workloads). Evidence is built and read by one thread."""

    def __init__(self, fn: Callable[[_Owner], _Value]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> cached[_Owner, _Value]: ...
    @overload
    def __get__(self, obj: _Owner, owner: type[Any]) -> _Value: ...
    def __get__(self, obj: _Owner | None, owner: type[Any]) -> cached[_Owner, _Value] | _Value:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.name] = value  # a non-data descriptor: later reads find the instance attribute
        return value


ENV_LITERAL_KEY = "x-auditor-literal"
"""Where the source puts its classification of an env literal (the value itself is never kept)."""
SIGN_PREDICATES = frozenset({"https://sigstore.dev/cosign/sign/v1"})
"""The in-toto predicate cosign v3 signs images with: a signature, not an attestation of content (the registry
source records it as a signature; image-signed counts it)."""
LITERALS_KEY = "x-auditor-literals"
"""Per container: the classification of every redacted command/args element (the text itself is never kept)."""


class Status(enum.StrEnum):
    """Outcome of one check for one subject (and, rolled up, of one item)."""

    PASS = "pass"
    FAIL = "fail"
    WAIVED = "waived"
    NOT_APPLICABLE = "not_applicable"
    NOT_ASSESSED = "not_assessed"
    ERROR = "error"


class Severity(enum.StrEnum):
    """Severity of an item or finding, lowest to highest."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the order info < low < medium < high < critical."""
        return SEVERITY_ORDER.index(self)


SEVERITY_ORDER: tuple[Severity, ...] = tuple(Severity)  # definition order: lowest first
"""Severities, lowest first: ``SEVERITY_ORDER[s.rank] is s``."""


class EvidenceKind(enum.StrEnum):
    """Kinds of evidence a check can ask for. Sources provide kinds; checks never name sources."""

    K8S_OBJECTS = "k8s-objects"
    """Kubernetes objects (from rendered manifests or a live cluster)."""
    CLUSTER_STATE = "cluster-state"
    """Facts only a live cluster has: PolicyReports, secret ages, admission webhooks."""
    REGISTRY = "registry"
    """OCI registry facts: signatures, SBOMs, attestations, image indexes."""
    GIT = "git"
    """Release history: tags, signatures, merges, runbooks."""
    DRILLS = "drills"
    """Backup, restore-drill and DR-rehearsal records."""
    TELEMETRY = "telemetry"
    """Tracing and alerting configuration observed in the running platform."""


@dataclass(frozen=True, order=True)
class SourceLocation:
    """Where an object was read: file (as given on the command line) and 1-based line."""

    file: str
    line: int | None = None
    origin: str | None = None
    """The template the document was rendered from, where the input says so (Helm's ``# Source:``)."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} ({self.origin})" if self.origin else where

    def to_json(self) -> JSONObject:
        out: JSONObject = {"file": self.file, "line": self.line}
        if self.origin:
            out["origin"] = self.origin
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SourceLocation:
        return cls(file=raw["file"], line=raw["line"], origin=raw.get("origin"))


@dataclass(frozen=True)
class K8sObject:
    """One Kubernetes object as collected, with secret values already removed."""

    raw: Mapping[str, Any]
    """The object (values of Secrets, ConfigMaps and env literals scrubbed by the source)."""
    location: SourceLocation
    """Where it was read (the first place, when identical copies were read from several inputs)."""
    also_at: tuple[SourceLocation, ...] = ()
    """Other places an identical copy was read: one object, one verdict, every location kept."""
    cluster: str = ""
    """The cluster it was read from (its source's target, the kubeconfig context); empty for manifests.
    Objects of different clusters are never the same object, and checks judge each cluster on its own."""

    @property
    def locations(self) -> tuple[SourceLocation, ...]:
        return (self.location, *self.also_at)

    @cached
    def kind(self) -> str:
        return str(self.raw.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.raw.get("apiVersion", ""))

    @cached
    def metadata(self) -> Mapping[str, Any]:
        meta = self.raw.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @cached
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @cached
    def namespace(self) -> str | None:
        ns = self.metadata.get("namespace")
        return str(ns) if ns else None

    @cached
    def labels(self) -> Mapping[str, str]:
        labels = self.metadata.get("labels")
        return labels if isinstance(labels, dict) else {}

    @cached
    def annotations(self) -> Mapping[str, str]:
        ann = self.metadata.get("annotations")
        return ann if isinstance(ann, dict) else {}

    @cached
    def spec(self) -> Mapping[str, Any]:
        spec = self.raw.get("spec")
        return spec if isinstance(spec, dict) else {}


@dataclass(frozen=True, order=True)
class CoverageGap:
    """Something a source could not see, and why. Reported, never silently dropped."""

    source: str
    """The source that hit the gap (``manifests``, ``cluster``, ...)."""
    target: str
    """What it was reading: a file (with line), a cluster context, an image."""
    gap: str
    """Short category: ``unreadable``, ``invalid-object``, ``too-large``, ``out-of-scope``..."""
    reason: str
    """A sentence a compliance officer can act on."""

    def to_json(self) -> JSONObject:
        return {"source": self.source, "target": self.target, "gap": self.gap, "reason": self.reason}


@dataclass(frozen=True)
class SourceRecord:
    """One source that contributed to a snapshot."""

    type: str
    target: str
    git_commit: str | None = None
    """The commit checked out in the git work tree that holds the target, when there is one."""
    server: str | None = None
    """A cluster's API server URL (cluster sources)."""
    cluster_id: str | None = None
    """A cluster's stable identity: the uid of its kube-system namespace (cluster sources)."""
    collected: tuple[str, ...] = ()
    """Resources this source listed completely (``group/Kind``, core kinds as ``Kind``): a kind absent here was
    not seen (missing CRD, no permission), which is not the same as seen and empty."""

    unlisted: tuple[str, ...] = ()
    """Kinds this source should have listed but could not (forbidden, timed out): checks that read them are
    not assessed for this cluster. A kind whose CRD is absent is not here: nothing of it exists."""

    def to_json(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "target": self.target}
        if self.git_commit:
            out["git_commit"] = self.git_commit
        if self.server:
            out["server"] = self.server
        if self.cluster_id:
            out["cluster_id"] = self.cluster_id
        if self.collected:
            out["collected"] = list(self.collected)
        if self.unlisted:
            out["unlisted"] = list(self.unlisted)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SourceRecord:
        return cls(
            type=raw["type"],
            target=raw["target"],
            git_commit=raw.get("git_commit"),
            server=raw.get("server"),
            cluster_id=raw.get("cluster_id"),
            collected=tuple(raw.get("collected", ())),
            unlisted=tuple(raw.get("unlisted", ())),
        )


@dataclass(frozen=True, order=True)
class Subject:
    """What a result is about: a Kubernetes object, an image, or a Git ref."""

    kind: str = ""
    namespace: str | None = None
    name: str = ""
    image: str | None = None
    digest: str | None = None
    repo: str | None = None
    ref: str | None = None
    cluster: str = ""
    """The cluster (kubeconfig context) of a live object; empty for manifests."""
    namespaces: tuple[str, ...] = field(default=(), compare=False)
    """For an image: the namespaces whose workloads run it (an image is in a profile's scope when one of them is)."""
    location: SourceLocation | None = field(default=None, compare=False)
    """Where the judged definition was read (not part of the subject's identity): when an object is
    defined differently in several inputs, each definition is judged, and each finding points at its own."""

    @classmethod
    def of(cls, obj: K8sObject) -> Subject:
        """The subject for one collected object, located where that object was read."""
        return cls(kind=obj.kind, namespace=obj.namespace, name=obj.name, cluster=obj.cluster, location=obj.location)

    def to_json(self) -> JSONObject:
        if self.image is not None:
            out_image: JSONObject = {"image": self.image, "digest": self.digest}
            if self.cluster:
                out_image["cluster"] = self.cluster
            return out_image
        if self.repo is not None:
            return {"repo": self.repo, "ref": self.ref}
        out: JSONObject = {"kind": self.kind, "namespace": self.namespace, "name": self.name}
        if self.cluster:
            out["cluster"] = self.cluster
        return out

    def label(self) -> str:
        if self.image is not None:
            return self.image
        if self.repo is not None:
            return f"{self.repo}@{self.ref}"
        ns = f"{self.namespace}/" if self.namespace else ""
        where = f" in cluster {self.cluster}" if self.cluster else ""
        return f"{self.kind} {ns}{self.name}{where}"


def subject_text(subject: Mapping[str, Any]) -> str:
    """A report subject (its JSON form) in words: ``Deployment ns/name``, an image reference, or ``repo@tag``."""
    if subject.get("image"):
        image = str(subject["image"])
        digest = subject.get("digest")
        return image if not digest or "@" in image else f"{image}@{digest}"
    if subject.get("repo"):
        return f"{subject['repo']}@{subject.get('ref')}"
    if subject.get("kind") == "Namespace":
        return f"Namespace {subject.get('name')}"
    ns = f"{subject['namespace']}/" if subject.get("namespace") else ""
    return f"{subject.get('kind')} {ns}{subject.get('name')}"


def selects(
    check: str | None,
    item: str | None,
    patterns: Mapping[str, str],
    check_id: str,
    items: Sequence[str],
    subject: Subject,
) -> bool:
    """Whether a waiver or a remediation-plan entry (a check or an item, and glob patterns on the subject's
    namespace, kind and name) covers a check's result for a subject."""
    if check is not None and check != check_id:
        return False
    if item is not None and item not in items:
        return False
    values = {
        "namespace": subject.namespace or "",
        "kind": subject.kind,
        "name": subject.name,
        "image": subject.image or "",
    }
    return all(fnmatch.fnmatchcase(values.get(k, ""), pattern) for k, pattern in patterns.items())


@dataclass(frozen=True)
class Result:
    """One check's verdict on one subject."""

    status: Status
    subject: Subject
    message: str
    facets: tuple[str, ...] = ()
    """For a fail: the named ways it failed (``host-path``, ``no-pdb``...), stable per check."""
    evidence: tuple[str, ...] = ()
    """Short, secret-free statements of what was seen (field paths and values, file:line)."""


@dataclass(frozen=True)
class EvidenceSet:
    """A collected snapshot: what sources saw, and what they could not see."""

    objects: Sequence[K8sObject]
    kinds: frozenset[EvidenceKind]
    sources: Sequence[SourceRecord]
    gaps: Sequence[CoverageGap]
    collected_at: str
    collector_version: str
    digest: str = ""
    """sha256 of the canonical snapshot (set when the snapshot is serialized or loaded)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    images: Sequence[Mapping[str, Any]] = ()
    """Registry records, one per image reference the workloads name (sources/registry.py): digest, platforms,
    signatures with their signers, SBOMs, scans and VEX. Empty when no registry was read."""
    git: Mapping[str, Any] = field(default_factory=dict)
    """The release from Git (sources/git.py): tag, signature, commits since the previous release, runbook, pinned
    images. Empty when no Git source was read."""
    registry_trust: Mapping[str, Any] = field(default_factory=dict)
    """The trust inputs the registry source verified with: key fingerprints, the Sigstore trusted root's digest."""
    drills: Sequence[Mapping[str, Any]] = ()
    """Drill records (sources/drills.py), sorted by date and id: restore drills (``restore-drill``), DR cutover
    rehearsals (``dr-cutover``) and backup runs (``backup-run``), each with its file and line, UTC date, scope
    (namespaces, clusters, databases), result, achieved RPO/RTO in seconds, sign-off, steps and evidence links.
    Empty when no drill records were read."""
