"""NetworkPolicy: default-deny in every namespace, egress only to declared destinations."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures
from auditor.kube import as_list, as_mapping
from auditor.models import K8sObject, Result, Severity

_NET_REFS = ("ISO/IEC 27001:2022 A.8.20", "ISO/IEC 27001:2022 A.8.22")
_DNS_PORTS = frozenset({53})


def _policy_types(np: K8sObject) -> set[str]:
    types = {str(t) for t in as_list(np.spec.get("policyTypes"))}
    if not types:  # Kubernetes' defaulting: Ingress always, Egress when egress rules exist.
        types = {"Ingress"} | ({"Egress"} if "egress" in np.spec else set())
    return types


def _allows_everything(rule: Mapping[str, Any], peers_key: str) -> bool:
    return not as_list(rule.get(peers_key)) and not as_list(rule.get("ports"))


def _isolates_all_pods(np: K8sObject, direction: str) -> bool:
    """True if the policy selects every pod for ``direction`` without an allow-all rule."""
    selector = np.spec.get("podSelector")
    if not isinstance(selector, Mapping) or selector.get("matchLabels") or selector.get("matchExpressions"):
        return False
    if direction not in _policy_types(np):
        return False
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    return not any(_allows_everything(as_mapping(r), peers_key) for r in as_list(np.spec.get(rules_key)))


def _policies_by_namespace(ctx: CheckContext) -> Mapping[str, Sequence[K8sObject]]:
    out: dict[str, list[K8sObject]] = defaultdict(list)
    for np in ctx.objects("NetworkPolicy"):
        out[np.namespace or ""].append(np)
    return out


def _default_deny(ctx: CheckContext) -> Iterator[Result]:
    policies = _policies_by_namespace(ctx)
    for ns in ctx.namespaces:
        f = Failures(ctx.namespace_subject(ns))
        for direction in ("Ingress", "Egress"):
            if not any(_isolates_all_pods(np, direction) for np in policies.get(ns, ())):
                f.add(f"no-{direction.lower()}-deny", f"no NetworkPolicy isolates every pod for {direction.lower()}")
        yield f.result("every pod is isolated for ingress and egress by default")


DEFAULT_DENY = Check(
    CheckMeta(
        id="net-default-deny",
        title="Default-deny NetworkPolicy for ingress and egress",
        items=("net.default-deny",),
        severity=Severity.HIGH,
        kinds=("Namespace",),
        reads=("NetworkPolicy",),
        rationale="Without a default deny, every new pod can reach the wallet database and the internet until someone remembers.",
        remediation="Add a NetworkPolicy with podSelector: {} and policyTypes [Ingress, Egress] to every namespace, then allow what is needed.",
        references=("CIS Kubernetes Benchmark 5.3.2", *_NET_REFS),
        facets={"no-ingress-deny": "ingress not denied by default", "no-egress-deny": "egress not denied by default"},
    ),
    _default_deny,
)


def _wide_open(cidr: str, allowed: Sequence[str]) -> bool:
    if cidr in allowed:
        return False
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return True  # unparseable: cannot show it is narrow


def _only_dns(rule: Mapping[str, Any]) -> bool:
    ports = as_list(rule.get("ports"))
    return bool(ports) and all(as_mapping(p).get("port") in _DNS_PORTS for p in ports)


def _egress_restricted(ctx: CheckContext) -> Iterator[Result]:
    allowed = [str(c) for c in ctx.param("allowed_egress_cidrs", list, [])]
    policies = _policies_by_namespace(ctx)
    for ns in ctx.namespaces:
        f = Failures(ctx.namespace_subject(ns))
        nps = policies.get(ns, ())
        if not any(_isolates_all_pods(np, "Egress") for np in nps):
            f.add("egress-unrestricted", "egress is not denied by default, so pods may reach any destination")
        for np in nps:
            if "Egress" not in _policy_types(np):
                continue
            for i, rule in enumerate(as_list(np.spec.get("egress"))):
                rule = as_mapping(rule)
                peers = as_list(rule.get("to"))
                if not peers and not _only_dns(rule):
                    f.add("egress-to-anywhere", f"NetworkPolicy {np.name} egress[{i}] allows any destination")
                for peer in peers:
                    cidr = as_mapping(as_mapping(peer).get("ipBlock")).get("cidr")
                    if cidr is not None and _wide_open(str(cidr), allowed):
                        f.add("egress-to-anywhere", f"NetworkPolicy {np.name} egress[{i}] allows {cidr}")
        yield f.result("egress is denied by default and allowed only to declared destinations")


EGRESS_RESTRICTED = Check(
    CheckMeta(
        id="net-egress-restricted",
        title="Egress only to declared destinations",
        items=("net.egress-restricted",),
        severity=Severity.MEDIUM,
        kinds=("Namespace",),
        reads=("NetworkPolicy",),
        rationale="Unrestricted egress is how stolen card and player data leaves; payments should reach only PSP/KYC gateways.",
        remediation="Deny egress by default and allow named destinations (namespaces, pods, or CIDRs listed in parameters.allowed_egress_cidrs); DNS-only rules are accepted.",
        references=_NET_REFS,
        facets={
            "egress-unrestricted": "no default egress deny",
            "egress-to-anywhere": "a rule allows 0.0.0.0/0 or any destination",
        },
    ),
    _egress_restricted,
)
