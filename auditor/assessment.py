"""From evidence and a profile to the report model (the JSON that every output renders).

Pure: the run's time comes in as ``as_of``; the same evidence, profile and time
give the same report, byte for byte.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from auditor import __version__
from auditor.checkapi import Check, CheckContext
from auditor.checklist import (
    EVIDENCE_REASONS,
    EVIDENCE_SUPPLIERS,
    ITEMS,
    ITEMS_BY_KEY,
    SECTIONS,
    UNCOVERED_SEVERITY,
)
from auditor.errors import ProfileError
from auditor.models import SEVERITY_ORDER, CoverageGap, EvidenceKind, EvidenceSet, Result, Severity, Status, Subject
from auditor.profiles import Profile, Waiver
from auditor.remediation import RemediationPlan

REPORT_SCHEMA_VERSION = "1.2.0"

EXIT_OK, EXIT_BLOCKING, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3

# Input problems that mean the evidence is incomplete (a bad document may be the failing one).
INCOMPLETE_GAPS = frozenset(
    {
        "unreadable",
        "malformed",
        "invalid-object",
        "too-large",
        "not-rendered",
        "conflicting-copies",
        # live clusters: a kind the auditor could not list may hold the failing object
        "forbidden",
        "unauthenticated",
        "unreachable",
    }
)
_ITEM_COUNT_KEYS = ("pass", "fail", "waived", "not_applicable", "not_assessed", "error")


@dataclass
class _Finding:
    check: Check
    result: Result
    status: Status
    waiver: Waiver | None
    severity: Severity


def _item_severities(profile: Profile, checks: Sequence[Check]) -> dict[str, Severity]:
    """Each applying item's severity: the profile's, else its most severe check's, else the checklist default."""
    by_item: dict[str, list[Severity]] = defaultdict(list)
    for c in checks:
        for key in c.meta.items:
            by_item[key].append(c.meta.severity)
    out = {}
    for item in ITEMS:
        if profile.applies(item.key):
            default = max(
                by_item[item.key], key=lambda s: s.rank, default=UNCOVERED_SEVERITY.get(item.key, Severity.MEDIUM)
            )
            out[item.key] = profile.severity_for(item.key, default)
    return out


def _finding_severity(check: Check, result: Result, item_severity: Mapping[str, Severity]) -> Severity:
    """The item's severity, lowered by as many steps as the facets that failed sit below the check's own severity
    (a profile that raises an item raises all its findings alike)."""
    base = max(
        (item_severity[k] for k in check.meta.items if k in item_severity),
        key=lambda s: s.rank,
        default=check.meta.severity,
    )
    declared = check.meta.facet_severity
    if not result.facets or not declared:
        return base
    worst = max(declared.get(f, check.meta.severity).rank for f in result.facets)
    rank = max(0, base.rank - (check.meta.severity.rank - worst))
    return SEVERITY_ORDER[rank]


@dataclass
class _ScopeDecision:
    in_scope: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)


def _scope(evidence: EvidenceSet, ctx: CheckContext, profile: Profile) -> _ScopeDecision:
    labels = {o.name: dict(o.labels) for o in ctx.objects("Namespace")}
    decision = _ScopeDecision()
    for ns in ctx.namespaces:
        verdict = profile.namespace_in_scope(ns, labels.get(ns))
        if verdict is None:
            decision.unknown.add(ns)
        elif verdict:
            decision.in_scope.add(ns)
    return decision


def _partitions(evidence: EvidenceSet) -> list[EvidenceSet]:
    """The evidence per cluster: a PDB in one cluster never covers pods in another. Manifests are one partition."""
    clusters = sorted({o.cluster for o in evidence.objects})
    if len(clusters) <= 1:
        return [evidence]
    return [dataclasses.replace(evidence, objects=[o for o in evidence.objects if o.cluster == c]) for c in clusters]


def _qualified(cluster: str, names: Iterable[str]) -> set[str]:
    return {f"{cluster}/{n}" if cluster else n for n in names}


def _subject_in_scope(subject: Subject, scope: _ScopeDecision, profile: Profile) -> bool:
    if subject.image is not None and subject.namespaces:
        return any(ns in scope.in_scope for ns in subject.namespaces)
    if subject.image is not None or subject.repo is not None:
        return True
    if subject.namespace is None:
        return profile.cluster_scoped_in_scope
    return subject.namespace in scope.in_scope


