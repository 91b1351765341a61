"""ServiceAccounts and RBAC: least privilege for workloads and people."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures, passed
from auditor.kube import WORKLOAD_KINDS, as_list, as_mapping
from auditor.models import K8sObject, Result, Severity, Subject

_RBAC_REFS = ("ISO/IEC 27001:2022 A.5.15", "ISO/IEC 27001:2022 A.8.2")
# Kubernetes' own user-facing ClusterRoles: judged where they are bound, not as roles someone wrote.
# (A namespaced Role that happens to carry one of these names is somebody's own role.)
_BUILTIN_ROLES = frozenset({"cluster-admin", "admin", "edit", "view"})
# Kubernetes marks the roles it creates and reconciles itself (rbac-defaults, autoupdate).
_BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")
_AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
# Every verb the API server knows for ordinary resources: listing them all is '*' spelled out.
_ALL_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"})
# Groups that start with "system:" but mean "everyone": never a system subject.
_EVERYONE = frozenset({"system:anonymous", "system:unauthenticated", "system:authenticated"})
_READ_VERBS = frozenset({"get", "list", "watch", "*"})


def _sa_token_scoped(ctx: CheckContext) -> Iterator[Result]:
    accounts = {(o.namespace or "", o.name): o for o in ctx.objects("ServiceAccount")}
    bound = _bound_service_accounts(ctx)
    yield from _default_accounts(ctx, accounts)
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


def _default_accounts(ctx: CheckContext, accounts: Mapping[tuple[str, str], K8sObject]) -> Iterator[Result]:
    """Each namespace's `default` ServiceAccount: every pod that names no account inherits its token and rights."""
    grants = _grants_by_service_account(ctx)
    for ns in ctx.namespaces:
        account = accounts.get((ns, "default"))
        subject = (
            Subject.of(account)
            if account is not None
            else Subject(
                kind="ServiceAccount",
                namespace=ns,
                name="default",
                cluster=ctx.cluster,
                location=ctx.namespace_subject(ns).location,
            )
        )
        f = Failures(subject)
        if account is None:
            f.add(
                "default-sa-automount",
                "the namespace's default ServiceAccount mounts its API token in every pod that names no account "
                "(Kubernetes' default); declare it with automountServiceAccountToken: false",
            )
        elif account.raw.get("automountServiceAccountToken") is not False:
            f.add("default-sa-automount", "default ServiceAccount does not set automountServiceAccountToken: false")
        for binding, role in grants.get((ns, "default"), ()):
            f.add(
                "default-sa-bound",
                f"{binding} grants {role} to the default ServiceAccount, so every pod without serviceAccountName holds it",
            )
        yield f.result("default ServiceAccount mounts no token and holds no role")


def _grants_by_service_account(ctx: CheckContext) -> Mapping[tuple[str, str], list[tuple[str, str]]]:
    """(namespace, account) -> (binding, role) for every binding in the evidence that names the account,
    directly or through the groups every ServiceAccount belongs to."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    namespaces = ctx.namespaces
    for b in ctx.objects("RoleBinding", "ClusterRoleBinding"):
        if _is_kubernetes_own(b):
            continue  # Kubernetes' own grants to every ServiceAccount (issuer and trust-bundle discovery)
        ref = as_mapping(b.raw.get("roleRef"))
        role = f"{ref.get('kind', 'Role')} {ref.get('name', '?')}"
        who = f"{b.kind} {b.namespace + '/' if b.namespace else ''}{b.name}"
        for s in as_list(b.raw.get("subjects")):
            s = as_mapping(s)
            kind, name = s.get("kind"), str(s.get("name", ""))
            targets: list[str] = []
            if kind == "ServiceAccount":
                if name == "default":
                    targets = [str(s.get("namespace") or b.namespace or "")]
            elif kind == "Group" and name == "system:serviceaccounts":
                targets = list(namespaces)
            elif kind == "Group" and name.startswith("system:serviceaccounts:"):
                targets = [name.removeprefix("system:serviceaccounts:")]
            for ns in targets:
                if (
                    b.kind == "RoleBinding"
                    and ns != b.namespace
                    and kind == "Group"
                    and name == "system:serviceaccounts"
                ):
                    continue  # a RoleBinding grants only inside its own namespace
                out.setdefault((ns, "default"), []).append((who, role))
    return out


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
        kinds=tuple(sorted({*WORKLOAD_KINDS, "ServiceAccount"})),
        reads=("ServiceAccount", "RoleBinding", "ClusterRoleBinding", "Namespace"),
        rationale="A mounted token is a credential to the API server; the default account collects every grant made carelessly.",
        remediation="Give each workload its own ServiceAccount and set automountServiceAccountToken: false unless it calls the API.",
        references=("CIS Kubernetes Benchmark 5.1.5", "CIS Kubernetes Benchmark 5.1.6", *_RBAC_REFS),
        facets={
            "default-sa": "uses the default ServiceAccount",
            "token-automounted": "token mounted without need",
            "default-sa-automount": "the namespace's default ServiceAccount mounts its token",
            "default-sa-bound": "a role is bound to the namespace's default ServiceAccount",
        },
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
        ns = subject.get("namespace") or binding_ns
        # The API server refuses a ServiceAccount subject without a namespace in a ClusterRoleBinding.
        return f"ServiceAccount:{ns}/{name}" if ns else f"ServiceAccount:{name} (no namespace)"
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


def _is_kubernetes_own(role: K8sObject) -> bool:
    """Kubernetes' own roles and bindings: the built-in user-facing ClusterRoles, and what it bootstraps (labelled
    rbac-defaults or auto-updated). A role merely *named* `system:...` is somebody's own and is judged."""
    if role.kind == "ClusterRole" and role.name in _BUILTIN_ROLES:
        return True
    if not role.name.startswith("system:"):
        return False
    return role.labels.get(_BOOTSTRAP_LABEL[0]) == _BOOTSTRAP_LABEL[1] or role.annotations.get(_AUTOUPDATE) == "true"


