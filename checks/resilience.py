"""Resilience: canary gates, SLI alerts, tracing, mesh mTLS and provider timeouts, database pooling, GitOps sync,
warm capacity and data residency: the items that decide whether a money platform survives a bad release, a
degraded payment provider or a lost region, and whether its data stays where the licence says.

Each check reads declarations (manifests or a cluster) and, where a controller reports it, status. What the
evidence cannot show is ``not_assessed`` with the reason, never passed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from auditor.checkapi import (
    CNPG,
    VELERO,
    Check,
    CheckContext,
    CheckMeta,
    Failures,
    age_hours,
    condition,
    group_of,
    not_applicable,
    not_assessed,
    passed,
)
from auditor.kube import Workload, as_list, as_mapping, selector_matches
from auditor.models import K8sObject, Result, Severity, Subject

from .backup import (
    archiving_configured,
    backup_targets,
    covering_schedules,
    databases,
    latest_pitr_record,
    records,
    rpo_hours,
    scheduled_backups,
    self_managed_databases,
)

_AVAIL_REFS = ("ISO/IEC 27001:2022 A.8.14", "ISO/IEC 27001:2022 A.8.32")
_NET_REFS = ("ISO/IEC 27001:2022 A.8.20", "ISO/IEC 27001:2022 A.8.24", "PCI DSS v4.0 4.2.1")
_OBS_REFS = ("ISO/IEC 27001:2022 A.8.16", "PCI DSS v4.0 10.7.2")


def _platform_subject(ctx: CheckContext, kind: str, name: str) -> Subject:
    return Subject(kind=kind, name=name, namespace=None, cluster=ctx.cluster)


def _selected(ctx: CheckContext, w: Workload, param: str) -> bool:
    selector = ctx.param(param, dict, {})
    return not selector or selector_matches(selector, w.obj.labels) or selector_matches(selector, w.pod_labels)


# ---------------------------------------------------------------------- canary gates

_ERROR_METRIC = re.compile(r"error|5\.\.|5xx|fail|success[-_ ]?rate|availability", re.I)
_LATENCY_METRIC = re.compile(r"latency|duration|p9[059]|histogram_quantile|response[-_ ]?time", re.I)


def _slo_kinds(metrics: Sequence[Mapping[str, Any]]) -> set[str]:
    found = set()
    for m in metrics:
        text = f"{m.get('name', '')} {as_mapping(m.get('provider'))} {m.get('query', '')} {m.get('templateRef', '')}"
        if _ERROR_METRIC.search(text):
            found.add("error rate")
        if _LATENCY_METRIC.search(text):
            found.add("latency")
    return found


def _weights_ok(weights: Sequence[int]) -> bool:
    """At least two increasing steps below 100%: traffic moves in stages, not at once."""
    return len(weights) >= 2 and all(b > a for a, b in itertools.pairwise(weights)) and weights[0] < 100


def _argo_canary(ctx: CheckContext, rollout: K8sObject, f: Failures) -> str:
    strategy = as_mapping(rollout.spec.get("strategy"))
    if "canary" not in strategy:
        kind = "blue-green" if "blueGreen" in strategy else "no"
        f.add("no-canary", f"the Rollout uses a {kind} strategy: traffic moves to the new version at once")
        return ""
    canary = as_mapping(strategy.get("canary"))
    steps = [as_mapping(s) for s in as_list(canary.get("steps"))]
    weights = [int(s["setWeight"]) for s in steps if isinstance(s.get("setWeight"), int)]
    if not _weights_ok(weights):
        f.add("no-steps", f"canary weights {weights or 'none'}: traffic must move in increasing steps (5→25→50→100)")
    refs = [as_mapping(t) for t in as_list(as_mapping(canary.get("analysis")).get("templates"))]
    for s in steps:
        refs += [as_mapping(t) for t in as_list(as_mapping(s.get("analysis")).get("templates"))]
    if not refs:
        f.add("no-analysis", "no analysis runs during the canary: nothing stops a bad version")
        return f"steps {weights}"
    metrics: list[Mapping[str, Any]] = []
    for ref in refs:
        name = str(ref.get("templateName", ""))
        cluster_scope = ref.get("clusterScope") is True
        template = next(
            (
                t
                for t in ctx.objects("ClusterAnalysisTemplate" if cluster_scope else "AnalysisTemplate")
                if t.name == name and (cluster_scope or t.namespace == rollout.namespace)
            ),
            None,
        )
        if template is None:
            f.add("analysis-template-missing", f"analysis template {name} is not in the evidence")
            continue
        metrics += [as_mapping(m) for m in as_list(template.spec.get("metrics"))]
    if metrics:
        missing = {"error rate", "latency"} - _slo_kinds(metrics)
        if missing:
            f.add("no-slo-metrics", f"the analysis measures no {' or '.join(sorted(missing))}")
        gating = [
            m
            for m in metrics
            if m.get("dryRun") is not True
            and (m.get("failureCondition") or m.get("successCondition"))
            and not (isinstance(m.get("failureLimit"), int) and m["failureLimit"] < 0)  # -1: failures never abort
        ]
        if not gating:
            f.add(
                "no-rollback",
                "no analysis metric can abort the rollout (a success or failure condition, outside dry-run, with a "
                "failureLimit that is not -1)",
            )
    status = as_mapping(rollout.raw.get("status"))
    last = ""
    if status.get("phase"):
        last = f"; last rollout {status.get('phase')}" + (" (aborted by analysis)" if status.get("abort") else "")
    return f"Argo Rollout steps {weights}, analysis {', '.join(str(r.get('templateName')) for r in refs)}{last}"


def _flagger(canary: K8sObject, f: Failures) -> str:
    analysis = as_mapping(canary.spec.get("analysis") or canary.spec.get("canaryAnalysis"))
    weights = [int(w) for w in as_list(analysis.get("stepWeights")) if isinstance(w, int)]
    step, top = analysis.get("stepWeight"), analysis.get("maxWeight")
    if not weights and isinstance(step, int) and isinstance(top, int) and step > 0:
        weights = list(range(step, top + 1, step))
    if not _weights_ok(weights) and not analysis.get("iterations"):
        f.add("no-steps", f"Canary {canary.name} weights {weights or 'none'}: traffic must move in increasing steps")
    metrics = [as_mapping(m) for m in as_list(analysis.get("metrics"))]
    if not metrics:
        f.add("no-analysis", f"Canary {canary.name} checks no metrics")
    else:
        missing = {"error rate", "latency"} - _slo_kinds(metrics)
        if missing:
            f.add("no-slo-metrics", f"Canary {canary.name} measures no {' or '.join(sorted(missing))}")
        if not any(m.get("thresholdRange") for m in metrics):
            f.add("no-rollback", f"Canary {canary.name}: no metric has a thresholdRange, so none fails the canary")
    threshold = analysis.get("threshold")
    if not isinstance(threshold, int) or threshold < 1:
        f.add("no-rollback", f"Canary {canary.name} sets no analysis.threshold (failed checks before rollback)")
    phase = as_mapping(canary.raw.get("status")).get("phase")
    last = f"; last rollout {phase}" if phase else ""
    return f"Flagger Canary {canary.name} steps {weights}, {len(metrics)} metric(s){last}"


def _flagger_canaries(ctx: CheckContext) -> dict[tuple[str | None, str], K8sObject]:
    """(namespace, target name) -> the Flagger Canary that releases that Deployment."""
    return {
        (c.namespace, str(as_mapping(c.spec.get("targetRef")).get("name", ""))): c
        for c in ctx.objects("Canary")
        if group_of(c) == "flagger.app"
    }


def _canary_plan(
    ctx: CheckContext, w: Workload, canaries: Mapping[tuple[str | None, str], K8sObject], f: Failures
) -> str | None:
    """The workload's canary plan in words, its gaps added to ``f``; None for a plain Deployment (no canary)."""
    if w.kind == "Rollout":
        return _argo_canary(ctx, w.obj, f)
    canary = canaries.get((w.namespace, w.name))
    return _flagger(canary, f) if canary is not None else None


