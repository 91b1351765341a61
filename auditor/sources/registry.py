"""Registries: for every image the other sources name, its digest, platforms, signatures, SBOMs, scans and VEX.

Per image: the manifest is resolved (a tag to its digest now; a digest fetched and hash-checked),
its platforms read (an index's entries, or a single image's config), and its artifacts found
both ways: the OCI 1.1 referrers API (filtered here, since a registry may ignore the filter) and
the tag fallback (the ``sha256-<hex>`` referrers tag, and cosign's ``.sig``, ``.att`` and ``.sbom``
tags). Each artifact is verified (signatures.py) and read (sbom.py). The result is a record per
image in the evidence snapshot; the checks judge the records against the profile.

Cache: an artifact's verification depends only on its own manifest digest, the image digest and the
trust inputs (keys, trusted root), so it is cached forever under that key. Which artifacts an image
has can change (a scan attested tonight), so an image's listing is cached for ``cache_ttl`` seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.kube import as_mapping
from auditor.models import SIGN_PREDICATES, CoverageGap, K8sObject, SourceRecord
from auditor.sources import sbom
from auditor.sources.oci import ImageRef, Manifest, RegistryClient, RegistryError
from auditor.sources.signatures import (
    COSIGN_SIGNATURE_ANNOTATION,
    DSSE_ENVELOPE,
    SIGSTORE_BUNDLE_PREFIX,
    SIMPLESIGNING,
    SigstoreTrust,
    TrustedKey,
    Verified,
    verify_bundle,
    verify_dsse,
    verify_simplesigning,
)

MAX_ARTIFACTS = 64
"""Artifacts read per image (a registry that lists thousands of referrers is refused beyond this)."""
CACHE_FORMAT = "1"


@dataclass(frozen=True, order=True)
class ImageUse:
    """Where an image is named: a workload's container (declared), or a running pod (running)."""

    cluster: str
    namespace: str
    kind: str
    name: str
    container: str

    def to_json(self) -> dict[str, str]:
        out = {"namespace": self.namespace, "kind": self.kind, "name": self.name, "container": self.container}
        if self.cluster:
            out["cluster"] = self.cluster
        return out


@dataclass
class _Artifact:
    via: str
    manifest: Manifest


@dataclass
class RegistryResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[CoverageGap] = field(default_factory=list)
    record: SourceRecord | None = None
    requests: int = 0
    cache_hits: int = 0