def _image_rows(ctx: CheckContext, scope: _ScopeDecision) -> list[dict[str, Any]]:
    """The supply-chain table: each in-scope image with its signer, SBOM, vulnerabilities and platforms."""
    # The one report section a check family computes (the catalog is imported by name, as catalog.py does).
    summarize = cast(
        Callable[..., list[dict[str, Any]]], importlib.import_module("auditor_checks.supply_chain").summarize
    )
    return summarize(ctx, in_scope=lambda ns: ns in scope.in_scope)


def _resilience(ctx: CheckContext, scope: _ScopeDecision) -> dict[str, list[dict[str, Any]]]:
    """The Resilience section (backups, PITR, drills, canaries, residency) of the profile's scope."""
    summarize = cast(
        Callable[..., dict[str, list[dict[str, Any]]]], importlib.import_module("auditor_checks.resilience").summarize
    )
    return summarize(ctx, in_scope=lambda ns: ns in scope.in_scope)


def _run(check: Check, ctx: CheckContext) -> list[Result]:
    try:
        return list(check.run(ctx))
    except ProfileError:
        raise
    except Exception as exc:  # a crashing check is an error result, never a pass
        subject = Subject(kind="Check", name=check.meta.id)
        return [Result(Status.ERROR, subject, f"check crashed: {type(exc).__name__}: {exc}")]


def _find_waiver(waivers: Sequence[Waiver], check: Check, subject: Subject) -> Waiver | None:
    for w in waivers:
        if w.matches(check.meta.id, check.meta.items, subject):
            return w
    return None


def _rollup(statuses: Counter[str]) -> Status:
    if statuses["fail"]:
        return Status.FAIL
    if statuses["not_assessed"] or statuses["error"]:
        return Status.NOT_ASSESSED
    if statuses["waived"]:
        return Status.WAIVED
    if statuses["pass"]:
        return Status.PASS
    if statuses["not_applicable"]:
        return Status.NOT_APPLICABLE
    return Status.NOT_ASSESSED


def _sort_key(f: _Finding, order: Mapping[str, int]) -> tuple[Any, ...]:
    s = f.result.subject
    return (order[f.check.meta.id], s.namespace or "", s.kind, s.name, s.image or "", f.result.message)


def report_id(profile: Profile, evidence: EvidenceSet, as_of: str) -> str:
    seed = f"{profile.id}|{profile.sha256}|{evidence.digest}|{as_of}".encode()
    return f"{profile.id}-{as_of[:10].replace('-', '')}-{hashlib.sha256(seed).hexdigest()[:12]}"


@dataclass
class _Judged:
    """What running the checks under a profile found, before it is rolled up into items."""

    findings: list[_Finding] = field(default_factory=list)
    by_item: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_check: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    item_reasons: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    checks_for_item: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    fail_severity: dict[str, Severity] = field(default_factory=dict)
    """Per item: the severity of its worst unwaived failing finding."""
    used_waivers: set[str] = field(default_factory=set)


