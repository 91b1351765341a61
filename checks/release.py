"""Release provenance, judged from Git evidence: a signed tag, reviewed history, pinned GitOps manifests, a runbook."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures, not_assessed, passed
from auditor.kube import image_has_digest
from auditor.models import EvidenceKind, Result, Severity, SourceLocation, Subject

_NEEDS = frozenset({EvidenceKind.GIT})
DEFAULT_SECTIONS = {
    "rollback": r"roll\w*[\s-]?back|revert|back[\s-]?out",
    "provider switch": r"(switch|fail[\s-]?over|swap|disable).*(provider|psp|payment|game)|(provider|psp).*(switch|fail[\s-]?over)",
    "on-call contacts": r"on[\s-]?call|escalation|contacts?|pager",
}


def _on_release(
    judge: Callable[[CheckContext, Mapping[str, Any], Subject], Iterator[Result]],
) -> Callable[[CheckContext], Iterator[Result]]:
    """A release check: nothing without Git evidence, not assessed when the release could not be read,
    otherwise ``judge`` on the release record and its subject (``{repo, ref}``)."""

    def run(ctx: CheckContext) -> Iterator[Result]:
        git = ctx.evidence.git
        if not git:
            return
        subject = Subject(repo=str(git.get("repo", "")), ref=str(git.get("tag", "")))
        if git.get("error"):
            yield not_assessed(subject, f"the release could not be read from Git: {git['error']}")
            return
        yield from judge(ctx, git, subject)

    return run


# ---------------------------------------------------------------------- release.tag-signed


def _trusted_fingerprints(ctx: CheckContext) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, entry in enumerate(ctx.param("trusted_signers", list, [])):
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name") or f"trusted_signers[{i}]")
        for fp in [entry.get("ssh_fingerprint"), *(entry.get("gpg_fingerprints") or [])]:
            if fp:
                out[str(fp)] = name
    for fp in ctx.evidence.git.get("trust", {}).get("cli", []) if ctx.evidence.git else ():
        out.setdefault(str(fp), "--allowed-signers / --gpg-key")
    return out


@_on_release
def _tag_signed(ctx: CheckContext, git: Mapping[str, Any], subject: Subject) -> Iterator[Result]:
    f = Failures(subject)
    sig = git.get("signature") or {}
    status = sig.get("status")
    tag = git.get("tag")
    if status == "lightweight":
        f.add("lightweight-tag", f"{tag} is a lightweight tag: it carries no signature and no tagger (use git tag -s)")
    elif status == "unsigned":
        f.add("unsigned-tag", f"{tag} is an annotated tag without a signature (use git tag -s)")
    elif status == "verified":
        who = _trusted_fingerprints(ctx).get(str(sig.get("fingerprint")))
        if who:
            yield passed(
                subject,
                f"{tag} is signed ({sig.get('format')}) by {sig.get('principal') or sig.get('fingerprint')}, "
                f"trusted as {who}",
                f"signer {sig.get('fingerprint')}",
            )
            return
        f.add(
            "untrusted-signer",
            f"{tag} is signed by {sig.get('fingerprint')}, which the profile does not trust to sign releases",
        )
    elif status == "bad-signature":
        f.add("bad-signature", f"{tag}: {sig.get('detail')}")
    elif status == "unsupported":
        yield not_assessed(subject, f"{tag}: {sig.get('detail')}")
        return
    else:
        f.add("untrusted-key", f"{tag}: {sig.get('detail', 'signed by a key that is not trusted')}")
    yield f.result("")


TAG_SIGNED = Check(
    CheckMeta(
        id="release-tag-signed",
        title="Release tags are signed by a trusted key",
        items=("release.tag-signed",),
        severity=Severity.HIGH,
        kinds=(),
        needs=_NEEDS,
        rationale="A signed annotated tag proves who released which commit; a lightweight or unsigned tag can be moved by anyone with push access.",
        remediation="Tag releases with `git tag -s` (SSH or OpenPGP) and name the key in parameters.trusted_signers or --allowed-signers.",
        references=("SLSA v1.0 Source track", "ISO/IEC 27001:2022 A.8.32", "UKGC RTS 4 (change management)"),
        facets={
            "lightweight-tag": "a lightweight tag (no tag object, no signature)",
            "unsigned-tag": "an annotated tag without a signature",
            "untrusted-signer": "signed by a key the profile does not trust",
            "untrusted-key": "signed, but no trusted key verifies it",
            "bad-signature": "the signature does not match the tag",
        },
    ),
    _tag_signed,
)


# ---------------------------------------------------------------------- release.reviewed


@_on_release
def _reviewed(ctx: CheckContext, git: Mapping[str, Any], subject: Subject) -> Iterator[Result]:
    evidence = git.get("review_evidence") or {}
    prs = evidence.get("pull_requests") or []
    approved_merges = {p["merge_commit"]: p for p in prs if p.get("approvers")}
    listed = {p["merge_commit"]: p for p in prs}
    f = Failures(subject)
    commits = [c for c in git.get("commits") or () if c.get("first_parent")]
    merges = direct = trailers = 0
    for c in commits:
        sha = str(c["sha"])
        if sha in approved_merges:
            merges += 1
            continue
        if prs and sha in listed:
            f.add(
                "unapproved-merge",
                f"{sha[:12]} ({c.get('subject')}): pull request #{listed[sha].get('number')} "
                "was merged without an approval by someone other than its author",
            )
            continue
        if c.get("parents", 1) >= 2:
            if prs:
                f.add(
                    "unapproved-merge",
                    f"{sha[:12]} ({c.get('subject')}): a merge that the review evidence "
                    f"({evidence.get('file')}) does not list as an approved pull request",
                )
                continue
            merges += 1
            continue
        if c.get("reviewed_by"):
            trailers += 1
            continue
        direct += 1
        f.add(
            "direct-push",
            f"{sha[:12]} ({c.get('subject')}) by {c.get('author')} reached the release branch "
            "without a reviewed merge or a Reviewed-by/Approved-by trailer",
        )
    since = f"since {git.get('previous_tag')}" if git.get("previous_tag") else "(first release: all history)"
    yield f.result(
        f"{git.get('tag')}: all {len(commits)} commits {since} arrived reviewed ({merges} reviewed merges, {trailers} with "
        "review trailers)"
    )


REVIEWED = Check(
    CheckMeta(
        id="release-reviewed",
        title="Every commit in a release reached the release branch reviewed",
        items=("release.reviewed",),
        severity=Severity.HIGH,
        kinds=(),
        needs=_NEEDS,
        rationale="Four-eyes review of every change to software that moves money is what regulators' change-management clauses ask for; a direct push bypasses it.",
        remediation="Protect the release branch (required reviews, no direct pushes); record reviews as merge commits, Reviewed-by trailers, or the forge's export (--review-evidence).",
        references=("UKGC RTS 4 (change management)", "PCI DSS v4.0 6.5.1", "ISO/IEC 27001:2022 A.8.32"),
        facets={
            "direct-push": "a commit on the release branch without a reviewed merge or trailer",
            "unapproved-merge": "a merge the review evidence does not show approved by someone other than its author",
        },
    ),
    _reviewed,
)


# ---------------------------------------------------------------------- release.gitops-pinned


@_on_release
def _gitops_pinned(ctx: CheckContext, git: Mapping[str, Any], subject: Subject) -> Iterator[Result]:
    refs = git.get("manifests") or []
    if not ctx.param("gitops_paths", list, []):
        yield not_assessed(subject, "the profile names no GitOps manifest paths (parameters.gitops_paths)")
        return
    if git.get("unrendered"):
        yield not_assessed(
            subject,
            "; ".join(u["reason"] for u in git["unrendered"]) + " (render it in CI into a "
            "folder under gitops_paths, or install the tool)",
        )
        return
    if not refs:
        yield not_assessed(
            subject,
            f"no image reference found at {git.get('tag')} under {', '.join(ctx.param('gitops_paths', list, []))}",
        )
        return
    unpinned = [r for r in refs if not image_has_digest(str(r["image"]))]
    if unpinned:  # point the finding (SARIF, annotations) at the first unpinned reference
        subject = dataclasses.replace(
            subject, location=SourceLocation(str(unpinned[0]["file"]), int(unpinned[0]["line"]))
        )
    f = Failures(subject)
    resolved = {str(rec.get("ref")): rec.get("digest") for rec in ctx.evidence.images}
    for r in refs:
        if not image_has_digest(str(r["image"])):
            now = resolved.get(str(r["image"]))
            at = f" (the registry resolves it to {now} today)" if now else ""
            f.add("unpinned-image", f"{r['file']}:{r['line']}: {r['image']} is not pinned by digest in Git{at}")
    drift = _drift(ctx, git, f)
    compared = f"; cluster {ctx.cluster} runs what Git declares for {drift} workloads" if drift else ""
    yield f.result(f"{len(refs)} image references at {git.get('tag')} are pinned by digest{compared}")


def _drift(ctx: CheckContext, git: Mapping[str, Any], f: Failures) -> int:
    """Per workload Git declares: the cluster's object of the same kind, namespace and name must declare the same
    images and (unless an autoscaler owns the count) the same replicas. Returns how many workloads were compared."""
    if not ctx.cluster:
        return 0
    live = {(w.kind, w.namespace or "", w.name): w for w in ctx.workloads}
    compared = 0
    for d in git.get("workloads") or ():
        w = live.get((d["kind"], d["namespace"] or "default", d["name"])) or live.get(
            (d["kind"], d["namespace"], d["name"])
        )
        if w is None:
            continue
        compared += 1
        where = f"{d['file']}:{d['line']} {d['kind']} {w.namespace}/{d['name']}"
        running = {c.name: c.image for c in w.containers()}
        for name, image in sorted(d["containers"].items()):
            there = running.get(name)
            if there is not None and there != image:
                f.add("drift", f"{where}: container {name}: Git declares {image}, cluster {ctx.cluster} has {there}")
        if (
            d.get("replicas") is not None
            and not ctx.scalers_for(w)
            and w.replicas is not None
            and w.replicas != d["replicas"]
        ):
            f.add("drift", f"{where}: Git declares {d['replicas']} replicas, cluster {ctx.cluster} has {w.replicas}")
    return compared


GITOPS_PINNED = Check(
    CheckMeta(
        id="release-gitops-pinned",
        title="GitOps manifests pin digests, and the cluster runs what Git declares",
        items=("release.gitops-pinned",),
        severity=Severity.MEDIUM,
        kinds=(),
        needs=_NEEDS,
        rationale="Git is the record of what was approved; a tag in Git or a digest the cluster does not run breaks the chain from review to production.",
        remediation="Pin digests in the GitOps repository (image automation writes them) and let the controller reconcile drift.",
        references=("OpenGitOps principles v1.0", "ISO/IEC 27001:2022 A.8.32"),
        facets={
            "unpinned-image": "an image in the GitOps manifests without a digest",
            "drift": "the cluster runs a digest other than the one Git declares",
        },
    ),
    _gitops_pinned,
)


# ---------------------------------------------------------------------- release.runbook


@_on_release
def _runbook(ctx: CheckContext, git: Mapping[str, Any], subject: Subject) -> Iterator[Result]:
    book = git.get("runbook")
    if not book:
        f = Failures(subject)
        f.add(
            "no-runbook",
            f"no runbook at {git.get('tag')} (looked for {', '.join(ctx.param('runbook_paths', list, ['RUNBOOK.md', 'docs/runbook*.md']))})",
        )
        yield f.result("")
        return
    sections: Mapping[str, str] = ctx.param("runbook_sections", dict, DEFAULT_SECTIONS)
    headings = book.get("headings") or []
    f = Failures(dataclasses.replace(subject, location=SourceLocation(str(book["file"]), 1)))
    hits = []
    for name, pattern in sections.items():
        match = next((h for h in headings if re.search(str(pattern), str(h["text"]), re.IGNORECASE)), None)
        if match is None:
            f.add("missing-section", f"{book['file']}: no heading for {name} (a heading matching /{pattern}/)")
        else:
            hits.append(f"{name}: {book['file']}:{match['line']} {match['text']}")
    yield f.result(f"{book['file']} at {git.get('tag')} covers {', '.join(sections)}", *hits)


RUNBOOK = Check(
    CheckMeta(
        id="release-runbook",
        title="The release ships a runbook: rollback, provider switch, on-call",
        items=("release.runbook",),
        severity=Severity.MEDIUM,
        kinds=(),
        needs=_NEEDS,
        rationale="At 3 a.m. during a payment outage, the on-call engineer needs the rollback and provider-switch steps and who to call, versioned with the release.",
        remediation="Keep RUNBOOK.md (or docs/runbook.md) in the repository with headings for rollback, switching the payment or game provider, and on-call contacts.",
        references=("ISO/IEC 27001:2022 A.5.24", "ISO/IEC 27001:2022 A.5.30"),
        facets={"no-runbook": "no runbook at the tag", "missing-section": "the runbook lacks a required section"},
    ),
    _runbook,
)