def _custom_roles(ctx: CheckContext) -> Iterator[K8sObject]:
    for role in ctx.objects("Role", "ClusterRole"):
        if not _is_kubernetes_own(role):
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
            if "*" in [str(g) for g in as_list(rule.get("apiGroups"))]:
                f.add("wildcard-api-groups", f"rules[{i}] grants apiGroups '*' (every API group, CRDs included)")
        if f.found:
            ok, why = _bound_only_to_approved(ctx, role, allowed)
            if ok:
                yield passed(subject, f"wildcard grant {why}")
                continue
            result = f.result("")
            # Say once who holds the grant, after every rule that grants a wildcard.
            yield dataclasses.replace(result, message=f"{result.message}; {why}", evidence=(*result.evidence, why))
            continue
        yield f.result("grants no wildcard verbs or resources")


NO_WILDCARDS = Check(
    CheckMeta(
        id="rbac-no-wildcards",
        title="No wildcard verbs or resources for non-system subjects",
        items=("rbac.no-wildcards",),
        severity=Severity.HIGH,
        kinds=("Role", "ClusterRole"),
        reads=("RoleBinding", "ClusterRoleBinding"),
        rationale="'*' grants every verb or resource, including those added by future CRDs; nobody reviews what it really allows.",
        remediation="List the exact verbs and resources the subject needs.",
        references=("CIS Kubernetes Benchmark 5.1.3", *_RBAC_REFS),
        facets={
            "wildcard-verbs": "verbs '*'",
            "wildcard-resources": "resources '*'",
            "wildcard-api-groups": "apiGroups '*'",
        },
    ),
    _no_wildcards,
)


def _amounts_to_cluster_admin(rules: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a role's rules amount to cluster-admin, or None. That is `*` on `*` in every API group, the same with
    every verb spelled out, or `*` verbs on every resource of the core group (Secrets, Pods/exec, ServiceAccounts)."""
    for r in rules:
        verbs = {str(v) for v in as_list(r.get("verbs"))}
        resources = {str(v) for v in as_list(r.get("resources"))}
        groups = {str(v) for v in as_list(r.get("apiGroups"))}
        every_verb = "*" in verbs or verbs >= _ALL_VERBS
        if "*" not in resources or not every_verb:
            continue
        if "*" in groups:
            return "every verb on every resource in every API group"
        if "" in groups and "*" in verbs:
            return "'*' verbs on every resource of the core API group (Secrets, Pods, ServiceAccounts...)"
    return None


def _cluster_admin_restricted(ctx: CheckContext) -> Iterator[Result]:
    allowed = [str(s) for s in ctx.param("cluster_admin_subjects", list, [])]
    equivalents: dict[tuple[str, str], str] = {("ClusterRole", "cluster-admin"): "cluster-admin (full control)"}
    for role in ctx.objects("ClusterRole"):
        why = _amounts_to_cluster_admin(list(_rules(role)))
        if why is not None and role.name != "cluster-admin":
            equivalents[("ClusterRole", role.name)] = (
                f"ClusterRole {role.name}, which amounts to cluster-admin ({why}),"
            )
    for b in ctx.objects("ClusterRoleBinding", "RoleBinding"):
        ref = as_mapping(b.raw.get("roleRef"))
        what = equivalents.get((str(ref.get("kind")), str(ref.get("name"))))
        subject = Subject.of(b)
        f = Failures(subject)
        if what is None:
            yield f.result(
                f"binds {ref.get('kind', 'role')} {ref.get('name', '?')}, not cluster-admin or an equivalent"
            )
            continue
        for sid in _unapproved_subjects(b, allowed):
            f.add("cluster-admin-binding", f"binds {what} to {sid}, not on the allow-list")
        yield f.result(f"binds {ref.get('name')} only to system or allow-listed subjects")


CLUSTER_ADMIN_RESTRICTED = Check(
    CheckMeta(
        id="rbac-cluster-admin-restricted",
        title="cluster-admin bound only to allow-listed subjects",
        items=("rbac.cluster-admin-restricted",),
        severity=Severity.CRITICAL,
        kinds=("ClusterRoleBinding", "RoleBinding"),
        reads=("ClusterRole",),
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
            yield passed(Subject.of(role), "grants no get/list/watch on Secrets")
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
        reads=("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"),
        rationale="Reading Secrets yields PSP keys, database passwords and signing keys; list/watch reveal them all at once.",
        remediation="Remove get/list/watch on secrets, or add the subject to parameters.secret_readers with a reason.",
        references=("CIS Kubernetes Benchmark 5.1.2", *_RBAC_REFS),
        facets={"secret-read": "Secret read granted to a subject off the allow-list"},
    ),
    _secrets_read_restricted,
)