def _canary_gates(ctx: CheckContext) -> Iterator[Result]:
    managed = {
        (r.namespace, str(as_mapping(r.spec.get("workloadRef")).get("name", "")))
        for r in ctx.objects("Rollout")
        if r.spec.get("workloadRef")
    }
    canaries = _flagger_canaries(ctx)
    for w in ctx.workloads:
        if w.kind not in ("Deployment", "Rollout") or (w.namespace, w.name) in managed:
            continue
        if not ctx.is_serving(w) or not _selected(ctx, w, "canary_selector"):
            yield not_applicable(w.subject, "does not serve traffic, or is not selected by parameters.canary_selector")
            continue
        f = Failures(w.subject)
        plan = _canary_plan(ctx, w, canaries, f)
        if plan is None:
            f.add("no-canary", "a plain Deployment: a release reaches every pod with no SLO analysis or rollback")
        yield f.result(plan or "")


CANARY_GATES = Check(
    CheckMeta(
        id="rollout-canary-gates",
        title="Releases go out as canaries gated by SLO analysis, with automatic rollback",
        items=("rollout.canary-gates",),
        severity=Severity.HIGH,
        kinds=("Deployment", "Rollout"),
        reads=("AnalysisTemplate", "ClusterAnalysisTemplate", "Canary", "Service"),
        rationale=(
            "A bad wallet or betting release that reaches every pod at once fails every player at once; a canary "
            "that measures error rate and latency and rolls back limits the damage to a few percent for minutes."
        ),
        remediation=(
            "Use an Argo Rollout with canary steps (e.g. setWeight 5, 10, 25, 50) and an AnalysisTemplate on error "
            "rate and p95 latency with a failureCondition, or a Flagger Canary with stepWeights, metrics with "
            "thresholdRange and analysis.threshold."
        ),
        references=_AVAIL_REFS,
        facets={
            "no-canary": "no canary: the release reaches every pod at once",
            "no-steps": "no increasing traffic steps",
            "no-analysis": "no analysis during the canary",
            "analysis-template-missing": "the analysis template is not in the evidence",
            "no-slo-metrics": "the analysis does not measure error rate and latency",
            "no-rollback": "no metric can fail the canary (no automatic rollback)",
        },
    ),
    _canary_gates,
)


# ---------------------------------------------------------------------- SLI alerts


def _alert_rules(ctx: CheckContext) -> list[tuple[K8sObject, Mapping[str, Any]]]:
    out = []
    for rule_set in ctx.objects("PrometheusRule"):
        for group in as_list(rule_set.spec.get("groups")):
            for rule in as_list(as_mapping(group).get("rules")):
                rule = as_mapping(rule)
                if rule.get("alert"):
                    out.append((rule_set, rule))
    return out


def _sli_alerts(ctx: CheckContext) -> Iterator[Result]:
    slis = ctx.param("business_slis", list, [])
    if not slis:
        yield not_assessed(
            _platform_subject(ctx, "BusinessSLI", "(none named)"),
            "the profile names no business SLIs (parameters.business_slis: name, metric and alert patterns)",
        )
        return
    rules = _alert_rules(ctx)
    for sli in slis:
        sli = as_mapping(sli)
        name = str(sli.get("name", "?"))
        subject = _platform_subject(ctx, "BusinessSLI", name)
        if not ctx.objects("PrometheusRule") and not rules:
            yield not_assessed(
                subject,
                "no PrometheusRule in the evidence: alert rules live with the monitoring stack (include its "
                "manifests, or read the cluster)",
            )
            continue
        metric = re.compile(str(sli.get("metric") or re.escape(name)), re.I)
        alert = re.compile(str(sli["alert"]), re.I) if sli.get("alert") else None
        hits = [
            (rs, r)
            for rs, r in rules
            if metric.search(str(r.get("expr", ""))) or (alert is not None and alert.search(str(r.get("alert"))))
        ]
        f = Failures(subject)
        if not hits:
            f.add("no-alert", f"no alert rule covers the {name} SLI (metric /{metric.pattern}/)")
        shown = ", ".join(f"{rs.namespace}/{rs.name}: {r.get('alert')}" for rs, r in hits[:3])
        yield f.result(f"alerted by {shown}")


