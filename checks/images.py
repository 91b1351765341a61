"""Image references: pinned by digest, from allowed registries."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures, not_assessed
from auditor.kube import (
    WORKLOAD_KINDS,
    Workload,
    as_list,
    as_mapping,
    image_has_digest,
    image_registry,
    image_repository,
    image_tag,
)
from auditor.models import Result, Severity

_KINDS = tuple(sorted(WORKLOAD_KINDS))


def _pinned_digest(ctx: CheckContext) -> Iterator[Result]:
    resolved = {str(r.get("ref")): r for r in ctx.evidence.images}  # registry evidence, when it was read
    for w in ctx.workloads:
        f = Failures(w.subject)
        notes: list[str] = []
        for c in w.containers():
            image = c.image
            rec = resolved.get(image, {})
            if image_has_digest(image):
                moved = rec.get("tag_digest")
                if moved and rec.get("digest") and moved != rec["digest"]:
                    notes.append(f"container {c.name}: the tag of {image} now points to {moved} (the pin holds)")
                continue
            tag = image_tag(image)
            _name, at, digest = image.partition("@")
            if at:
                algorithm, colon, value = digest.partition(":")
                if colon and algorithm != "sha256" and algorithm and value:
                    f.add(
                        "non-sha256-digest",
                        f"container {c.name}: {image} is pinned by a {algorithm} digest; the checklist requires "
                        "@sha256 (the digest OCI registries and signatures use)",
                    )
                else:
                    f.add(
                        "malformed-digest",
                        f"container {c.name}: {image} has a malformed digest ({_why_malformed(algorithm, value)}); "
                        "the image cannot be pulled by it",
                    )
            elif not image:
                f.add("no-image", f"container {c.name}: no image")
            elif tag is None:
                f.add("no-tag", f"container {c.name}: {image} has no tag and no digest (resolves to :latest)")
            elif tag == "latest":
                f.add("latest", f"container {c.name}: {image} uses :latest")
            else:
                now = f" (it resolved to {rec['digest']} at audit time)" if rec.get("digest") else ""
                f.add("mutable-tag", f"container {c.name}: {image} uses mutable tag :{tag} without a digest{now}")
        _running_drift(ctx, w, f)
        yield f.result("every image is pinned by @sha256 digest", *notes)


def _running_drift(ctx: CheckContext, w: Workload, f: Failures) -> None:
    """In a live cluster: the digest each container actually runs (status.containerStatuses[].imageID) must be the
    one the workload declares; anything else is drift (a re-pushed tag, a node's stale cache, a hand-edited pod)."""
    declared = {c.name: c.image.partition("@")[2] for c in w.containers() if image_has_digest(c.image)}
    if not declared:
        return
    for pod in ctx.pods_of(w):
        statuses = as_list(as_mapping(pod.raw.get("status")).get("containerStatuses"))
        for st in statuses:
            st = as_mapping(st)
            name = str(st.get("name", ""))
            running = str(st.get("imageID", "")).rpartition("@")[2]
            want = declared.get(name)
            if want and running.startswith("sha256:") and running != want:
                f.add(
                    "running-digest-drift",
                    f"container {name}: pod {pod.name} runs {running[:19]}..., not the declared {want[:19]}...",
                )


def _why_malformed(algorithm: str, value: str) -> str:
    if not algorithm or not value:
        return "expected @sha256:<64 hex digits>"
    if algorithm == "sha256":
        if len(value) != 64:
            return f"sha256 needs 64 hex digits, got {len(value)} characters"
        return "sha256 digits must be lowercase hex"
    return "expected @sha256:<64 hex digits>"


PINNED_DIGEST = Check(
    CheckMeta(
        id="image-pinned-digest",
        title="Images are referenced by digest",
        items=("image.pinned-digest",),
        severity=Severity.HIGH,
        kinds=_KINDS,
        rationale=(
            "A tag can be moved to different content after review; only a digest names the exact "
            "bytes that were scanned, signed and approved for release."
        ),
        remediation="Reference every image as registry/repo@sha256:<digest> (a tag may stay for readability: repo:1.4.2@sha256:...).",
        references=("NIST SP 800-190 (image countermeasures)", "ISO/IEC 27001:2022 A.8.32"),
        facets={
            "no-tag": "neither tag nor digest",
            "latest": "the :latest tag",
            "mutable-tag": "a tag without a digest",
            "no-image": "container has no image",
            "non-sha256-digest": "pinned by a digest other than sha256",
            "malformed-digest": "a digest that is not a valid sha256 digest",
            "running-digest-drift": "a running pod's image digest differs from the declared one (live clusters)",
        },
        facet_severity={"non-sha256-digest": Severity.LOW},
    ),
    _pinned_digest,
)


def _registry_allowed(ctx: CheckContext) -> Iterator[Result]:
    allowed = ctx.param("allowed_registries", list, [])
    for w in ctx.workloads:
        if not allowed:
            yield not_assessed(w.subject, "the profile lists no allowed registries (parameters.allowed_registries)")
            continue
        f = Failures(w.subject)
        for c in w.containers():
            repo = image_repository(c.image)
            registry = image_registry(c.image)
            if not any(_allows(str(entry), registry, repo) for entry in allowed):
                f.add(
                    "registry-not-allowed", f"container {c.name}: {c.image} is from {registry}, not an allowed registry"
                )
        yield f.result("every image comes from an allowed registry")


def _allows(entry: str, registry: str, repo: str) -> bool:
    """An entry is a registry host (``ghcr.io``) or a repository prefix (``ghcr.io/acme/``)."""
    entry = entry.rstrip("/")
    if "/" not in entry:
        return registry == entry
    return repo == entry or repo.startswith(entry + "/")


REGISTRY_ALLOWED = Check(
    CheckMeta(
        id="image-registry-allowed",
        title="Images come from allowed registries",
        items=("image.registry-allowed",),
        severity=Severity.HIGH,
        kinds=_KINDS,
        rationale="Images from unvetted registries bypass the operator's scanning, signing and retention controls.",
        remediation="Mirror the image into an allowed registry, or add the registry to parameters.allowed_registries after review.",
        references=("NIST SP 800-190 (registry countermeasures)", "ISO/IEC 27001:2022 A.5.21"),
        facets={"registry-not-allowed": "image from a registry outside parameters.allowed_registries"},
    ),
    _registry_allowed,
)