def assess(
    evidence: EvidenceSet,
    profile: Profile,
    checks: Sequence[Check],
    *,
    as_of: str,
    fail_on: Severity | None = None,
    mode: str = "audit",
    remediation_plan: RemediationPlan | None = None,
) -> dict[str, Any]:
    """Run every check on the evidence and judge the results under the profile.

    ``mode`` is ``audit`` (every item holds the verdict) or ``gate`` (a release gate: runtime items
    whose evidence was not given are reported but do not hold the release, unless the profile says so).
    The phases: judge each check's results (scope, waivers, severity), roll them up per item, list the
    findings, name the coverage gaps, decide the verdict, and assemble the report.
    """
    as_of_date = dt.date.fromisoformat(as_of[:10])
    active_waivers = [w for w in profile.waivers if not w.expired(as_of_date)]
    item_severity = _item_severities(profile, checks)
    blocking_severities = {s for s in Severity if s.rank >= fail_on.rank} if fail_on else set(profile.block_on)

    judged = _Judged()
    scope = _ScopeDecision()
    image_rows: list[dict[str, Any]] = []
    resilience: dict[str, list[dict[str, Any]]] = {}
    for part in _partitions(evidence):
        ctx = CheckContext(part, profile.parameters, as_of)
        part_scope = _scope(part, ctx, profile)
        _judge(judged, evidence, ctx, part_scope, profile, checks, active_waivers, item_severity)
        if evidence.images:
            image_rows.extend(_image_rows(ctx, part_scope))
        for key, rows in _resilience(ctx, part_scope).items():
            resilience.setdefault(key, []).extend(rows)
        cluster = part.objects[0].cluster if part.objects else ""
        scope.in_scope |= _qualified(cluster, part_scope.in_scope)
        scope.unknown |= _qualified(cluster, part_scope.unknown)
    items_out = _items(judged, evidence, scope, profile, item_severity, blocking_severities, mode)
    findings_out = _findings(judged, evidence, checks, item_severity, remediation_plan)
    coverage = _coverage(evidence, scope, profile)
    verdict, exit_code = _verdict(items_out, evidence, scope)

    summary_counts = Counter(i["status"] for i in items_out)
    expired = [w for w in profile.waivers if w.expired(as_of_date)]
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "report": {
            "id": report_id(profile, evidence, as_of),
            "jurisdiction": dict(profile.jurisdiction),
            "profile": {
                "id": profile.id,
                "version": profile.version,
                "sha256": profile.sha256,
                "title": profile.title,
                "notice": profile.notice,
                "source": profile.source,
            },
            "generated_at": as_of,
            "tool": {"name": "auditor", "version": __version__},
            "evidence": {
                "sha256": evidence.digest,
                "collected_at": evidence.collected_at,
                "collector_version": evidence.collector_version,
                "kinds": sorted(k.value for k in evidence.kinds),
                "sources": [s.to_json() for s in evidence.sources],
                "objects": len(evidence.objects),
            },
            "scope": {
                "namespaces": sorted(scope.in_scope),
                "unknown": sorted(scope.unknown),
                "cluster_scoped": profile.cluster_scoped_in_scope,
                "selector": dict(profile.scope),
            },
            "gate": {
                "block_on": sorted((s.value for s in blocking_severities), key=lambda v: Severity(v).rank),
                "not_assessed_blocks": profile.not_assessed_blocks,
                "fail_on_override": fail_on.value if fail_on else None,
                "mode": mode,
                "runtime_items_block_release": profile.runtime_items_block_release,
            },
            "retention": dict(profile.retention),
            "signoff": dict(profile.signoff),
            **({"remediation_plan": _plan_summary(remediation_plan, findings_out)} if remediation_plan else {}),
        },
        "summary": {
            "items": {
                k: summary_counts.get(k, 0) for k in ("pass", "fail", "waived", "not_applicable", "not_assessed")
            },
            "blocking": verdict == "blocked",
            "verdict": verdict,
            "exit_code": exit_code,
            "findings": dict(sorted(Counter(f["status"] for f in findings_out).items())),
            "sections": _sections(items_out),
        },
        "items": items_out,
        "findings": findings_out,
        "checks": [
            {**c.meta.to_json(), "counts": dict(sorted(judged.by_check.get(c.meta.id, Counter()).items()))}
            for c in checks
        ],
        "waivers": {
            "active": [w.to_json() for w in active_waivers],
            "expired": [w.to_json() for w in expired],
            "unused": sorted(w.id for w in active_waivers if w.id not in judged.used_waivers),
        },
        "coverage": [g.to_json() for g in coverage],
        **({"images": image_rows} if evidence.images else {}),
        **({"resilience": resilience} if any(resilience.values()) else {}),
    }