SLI_ALERTS = Check(
    CheckMeta(
        id="obs-sli-alerts",
        title="Alert rules cover the business SLIs (login, deposit, bet, withdrawal)",
        items=("obs.sli-alerts",),
        severity=Severity.MEDIUM,
        kinds=("BusinessSLI",),
        reads=("PrometheusRule",),
        rationale=(
            "Players notice failed deposits and withdrawals before CPU alarms do; an operator must learn of a broken "
            "money path from its own alerts, and regulators ask how incidents are detected."
        ),
        remediation=(
            "Add PrometheusRule alerts on each SLI's error rate and latency (burn-rate alerts), matching the "
            "profile's parameters.business_slis patterns."
        ),
        references=_OBS_REFS,
        facets={"no-alert": "no alert rule covers the SLI"},
    ),
    _sli_alerts,
)


# ---------------------------------------------------------------------- tracing

_INJECT = re.compile(r"^instrumentation\.opentelemetry\.io/inject-[a-z-]+$")
_OTEL_ENV = ("OTEL_EXPORTER_", "OTEL_SERVICE_NAME")


def _tracing(ctx: CheckContext) -> Iterator[Result]:
    instrumentations = {(o.namespace, o.name) for o in ctx.objects("Instrumentation")}
    ns_annotations = {o.name: o.annotations for o in ctx.objects("Namespace")}
    for w in ctx.workloads:
        if w.kind not in ("Deployment", "StatefulSet", "Rollout", "DaemonSet") or not ctx.is_serving(w):
            continue
        f = Failures(w.subject)
        how = ""
        annotations = {**ns_annotations.get(w.namespace or "", {}), **w.pod_annotations}
        for key, value in sorted(annotations.items()):
            if not _INJECT.match(key) or str(value).lower() == "false":
                continue
            value = str(value)
            ns, _, name = value.rpartition("/") if "/" in value else (w.namespace, "", value)
            if value.lower() == "true":
                found = any(i_ns == w.namespace for i_ns, _ in instrumentations)
                target = f"an Instrumentation in {w.namespace}"
            else:
                found = (ns or w.namespace, name) in instrumentations
                target = f"Instrumentation {ns or w.namespace}/{name}"
            if found:
                how = f"OpenTelemetry operator injection ({key}: {value})"
            else:
                f.add("instrumentation-missing", f"{key} asks for {target}, which is not in the evidence")
            break
        env = {
            str(as_mapping(e).get("name")): str(as_mapping(e).get("value", ""))
            for c in w.app_containers()
            for e in as_list(c.spec.get("env"))
        }
        if env.get("OTEL_SDK_DISABLED", "").lower() == "true" or env.get("OTEL_TRACES_EXPORTER") == "none":
            f.add("tracing-disabled", "OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none switches tracing off")
        elif not how and (otel := sorted(n for n in env if n.startswith(_OTEL_ENV))):
            how = f"OpenTelemetry SDK configured in its environment ({', '.join(otel[:3])})"
        if not how and str(annotations.get("sidecar.opentelemetry.io/inject", "false")).lower() != "false":
            how = "an OpenTelemetry Collector sidecar (sidecar.opentelemetry.io/inject)"
        if not how and not f.found:
            f.add(
                "no-tracing",
                "no OpenTelemetry configuration: no instrumentation.opentelemetry.io/inject-* or "
                "sidecar.opentelemetry.io/inject annotation, and no OTEL_EXPORTER_* or OTEL_SERVICE_NAME variable",
            )
        yield f.result(f"exports traces: {how}")


TRACING = Check(
    CheckMeta(
        id="obs-tracing",
        title="Serving workloads export OpenTelemetry traces",
        items=("obs.tracing",),
        severity=Severity.LOW,
        kinds=("Deployment", "StatefulSet", "Rollout", "DaemonSet"),
        reads=("Instrumentation", "Namespace", "Service"),
        rationale=(
            "A deposit crosses the gateway, wallet, payment provider and ledger; without traces, a slow or lost "
            "transaction cannot be followed, and incident timelines for the regulator are guesswork."
        ),
        remediation=(
            "Annotate the pod template with instrumentation.opentelemetry.io/inject-<language> and deploy an "
            "Instrumentation, or set OTEL_EXPORTER_OTLP_ENDPOINT for an SDK-instrumented service."
        ),
        references=_OBS_REFS,
        facets={
            "no-tracing": "no trace export configured",
            "instrumentation-missing": "the annotation names an Instrumentation not in the evidence",
            "tracing-disabled": "tracing is switched off",
        },
    ),
    _tracing,
)


# ---------------------------------------------------------------------- mTLS

_AUTHENTICATED = ("all-authenticated", "cluster-authenticated")


def _pa_mode(pa: K8sObject) -> str:
    return str(as_mapping(pa.spec.get("mtls")).get("mode") or "UNSET").upper()