class RegistrySource:
    def __init__(
        self,
        uses: Mapping[str, Sequence[ImageUse]],
        client: RegistryClient,
        *,
        keys: Sequence[TrustedKey] = (),
        cli_keys: Sequence[str] = (),
        trust: SigstoreTrust | None = None,
        cache_dir: Path | None = None,
        cache_ttl: float = 3600.0,
        concurrency: int = 8,
        clock: Callable[[], float] = time.time,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.uses = uses
        self.client = client
        self.keys = tuple(keys)
        self.cli_keys = frozenset(cli_keys)
        self.trust = trust or SigstoreTrust(None)
        self.cache_dir = cache_dir
        self.cache_ttl = cache_ttl
        self.concurrency = max(1, concurrency)
        self.clock = clock
        self.progress = progress
        self._hits = 0
        material = "\n".join(sorted(k.fingerprint for k in self.keys)) + "\n" + self.trust.digest + "\n" + CACHE_FORMAT
        self.trust_digest = "sha256:" + hashlib.sha256(material.encode()).hexdigest()

    def trust_json(self) -> dict[str, Any]:
        return {
            "keys": [
                {
                    "name": k.name,
                    "fingerprint": k.fingerprint,
                    "origin": "cli" if k.fingerprint in self.cli_keys else "profile",
                }
                for k in sorted(self.keys, key=lambda k: k.fingerprint)
            ],
            "trusted_root": {"name": self.trust.name, "sha256": self.trust.digest.removeprefix("sha256:")},
        }

    def collect(self) -> RegistryResult:
        out = RegistryResult()
        refs = sorted(self.uses)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            records = list(pool.map(self._one, refs))
        for ref, rec in zip(refs, records, strict=True):
            rec["used_by"] = [u.to_json() for u in sorted(set(self.uses[ref]))]
            out.records.append(rec)
            for err in rec.get("errors", ()):
                out.gaps.append(CoverageGap(source="registry", target=ref, gap="registry-error", reason=err))
        out.record = SourceRecord(type="registry", target=f"{len(refs)} image reference(s)")
        out.requests = self.client.requests
        out.cache_hits = self._hits
        return out

    # ------------------------------------------------------------------ one image

    def _one(self, text: str) -> dict[str, Any]:
        """One image's record. Never raises: whatever a registry sends, the image is recorded with the reason
        it could not be read (and its items are then not assessed), and the other images are still read."""
        try:
            return self._read(text)
        except Exception as exc:  # a registry's content we did not foresee: a gap, never a crash or a pass
            return {"ref": text, "errors": [f"unreadable registry content ({type(exc).__name__}: {str(exc)[:160]})"]}

    def _read(self, text: str) -> dict[str, Any]:
        rec: dict[str, Any] = {"ref": text}
        try:
            ref = ImageRef.parse(text)
        except ValueError as exc:
            rec["errors"] = [f"not a valid image reference: {exc}"]
            return rec
        rec.update(registry=ref.registry, repository=ref.repository)
        if ref.tag:
            rec["tag"] = ref.tag
        cached = self._cache_get("image", f"{ref}", ttl=True) if ref.digest else None
        if cached is not None:
            self._hits += 1
            rec.update(cached)
            return rec
        errors: list[str] = []
        try:
            manifest = self.client.manifest(ref)
        except RegistryError as exc:
            rec["errors"] = [str(exc)]
            return rec
        rec["digest"] = manifest.digest
        rec["media_type"] = manifest.media_type
        if ref.digest and ref.tag:
            try:
                now = self.client.manifest(ref, ref.tag)
                rec["tag_digest"] = now.digest
            except RegistryError as exc:
                rec["tag_digest"] = None
                rec["tag_problem"] = str(exc)
        pinned = ImageRef(ref.registry, ref.repository, ref.tag, manifest.digest)
        try:
            rec["platforms"] = self._platforms(pinned, manifest)
        except RegistryError as exc:
            errors.append(f"platforms: {exc}")
        artifacts, listing_errors = self._artifacts(pinned)
        errors.extend(listing_errors)
        rec["artifacts"] = [self._examine(pinned, a) for a in artifacts]
        errors.extend(f"artifact {a['manifest'][:19]}: {a['error']}" for a in rec["artifacts"] if a.get("error"))
        if errors:
            rec["errors"] = errors
        elif ref.digest:
            self._cache_put(
                "image", f"{ref}", {k: v for k, v in rec.items() if k not in ("ref", "registry", "repository", "tag")}
            )
        return rec

    def _platforms(self, ref: ImageRef, manifest: Manifest) -> list[str]:
        if manifest.is_index:
            out = []
            for m in manifest.data.get("manifests") or ():
                p = m.get("platform") if isinstance(m, dict) else None
                if isinstance(p, dict) and p.get("os") and p.get("architecture") and p.get("os") != "unknown":
                    out.append(_platform(p))
            return sorted(set(out))
        config = manifest.data.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
            return []
        if str(config.get("mediaType", "")) not in (
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.docker.container.image.v1+json",
        ):
            return []
        cached = self._cache_get("config", config["digest"])
        if cached is None:
            raw = _json(self.client.blob(ref, config["digest"], limit=1024 * 1024))
            cached = {"platform": _platform(raw) if isinstance(raw, dict) and raw.get("architecture") else ""}
            self._cache_put("config", config["digest"], cached)
        return [cached["platform"]] if cached.get("platform") else []

    def _artifacts(self, ref: ImageRef) -> tuple[list[_Artifact], list[str]]:
        assert ref.digest
        found: dict[str, _Artifact] = {}
        errors: list[str] = []
        try:
            referrers = self.client.referrers(ref, ref.digest)
        except RegistryError as exc:
            referrers = None
            errors.append(f"referrers: {exc}")
        hexd = ref.digest.removeprefix("sha256:")
        descriptors: list[tuple[str, Mapping[str, Any]]] = [("referrers", d) for d in referrers or ()]
        if referrers is None:
            try:
                index = self.client.optional_manifest(ref, f"sha256-{hexd}")
                if index is not None and index.is_index:
                    descriptors.extend(
                        ("tag:sha256-", d) for d in index.data.get("manifests") or () if isinstance(d, dict)
                    )
                elif index is not None:
                    found[index.digest] = _Artifact("tag:sha256-", index)
            except RegistryError as exc:
                errors.append(f"referrers tag: {exc}")
        for via, d in descriptors[:MAX_ARTIFACTS]:
            digest = d.get("digest")
            if not isinstance(digest, str) or digest in found:
                continue
            try:
                m = self.client.manifest(ref, digest)
            except RegistryError as exc:
                errors.append(f"referrer {digest[:19]}: {exc}")
                continue
            subject = m.data.get("subject")
            if isinstance(subject, dict) and subject.get("digest") not in (None, ref.digest):
                continue  # listed for this digest but about another: a registry ignoring or mixing up the query
            found[m.digest] = _Artifact(via, m)
        if len(descriptors) > MAX_ARTIFACTS:
            errors.append(f"{len(descriptors)} referrers listed; only the first {MAX_ARTIFACTS} were read")
        for suffix in (".sig", ".att", ".sbom"):
            try:
                tagged = self.client.optional_manifest(ref, f"sha256-{hexd}{suffix}")
            except RegistryError as exc:
                errors.append(f"cosign {suffix} tag: {exc}")
                continue
            if tagged is not None and tagged.digest not in found:
                found[tagged.digest] = _Artifact(f"tag:{suffix}", tagged)
        return sorted(found.values(), key=lambda a: (a.via, a.manifest.digest)), errors

    # ------------------------------------------------------------------ one artifact

    def _examine(self, ref: ImageRef, art: _Artifact) -> dict[str, Any]:
        assert ref.digest
        key = f"{art.manifest.digest}|{ref.digest}"
        cached = self._cache_get("artifact", key)
        if cached is not None:
            self._hits += 1
            return {"via": art.via, **cached}
        out = self._examine_uncached(ref, art)
        if not out.get("error"):
            self._cache_put("artifact", key, out)
        return {"via": art.via, **out}

    def _examine_uncached(self, ref: ImageRef, art: _Artifact) -> dict[str, Any]:
        try:
            return self._examine_artifact(ref, art)
        except Exception as exc:  # unforeseen content in one artifact: recorded, and the image not passed on it
            return {
                "manifest": art.manifest.digest,
                "error": f"unreadable artifact ({type(exc).__name__}: {str(exc)[:160]})",
                "entries": [],
            }

    def _examine_artifact(self, ref: ImageRef, art: _Artifact) -> dict[str, Any]:
        assert ref.digest
        m = art.manifest
        config = as_mapping(m.data.get("config"))
        artifact_type = str(m.data.get("artifactType") or config.get("mediaType") or "")
        out: dict[str, Any] = {"manifest": m.digest, "artifact_type": artifact_type}
        layers = [layer for layer in m.data.get("layers") or () if isinstance(layer, dict)]
        if isinstance(m.data.get("subject"), dict):
            out["subject"] = m.data["subject"].get("digest")
        entries: list[dict[str, Any]] = []
        try:
            for layer in layers[:16]:
                media = str(layer.get("mediaType", ""))
                digest = str(layer.get("digest", ""))
                if media == SIMPLESIGNING:
                    payload = self.client.blob(ref, digest, limit=256 * 1024)
                    ann = as_mapping(layer.get("annotations"))
                    if ann.get("dev.sigstore.cosign/bundle") and ann.get("dev.sigstore.cosign/certificate"):
                        v = Verified(
                            "cosign-simplesigning",
                            "unsupported",
                            {},
                            "a keyless cosign v2 signature "
                            "(certificate and Rekor bundle in annotations): re-sign with cosign v3 bundles "
                            "(--new-bundle-format) to have it verified",
                        )
                    else:
                        v = verify_simplesigning(payload, ann.get(COSIGN_SIGNATURE_ANNOTATION), ref.digest, self.keys)
                    entries.append({"signature": v.to_json()})
                elif media == DSSE_ENVELOPE:
                    env = _json(self.client.blob(ref, digest))
                    v = verify_dsse(env if isinstance(env, dict) else {}, ref.digest, self.keys)
                    entries.append(self._attestation(v))
                elif media.startswith(SIGSTORE_BUNDLE_PREFIX) or artifact_type.startswith(SIGSTORE_BUNDLE_PREFIX):
                    bundle = self.client.blob(ref, digest)
                    v = verify_bundle(bundle, ref.digest, self.keys, self.trust, signed_artifact=None)
                    entries.append(self._attestation(v) if v.statement is not None else {"signature": v.to_json()})
                elif (
                    media in sbom.SBOM_MEDIA_TYPES
                    or media in sbom.VEX_MEDIA_TYPES
                    or artifact_type in sbom.SBOM_MEDIA_TYPES
                ):
                    doc = sbom.read_document(
                        self.client.blob(ref, digest),
                        media if media in sbom.SBOM_MEDIA_TYPES or media in sbom.VEX_MEDIA_TYPES else artifact_type,
                    )
                    bound = (
                        "referrer-subject"
                        if out.get("subject") == ref.digest
                        else ("tag" if art.via.startswith("tag:") else "")
                    )
                    entries.append({"document": doc.to_json(), "bound_by": bound, "signature": None})
        except RegistryError as exc:
            out["error"] = str(exc)
        out["entries"] = entries
        return out

    def _attestation(self, v: Verified) -> dict[str, Any]:
        entry: dict[str, Any] = {"signature": v.to_json()}
        st = v.statement
        if st is None:
            return entry
        predicate_type = str(st.get("predicateType", ""))
        entry["predicate_type"] = predicate_type
        predicate = st.get("predicate")
        if isinstance(predicate, str):  # cosign v2 wraps some predicates as a JSON string under "Data"
            predicate = _json(predicate.encode())
        if (
            isinstance(predicate, dict)
            and set(predicate) <= {"Data", "Timestamp"}
            and isinstance(predicate.get("Data"), str)
        ):
            predicate = _json(predicate["Data"].encode())
        known = (
            predicate_type in sbom.CYCLONEDX_PREDICATES
            or predicate_type in sbom.SPDX_PREDICATES
            or predicate_type in sbom.VULN_PREDICATES
            or predicate_type.startswith(sbom.OPENVEX_PREFIX)
        )
        if predicate_type in SIGN_PREDICATES or (not isinstance(predicate, dict) and not known):
            return entry
        doc = sbom.read_parsed(predicate, predicate_type)
        # Custom predicate types (`cosign attest --type https://...`) count when the content is a format we read:
        # a Trivy or Grype report, a CycloneDX or SPDX document, OpenVEX. Provenance and others are kept as signatures.
        if known or doc.format != "unknown":
            entry["document"] = doc.to_json()
            entry["bound_by"] = "attestation-subject" if v.outcome == "verified" else ""
        return entry

    # ------------------------------------------------------------------ cache

    def _cache_path(self, kind: str, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        h = hashlib.sha256(f"{kind}|{key}|{self.trust_digest}|{__version__}".encode()).hexdigest()
        return self.cache_dir / h[:2] / f"{h}.json"

    def _cache_get(self, kind: str, key: str, *, ttl: bool = False) -> Any:
        path = self._cache_path(kind, key)
        if path is None:
            return None
        try:
            if ttl and self.clock() - path.stat().st_mtime > self.cache_ttl:
                return None
            return json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None

    def _cache_put(self, kind: str, key: str, value: Any) -> None:
        path = self._cache_path(kind, key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{id(value)}.tmp")
            tmp.write_bytes(json.dumps(value, sort_keys=True).encode())
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written only costs time


def _platform(p: Mapping[str, Any]) -> str:
    out = f"{p.get('os')}/{p.get('architecture')}"
    return f"{out}/{p['variant']}" if p.get("variant") else out


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def image_uses(objects: Sequence[K8sObject]) -> dict[str, list[ImageUse]]:
    """Every image reference the workloads name (containers, init and ephemeral containers), with where."""
    from auditor.kube import running_images, workloads

    out: dict[str, list[ImageUse]] = {}
    for w in workloads(objects):
        for c in w.containers():
            if c.image:
                out.setdefault(c.image, []).append(ImageUse(w.obj.cluster, w.namespace or "", w.kind, w.name, c.name))
    declared_digests = {ref.partition("@")[2] for ref in out if "@" in ref}
    for pod in objects:
        if pod.kind == "Pod":
            for container, ref in running_images(pod):
                if ref.partition("@")[2] in declared_digests:
                    continue  # runs a declared digest: looked up once, under the declared reference
                out.setdefault(ref, []).append(ImageUse(pod.cluster, pod.namespace or "", "Pod", pod.name, container))
    return out