def _judge(
    judged: _Judged,
    evidence: EvidenceSet,
    ctx: CheckContext,
    scope: _ScopeDecision,
    profile: Profile,
    checks: Sequence[Check],
    active_waivers: Sequence[Waiver],
    item_severity: Mapping[str, Severity],
) -> None:
    """Run each applying check on one partition of the evidence; keep in-scope results, apply waivers,
    give each finding its severity, and add it all to ``judged``."""
    unlisted = {k for r in evidence.sources if r.target == ctx.cluster and r.type == "cluster" for k in r.unlisted}
    for check in checks:
        meta = check.meta
        applying = [k for k in meta.items if profile.applies(k)]
        if not applying:
            continue
        for key in applying:
            if meta.id not in judged.checks_for_item[key]:
                judged.checks_for_item[key].append(meta.id)
        missing = sorted(meta.needs - evidence.kinds)
        blind = sorted((set(meta.kinds) | set(meta.reads)) & unlisted)
        if blind and not missing:
            reason = (
                f"{meta.id}: in cluster {ctx.cluster}, the auditor could not list {', '.join(blind)} "
                "(see coverage gaps for the permission missing)"
            )
            for key in applying:
                judged.by_item[key]["not_assessed"] += 1
                judged.item_reasons[key].append(reason)
            judged.by_check[meta.id]["not_assessed"] += 1
            continue
        if missing:
            reason = EVIDENCE_REASONS[missing[0]]
            for key in applying:
                judged.by_item[key]["not_assessed"] += 1
                judged.item_reasons[key].append(f"{meta.id}: {reason}")
            judged.by_check[meta.id]["not_assessed"] += 1
            continue
        tally: Counter[str] = Counter()
        reasons: list[str] = []
        for result in _run(check, ctx):
            status = result.status
            if status is not Status.ERROR and not _subject_in_scope(result.subject, scope, profile):
                continue
            if status is Status.PASS or status is Status.NOT_APPLICABLE:
                tally[status] += 1  # the common case: counted, nothing more to record
                continue
            waiver = None
            if status is Status.FAIL:
                waiver = _find_waiver(active_waivers, check, result.subject)
                if waiver is not None:
                    status = Status.WAIVED
                    judged.used_waivers.add(waiver.id)
            tally[status] += 1
            if status is Status.NOT_ASSESSED or status is Status.ERROR:
                reasons.append(f"{meta.id}: {result.message}")
            finding = _Finding(check, result, status, waiver, _finding_severity(check, result, item_severity))
            judged.findings.append(finding)
            if status is Status.FAIL:
                for key in applying:
                    worst = judged.fail_severity.get(key)
                    if worst is None or finding.severity.rank > worst.rank:
                        judged.fail_severity[key] = finding.severity
        # Status is a StrEnum: its members count under their string values ("pass", "fail", ...).
        counted = {str(k): v for k, v in tally.items()}
        judged.by_check[meta.id].update(counted)
        for key in applying:
            judged.by_item[key].update(counted)
            judged.item_reasons[key].extend(reasons)


def _items(
    judged: _Judged,
    evidence: EvidenceSet,
    scope: _ScopeDecision,
    profile: Profile,
    item_severity: Mapping[str, Severity],
    blocking_severities: set[Severity],
    mode: str,
) -> list[dict[str, Any]]:
    """One entry per applying checklist item: its rolled-up status, why, and whether it blocks."""
    nothing_in_scope = not scope.in_scope
    items_out: list[dict[str, Any]] = []
    for item in ITEMS:
        if not profile.applies(item.key):
            continue
        ids = judged.checks_for_item.get(item.key, [])
        severity = item_severity[item.key]
        counts = judged.by_item.get(item.key, Counter())
        reason = ""
        if not ids:
            status = Status.NOT_ASSESSED
            reason = (
                "no check in this version assesses it yet (the kind of evidence it needs was collected)"
                if item.evidence in evidence.kinds
                else EVIDENCE_REASONS[item.evidence]
            )
        elif nothing_in_scope and not counts["fail"] and item.evidence is not EvidenceKind.GIT:
            # (Git items judge the release, not namespaces: the scope does not select them.)
            status = Status.NOT_ASSESSED
            reason = "the profile's scope matched no namespace in the evidence"
        else:
            status = _rollup(counts)
            if status is Status.NOT_ASSESSED:
                reason = (
                    "; ".join(sorted(set(judged.item_reasons[item.key]))[:3])
                    or "no subject of this item was found in scope in the evidence"
                )
        # A release gate judges what a release candidate carries. Runtime items (live state, drills,
        # telemetry) without their evidence hold it only when the profile says so. One that fails on what the
        # release declares (a volume in the wrong region, a PERMISSIVE mesh policy) holds it: fail closed.
        deferred = (
            mode == "gate"
            and item.phase == "runtime"
            and status is Status.NOT_ASSESSED
            and item.evidence not in evidence.kinds
            and not profile.runtime_items_block_release
        )
        # A failing item blocks at the severity of what failed (an unset allowPrivilegeEscalation is not
        # privileged: true); an item without evidence blocks at the item's own severity.
        blocking = not deferred and (
            (status is Status.FAIL and judged.fail_severity.get(item.key, severity) in blocking_severities)
            or (status is Status.NOT_ASSESSED and profile.not_assessed_blocks and severity in blocking_severities)
        )
        entry: dict[str, Any] = {
            "key": item.key,
            "title": item.title,
            "section": item.section,
            "status": status.value,
            "severity": severity.value,
            "blocking": blocking,
            "phase": item.phase,
            "controls": [c.to_json() for c in profile.controls_for(item.key)],
            "checks": ids,
            "counts": {k: counts[k] for k in _ITEM_COUNT_KEYS},
        }
        if reason:
            entry["reason"] = reason
        if status is Status.NOT_ASSESSED and item.evidence not in evidence.kinds:
            entry["supplied_by"] = EVIDENCE_SUPPLIERS[item.evidence]
        if deferred:
            entry["deferred"] = "runtime item: judged by an audit of the running platform, not by the release gate"
        items_out.append(entry)
    return items_out