def _mtls_strict(ctx: CheckContext) -> Iterator[Result]:
    root = ctx.param("istio_root_namespace", str, "istio-system")
    pas = [p for p in ctx.objects("PeerAuthentication") if group_of(p) == "security.istio.io"]
    mesh = [p for p in pas if p.namespace == root and not p.spec.get("selector")]
    namespaces = {o.name: o for o in ctx.objects("Namespace")}
    # The mesh's own control plane is not meshed by design (istiod, Linkerd's controllers).
    with_workloads = sorted({w.namespace for w in ctx.workloads if w.namespace} - {root, "linkerd", "linkerd-viz"})
    for ns in with_workloads:
        subject = ctx.namespace_subject(ns)
        f = Failures(subject)
        ns_obj = namespaces.get(ns)
        labels = ns_obj.labels if ns_obj else {}
        annotations = ns_obj.annotations if ns_obj else {}
        local = [p for p in pas if p.namespace == ns]
        ns_wide = next((p for p in local if not p.spec.get("selector") and _pa_mode(p) != "UNSET"), None)
        mode, where = "", ""
        if ns_wide is not None:
            mode, where = _pa_mode(ns_wide), f"PeerAuthentication {ns}/{ns_wide.name}"
        elif mesh and _pa_mode(mesh[0]) != "UNSET":
            mode, where = _pa_mode(mesh[0]), f"mesh-wide PeerAuthentication {root}/{mesh[0].name}"
        istio_injected = labels.get("istio-injection") == "enabled" or "istio.io/rev" in labels
        linkerd = str(annotations.get("linkerd.io/inject", "")) == "enabled"
        if mode or istio_injected:
            if mode != "STRICT":
                f.add(
                    "not-strict", f"Istio mTLS mode is {mode or 'PERMISSIVE (no PeerAuthentication)'} {where}".strip()
                )
            for p in local:
                ports = {
                    str(as_mapping(v).get("mode", "")).upper() for v in as_mapping(p.spec.get("portLevelMtls")).values()
                }
                loose = {m for m in ({_pa_mode(p)} | ports) if m in ("PERMISSIVE", "DISABLE")}
                if p.spec.get("selector") and loose:
                    f.add("permissive-exception", f"PeerAuthentication {p.name} sets {', '.join(sorted(loose))}")
            if not istio_injected:
                f.add("not-meshed", "STRICT is set but the namespace is not labelled for sidecar injection")
            opted_out = [
                w.name
                for w in ctx.workloads_of(ns)
                if str(w.pod_annotations.get("sidecar.istio.io/inject", "")).lower() == "false"
            ]
            if opted_out:
                f.add("not-meshed", f"sidecar injection switched off for {', '.join(opted_out[:5])}")
            yield f.result(f"Istio mTLS STRICT ({where}), sidecars injected")
        elif linkerd:
            policy = str(annotations.get("config.linkerd.io/default-inbound-policy", ""))
            if policy not in _AUTHENTICATED:
                f.add(
                    "not-strict",
                    f"Linkerd meshes it but its default inbound policy is {policy or 'the install default'}: "
                    "unauthenticated clients are accepted (set all-authenticated)",
                )
            yield f.result(f"Linkerd mTLS with default inbound policy {policy}")
        else:
            f.add("no-mtls", "no service mesh mTLS: no Istio PeerAuthentication or injection, no Linkerd injection")
            yield f.result("")


MTLS_STRICT = Check(
    CheckMeta(
        id="net-mtls-strict",
        title="Service-to-service traffic uses mTLS in STRICT mode",
        items=("net.mtls-strict",),
        severity=Severity.HIGH,
        kinds=("Namespace",),
        reads=("PeerAuthentication", "Deployment", "StatefulSet"),
        rationale=(
            "Card data and wallet balances cross the cluster network between services; PERMISSIVE mode accepts "
            "plaintext from anything that reaches the pod, so one compromised pod can read or forge payment calls."
        ),
        remediation=(
            "Istio: a PeerAuthentication with mtls.mode STRICT in the namespace (or mesh-wide in the root "
            "namespace), sidecar injection on, and no PERMISSIVE or DISABLE exceptions. Linkerd: inject the "
            "namespace and set config.linkerd.io/default-inbound-policy: all-authenticated."
        ),
        references=_NET_REFS,
        facets={
            "no-mtls": "no mesh mTLS",
            "not-strict": "mTLS is not enforced (PERMISSIVE or unauthenticated allowed)",
            "permissive-exception": "a workload or port is exempted from STRICT",
            "not-meshed": "workloads run without the sidecar",
        },
    ),
    _mtls_strict,
)


# ---------------------------------------------------------------------- provider egress


def _hosts_match(pattern: str, hosts: Sequence[Any]) -> bool:
    return any(fnmatch.fnmatchcase(str(h), pattern) or fnmatch.fnmatchcase(pattern, str(h)) for h in hosts)


def _egress_timeouts(ctx: CheckContext) -> Iterator[Result]:
    hosts = [str(h) for h in ctx.param("provider_hosts", list, [])]
    if not hosts:
        yield not_assessed(
            _platform_subject(ctx, "ProviderHost", "(none named)"),
            "the profile names no payment, KYC or game provider hosts (parameters.provider_hosts)",
        )
        return
    max_attempts = ctx.param("max_retry_attempts", int, 3)
    services = [o for o in ctx.objects("VirtualService") if group_of(o) == "networking.istio.io"]
    rules = [o for o in ctx.objects("DestinationRule") if group_of(o) == "networking.istio.io"]
    for host in hosts:
        subject = _platform_subject(ctx, "ProviderHost", host)
        f = Failures(subject)
        vs = [v for v in services if _hosts_match(host, as_list(v.spec.get("hosts")))]
        dr = [d for d in rules if _hosts_match(host, [d.spec.get("host", "")])]
        if not vs:
            f.add("no-timeout", "no VirtualService for the host: calls have no timeout and no retry budget")
        for v in vs:
            for route in as_list(v.spec.get("http")) or [{}]:
                route = as_mapping(route)
                if not route.get("timeout"):
                    f.add("no-timeout", f"VirtualService {v.namespace}/{v.name} has an HTTP route without a timeout")
                retries = as_mapping(route.get("retries"))
                attempts = retries.get("attempts")
                if not retries:
                    f.add("retries-unbounded", f"VirtualService {v.name}: no retries policy (Istio retries twice)")
                elif isinstance(attempts, int) and attempts > max_attempts:
                    f.add(
                        "retries-unbounded", f"VirtualService {v.name}: {attempts} retry attempts, over {max_attempts}"
                    )
                elif not retries.get("perTryTimeout"):
                    f.add("retries-unbounded", f"VirtualService {v.name}: retries without perTryTimeout")
        policy = as_mapping(as_mapping(dr[0].spec.get("trafficPolicy")) if dr else {})
        if not dr or not policy.get("outlierDetection"):
            f.add("no-outlier-detection", "no DestinationRule with outlierDetection: a failing endpoint keeps traffic")
        pool = as_mapping(policy.get("connectionPool"))
        if dr and not (as_mapping(pool.get("tcp")).get("maxConnections") or as_mapping(pool.get("http"))):
            f.add("no-connection-limits", f"DestinationRule {dr[0].name} sets no connectionPool limits")
        names = ", ".join([f"VirtualService {v.name}" for v in vs] + [f"DestinationRule {d.name}" for d in dr])
        yield f.result(f"timeouts, bounded retries, outlier detection and connection limits ({names})")


