"""Supply chain, judged from registry evidence: signatures, SBOMs, vulnerability budgets, platforms.

The registry source has already verified every signature cryptographically and recorded who made it
(a key fingerprint, or a Fulcio identity and issuer) and for which digest. These checks decide, per
profile, whether that signer is trusted for the image, and whether the SBOMs, scans and VEX the
image carries meet the profile's policy. One result per image per cluster, located at the first
workload that names it; an image is in a profile's scope when a workload in a scoped namespace runs it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures, not_assessed, passed, timestamp
from auditor.kube import WORKLOAD_KINDS, image_has_digest, running_images
from auditor.models import SIGN_PREDICATES, EvidenceKind, Result, Severity, Subject

_KINDS = tuple(sorted(WORKLOAD_KINDS))
_NEEDS = frozenset({EvidenceKind.K8S_OBJECTS, EvidenceKind.REGISTRY})
SEVERITY_ORDER = ("critical", "high", "medium", "low", "unknown")


@dataclass(frozen=True)
class ImageSubject:
    ref: str
    record: Mapping[str, Any] | None
    subject: Subject
    use_pairs: tuple[tuple[str, str], ...]
    """(namespace, "Kind ns/name (container)") for each place the image is named."""

    @property
    def uses(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.use_pairs)


def images(ctx: CheckContext) -> Iterator[ImageSubject]:
    """Each image reference this cluster's workloads name, with its registry record (None: not looked up)."""
    by_ref = {str(r.get("ref")): r for r in ctx.evidence.images}
    found: dict[str, list[tuple[str, str]]] = {}
    first_location: dict[str, Any] = {}
    for w in ctx.workloads:
        declared: dict[str, str] = {}
        for c in w.containers():
            if not c.image:
                continue
            declared[c.name] = c.image
            found.setdefault(c.image, []).append(
                (w.namespace or "", f"{w.kind} {w.namespace or ''}/{w.name} ({c.name})")
            )
            first_location.setdefault(c.image, w.obj.location)
        for pod in ctx.pods_of(w) if ctx.cluster else ():
            for container, ref in running_images(pod):
                want = declared.get(container, "")
                if want.partition("@")[2] == ref.partition("@")[2]:
                    continue  # runs what it declares: judged as the declared reference
                found.setdefault(ref, []).append(
                    (
                        w.namespace or "",
                        f"{w.kind} {w.namespace or ''}/{w.name} ({container}, running in pod {pod.name})",
                    )
                )
                first_location.setdefault(ref, w.obj.location)
    by_digest = {str(r["digest"]): r for r in ctx.evidence.images if r.get("digest")}
    for ref in sorted(found):
        rec = by_ref.get(ref) or (by_digest.get(ref.partition("@")[2]) if "@" in ref else None)
        uses = found[ref]
        digest = rec.get("digest") if rec else (ref.partition("@")[2] if image_has_digest(ref) else None)
        subject = Subject(
            image=ref,
            digest=digest,
            cluster=ctx.cluster,
            namespaces=tuple(sorted({ns for ns, _ in uses if ns})),
            location=first_location[ref],
        )
        yield ImageSubject(ref, rec, subject, tuple(uses))


def _runs(img: ImageSubject) -> str:
    more = f" and {len(img.uses) - 3} more" if len(img.uses) > 3 else ""
    return "runs in " + ", ".join(img.uses[:3]) + more


def _unassessable(img: ImageSubject) -> str | None:
    """Why an image's record cannot decide anything (fail closed), or None."""
    if img.record is None:
        return f"{img.ref}: not looked up in its registry (the registry evidence names no such image)"
    if not img.record.get("digest"):
        errors = "; ".join(img.record.get("errors") or ["no digest"])
        return f"{img.ref}: the registry could not be read ({errors})"
    return None


# ---------------------------------------------------------------------- trust


def _trust_keys(ctx: CheckContext) -> set[str]:
    """Keys given on the command line (--trust-key) are trusted for every image."""
    keys = ctx.evidence.registry_trust.get("keys") or ()
    return {str(k["fingerprint"]) for k in keys if isinstance(k, dict) and k.get("origin", "cli") == "cli"}


