"""ServiceAccounts and RBAC: least privilege for workloads and people."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures, passed
from auditor.kube import WORKLOAD_KINDS, as_list, as_mapping
from auditor.models import K8sObject, Result, Severity, Subject

_RBAC_REFS = ("ISO/IEC 27001:2022 A.5.15", "ISO/IEC 27001:2022 A.8.2")
# Kubernetes' own default roles: judged where they are bound, not as roles someone wrote.
_BUILTIN_ROLES = frozenset({"cluster-admin", "admin", "edit", "view"})
# Groups that start with "system:" but mean "everyone": never a system subject.
_EVERYONE = frozenset({"system:anonymous", "system:unauthenticated", "system:authenticated"})
_READ_VERBS = frozenset({"get", "list", "watch", "*"})


def _sa_token_scoped(ctx: CheckContext) -> Iterator[Result]:
    accounts = {(o.namespace or "", o.name): o for o in ctx.objects("ServiceAccount")}
    bound = _bound_service_accounts(ctx)
    for w in ctx.workloads:
        f = Failures(w.subject)
        sa = w.pod_spec.get("serviceAccountName") or w.pod_spec.get("serviceAccount") or "default"
        sa_name = str(sa)
        if sa_name == "default":
            f.add("default-sa", "runs as the namespace's default ServiceAccount")
        automount = w.pod_spec.get("automountServiceAccountToken")
        account = accounts.get((w.namespace or "", sa_name))
        if automount is None and account is not None:
            automount = account.raw.get("automountServiceAccountToken")
        if automount is not False and (w.namespace or "", sa_name) not in bound:
            f.add(
                "token-automounted",
                f"API token of ServiceAccount {sa_name} is mounted but the account has no RBAC binding in the evidence",
            )
        yield f.result(f"runs as dedicated ServiceAccount {sa_name}; API token mounted only where bound to a role")


def _bound_service_accounts(ctx: CheckContext) -> set[tuple[str, str]]:
    """(namespace, name) of every ServiceAccount some binding in the evidence grants a role to."""
    bound = set()
    for b in ctx.objects("RoleBinding", "ClusterRoleBinding"):
        for s in as_list(b.raw.get("subjects")):
            s = as_mapping(s)
            if s.get("kind") == "ServiceAccount":
                bound.add((str(s.get("namespace") or b.namespace or ""), str(s.get("name", ""))))
    return bound


SA_TOKEN_SCOPED = Check(
    CheckMeta(
        id="sa-token-scoped",
        title="Dedicated ServiceAccounts; API tokens only where needed",
        items=("sa.token-scoped",),
        severity=Severity.MEDIUM,
        kinds=tuple(sorted(WORKLOAD_KINDS)),
        rationale="A mounted token is a credential to the API server; the default account collects every grant made carelessly.",
        remediation="Give each workload its own ServiceAccount and set automountServiceAccountToken: false unless it calls the API.",
        references=("CIS Kubernetes Benchmark 5.1.5", "CIS Kubernetes Benchmark 5.1.6", *_RBAC_REFS),
        facets={"default-sa": "uses the default ServiceAccount", "token-automounted": "token mounted without need"},
    ),
    _sa_token_scoped,
)


def _is_system_subject(subject: Mapping[str, Any], binding_ns: str | None) -> bool:
    kind, name = subject.get("kind"), str(subject.get("name", ""))
    if kind in ("User", "Group"):
        return name.startswith("system:") and name not in _EVERYONE
    if kind == "ServiceAccount":
        return (subject.get("namespace") or binding_ns) == "kube-system"
    return False


def _subject_id(subject: Mapping[str, Any], binding_ns: str | None) -> str:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return f"ServiceAccount:{subject.get('namespace') or binding_ns}/{name}"
    return f"{kind}:{name}"


def _unapproved_subjects(binding: K8sObject, allowed: Sequence[str]) -> list[str]:
    out = []
    for s in as_list(binding.raw.get("subjects")):
        s = as_mapping(s)
        sid = _subject_id(s, binding.namespace)
        if not _is_system_subject(s, binding.namespace) and sid not in allowed:
            out.append(sid)
    return out


def _rules(role: K8sObject) -> Iterator[Mapping[str, Any]]:
    for rule in as_list(role.raw.get("rules")):
        if isinstance(rule, Mapping):
            yield rule


def _custom_roles(ctx: CheckContext) -> Iterator[K8sObject]:
    for role in ctx.objects("Role", "ClusterRole"):
        if role.name in _BUILTIN_ROLES or role.name.startswith("system:"):
            continue
        yield role


def _bound_only_to_approved(ctx: CheckContext, role: K8sObject, allowed: Sequence[str]) -> tuple[bool, str]:
    """Whether every binding of the role is to system/allowed subjects, and a sentence saying so."""
    bindings = ctx.bindings_of(role)
    if not bindings:
        # Fail closed: the binding may live outside the inputs (another file, the live cluster).
        return False, "no binding for it in the evidence, so any binding made later inherits the grant"
    bad = sorted({s for b in bindings for s in _unapproved_subjects(b, allowed)})
    if bad:
        return False, "bound to " + ", ".join(bad[:5])
    return True, "bound only to system or allow-listed subjects"


def _no_wildcards(ctx: CheckContext) -> Iterator[Result]:
    allowed = [str(s) for s in ctx.param("rbac_allowed_subjects", list, [])]
    for role in _custom_roles(ctx):
        subject = Subject.of(role)
        f = Failures(subject)
        for i, rule in enumerate(_rules(role)):
            if "*" in [str(v) for v in as_list(rule.get("verbs"))]:
                f.add("wildcard-verbs", f"rules[{i}] grants verbs '*'")
            if "*" in [str(r) for r in as_list(rule.get("resources"))]:
                f.add("wildcard-resources", f"rules[{i}] grants resources '*'")
        if f.found:
            ok, why = _bound_only_to_approved(ctx, role, allowed)
            if ok:
                yield passed(subject, f"wildcard grant {why}")
                continue
            f.found = [(facet, f"{detail}; {why}") for facet, detail in f.found]
        yield f.result("grants no wildcard verbs or resources")


NO_WILDCARDS = Check(
    CheckMeta(
        id="rbac-no-wildcards",
        title="No wildcard verbs or resources for non-system subjects",
        items=("rbac.no-wildcards",),
        severity=Severity.HIGH,
        kinds=("Role", "ClusterRole"),
        rationale="'*' grants every verb or resource, including those added by future CRDs; nobody reviews what it really allows.",
        remediation="List the exact verbs and resources the subject needs.",
        references=("CIS Kubernetes Benchmark 5.1.3", *_RBAC_REFS),
        facets={"wildcard-verbs": "verbs '*'", "wildcard-resources": "resources '*'"},
    ),
    _no_wildcards,
)


def _grants_everything(rules: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        "*" in [str(v) for v in as_list(r.get("verbs"))]
        and "*" in [str(v) for v in as_list(r.get("resources"))]
        and "*" in [str(v) for v in as_list(r.get("apiGroups"))]
        for r in rules
    )


def _cluster_admin_restricted(ctx: CheckContext) -> Iterator[Result]:
    allowed = [str(s) for s in ctx.param("cluster_admin_subjects", list, [])]
    equivalents = {("ClusterRole", "cluster-admin")}
    for role in ctx.objects("ClusterRole"):
        if _grants_everything(list(_rules(role))):
            equivalents.add(("ClusterRole", role.name))
    for b in ctx.objects("ClusterRoleBinding", "RoleBinding"):
        ref = as_mapping(b.raw.get("roleRef"))
        if (str(ref.get("kind")), str(ref.get("name"))) not in equivalents:
            continue
        subject = Subject.of(b)
        bad = _unapproved_subjects(b, allowed)
        f = Failures(subject)
        for sid in bad:
            f.add("cluster-admin-binding", f"binds {ref.get('name')} (full control) to {sid}, not on the allow-list")
        yield f.result(f"binds {ref.get('name')} only to system or allow-listed subjects")


CLUSTER_ADMIN_RESTRICTED = Check(
    CheckMeta(
        id="rbac-cluster-admin-restricted",
        title="cluster-admin bound only to allow-listed subjects",
        items=("rbac.cluster-admin-restricted",),
        severity=Severity.CRITICAL,
        kinds=("ClusterRoleBinding", "RoleBinding"),
        rationale="cluster-admin (or any '*' on '*' role) reads every Secret and changes every wallet; its holders must be few and named.",
        remediation="Bind narrower roles; keep cluster-admin for break-glass subjects listed in parameters.cluster_admin_subjects.",
        references=("CIS Kubernetes Benchmark 5.1.1", *_RBAC_REFS),
        facets={"cluster-admin-binding": "cluster-admin (or equivalent) bound to a subject off the allow-list"},
    ),
    _cluster_admin_restricted,
)


def _reads_secrets(rules: Sequence[Mapping[str, Any]]) -> bool:
    for r in rules:
        groups = [str(g) for g in as_list(r.get("apiGroups"))]
        resources = [str(x) for x in as_list(r.get("resources"))]
        verbs = {str(v) for v in as_list(r.get("verbs"))}
        if ("" in groups or "*" in groups) and ("secrets" in resources or "*" in resources) and verbs & _READ_VERBS:
            return True
    return False


# Default roles that can read Secrets (Kubernetes RBAC docs, "User-facing roles").
_BUILTIN_SECRET_READERS = frozenset({"cluster-admin", "admin", "edit"})


def _secrets_read_restricted(ctx: CheckContext) -> Iterator[Result]:
    # Subjects approved for cluster-admin can read everything anyway: they are approved readers.
    allowed = [str(s) for s in ctx.param("secret_readers", list, []) + ctx.param("cluster_admin_subjects", list, [])]
    for role in _custom_roles(ctx):
        if not _reads_secrets(list(_rules(role))):
            continue
        subject = Subject.of(role)
        ok, why = _bound_only_to_approved(ctx, role, allowed)
        f = Failures(subject)
        if not ok:
            f.add("secret-read", f"grants get/list/watch on Secrets; {why}")
        yield f.result(f"reads Secrets but is {why}")
    for b in ctx.objects("ClusterRoleBinding", "RoleBinding"):
        ref = as_mapping(b.raw.get("roleRef"))
        if ref.get("kind") != "ClusterRole" or ref.get("name") not in _BUILTIN_SECRET_READERS:
            continue
        subject = Subject.of(b)
        f = Failures(subject)
        for sid in _unapproved_subjects(b, allowed):
            f.add("secret-read", f"built-in role {ref.get('name')} (reads Secrets) bound to {sid}")
        yield f.result(f"built-in role {ref.get('name')} bound only to system or allow-listed subjects")


SECRETS_READ_RESTRICTED = Check(
    CheckMeta(
        id="rbac-secrets-read-restricted",
        title="Only allow-listed subjects can read Secrets",
        items=("rbac.secrets-read-restricted",),
        severity=Severity.HIGH,
        kinds=("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"),
        rationale="Reading Secrets yields PSP keys, database passwords and signing keys; list/watch reveal them all at once.",
        remediation="Remove get/list/watch on secrets, or add the subject to parameters.secret_readers with a reason.",
        references=("CIS Kubernetes Benchmark 5.1.2", *_RBAC_REFS),
        facets={"secret-read": "Secret read granted to a subject off the allow-list"},
    ),
    _secrets_read_restricted,
)