EGRESS_TIMEOUTS = Check(
    CheckMeta(
        id="net-egress-timeouts",
        title="Provider calls have timeouts, bounded retries, outlier detection and connection limits",
        items=("net.egress-timeouts",),
        severity=Severity.HIGH,
        kinds=("ProviderHost",),
        reads=("VirtualService", "DestinationRule"),
        rationale=(
            "When a payment, KYC or game provider degrades, calls without timeouts pile up until every thread "
            "waits: the trap is a mesh that hangs the whole platform on one slow provider."
        ),
        remediation=(
            "For each provider host (parameters.provider_hosts): a VirtualService with timeout and retries "
            "(attempts ≤ parameters.max_retry_attempts, perTryTimeout), and a DestinationRule with outlierDetection "
            "and connectionPool limits."
        ),
        references=_NET_REFS,
        facets={
            "no-timeout": "no timeout on calls to the provider",
            "retries-unbounded": "retries without a bound or per-try timeout",
            "no-outlier-detection": "no outlier detection",
            "no-connection-limits": "no connection pool limits",
        },
    ),
    _egress_timeouts,
)


# ---------------------------------------------------------------------- connection pooling

_POOLER_IMAGE = re.compile(r"pgbouncer|odyssey|pgcat|proxysql|mysql-?router|pgpool", re.I)


def _connection_pooling(ctx: CheckContext) -> Iterator[Result]:
    poolers = [p for p in ctx.objects("Pooler") if group_of(p) == CNPG]
    pooler_workloads = [
        w for w in ctx.workloads if any(_POOLER_IMAGE.search(str(c.spec.get("image", ""))) for c in w.app_containers())
    ]
    for db in ctx.objects("Cluster"):
        if group_of(db) != CNPG:
            continue
        f = Failures(Subject.of(db))
        mine = [
            p
            for p in poolers
            if p.namespace == db.namespace and as_mapping(p.spec.get("cluster")).get("name") == db.name
        ]
        if not mine:
            f.add("no-pooler", "no CloudNativePG Pooler (PgBouncer) in front of the database")
            yield f.result("")
            continue
        params = as_mapping(as_mapping(mine[0].spec.get("pgbouncer")).get("parameters"))
        limits = {k: params[k] for k in ("max_client_conn", "default_pool_size", "max_db_connections") if k in params}
        shown = ", ".join(f"{k}={v}" for k, v in limits.items()) or "PgBouncer's defaults (max_client_conn 100)"
        yield f.result(f"Pooler {mine[0].name} ({mine[0].spec.get('type', 'rw')}) with {shown}")
    for w in (w for ns in sorted({w.namespace or "" for w in ctx.workloads}) for w in self_managed_databases(ctx, ns)):
        f = Failures(w.subject)
        near = [p for p in pooler_workloads if p.namespace == w.namespace]
        if not near:
            f.add("no-pooler", "a database StatefulSet with no PgBouncer/ProxySQL-style pooler in its namespace")
        yield f.result(f"pooled by {', '.join(f'{p.kind} {p.name}' for p in near)}")


CONNECTION_POOLING = Check(
    CheckMeta(
        id="db-connection-pooling",
        title="Databases sit behind a connection pooler with limits",
        items=("db.connection-pooling",),
        severity=Severity.MEDIUM,
        kinds=("Cluster", "StatefulSet"),
        reads=("Pooler", "Deployment"),
        rationale=(
            "At a peak (a derby kick-off) every API pod opens connections until the database refuses them all; a "
            "pooler with limits queues the excess instead of failing every deposit."
        ),
        remediation=(
            "Put a CloudNativePG Pooler (PgBouncer) in front of each Cluster with max_client_conn and "
            "default_pool_size set, or run PgBouncer/ProxySQL beside a self-managed database."
        ),
        references=_AVAIL_REFS,
        facets={"no-pooler": "no connection pooler in front of the database"},
    ),
    _connection_pooling,
)


# ---------------------------------------------------------------------- GitOps


def _release_commit(ctx: CheckContext) -> tuple[str, str]:
    git = as_mapping(ctx.evidence.git)
    return str(git.get("tag") or ""), str(git.get("commit") or "")


def _gitops_synced(ctx: CheckContext) -> Iterator[Result]:
    tag, commit = _release_commit(ctx)
    managed: set[str] = set()
    for app in ctx.objects("Application", "Kustomization"):
        group = group_of(app)
        if (app.kind, group) not in (("Application", "argoproj.io"), ("Kustomization", "kustomize.toolkit.fluxcd.io")):
            continue
        status = as_mapping(app.raw.get("status"))
        if app.kind == "Application":
            target = str(as_mapping(app.spec.get("destination")).get("namespace") or app.namespace or "")
            sync = str(as_mapping(status.get("sync")).get("status", ""))
            health = str(as_mapping(status.get("health")).get("status", ""))
            revision = str(as_mapping(status.get("sync")).get("revision", ""))
            state = f"sync {sync or 'unknown'}, health {health or 'unknown'}"
            ok = sync == "Synced" and health == "Healthy"
        else:
            target = str(app.spec.get("targetNamespace") or app.namespace or "")
            ready = condition(app, "Ready")
            revision = str(status.get("lastAppliedRevision", ""))
            state = f"Ready {ready.get('status') if ready else 'unknown'}" + (
                f" ({ready.get('reason')})" if ready and ready.get("reason") else ""
            )
            ok = ready is not None and ready.get("status") == "True"
            if status.get("lastAttemptedRevision") and status.get("lastAttemptedRevision") != revision:
                ok = False
                state += f"; last attempted {status.get('lastAttemptedRevision')} did not apply"
        managed.add(target)
        subject = Subject(
            kind=app.kind, name=app.name, namespace=target or None, cluster=app.cluster, location=app.location
        )
        f = Failures(subject)
        if not status:
            yield not_assessed(
                subject,
                f"{app.kind} {app.name} carries no status: whether it is Synced and Healthy is read from a live "
                "cluster or an export of one (kubectl get -o yaml)",
            )
            continue
        if not ok:
            f.add("out-of-sync", f"{app.kind} {app.namespace}/{app.name}: {state}")
        if commit and revision and commit not in revision and (not tag or tag not in revision):
            f.add("revision-mismatch", f"runs revision {revision[:60]}, not the release {tag} ({commit[:12]})")
        yield f.result(f"{state}, revision {revision[:60] or 'unknown'}")
    if not ctx.has_cluster_state:
        return  # rendered manifests need not carry the GitOps objects that deploy them
    for ns in sorted({w.namespace for w in ctx.workloads if w.namespace} - managed):
        f = Failures(ctx.namespace_subject(ns))
        f.add("not-managed", "no Argo CD Application or Flux Kustomization deploys this namespace")
        yield f.result("")


