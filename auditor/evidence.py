"""The evidence snapshot: canonical JSON, content-addressed, assessable many times.

``digest`` is the sha256 of the canonical serialization of everything else in the
file. Loading re-computes it: a snapshot edited after collection is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from auditor import __version__
from auditor.errors import EvidenceError
from auditor.models import CoverageGap, EvidenceKind, EvidenceSet, K8sObject, SourceLocation, SourceRecord
from auditor.sources.interface import Collected

SCHEMA = "auditor.evidence/v1"


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no insignificant whitespace, UTF-8.

    orjson is several times faster than the standard library here (the whole snapshot is hashed);
    the standard library takes over only for integers beyond 64 bits, which orjson refuses.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
            "utf-8"
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build(
    collected: Sequence[Collected],
    *,
    collected_at: str,
    images: Sequence[Mapping[str, Any]] = (),
    registry_trust: Mapping[str, Any] | None = None,
) -> EvidenceSet:
    """Merge what the sources collected into one snapshot."""
    objects: list[K8sObject] = []
    gaps: list[CoverageGap] = []
    records: list[SourceRecord] = []
    kinds: set[EvidenceKind] = set()
    for c in collected:
        objects.extend(c.objects)
        gaps.extend(c.gaps)
        records.extend(c.records)
        if c.objects:
            kinds |= c.kinds
    if registry_trust is not None:
        kinds.add(EvidenceKind.REGISTRY)
    objects, conflicts = merge_copies(objects)
    gaps.extend(conflicts)
    ev = EvidenceSet(
        objects=objects,
        kinds=frozenset(kinds),
        sources=records,
        gaps=gaps,
        collected_at=collected_at,
        collector_version=__version__,
        images=list(images),
        registry_trust=dict(registry_trust or {}),
    )
    return _with_digest(ev)


def with_registry(
    ev: EvidenceSet,
    images: Sequence[Mapping[str, Any]],
    trust: Mapping[str, Any],
    gaps: Sequence[CoverageGap],
    record: SourceRecord | None,
) -> EvidenceSet:
    """The snapshot with the registry source's records added (and its digest recomputed)."""
    import dataclasses

    return _with_digest(
        dataclasses.replace(
            ev,
            images=list(images),
            registry_trust=dict(trust),
            gaps=[*ev.gaps, *gaps],
            sources=[*ev.sources, *([record] if record else [])],
            kinds=ev.kinds | {EvidenceKind.REGISTRY},
        )
    )


def with_git(
    ev: EvidenceSet, release: Mapping[str, Any], gaps: Sequence[CoverageGap], record: SourceRecord
) -> EvidenceSet:
    """The snapshot with the Git source's release record added (and its digest recomputed)."""
    import dataclasses

    return _with_digest(
        dataclasses.replace(
            ev,
            git=dict(release),
            gaps=[*ev.gaps, *gaps],
            sources=[*ev.sources, record],
            kinds=ev.kinds | {EvidenceKind.GIT},
        )
    )


def with_drills(
    ev: EvidenceSet,
    records: Sequence[Mapping[str, Any]],
    gaps: Sequence[CoverageGap],
    record: SourceRecord | Sequence[SourceRecord] | None,
) -> EvidenceSet:
    """The snapshot with drill records added (and its digest recomputed). Records already in the snapshot (one
    loaded with --evidence) are kept; an identical record given again is kept once; the result is in date order."""
    import dataclasses

    from auditor.sources.drills import sort_key

    merged: dict[bytes, Mapping[str, Any]] = {}
    for r in [*ev.drills, *records]:
        merged.setdefault(canonical_json(r), dict(r))
    added = [record] if isinstance(record, SourceRecord) else list(record or ())
    return _with_digest(
        dataclasses.replace(
            ev,
            drills=sorted(merged.values(), key=sort_key),
            gaps=[*ev.gaps, *gaps],
            sources=[*ev.sources, *added],
            kinds=ev.kinds | {EvidenceKind.DRILLS},
        )
    )


def _identity(obj: K8sObject) -> tuple[str, str, str, str, str] | None:
    """What makes two documents the same Kubernetes object: API group, kind, namespace, name."""
    if not obj.name:
        return None  # generateName: every apply makes a new object
    group = obj.api_version.rpartition("/")[0]
    if group == "extensions":  # the legacy group of Deployments, DaemonSets, ReplicaSets, NetworkPolicies
        group = "networking.k8s.io" if obj.kind == "NetworkPolicy" else "apps"
    return (obj.cluster, group, obj.kind, obj.namespace or "", obj.name)


def merge_copies(objects: Sequence[K8sObject]) -> tuple[list[K8sObject], list[CoverageGap]]:
    """One object, one verdict: identical copies of an object collapse into one that keeps every location.

    Copies that differ cannot both be what runs, and the evidence does not say which one does: the
    first definition read is judged (each object is assessed once), and a coverage gap names every
    definition's file:line. The gap makes the verdict incomplete, since an unjudged copy may be the
    one that fails.
    """
    groups: dict[tuple[str, str, str, str, str], list[int]] = {}
    for i, obj in enumerate(objects):
        key = _identity(obj)
        if key is not None:
            groups.setdefault(key, []).append(i)
    if all(len(idx) == 1 for idx in groups.values()):
        return list(objects), []
    drop: set[int] = set()
    replace: dict[int, K8sObject] = {}
    gaps: list[CoverageGap] = []
    for key, idx in groups.items():
        if len(idx) == 1:
            continue
        # Variants in input order, each with the locations of its identical copies.
        variants: dict[bytes, list[int]] = {}
        for i in idx:
            variants.setdefault(canonical_json(objects[i].raw), []).append(i)
        first = objects[idx[0]]
        same = next(iter(variants.values()))
        extra = tuple(loc for i in same[1:] for loc in objects[i].locations)
        if extra:
            replace[idx[0]] = K8sObject(
                raw=first.raw, location=first.location, also_at=first.also_at + extra, cluster=first.cluster
            )
        drop.update(idx[1:])
        if len(variants) > 1:
            _cluster, _group, kind, ns, name = key
            firsts = [objects[v[0]] for v in variants.values()]
            where = ", ".join(str(o.location) for o in firsts)
            fields = ", ".join(_differing_fields(firsts[0].raw, firsts[1].raw)[:4])
            gaps.append(
                CoverageGap(
                    source="evidence",
                    target=f"{kind} {ns + '/' if ns else ''}{name}",
                    gap="conflicting-copies",
                    reason=(
                        f"defined differently in {len(firsts)} places ({where}); they differ in {fields}. "
                        f"Only the definition at {first.location} was judged: give the inputs of one deployment"
                    ),
                )
            )
    merged = [replace.get(i, o) for i, o in enumerate(objects) if i not in drop]
    return merged, gaps


