"""Secrets and configuration: no literal secrets, secrets as files, config changes roll pods.

Env literal values never reach a check: the source classifies each literal when it
reads it and keeps only the verdict (see ``auditor.sources.scrub``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures, age_hours, not_applicable, not_assessed
from auditor.kube import WORKLOAD_KINDS, Workload, as_list, as_mapping
from auditor.models import ENV_LITERAL_KEY, LITERALS_KEY, EvidenceKind, Result, Severity, Subject

_KINDS = tuple(sorted(WORKLOAD_KINDS))
_SECRET_REFS = ("ISO/IEC 27001:2022 A.5.17", "ISO/IEC 27001:2022 A.8.24")


def _no_literal_env(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        f = Failures(w.subject)
        for c in w.containers():
            for env in as_list(c.spec.get("env")):
                literal = as_mapping(as_mapping(env).get(ENV_LITERAL_KEY))
                if literal.get("secretLike") is True:
                    name = as_mapping(env).get("name", "?")
                    f.add(
                        "secret-literal",
                        f"container {c.name}: env {name} holds a literal that looks like a secret ({literal.get('why')})",
                    )
            for literal in as_list(c.spec.get(LITERALS_KEY)):
                literal = as_mapping(literal)
                if literal.get("secretLike") is True:
                    f.add(
                        "secret-in-args",
                        f"container {c.name}: {literal.get('field')} holds a literal that looks like a secret "
                        f"({literal.get('why')})",
                    )
        yield f.result("no secret-looking literal values in env, command or args")


NO_LITERAL_ENV = Check(
    CheckMeta(
        id="secrets-no-literal-env",
        title="No secret-looking literal values in env",
        items=("secrets.no-literal-env",),
        severity=Severity.CRITICAL,
        kinds=_KINDS,
        rationale="A literal in a manifest is a secret in Git history, CI logs and every backup of the cluster state.",
        remediation="Move the value to the external secret manager and reference it from a mounted Secret file.",
        references=(*_SECRET_REFS, "CIS Kubernetes Benchmark 5.4.1"),
        facets={
            "secret-literal": "env literal classified secret-like (name or value pattern); the value is never recorded",
            "secret-in-args": "command or args element classified secret-like (flag name, assignment or value pattern)",
        },
    ),
    _no_literal_env,
)


def _mounted_not_env(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        f = Failures(w.subject)
        for c in w.containers():
            for env in as_list(c.spec.get("env")):
                env = as_mapping(env)
                ref = as_mapping(as_mapping(env.get("valueFrom")).get("secretKeyRef"))
                if ref:
                    f.add(
                        "env-secret-ref",
                        f"container {c.name}: env {env.get('name', '?')} from Secret {ref.get('name', '?')}",
                    )
            for src in as_list(c.spec.get("envFrom")):
                ref = as_mapping(as_mapping(src).get("secretRef"))
                if ref:
                    f.add("envfrom-secret", f"container {c.name}: envFrom Secret {ref.get('name', '?')}")
        yield f.result("secrets reach containers as files only")


MOUNTED_NOT_ENV = Check(
    CheckMeta(
        id="secrets-mounted-not-env",
        title="Secrets mounted as files, not env",
        items=("secrets.mounted-not-env",),
        severity=Severity.MEDIUM,
        kinds=_KINDS,
        rationale="Environment variables leak into crash dumps, child processes and debug endpoints, and never rotate in place.",
        remediation="Mount the Secret as a volume (or via the Secrets Store CSI driver) and read it from the file.",
        references=(*_SECRET_REFS, "CIS Kubernetes Benchmark 5.4.1"),
        facets={"env-secret-ref": "env valueFrom.secretKeyRef", "envfrom-secret": "envFrom.secretRef"},
    ),
    _mounted_not_env,
)

# kustomize's configMapGenerator appends a 10-character hash from this alphabet.
_KUSTOMIZE_HASH = re.compile(r"-[bcdfghkmt2456789]{10}$")
_RELOADER = ("reloader.stakater.com/auto", "configmap.reloader.stakater.com/reload", "reloader.stakater.com/search")


@dataclass(frozen=True)
class _RefKeys:
    """Where a pod spec names a ConfigMap or a Secret (the API spells each reference differently)."""

    volume: str
    volume_name: str
    projected: str
    env: str
    env_from: str


_CONFIGMAP_REFS = _RefKeys("configMap", "name", "configMap", "configMapKeyRef", "configMapRef")
_SECRET_REFS_IN_PODS = _RefKeys("secret", "secretName", "secret", "secretKeyRef", "secretRef")


def _referenced(w: Workload, keys: _RefKeys) -> set[str]:
    """Names of the ConfigMaps or Secrets a workload reads: volumes, projected volumes, env and envFrom."""
    names = set()
    for vol in as_list(w.pod_spec.get("volumes")):
        vol = as_mapping(vol)
        name = as_mapping(vol.get(keys.volume)).get(keys.volume_name)
        if name:
            names.add(str(name))
        for src in as_list(as_mapping(vol.get("projected")).get("sources")):
            name = as_mapping(as_mapping(src).get(keys.projected)).get("name")
            if name:
                names.add(str(name))
    for c in w.containers():
        for env in as_list(c.spec.get("env")):
            name = as_mapping(as_mapping(as_mapping(env).get("valueFrom")).get(keys.env)).get("name")
            if name:
                names.add(str(name))
        for src in as_list(c.spec.get("envFrom")):
            name = as_mapping(as_mapping(src).get(keys.env_from)).get("name")
            if name:
                names.add(str(name))
    return names


def _config_versioned(ctx: CheckContext) -> Iterator[Result]:
    immutable = {(o.namespace or "", o.name) for o in ctx.objects("ConfigMap") if o.raw.get("immutable") is True}
    for w in ctx.workloads:
        used = _referenced(w, _CONFIGMAP_REFS)
        if not used:
            yield not_applicable(w.subject, "uses no ConfigMap")
            continue
        if w.kind in ("Job", "CronJob"):
            yield not_applicable(
                w.subject, f"a {w.kind} starts new pods on every run, which read the config as it is then"
            )
            continue
        annotations = {**w.obj.annotations, **w.pod_annotations}
        if any(k.startswith("checksum/") or "config-hash" in k for k in annotations):
            yield Failures(w.subject).result("pod template carries a config checksum annotation")
            continue
        if any(k in annotations for k in _RELOADER):
            yield Failures(w.subject).result("a reloader annotation rolls pods on config change")
            continue
        f = Failures(w.subject)
        for name in sorted(used):
            if (w.namespace or "", name) in immutable or _KUSTOMIZE_HASH.search(name):
                continue
            f.add(
                "unversioned-config",
                f"ConfigMap {name} is mutable and unversioned, and no checksum annotation rolls the pods",
            )
        yield f.result("every ConfigMap it uses is immutable or content-versioned")


CONFIG_VERSIONED = Check(
    CheckMeta(
        id="config-versioned",
        title="Config changes roll pods",
        items=("config.versioned",),
        severity=Severity.LOW,
        kinds=_KINDS,
        reads=("ConfigMap",),
        rationale="A ConfigMap edited in place changes behaviour without a rollout, a review trail or a way back.",
        remediation="Add a checksum/config annotation to the pod template (Helm), use kustomize's configMapGenerator, or immutable versioned ConfigMaps.",
        references=("ISO/IEC 27001:2022 A.8.9", "ISO/IEC 27001:2022 A.8.32"),
        facets={"unversioned-config": "mutable ConfigMap without a rollout trigger"},
    ),
    _config_versioned,
)


# ------------------------------------------------------------------ live-cluster secrets checks

_ESO_OWNER_KINDS = frozenset({"ExternalSecret", "SealedSecret", "VaultStaticSecret", "VaultDynamicSecret"})


def _externally_produced(ctx: CheckContext) -> Mapping[tuple[str, str], str]:
    """(namespace, secret name) -> the external manager that produces it."""
    out: dict[tuple[str, str], str] = {}
    for es in ctx.objects("ExternalSecret"):
        target = as_mapping(es.spec.get("target")).get("name") or es.name
        out[(es.namespace or "", str(target))] = f"ExternalSecret {es.name}"
    for spc in ctx.objects("SecretProviderClass"):
        for obj in as_list(spc.spec.get("secretObjects")):
            name = as_mapping(obj).get("secretName")
            if name:
                out[(spc.namespace or "", str(name))] = f"SecretProviderClass {spc.name} (Secrets Store CSI)"
    for secret in ctx.objects("Secret"):
        for ref in as_list(secret.metadata.get("ownerReferences")):
            ref = as_mapping(ref)
            if ref.get("kind") in _ESO_OWNER_KINDS:
                out[(secret.namespace or "", secret.name)] = f"{ref.get('kind')} {ref.get('name', '?')}"
    return out


def _external_source(ctx: CheckContext) -> Iterator[Result]:
    produced = _externally_produced(ctx)
    for w in ctx.workloads:
        used = _referenced(w, _SECRET_REFS_IN_PODS)
        if not used:
            yield not_applicable(w.subject, "reads no Secret")
            continue
        f = Failures(w.subject)
        managers = []
        for name in sorted(used):
            manager = produced.get((w.namespace or "", name))
            if manager is None:
                f.add(
                    "unmanaged-secret",
                    f"Secret {name} is not produced by an external manager (no ExternalSecret, SecretProviderClass "
                    "or sealed/Vault owner targets it)",
                )
            else:
                managers.append(f"{name} by {manager}")
        yield f.result(f"every Secret it reads is produced externally: {'; '.join(managers)}")


EXTERNAL_SOURCE = Check(
    CheckMeta(
        id="secrets-external-source",
        title="Secrets produced by an external manager",
        items=("secrets.external-source",),
        severity=Severity.HIGH,
        kinds=_KINDS,
        reads=("ExternalSecret", "SecretProviderClass"),
        needs=frozenset({EvidenceKind.K8S_OBJECTS, EvidenceKind.CLUSTER_STATE}),
        rationale=(
            "A Secret created by hand has no owner, no rotation and no audit trail in the secret manager; PSP and "
            "database credentials must come from the manager the operator audits."
        ),
        remediation=(
            "Produce each Secret with an ExternalSecret (External Secrets Operator), a SecretProviderClass "
            "(Secrets Store CSI) or the Vault agent, from the central secret manager."
        ),
        references=(*_SECRET_REFS, "CIS Kubernetes Benchmark 5.4.2"),
        facets={"unmanaged-secret": "a Secret the workload reads has no external manager"},
    ),
    _external_source,
)


def _age_days(timestamp: str, as_of: str) -> float | None:
    hours = age_hours(timestamp, as_of)
    return None if hours is None else hours / 24


def _rotated(ctx: CheckContext) -> Iterator[Result]:
    max_days = ctx.param("max_secret_age_days", int, 90)
    for es in ctx.objects("ExternalSecret"):
        subject = Subject.of(es)
        f = Failures(subject)
        interval = str(es.spec.get("refreshInterval", "1h"))
        if interval in ("0", "0s", "0m", "0h"):
            f.add("no-refresh", "refreshInterval is 0: the secret is fetched once and never refreshed")
        status = as_mapping(es.raw.get("status"))
        ready = next(
            (as_mapping(c) for c in as_list(status.get("conditions")) if as_mapping(c).get("type") == "Ready"), None
        )
        if ready is not None and ready.get("status") == "False":
            f.add("sync-failed", f"not Ready: {ready.get('reason', '?')} ({str(ready.get('message', ''))[:120]})")
        refreshed = status.get("refreshTime")
        if not refreshed:
            if not f.found:
                yield not_assessed(
                    subject, "the ExternalSecret reports no refreshTime (its controller has not synced it)"
                )
                continue
        else:
            age = _age_days(str(refreshed), ctx.as_of)
            if age is None:
                f.add("stale", f"status.refreshTime {refreshed!r} is not a timestamp")
            elif age > max_days:
                f.add("stale", f"last refreshed {age:.0f} days ago, over the profile's {max_days}-day maximum")
        yield f.result(f"refreshed within {max_days} days")
    managed = _externally_produced(ctx)
    for secret in ctx.objects("Secret"):
        if (secret.namespace or "", secret.name) in managed or str(secret.raw.get("type", "")).startswith(
            "kubernetes.io/service-account-token"
        ):
            continue
        created = secret.metadata.get("creationTimestamp")
        age = _age_days(str(created), ctx.as_of) if created else None
        subject = Subject.of(secret)
        if age is None:
            yield not_assessed(subject, "the Secret's metadata has no creationTimestamp")
            continue
        f = Failures(subject)
        if age > max_days:
            f.add("stale", f"created {age:.0f} days ago and not managed by a rotating source (over {max_days} days)")
        yield f.result(f"created {age:.0f} days ago, within {max_days} days")


ROTATED = Check(
    CheckMeta(
        id="secrets-rotated",
        title="Secrets refreshed within the maximum age",
        items=("secrets.rotated",),
        severity=Severity.MEDIUM,
        kinds=("ExternalSecret", "Secret"),
        needs=frozenset({EvidenceKind.K8S_OBJECTS, EvidenceKind.CLUSTER_STATE}),
        rationale="A credential that never changes stays valid for whoever copied it, long after they left.",
        remediation=(
            "Refresh from the secret manager (ExternalSecret refreshInterval) and rotate at the source within "
            "parameters.max_secret_age_days; fix ExternalSecrets that fail to sync."
        ),
        references=_SECRET_REFS,
        facets={
            "stale": "older than the profile's maximum age",
            "no-refresh": "refreshInterval 0",
            "sync-failed": "the ExternalSecret is not Ready",
        },
    ),
    _rotated,
)