GITOPS_SYNCED = Check(
    CheckMeta(
        id="gitops-synced",
        title="GitOps controllers report the platform Synced and Healthy, at the release revision",
        items=("gitops.synced",),
        severity=Severity.MEDIUM,
        kinds=("Application", "Kustomization", "Namespace"),
        rationale=(
            "What runs must be what was reviewed and released: an application out of sync, or at another revision, "
            "is a change nobody approved, and the certified release no longer describes production."
        ),
        remediation=(
            "Deploy every namespace through an Argo CD Application or Flux Kustomization, keep it Synced and "
            "Healthy (investigate drift), and point it at the release tag."
        ),
        references=("ISO/IEC 27001:2022 A.8.32", "PCI DSS v4.0 6.5.1"),
        facets={
            "out-of-sync": "not Synced or not Healthy",
            "revision-mismatch": "running another revision than the release",
            "not-managed": "no GitOps controller deploys the namespace",
        },
    ),
    _gitops_synced,
)


# ---------------------------------------------------------------------- warm capacity

_POOL_LABELS = (
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "karpenter.sh/nodepool",
    "kubernetes.azure.com/agentpool",
    "agentpool",
    "node-pool",
)


def _warm_capacity(ctx: CheckContext) -> Iterator[Result]:
    subject = _platform_subject(ctx, "Cluster", ctx.cluster or "platform")
    negative = {
        o.name: o.raw.get("value")
        for o in ctx.objects("PriorityClass")
        if isinstance(o.raw.get("value"), int) and o.raw["value"] < 0
    }
    placeholders = [
        w
        for w in ctx.workloads
        if w.kind == "Deployment" and w.pod_spec.get("priorityClassName") in negative and (w.replicas or 0) > 0
    ]
    if placeholders:
        p = placeholders[0]
        yield passed(
            subject,
            f"placeholder pods: Deployment {p.namespace}/{p.name}, {p.replicas} replica(s) at priority "
            f"{negative[str(p.pod_spec.get('priorityClassName'))]} ({p.pod_spec.get('priorityClassName')}), evicted "
            "first when real pods need the room",
        )
        return
    pools = [str(p) for p in ctx.param("warm_node_pools", list, [])]
    if pools:
        nodes = list(ctx.objects("Node"))
        if not nodes:
            yield not_assessed(
                subject, f"warm node pools {', '.join(pools)} are declared; Nodes are read from a cluster"
            )
            return
        present = {n.labels.get(k) for n in nodes for k in _POOL_LABELS} - {None}
        missing = [p for p in pools if p not in present]
        f = Failures(subject)
        if missing:
            f.add("no-warm-capacity", f"declared warm node pools {', '.join(missing)} have no nodes")
        yield f.result(f"warm node pools {', '.join(pools)} have nodes")
        return
    f = Failures(subject)
    f.add(
        "no-warm-capacity",
        "no placeholder (negative-priority) Deployment and no warm node pools declared (parameters.warm_node_pools)",
    )
    yield f.result("")


WARM_CAPACITY = Check(
    CheckMeta(
        id="scale-warm-capacity",
        title="Warm capacity exists ahead of peaks",
        items=("scale.warm-capacity",),
        severity=Severity.MEDIUM,
        kinds=("Cluster",),
        reads=("PriorityClass", "Deployment", "Node"),
        rationale=(
            "Autoscalers add nodes in minutes; a cup final's kick-off brings its bets in seconds. Placeholder pods "
            "or warm node pools hold capacity that real pods take at once."
        ),
        remediation=(
            "Run an overprovisioning Deployment of pause pods with a negative-value PriorityClass, or keep warm node "
            "pools and name them in parameters.warm_node_pools."
        ),
        references=_AVAIL_REFS,
        facets={"no-warm-capacity": "no placeholder pods or warm node pools"},
    ),
    _warm_capacity,
)


# ---------------------------------------------------------------------- data residency

_REGION_KEYS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
_ZONE_KEYS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
_S3_REGION = re.compile(r"s3[.-]([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com")


def region_of_zone(zone: str) -> str:
    """eu-west-2a -> eu-west-2 (AWS), europe-west2-b -> europe-west2 (GCP), uksouth-1 -> uksouth (Azure)."""
    if re.fullmatch(r".+-\d[a-z]", zone):
        return zone[:-1]
    if re.fullmatch(r".+-[a-z0-9]", zone):
        return zone.rsplit("-", 1)[0]
    return zone


def _terms_regions(terms: Sequence[Any]) -> set[str]:
    found: set[str] = set()
    for term in terms:
        exprs = [
            *as_list(as_mapping(term).get("matchExpressions")),
            *as_list(as_mapping(term).get("matchLabelExpressions")),
        ]
        for expr in exprs:
            expr = as_mapping(expr)
            key, values = str(expr.get("key", "")), [str(v) for v in as_list(expr.get("values"))]
            if key in _REGION_KEYS:
                found.update(values)
            elif key in _ZONE_KEYS:
                found.update(region_of_zone(v) for v in values)
    return found


