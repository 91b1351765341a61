"""Admission policy: something in the cluster refuses non-compliant objects, and its reports are clean.

Judged per namespace, from what a live cluster holds: Pod Security Admission labels, Kyverno policies,
Gatekeeper constraints and ValidatingAdmissionPolicy bindings in enforcing mode, and the
wgpolicyk8s.io PolicyReports that Kyverno (and others) write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures
from auditor.kube import as_list, as_mapping
from auditor.models import EvidenceKind, K8sObject, Result, Severity

_PSA_LEVELS = {"privileged": 0, "baseline": 1, "restricted": 2}
_PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
_GATEKEEPER_CONSTRAINTS = "constraints.gatekeeper.sh/"


def _kyverno_enforces(policy: K8sObject) -> bool:
    """Kyverno enforces with spec.validationFailureAction (or a rule's validate.failureAction) Enforce."""
    if str(policy.spec.get("validationFailureAction", "")).lower() == "enforce":
        return True
    return any(
        str(as_mapping(as_mapping(rule).get("validate")).get("failureAction", "")).lower() == "enforce"
        for rule in as_list(policy.spec.get("rules"))
    )


def _enforcers(ctx: CheckContext) -> tuple[list[str], Mapping[str, list[str]]]:
    """What enforces cluster-wide, and what enforces per namespace (namespaced Kyverno Policies)."""
    cluster_wide: list[str] = []
    per_namespace: dict[str, list[str]] = {}
    for p in ctx.objects("ClusterPolicy"):
        if _kyverno_enforces(p):
            cluster_wide.append(f"Kyverno ClusterPolicy {p.name}")
    for p in ctx.objects("Policy"):
        if p.api_version.startswith("kyverno.io/") and _kyverno_enforces(p):
            per_namespace.setdefault(p.namespace or "", []).append(f"Kyverno Policy {p.name}")
    for o in ctx.evidence.objects:
        if o.api_version.startswith(_GATEKEEPER_CONSTRAINTS):
            action = str(o.spec.get("enforcementAction") or "deny")
            if action == "deny":
                cluster_wide.append(f"Gatekeeper {o.kind} {o.name}")
    for b in ctx.objects("ValidatingAdmissionPolicyBinding"):
        actions = {str(a) for a in as_list(b.spec.get("validationActions"))}
        if "Deny" in actions:
            cluster_wide.append(
                f"ValidatingAdmissionPolicy {as_mapping(b.spec).get('policyName', '?')} (binding {b.name})"
            )
    for p in ctx.objects("ClusterImagePolicy"):
        if str(as_mapping(p.spec).get("mode", "enforce")) == "enforce":
            cluster_wide.append(f"sigstore ClusterImagePolicy {p.name}")
    return cluster_wide, per_namespace


def _report_failures(ctx: CheckContext) -> Mapping[str, Counter[str]]:
    """Namespace ('' for cluster reports) -> failing policy/rule counts from PolicyReports."""
    out: dict[str, Counter[str]] = {}
    for report in ctx.objects("PolicyReport", "ClusterPolicyReport"):
        ns = (report.namespace or "") if report.kind == "PolicyReport" else ""
        for result in as_list(report.raw.get("results")):
            result = as_mapping(result)
            if str(result.get("result", "")).lower() in ("fail", "error"):
                key = f"{result.get('policy', '?')}/{result.get('rule', '?')}"
                out.setdefault(ns, Counter())[key] += 1
    return out


def _admission_enforced(ctx: CheckContext) -> Iterator[Result]:
    required = ctx.param("pod_security_level", str, "baseline")
    if required not in _PSA_LEVELS:
        required = "baseline"
    cluster_wide, per_namespace = _enforcers(ctx)
    failures = _report_failures(ctx)
    labels = {o.name: o.labels for o in ctx.objects("Namespace")}
    for ns in ctx.namespaces:
        f = Failures(ctx.namespace_subject(ns))
        enforcing = list(cluster_wide) + per_namespace.get(ns, [])
        level = labels.get(ns, {}).get(_PSA_ENFORCE)
        if level in _PSA_LEVELS and _PSA_LEVELS[level] >= _PSA_LEVELS[required]:
            enforcing.append(f"Pod Security Admission (enforce={level})")
        elif level in _PSA_LEVELS and not enforcing:
            f.add("pod-security-too-weak", f"Pod Security Admission enforces {level}, below the required {required}")
        if not enforcing and not f.found:
            f.add(
                "no-admission-enforcement",
                "nothing enforces admission policy here: no Pod Security Admission enforce label at "
                f"{required} or above, and no Kyverno, Gatekeeper, ValidatingAdmissionPolicy or sigstore policy "
                "in enforcing mode",
            )
        failing = failures.get(ns, Counter()) + (failures.get("", Counter()) if ns in labels else Counter())
        if failing:
            top = ", ".join(f"{k} ({n})" for k, n in sorted(failing.items())[:5])
            f.add("policy-report-failures", f"PolicyReports show {sum(failing.values())} failing result(s): {top}")
        yield f.result(f"admission enforced by {', '.join(sorted(enforcing)[:3])}; PolicyReports clean")


ADMISSION_ENFORCED = Check(
    CheckMeta(
        id="policy-admission-enforced",
        title="Admission policy enforced; PolicyReports clean",
        items=("policy.admission-enforced",),
        severity=Severity.HIGH,
        kinds=("Namespace",),
        reads=("ClusterPolicy", "Policy", "ValidatingAdmissionPolicyBinding", "PolicyReport", "ClusterPolicyReport"),
        needs=frozenset({EvidenceKind.K8S_OBJECTS, EvidenceKind.CLUSTER_STATE}),
        rationale=(
            "Manifests reviewed in Git are not what runs if anyone with kubectl access can apply something else; "
            "an admission controller in enforcing mode is what keeps the cluster equal to the policy."
        ),
        remediation=(
            "Label namespaces pod-security.kubernetes.io/enforce=restricted (or the profile's pod_security_level) "
            "and enforce the profile's rules with Kyverno (validationFailureAction: Enforce), Gatekeeper "
            "(enforcementAction: deny) or a ValidatingAdmissionPolicy binding with validationActions [Deny]; "
            "fix what the PolicyReports list."
        ),
        references=("CIS Kubernetes Benchmark 5.2.1", "Kubernetes Pod Security Admission", "ISO/IEC 27001:2022 A.8.9"),
        facets={
            "no-admission-enforcement": "no admission controller enforces policy in the namespace",
            "pod-security-too-weak": "Pod Security Admission enforces a level below the profile's",
            "policy-report-failures": "PolicyReports list failing results",
        },
        facet_severity={"policy-report-failures": Severity.MEDIUM},
    ),
    _admission_enforced,
)
