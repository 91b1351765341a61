"""The evidence snapshot: canonical JSON, content-addressed, assessable many times.

``digest`` is the sha256 of the canonical serialization of everything else in the
file. Loading re-computes it: a snapshot edited after collection is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
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


def build(collected: Sequence[Collected], *, collected_at: str) -> EvidenceSet:
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
    ev = EvidenceSet(
        objects=objects,
        kinds=frozenset(kinds),
        sources=records,
        gaps=gaps,
        collected_at=collected_at,
        collector_version=__version__,
    )
    return _with_digest(ev)


def _body(ev: EvidenceSet) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "collector": {"name": "auditor", "version": ev.collector_version},
        "collected_at": ev.collected_at,
        "kinds": sorted(k.value for k in ev.kinds),
        "sources": [s.to_json() for s in ev.sources],
        "coverage": [g.to_json() for g in ev.gaps],
        "objects": [
            {"location": {"file": o.location.file, "line": o.location.line}, "object": o.raw} for o in ev.objects
        ],
    }


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
            K8sObject(raw=o["object"], location=SourceLocation(file=o["location"]["file"], line=o["location"]["line"]))
            for o in data["objects"]
        ]
        gaps = [CoverageGap(**g) for g in data["coverage"]]
        sources = [SourceRecord(**s) for s in data["sources"]]
        kinds = frozenset(EvidenceKind(k) for k in data["kinds"])
        return EvidenceSet(
            objects=objects,
            kinds=kinds,
            sources=sources,
            gaps=gaps,
            collected_at=str(data["collected_at"]),
            collector_version=str(data["collector"]["version"]),
            digest=actual,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EvidenceError(f"{path}: malformed evidence snapshot ({type(exc).__name__}: {exc})") from None