def _in_signer_scope(entry: Mapping[str, Any], img: ImageSubject) -> bool:
    namespaces = entry.get("namespaces")
    if namespaces and not any(fnmatch.fnmatchcase(ns, str(p)) for ns in img.subject.namespaces for p in namespaces):
        return False
    registries = entry.get("registries")
    if registries:
        name = img.ref.split("@", 1)[0]
        return any(
            name == str(r).rstrip("/")
            or name.startswith(str(r).rstrip("/") + "/")
            or name.startswith(str(r).rstrip("/") + ":")
            for r in registries
        )
    return True


def trusted(ctx: CheckContext, signer: Mapping[str, Any], img: ImageSubject) -> str | None:
    """The profile's name for a trusted signer of this image (or the --trust-key that trusts it), or None."""
    for i, entry in enumerate(ctx.param("trusted_signers", list, [])):
        if not isinstance(entry, dict) or not _in_signer_scope(entry, img):
            continue
        label = str(entry.get("name") or f"trusted_signers[{i}]")
        if entry.get("key") and signer.get("key") == entry["key"]:
            return label
        identity = signer.get("identity")
        if identity and entry.get("issuer") and signer.get("issuer") == entry["issuer"]:
            if entry.get("identity") == identity:
                return label
            pattern = entry.get("identity_regexp")
            if pattern and re.fullmatch(str(pattern), str(identity)):
                return label
    if signer.get("key") and signer["key"] in _trust_keys(ctx):
        return f"key {signer.get('key_name') or signer['key'][:19]} (--trust-key)"
    return None


def _signer_text(signer: Mapping[str, Any]) -> str:
    if signer.get("identity"):
        return f"{signer['identity']} (issuer {signer.get('issuer', '?')})"
    if signer.get("key"):
        return f"key {signer.get('key_name', '')} {str(signer['key'])[:19]}...".replace("  ", " ")
    return "an unknown signer"