def _differing_fields(a: Any, b: Any, path: str = "") -> list[str]:
    """Field paths where two objects differ (the first few, shallowest first)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                sub = f"{path}.{k}" if path else str(k)
                out.extend(_differing_fields(a.get(k), b.get(k), sub) if k in a and k in b else [sub])
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            p
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            if x != y
            for p in _differing_fields(x, y, f"{path}[{i}]")
        ]
    return [path or "(the whole object)"]


def _body(ev: EvidenceSet) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "collector": {"name": "auditor", "version": ev.collector_version},
        "collected_at": ev.collected_at,
        "kinds": sorted(k.value for k in ev.kinds),
        "sources": [s.to_json() for s in ev.sources],
        "coverage": [g.to_json() for g in ev.gaps],
        "objects": [_object_json(o) for o in ev.objects],
    }
    if ev.registry_trust or ev.images:
        body["registry"] = {"trust": dict(ev.registry_trust), "images": list(ev.images)}
    if ev.git:
        body["git"] = dict(ev.git)
    if ev.drills:  # only when there are records: snapshots without drills keep their bytes and digests
        body["drills"] = [dict(r) for r in ev.drills]
    return body


def _object_json(o: K8sObject) -> dict[str, Any]:
    out: dict[str, Any] = {"location": o.location.to_json(), "object": o.raw}
    if o.cluster:
        out["cluster"] = o.cluster
    if o.also_at:
        out["also_at"] = [loc.to_json() for loc in o.also_at]
    return out


def _with_digest(ev: EvidenceSet) -> EvidenceSet:
    digest = "sha256:" + sha256_hex(canonical_json(_body(ev)))
    return EvidenceSet(
        objects=ev.objects,
        kinds=ev.kinds,
        sources=ev.sources,
        gaps=ev.gaps,
        collected_at=ev.collected_at,
        collector_version=ev.collector_version,
        digest=digest,
        images=ev.images,
        registry_trust=ev.registry_trust,
        git=ev.git,
        drills=ev.drills,
    )


def dumps(ev: EvidenceSet) -> bytes:
    """The snapshot file's bytes (canonical, newline-terminated)."""
    body = _body(ev)
    body["digest"] = ev.digest
    return canonical_json(body) + b"\n"


def save(ev: EvidenceSet, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dumps(ev))


def load(path: Path) -> EvidenceSet:
    """Read a snapshot, verifying its schema and digest. Errors name the file."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot read evidence snapshot: {exc.strerror or exc}") from None
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"{path}: not a JSON evidence snapshot ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise EvidenceError(f"{path}: not an auditor evidence snapshot (expected schema {SCHEMA})")
    claimed = data.pop("digest", None)
    actual = "sha256:" + sha256_hex(canonical_json(data))
    if claimed != actual:
        raise EvidenceError(
            f"{path}: digest mismatch: the file says {claimed}, its content hashes to {actual}; it was altered after collection"
        )
    try:
        objects = [
            K8sObject(
                raw=o["object"],
                location=SourceLocation.from_json(o["location"]),
                also_at=tuple(SourceLocation.from_json(loc) for loc in o.get("also_at", ())),
                cluster=str(o.get("cluster", "")),
            )
            for o in data["objects"]
        ]
        gaps = [CoverageGap(**g) for g in data["coverage"]]
        sources = [SourceRecord.from_json(s) for s in data["sources"]]
        kinds = frozenset(EvidenceKind(k) for k in data["kinds"])
        registry = data.get("registry") or {}
        drills = _load_drills(path, data.get("drills", []))
        return EvidenceSet(
            objects=objects,
            kinds=kinds,
            sources=sources,
            gaps=gaps,
            collected_at=str(data["collected_at"]),
            collector_version=str(data["collector"]["version"]),
            digest=actual,
            images=list(registry.get("images", ())),
            registry_trust=dict(registry.get("trust", {})),
            git=dict(data.get("git") or {}),
            drills=drills,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EvidenceError(f"{path}: malformed evidence snapshot ({type(exc).__name__}: {exc})") from None


def _load_drills(path: Path, raw: Any) -> list[dict[str, Any]]:
    """The snapshot's drill records, each checked to be what the drills source writes."""
    from auditor.sources.drills import record_problem

    if not isinstance(raw, list):
        raise EvidenceError(f"{path}: malformed evidence snapshot (drills: expected a list, got {type(raw).__name__})")
    for i, rec in enumerate(raw):
        problem = record_problem(rec)
        if problem:
            raise EvidenceError(f"{path}: malformed evidence snapshot (drills[{i}]: {problem})")
    return list(raw)