def _findings(
    judged: _Judged,
    evidence: EvidenceSet,
    checks: Sequence[Check],
    item_severity: Mapping[str, Severity],
    remediation_plan: RemediationPlan | None,
) -> list[dict[str, Any]]:
    """Every non-passing result, in catalog order then by subject, located where its object was read."""
    order = {c.meta.id: i for i, c in enumerate(checks)}
    located = {(o.cluster, o.kind, o.namespace, o.name): o for o in evidence.objects}
    out = []
    for f in sorted(judged.findings, key=lambda f: _sort_key(f, order)):
        subject = f.result.subject
        entry: dict[str, Any] = {
            "check": f.check.meta.id,
            "items": [k for k in f.check.meta.items if k in item_severity],
            "status": f.status.value,
            "severity": f.severity.value,
            "subject": subject.to_json(),
            "message": f.result.message,
            "facets": list(f.result.facets),
            "evidence": list(f.result.evidence),
        }
        obj = located.get((subject.cluster, subject.kind, subject.namespace, subject.name))
        if subject.location is not None:
            entry["location"] = subject.location.to_json()
        elif obj is not None:
            entry["location"] = obj.location.to_json()
        if obj is not None and obj.also_at and obj.location == subject.location:
            entry["also_at"] = [loc.to_json() for loc in obj.also_at]
        if f.waiver is not None:
            entry["waiver"] = {"id": f.waiver.id, "ticket": f.waiver.ticket, "expires": f.waiver.expires.isoformat()}
        planned = remediation_plan and remediation_plan.match(f.check.meta.id, f.check.meta.items, subject)
        if planned:
            entry["remediation_plan"] = planned.for_finding()
        out.append(entry)
    return out


def _coverage(evidence: EvidenceSet, scope: _ScopeDecision, profile: Profile) -> list[CoverageGap]:
    """What the sources could not see, and what the profile's scope could not place."""
    coverage: list[CoverageGap] = list(evidence.gaps)
    for ns in sorted(scope.unknown):
        coverage.append(
            CoverageGap(
                source="profile",
                target=f"namespace {ns}",
                gap="scope-unknown",
                reason=(
                    f"no Namespace object with labels in the evidence, so the {profile.id} scope selector cannot place it; "
                    "not assessed. Include the Namespace manifest, or list the namespace under scope.namespaces.names "
                    "in your profile"
                ),
            )
        )
    if not scope.in_scope:
        coverage.append(
            CoverageGap(
                source="profile",
                target=profile.id,
                gap="empty-scope",
                reason="the profile's scope matched no namespace in the evidence",
            )
        )
    return coverage


def _verdict(items: Sequence[Mapping[str, Any]], evidence: EvidenceSet, scope: _ScopeDecision) -> tuple[str, int]:
    """blocked (1) over incomplete (3) over pass (0)."""
    if any(i["blocking"] and i["status"] == "fail" for i in items):
        return "blocked", EXIT_BLOCKING
    # Fail closed: an unreadable document, or a namespace the scope cannot place, may hold the failing workload.
    incomplete_inputs = any(g.gap in INCOMPLETE_GAPS for g in evidence.gaps) or bool(scope.unknown)
    if incomplete_inputs or any(i["blocking"] and i["status"] == "not_assessed" for i in items):
        return "incomplete", EXIT_INCOMPLETE
    return "pass", EXIT_OK


def _plan_summary(plan: RemediationPlan, findings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    used = {f["remediation_plan"]["id"] for f in findings if "remediation_plan" in f}
    return {
        "source": plan.source,
        "sha256": plan.sha256,
        "entries": [e.to_json() for e in plan.entries],
        "unused": sorted(e.id for e in plan.entries if e.id not in used),
    }


def _sections(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, Counter[str]] = {s: Counter() for s in SECTIONS}
    for i in items:
        counts[ITEMS_BY_KEY[i["key"]].section][i["status"]] += 1
    return [
        {"section": s, **{k: counts[s].get(k, 0) for k in ("pass", "fail", "waived", "not_applicable", "not_assessed")}}
        for s in SECTIONS
    ]