def _entries(rec: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    for art in rec.get("artifacts") or ():
        for e in art.get("entries") or ():
            yield art, e


# ---------------------------------------------------------------------- image.signed


def _signed(ctx: CheckContext) -> Iterator[Result]:
    no_trust = not ctx.param("trusted_signers", list, []) and not _trust_keys(ctx)
    for img in images(ctx):
        if no_trust:
            yield not_assessed(
                img.subject,
                "no trusted signers: the profile names none (parameters.trusted_signers) and no --trust-key was given",
            )
            continue
        why = _unassessable(img)
        if why:
            yield not_assessed(img.subject, why)
            continue
        assert img.record is not None
        f = Failures(img.subject)
        good: list[str] = []
        seen = 0
        for art, e in _entries(img.record):
            sig = e.get("signature")
            if not sig or (e.get("predicate_type") and e["predicate_type"] not in SIGN_PREDICATES) or e.get("document"):
                continue
            seen += 1
            outcome, signer = sig.get("outcome"), sig.get("signer") or {}
            where = f"{art.get('via')} {str(art.get('manifest', ''))[:19]}"
            if outcome == "verified":
                who = trusted(ctx, signer, img)
                if who:
                    good.append(
                        f"signed by {_signer_text(signer)}, trusted as {who} ({where}; tlog {sig.get('tlog', '?')})"
                    )
                else:
                    f.add(
                        "untrusted-signer",
                        f"{img.ref}: signed by {_signer_text(signer)}, who is not a trusted signer for it",
                    )
            elif outcome == "digest-mismatch":
                f.add(
                    "copied-signature", f"{img.ref}: {sig.get('detail', 'signature made for another digest')} ({where})"
                )
            elif outcome == "no-trusted-key":
                f.add(
                    "unverifiable-signature",
                    f"{img.ref}: a signature ({where}) that no given key verifies ({sig.get('detail', '')})",
                )
            elif outcome == "unsupported":
                f.add(
                    "unsupported-signature",
                    f"{img.ref}: {sig.get('detail', 'a signature format this version cannot verify')}",
                )
            else:
                f.add("invalid-signature", f"{img.ref}: invalid signature ({where}): {sig.get('detail', '')}")
        if good:
            yield passed(img.subject, f"{img.ref}: {good[0]}", *good, _runs(img))
            continue
        if img.record.get("errors"):
            yield not_assessed(
                img.subject,
                f"{img.ref}: no trusted signature found, and the registry listing was incomplete ("
                + "; ".join(img.record["errors"])[:300]
                + ")",
            )
            continue
        if not seen:
            f.add(
                "unsigned",
                f"{img.ref}: no signature for {str(img.subject.digest)[:19]}... (referrers API and cosign tags searched)",
            )
        yield f.result("", _runs(img))


SIGNED = Check(
    CheckMeta(
        id="image-signed",
        title="Images are signed by a trusted signer",
        items=("image.signed",),
        severity=Severity.HIGH,
        kinds=_KINDS,
        needs=_NEEDS,
        rationale=(
            "A signature by the operator's build identity over the image digest proves the bytes that run are the "
            "bytes the release process produced; a copied or untrusted signature proves nothing."
        ),
        remediation=(
            "Sign the image digest in the build pipeline (cosign sign --key, or keyless in CI) and name the key or "
            "the CI identity and issuer in parameters.trusted_signers."
        ),
        references=(
            "NIST SP 800-190 4.1.5",
            "SLSA v1.0 Build L2",
            "CIS Kubernetes Benchmark v1.8 5.5.1",
            "ISO/IEC 27001:2022 A.8.32",
        ),
        facets={
            "unsigned": "no signature on the image digest",
            "untrusted-signer": "signed, but by a key or identity the profile does not trust for this image",
            "copied-signature": "a valid signature made for another digest, attached to this one",
            "unverifiable-signature": "a signature no given key verifies",
            "invalid-signature": "a tampered or malformed signature",
            "unsupported-signature": "a signature format this version cannot verify",
        },
    ),
    _signed,
)


# ---------------------------------------------------------------------- image.sbom


def _sbom_documents(
    ctx: CheckContext, img: ImageSubject, kinds: Sequence[str]
) -> tuple[list[tuple[Mapping[str, Any], str]], Failures]:
    """The documents of the given kinds that count for the image (with how each was delivered), and the
    reasons the others do not."""
    assert img.record is not None
    require_signed = ctx.param("sbom_require_signature", bool, False)
    f = Failures(img.subject)
    good: list[tuple[Mapping[str, Any], str]] = []
    digest = str(img.record.get("digest"))
    for art, e in _entries(img.record):
        doc = e.get("document")
        if not isinstance(doc, dict) or doc.get("kind") not in kinds:
            continue
        what = f"{doc.get('format')} {doc.get('kind')} ({art.get('via')} {str(art.get('manifest', ''))[:19]})"
        sig = e.get("signature")
        if sig:
            outcome = sig.get("outcome")
            if outcome == "digest-mismatch":
                f.add("sbom-other-digest", f"{img.ref}: {what}: attested for another digest: {sig.get('detail', '')}")
                continue
            if outcome != "verified":
                f.add(
                    "unverified-attestation",
                    f"{img.ref}: {what}: its attestation does not verify ({outcome}: {sig.get('detail', '')})",
                )
                continue
            who = trusted(ctx, sig.get("signer") or {}, img)
            if not who:
                f.add(
                    "untrusted-attestation",
                    f"{img.ref}: {what}: attested by {_signer_text(sig.get('signer') or {})}, not a trusted signer",
                )
                continue
            how = f"attested by {who}"
        else:
            if require_signed:
                f.add("unsigned-sbom", f"{img.ref}: {what}: not signed, and the profile requires signed SBOMs")
                continue
            if e.get("bound_by") not in ("referrer-subject", "tag"):
                f.add("sbom-other-digest", f"{img.ref}: {what}: not bound to this digest")
                continue
            how = f"attached ({e.get('bound_by')}, unsigned)"
        if not doc.get("valid", False):
            f.add("invalid-sbom", f"{img.ref}: {what}: invalid: {'; '.join(doc.get('problems') or [])[:200]}")
            continue
        describes = doc.get("describes") or []
        if describes and digest not in describes:
            f.add(
                "sbom-other-digest",
                f"{img.ref}: {what}: describes {', '.join(d[:19] for d in describes)}, not this image",
            )
            continue
        good.append((doc, f"{what}, {how}"))
    return good, f


def _sbom(ctx: CheckContext) -> Iterator[Result]:
    for img in images(ctx):
        why = _unassessable(img)
        if why:
            yield not_assessed(img.subject, why)
            continue
        assert img.record is not None
        good, f = _sbom_documents(ctx, img, ("sbom",))
        if good:
            doc, how = good[0]
            yield passed(
                img.subject,
                f"{img.ref}: SBOM with {doc.get('components', 0)} components: {how}",
                *(h for _, h in good),
                _runs(img),
            )
            continue
        if img.record.get("errors"):
            yield not_assessed(img.subject, f"{img.ref}: no usable SBOM found, and the registry listing was incomplete")
            continue
        if not f.found:
            f.add("no-sbom", f"{img.ref}: no SBOM attested or attached for {str(img.subject.digest)[:19]}...")
        yield f.result("", _runs(img))


SBOM = Check(
    CheckMeta(
        id="image-sbom",
        title="Images carry an SBOM for their digest",
        items=("image.sbom",),
        severity=Severity.MEDIUM,
        kinds=_KINDS,
        needs=_NEEDS,
        rationale=(
            "Without a bill of materials for the exact digest, nobody can say whether a newly published "
            "vulnerability affects what runs, which regulators expect to be answerable within hours."
        ),
        remediation=(
            "Generate a CycloneDX or SPDX SBOM in the build and attest it to the digest "
            "(cosign attest --type cyclonedx), or attach it as an OCI referrer."
        ),
        references=("NTIA Minimum Elements for an SBOM (2021)", "NIST SP 800-218 PS.3.2", "ISO/IEC 27001:2022 A.5.21"),
        facets={
            "no-sbom": "no SBOM for the digest",
            "invalid-sbom": "an SBOM that fails its format's schema",
            "sbom-other-digest": "an SBOM or attestation about another digest",
            "unverified-attestation": "an SBOM attestation whose signature does not verify",
            "untrusted-attestation": "an SBOM attested by a signer the profile does not trust",
            "unsigned-sbom": "an unsigned SBOM where the profile requires signed ones",
        },
        facet_severity={"unsigned-sbom": Severity.LOW},
    ),
    _sbom,
)


# ---------------------------------------------------------------------- image.vulns-within-budget


def _budget(ctx: CheckContext) -> dict[str, tuple[int, int | None]]:
    raw = ctx.param("vulnerability_budget", dict, {"critical": 0})
    out: dict[str, tuple[int, int | None]] = {}
    for sev in SEVERITY_ORDER:
        value = raw.get(sev)
        if isinstance(value, int):
            out[sev] = (value, None)
        elif isinstance(value, dict):
            out[sev] = (int(value.get("max", 0)), value.get("older_than_days"))
    return out


def _accepted(ctx: CheckContext, img: ImageSubject) -> dict[str, str]:
    raw = ctx.param("vulnerability_budget", dict, {})
    today = ctx.as_of[:10]
    out: dict[str, str] = {}
    for a in raw.get("accepted") or ():
        if str(a.get("expires", "")) < today:
            continue
        pattern = a.get("image")
        if pattern and not fnmatch.fnmatchcase(img.ref, str(pattern)):
            continue
        out[str(a["id"])] = f"accepted by {a.get('approved_by')} until {a.get('expires')}: {a.get('reason')}"
    return out


def _age_days(published: str, as_of: str) -> int | None:
    """Whole days since ``published`` (floored, as timedelta.days does)."""
    then, now = timestamp(published), timestamp(as_of)
    return None if then is None or now is None else (now - then).days


@dataclass
class VulnState:
    scans: list[tuple[Mapping[str, Any], str]]
    problems: Failures
    open_by_severity: dict[str, dict[str, Mapping[str, Any]]]
    closed: list[str]


def vuln_state(ctx: CheckContext, img: ImageSubject) -> VulnState:
    """The image's trusted scan results, with VEX statements (from trusted documents) and accepted risks applied."""
    docs, problems = _sbom_documents(ctx, img, ("sbom", "scan", "vex"))
    scans = [(d, how) for d, how in docs if d.get("scanned")]
    vex: dict[str, str] = {}
    for d, how in docs:
        for st in d.get("vex") or ():
            if st.get("status") in ("not_affected", "false_positive", "resolved", "fixed"):
                vex.setdefault(str(st["id"]), f"{st.get('status')} per {st.get('source')} ({how})")
    accepted = _accepted(ctx, img)
    open_by_sev: dict[str, dict[str, Mapping[str, Any]]] = {sev: {} for sev in SEVERITY_ORDER}
    closed: list[str] = []
    for d, _how in scans:
        for v in d.get("vulnerabilities") or ():
            vid = str(v.get("id"))
            if vid in vex:
                closed.append(f"{vid}: {vex[vid]}")
            elif vid in accepted:
                closed.append(f"{vid}: {accepted[vid]}")
            else:
                sev = str(v.get("severity", "unknown"))
                open_by_sev[sev if sev in open_by_sev else "unknown"][vid] = v
    return VulnState(scans, problems, open_by_sev, sorted(set(closed)))


def _vulns(ctx: CheckContext) -> Iterator[Result]:
    budget = _budget(ctx)
    for img in images(ctx):
        why = _unassessable(img)
        if why:
            yield not_assessed(img.subject, why)
            continue
        state = vuln_state(ctx, img)
        if not state.scans:
            reasons = "; ".join(d for _, d in state.problems.found)[:300]
            yield not_assessed(
                img.subject,
                f"{img.ref}: no trusted scan result (an attested scan, or an SBOM with a "
                "vulnerabilities section) for this digest" + (f" ({reasons})" if reasons else ""),
            )
            continue
        f = Failures(img.subject)
        counts = {sev: len(v) for sev, v in state.open_by_severity.items()}
        for sev, (limit, older) in budget.items():
            found = list(state.open_by_severity.get(sev, {}).values())
            if older is not None:
                found = [v for v in found if (_age_days(str(v.get("published", "")), ctx.as_of) or older + 1) > older]
            if len(found) > limit:
                ids = ", ".join(sorted(str(v["id"]) for v in found)[:5])
                age = f" published more than {older} days ago" if older is not None else ""
                f.add(f"{sev}-over-budget", f"{img.ref}: {len(found)} open {sev}{age} (budget {limit}): {ids}")
        summary = ", ".join(f"{counts[sev]} {sev}" for sev in SEVERITY_ORDER if counts.get(sev))
        summary = summary or "no open vulnerabilities"
        if state.closed:
            summary += f"; {len(state.closed)} closed by VEX or accepted risk"
        evidence = [f"scanned: {how}" for _, how in state.scans] + [f"closed: {c}" for c in state.closed] + [_runs(img)]
        yield f.result(f"{img.ref}: within budget ({summary})", *evidence)


VULNS = Check(
    CheckMeta(
        id="image-vulns-within-budget",
        title="Image vulnerabilities are within the profile's budget",
        items=("image.vulns-within-budget",),
        severity=Severity.HIGH,
        kinds=_KINDS,
        needs=_NEEDS,
        rationale=(
            "Known exploitable vulnerabilities in payment and wallet services are the most common route to "
            "account takeover and fraud; the budget is the operator's documented risk appetite."
        ),
        remediation=(
            "Rebuild on a patched base image, or record a VEX not_affected statement (signed, attested to the digest), "
            "or a time-limited acceptance in parameters.vulnerability_budget.accepted."
        ),
        references=("PCI DSS v4.0 6.3.3", "NIST SP 800-190 4.1.1", "ISO/IEC 27001:2022 A.8.8"),
        facets={
            "critical-over-budget": "more open critical vulnerabilities than the budget allows",
            "high-over-budget": "more open high vulnerabilities than the budget allows",
            "medium-over-budget": "more open medium vulnerabilities than the budget allows",
            "low-over-budget": "more open low vulnerabilities than the budget allows",
            "unknown-over-budget": "more open vulnerabilities of unknown severity than the budget allows",
        },
        facet_severity={
            "high-over-budget": Severity.HIGH,
            "medium-over-budget": Severity.MEDIUM,
            "low-over-budget": Severity.LOW,
            "unknown-over-budget": Severity.MEDIUM,
        },
    ),
    _vulns,
)


# ---------------------------------------------------------------------- image.multi-arch


def _multi_arch(ctx: CheckContext) -> Iterator[Result]:
    required = [str(p) for p in ctx.param("required_platforms", list, [])]
    for img in images(ctx):
        if not required:
            yield not_assessed(img.subject, "the profile lists no required platforms (parameters.required_platforms)")
            continue
        why = _unassessable(img)
        if why:
            yield not_assessed(img.subject, why)
            continue
        assert img.record is not None
        platforms = [str(p) for p in img.record.get("platforms") or ()]
        if not platforms:
            yield not_assessed(img.subject, f"{img.ref}: the registry record names no platform for it")
            continue
        missing = [p for p in required if not any(_platform_covers(have, p) for have in platforms)]
        f = Failures(img.subject)
        if missing:
            kind = "an image index" if len(platforms) > 1 else "a single-platform image"
            f.add("missing-platform", f"{img.ref}: {kind} for {', '.join(platforms)}; missing {', '.join(missing)}")
        yield f.result(f"{img.ref}: covers {', '.join(required)}", f"platforms: {', '.join(platforms)}")


def _platform_covers(have: str, want: str) -> bool:
    return have == want or (want.count("/") == 1 and have.startswith(want + "/"))


MULTI_ARCH = Check(
    CheckMeta(
        id="image-multi-arch",
        title="Images cover the required platforms",
        items=("image.multi-arch",),
        severity=Severity.LOW,
        kinds=_KINDS,
        needs=_NEEDS,
        rationale=(
            "An image that lacks a node pool's platform cannot be scheduled there: failover to another "
            "pool or region fails at the worst moment."
        ),
        remediation="Build and push an image index covering every platform in parameters.required_platforms.",
        references=("OCI Image Index Specification v1.1",),
        facets={"missing-platform": "the image index lacks a required platform"},
    ),
    _multi_arch,
)


# ---------------------------------------------------------------------- the report's per-image table


def summarize(ctx: CheckContext, in_scope: Callable[[str], bool] = lambda ns: True) -> list[dict[str, Any]]:
    """One row per image: digest, where it runs, signer, SBOM components, open vulnerabilities by severity,
    VEX and accepted risks applied, platforms, and each supply-chain check's verdict (the report's table)."""
    verdicts: dict[str, dict[str, dict[str, Any]]] = {}
    for check in (SIGNED, SBOM, VULNS, MULTI_ARCH):
        for r in check.run(ctx):
            slot = verdicts.setdefault(str(r.subject.image), {})
            slot[check.meta.items[0]] = {"status": r.status.value, "facets": list(r.facets)}
    rows = []
    for img in images(ctx):
        namespaces = [ns for ns in img.subject.namespaces if in_scope(ns)]
        if img.subject.namespaces and not namespaces:
            continue  # runs only outside the profile's scope
        rec = img.record or {}
        row: dict[str, Any] = {
            "image": img.ref,
            "digest": img.subject.digest,
            "runs_in": [text for ns, text in img.use_pairs if not ns or in_scope(ns)],
            "namespaces": namespaces,
            "platforms": list(rec.get("platforms") or ()),
            "verdicts": verdicts.get(img.ref, {}),
        }
        if ctx.cluster:
            row["cluster"] = ctx.cluster
        if rec.get("digest"):
            signers = []
            for _art, e in _entries(rec):
                sig = e.get("signature")
                if sig and sig.get("outcome") == "verified" and not e.get("document"):
                    who = trusted(ctx, sig.get("signer") or {}, img)
                    signers.append({"signer": _signer_text(sig.get("signer") or {}), "trusted_as": who})
            row["signers"] = signers
            good, _ = _sbom_documents(ctx, img, ("sbom",))
            row["sbom"] = (
                {"format": good[0][0].get("format"), "components": good[0][0].get("components", 0), "how": good[0][1]}
                if good
                else None
            )
            state = vuln_state(ctx, img)
            row["vulnerabilities"] = (
                {sev: len(state.open_by_severity[sev]) for sev in SEVERITY_ORDER} if state.scans else None
            )
            row["closed"] = state.closed
        else:
            row["error"] = "; ".join(rec.get("errors") or ["not looked up"])
        rows.append(row)
    return rows