def _labels_regions(labels: Mapping[str, str]) -> set[str]:
    for key in _REGION_KEYS:
        if labels.get(key):
            return {labels[key]}
    for key in _ZONE_KEYS:
        if labels.get(key):
            return {region_of_zone(labels[key])}
    return set()


def placements(ctx: CheckContext, ns: str) -> list[tuple[str, set[str], K8sObject]]:
    """Where the namespace's data lives: (what, regions) for each volume, database and backup location; an empty
    set means the evidence does not say. The object is the one that places it (for the finding's location)."""
    pvs = {o.name: o for o in ctx.objects("PersistentVolume")}
    classes = {o.name: o for o in ctx.objects("StorageClass")}
    nodes = {o.name: o for o in ctx.objects("Node")}
    out: list[tuple[str, set[str], K8sObject]] = []
    for obj in ctx.stateful.get(ns, ()):
        if obj.kind == "PersistentVolumeClaim":
            pv = pvs.get(str(obj.spec.get("volumeName", "")))
            regions: set[str] = set()
            where, placed_by = f"PVC {obj.name}", obj
            if pv is not None:
                regions = _terms_regions(
                    as_list(
                        as_mapping(as_mapping(pv.spec.get("nodeAffinity")).get("required")).get("nodeSelectorTerms")
                    )
                ) or _labels_regions(pv.labels)
                where += f" → PV {pv.name}"
                placed_by = pv
            if not regions:
                sc = classes.get(str(obj.spec.get("storageClassName", "")))
                if sc is not None:
                    regions = _terms_regions(as_list(sc.raw.get("allowedTopologies")))
                    where += f" (StorageClass {sc.name})"
                    placed_by = sc
            out.append((where, regions, placed_by))
        elif obj.kind == "StatefulSet":
            w = next((w for w in ctx.workloads_of(ns) if w.obj is obj), None)
            regions = set()
            if w is not None:
                selector = as_mapping(w.pod_spec.get("nodeSelector"))
                regions = _labels_regions({str(k): str(v) for k, v in selector.items()})
                affinity = as_mapping(as_mapping(w.pod_spec.get("affinity")).get("nodeAffinity"))
                terms = as_list(
                    as_mapping(affinity.get("requiredDuringSchedulingIgnoredDuringExecution")).get("nodeSelectorTerms")
                )
                regions = regions or _terms_regions(terms)
                if not regions:
                    for pod in ctx.pods_of(w):
                        node = nodes.get(str(pod.spec.get("nodeName", "")))
                        if node is not None:
                            regions |= _labels_regions(node.labels)
            out.append((f"StatefulSet {obj.name} (pods)", regions, obj))
        elif obj.kind == "Cluster":
            sc = classes.get(str(as_mapping(obj.spec.get("storage")).get("storageClass", "")))
            if sc is not None:
                regions = _terms_regions(as_list(sc.raw.get("allowedTopologies")))
                out.append((f"database {obj.name} volumes (StorageClass {sc.name})", regions, sc))
            store = as_mapping(as_mapping(obj.spec.get("backup")).get("barmanObjectStore"))
            endpoint = str(store.get("endpointURL", "")) + " " + str(store.get("destinationPath", ""))
            m = _S3_REGION.search(endpoint)
            if store:
                out.append(
                    (
                        f"database {obj.name} backups ({store.get('destinationPath', '?')})",
                        {m.group(1)} if m else set(),
                        obj,
                    )
                )
    locations = {o.name: o for o in ctx.objects("BackupStorageLocation") if group_of(o) == VELERO}
    default = next((o for o in locations.values() if o.spec.get("default") is True), None)
    for schedule in covering_schedules(ctx, ns):
        name = str(as_mapping(schedule.spec.get("template")).get("storageLocation") or "")
        bsl = locations.get(name) if name else default
        what = f"backups by Schedule {schedule.name} → BackupStorageLocation {bsl.name if bsl else name or 'default'}"
        region = str(as_mapping(bsl.spec.get("config")).get("region", "")) if bsl is not None else ""
        out.append((what, {region} if region else set(), bsl if bsl is not None else schedule))
    return out


def _data_residency(ctx: CheckContext) -> Iterator[Result]:
    allowed = [str(r) for r in ctx.param("allowed_regions", list, [])]
    for ns in sorted(ctx.stateful):
        subject = ctx.namespace_subject(ns)
        placed = placements(ctx, ns)
        if not allowed:
            yield not_assessed(
                subject, "the profile names no allowed regions for this jurisdiction (parameters.allowed_regions)"
            )
            continue
        outside = [(what, regions, obj) for what, regions, obj in placed if regions and not regions <= set(allowed)]
        unknown = [what for what, regions, _ in placed if not regions]
        where = "; ".join(f"{what} in {', '.join(sorted(regions))}" for what, regions, _ in placed if regions)
        if outside:  # the finding points at what places the data outside (the StorageClass, PV or location)
            subject = dataclasses.replace(subject, location=outside[0][2].location)
        f = Failures(subject)
        for what, regions, _ in outside:
            f.add(
                "outside-allowed-regions",
                f"{what} in {', '.join(sorted(regions - set(allowed)))}, outside {', '.join(allowed)}",
            )
        if not f.found and unknown:
            yield not_assessed(
                subject,
                f"the evidence does not say where {', '.join(unknown[:4])} live(s) (no region or zone topology on "
                f"the volume, StorageClass, node or backup location){'; ' + where if where else ''}",
            )
            continue
        yield f.result(f"{where}: all within {', '.join(allowed)}")


