"""Check semantics that peers' suites and real inputs showed to matter, one behaviour per test."""

from __future__ import annotations

from pathlib import Path

from auditor.models import Severity, Status

from .conftest import FIXTURES, collect, run_check

CHECKS = FIXTURES / "checks"


def _by_name(check_id: str, path: Path) -> dict[str, tuple[str, tuple[str, ...], str]]:
    return {r.subject.name: (r.status.value, r.facets, r.message) for r in run_check(check_id, collect(path))}


def test_cluster_admin_equivalents_are_cluster_admin() -> None:
    results = _by_name("rbac-cluster-admin-restricted", CHECKS / "rbac-cluster-admin-restricted" / "fail.yaml")
    status, _facets, message = results["ci-deployer"]
    assert status == "fail" and "ClusterRole platform-everything, which amounts to cluster-admin (every verb" in message
    status, _facets, message = results["support-core"]
    assert status == "fail" and "core API group" in message
    assert "Group:support" in message
    # a ServiceAccount subject without a namespace is named as such, never as None
    assert "ServiceAccount:orphan (no namespace)" in message and "None" not in message


def test_roles_named_system_are_judged_unless_kubernetes_own() -> None:
    failing = _by_name("rbac-no-wildcards", CHECKS / "rbac-no-wildcards" / "fail.yaml")
    assert failing["system:acme-operator"][0] == "fail"
    assert failing["system:acme-operator"][1] == ("wildcard-api-groups",)
    passing = _by_name("rbac-no-wildcards", CHECKS / "rbac-no-wildcards" / "pass.yaml")
    assert "system:controller:generic-garbage-collector" not in passing


def test_rbac_items_pass_when_rbac_objects_are_present_and_none_is_risky(tmp_path: Path) -> None:
    path = tmp_path / "rbac.yaml"
    path.write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: reader, namespace: shop}\n"
        "rules: [{apiGroups: [''], resources: [configmaps], verbs: [get]}]\n---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: reader, namespace: shop}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\n"
        "subjects: [{kind: ServiceAccount, name: app, namespace: shop}]\n"
    )
    ev = collect(path)
    for check_id in ("rbac-no-wildcards", "rbac-cluster-admin-restricted", "rbac-secrets-read-restricted"):
        results = run_check(check_id, ev)
        assert results and {r.status for r in results} == {Status.PASS}, (check_id, results)


def test_default_service_account_is_judged() -> None:
    results = run_check("sa-token-scoped", collect(CHECKS / "sa-token-scoped" / "fail.yaml"))
    default = {
        r.subject.namespace: r for r in results if r.subject.kind == "ServiceAccount" and r.subject.name == "default"
    }
    assert default["shop"].facets == ("default-sa-automount",)
    assert set(default["games"].facets) == {"default-sa-automount", "default-sa-bound"}
    assert "RoleBinding games/default-can-read-config grants Role config-reader" in default["games"].message


def test_image_digest_messages_say_what_is_wrong() -> None:
    results = _by_name("image-pinned-digest", CHECKS / "image-pinned-digest" / "fail.yaml")
    status, facets, message = results["odd-digests"]
    assert status == "fail" and set(facets) == {"malformed-digest", "non-sha256-digest"}
    assert "sha256 needs 64 hex digits, got 6 characters" in message
    assert "pinned by a sha512 digest" in message
    assert "no tag" not in message


def test_finding_severity_follows_what_failed(tmp_path: Path) -> None:
    from auditor import profiles
    from auditor.assessment import assess
    from auditor.catalog import all_checks

    from .conftest import AS_OF

    def pod(name: str, container_sc: str) -> str:
        return (
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: shop}}\n"
            f"spec:\n  containers:\n  - name: c\n    image: r.example/app@sha256:{'a' * 64}\n"
            f"    securityContext: {container_sc}\n---\n"
        )

    path = tmp_path / "pods.yaml"
    path.write_text(pod("escalation-unset", "{}") + pod("privileged", "{privileged: true}"))
    report = assess(collect(path), profiles.load("baseline"), all_checks(), as_of=AS_OF)
    severity = {f["subject"]["name"]: f["severity"] for f in report["findings"] if f["check"] == "pod-no-privilege"}
    assert severity == {"escalation-unset": "high", "privileged": "critical"}
    # --fail-on critical: only the privileged pod can block, not the unset allowPrivilegeEscalation
    path.write_text(pod("escalation-unset", "{}"))
    only_unset = assess(collect(path), profiles.load("baseline"), all_checks(), as_of=AS_OF, fail_on=Severity.CRITICAL)
    item = next(i for i in only_unset["items"] if i["key"] == "pod.no-privilege")
    assert item["status"] == "fail" and item["severity"] == "critical" and item["blocking"] is False


def test_kubernetes_own_bindings_to_every_service_account_are_not_default_sa_findings(tmp_path: Path) -> None:
    path = tmp_path / "rbac.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: shop}\n"
        "automountServiceAccountToken: false\n---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
        "metadata:\n  name: system:service-account-issuer-discovery\n"
        "  labels: {kubernetes.io/bootstrapping: rbac-defaults}\n"
        "  annotations: {rbac.authorization.kubernetes.io/autoupdate: 'true'}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:service-account-issuer-discovery}\n"
        "subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:serviceaccounts}]\n"
    )
    results = run_check("sa-token-scoped", collect(path))
    default = next(r for r in results if r.subject.kind == "ServiceAccount")
    assert default.status is Status.PASS, default.message