DATA_RESIDENCY = Check(
    CheckMeta(
        id="data-residency",
        title="Stateful data and its backups stay in the regions the jurisdiction allows",
        items=("data.residency",),
        severity=Severity.CRITICAL,
        kinds=("Namespace", "PersistentVolumeClaim", "StatefulSet", "Cluster"),
        reads=("PersistentVolume", "StorageClass", "Node", "Schedule", "BackupStorageLocation"),
        rationale=(
            "Regulators ask first where player, KYC and wallet data is held: a volume, a database backup or a "
            "Velero backup location in another region can breach the licence's data location conditions."
        ),
        remediation=(
            "Pin volumes to the allowed regions (StorageClass allowedTopologies, PV node affinity), schedule "
            "stateful pods there, and keep BackupStorageLocations and database backup buckets in an allowed region "
            "(parameters.allowed_regions)."
        ),
        references=("ISO/IEC 27001:2022 A.5.34", "ISO/IEC 27001:2022 A.5.31"),
        facets={"outside-allowed-regions": "data or backups sit outside the allowed regions"},
    ),
    _data_residency,
)


# ---------------------------------------------------------------------- the report's Resilience section


def summarize(ctx: CheckContext, in_scope: Any) -> dict[str, list[dict[str, Any]]]:
    """Per market (the profile's scope): backup coverage and the age of the last backup against the RPO, the PITR
    window, drill dates, canary plans, and where the data lives. Facts from the evidence, not verdicts (the
    items give those); ``in_scope(namespace)`` says which namespaces the profile covers."""

    rpo = rpo_hours(ctx)
    out: dict[str, list[dict[str, Any]]] = {"backups": [], "pitr": [], "drills": [], "canaries": [], "residency": []}
    for ns in sorted(n for n in ctx.stateful if in_scope(n)):
        schedules = [f"{s.namespace}/{s.name}" for s in covering_schedules(ctx, ns)]
        for target, runs in backup_targets(ctx, ns):
            done = [r for r in runs if r[1] == "completed"]
            age = age_hours(done[-1][0], ctx.as_of) if done else None
            is_db = target.startswith("database ")
            scheduled = (
                [f"{s.namespace}/{s.name}" for s in scheduled_backups(ctx, ns, target.removeprefix("database "))]
                if is_db
                else schedules
            )
            out["backups"].append(
                {
                    "cluster": ctx.cluster,
                    "namespace": ns,
                    "target": target,
                    "holds": [f"{o.kind} {o.name}" for o in ctx.stateful[ns]],
                    "schedules": scheduled,
                    "last_completed": done[-1][0] if done else None,
                    "last_completed_by": done[-1][2] if done else None,
                    "age_hours": None if age is None else round(age, 2),
                    "rpo_hours": rpo,
                    "within_rpo": None if age is None else 0 <= age <= rpo,
                    "latest_failed": next((r[2] for r in reversed(runs) if r[1] == "failed"), None),
                }
            )
        for db in databases(ctx, ns):
            status = as_mapping(db.raw.get("status"))
            state = condition(db, "ContinuousArchiving")
            first = status.get("firstRecoverabilityPoint")
            out["pitr"].append(
                {
                    "cluster": ctx.cluster,
                    "namespace": ns,
                    "database": db.name,
                    "archiving": "not configured"
                    if archiving_configured(db) is None
                    else "unknown"
                    if state is None
                    else "working"
                    if state.get("status") == "True"
                    else "failing",
                    "first_recoverability_point": first,
                    "window_days": None if not first else round((age_hours(first, ctx.as_of) or 0) / 24, 1),
                    # archiving stopped then: the recoverable window ends there, not at the report time
                    "failing_since": state.get("lastTransitionTime")
                    if state is not None and state.get("status") != "True"
                    else None,
                    "last_recoverable_point": None,
                }
            )
        for w in self_managed_databases(ctx, ns):
            record = latest_pitr_record(ctx, ns, w.name)
            window = as_mapping(record.get("pitr_window")) if record is not None else {}
            out["pitr"].append(
                {
                    "cluster": ctx.cluster,
                    "namespace": ns,
                    "database": f"{w.name} (self-managed)",
                    "archiving": "recorded" if window else "unknown",
                    "first_recoverability_point": window.get("from"),
                    "window_days": None,
                    "failing_since": None,
                    "last_recoverable_point": window.get("to"),
                }
            )
        placed = placements(ctx, ns)
        out["residency"].append(
            {
                "cluster": ctx.cluster,
                "namespace": ns,
                "allowed": [str(r) for r in ctx.params.get("allowed_regions") or []],
                "placements": [{"what": what, "regions": sorted(regions)} for what, regions, _ in placed],
            }
        )
    for record in (*records(ctx, "restore-drill"), *records(ctx, "dr-cutover")):
        scope = as_mapping(record.get("scope"))
        if any(
            in_scope(ns)
            for ns in ctx.namespaces
            if any(fnmatch.fnmatchcase(ns, str(g)) for g in as_list(scope.get("namespaces")))
        ):
            out["drills"].append(
                {
                    k: record.get(k)
                    for k in (
                        "kind",
                        "id",
                        "date",
                        "result",
                        "scope",
                        "rpo_achieved_seconds",
                        "rto_achieved_seconds",
                        "signoff",
                        "file",
                    )
                }
                | {
                    "age_days": None
                    if (age := age_hours(record.get("date"), ctx.as_of)) is None
                    else round(age / 24, 1),
                    "window_days": ctx.param("drill_window_days", int, 90),
                    "steps_not_succeeded": [
                        str(as_mapping(st).get("step"))
                        for st in as_list(record.get("steps"))
                        if as_mapping(st).get("result") not in (None, "success")
                    ],
                }
            )
    canaries = _flagger_canaries(ctx)
    for w in ctx.workloads:
        if w.kind not in ("Deployment", "Rollout") or not in_scope(w.namespace or "") or not ctx.is_serving(w):
            continue
        f = Failures(w.subject)
        plan = _canary_plan(ctx, w, canaries, f)
        if plan:
            out["canaries"].append(
                {
                    "cluster": ctx.cluster,
                    "namespace": w.namespace,
                    "workload": f"{w.kind} {w.name}",
                    "plan": plan,
                    "gaps": [d for _, d in f.found],
                }
            )
    return out
