"""Secrets and configuration: no literal secrets, secrets as files, config changes roll pods.

Env literal values never reach a check: the source classifies each literal when it
reads it and keeps only the verdict (see ``auditor.sources.scrub``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures, not_applicable
from auditor.kube import WORKLOAD_KINDS, Workload, as_list, as_mapping
from auditor.models import ENV_LITERAL_KEY, LITERALS_KEY, Result, Severity

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


def _configmaps_used(w: Workload) -> set[str]:
    names = set()
    for vol in as_list(w.pod_spec.get("volumes")):
        vol = as_mapping(vol)
        cm = as_mapping(vol.get("configMap"))
        if cm.get("name"):
            names.add(str(cm["name"]))
        for src in as_list(as_mapping(vol.get("projected")).get("sources")):
            cm = as_mapping(as_mapping(src).get("configMap"))
            if cm.get("name"):
                names.add(str(cm["name"]))
    for c in w.containers():
        for env in as_list(c.spec.get("env")):
            ref = as_mapping(as_mapping(as_mapping(env).get("valueFrom")).get("configMapKeyRef"))
            if ref.get("name"):
                names.add(str(ref["name"]))
        for src in as_list(c.spec.get("envFrom")):
            ref = as_mapping(as_mapping(src).get("configMapRef"))
            if ref.get("name"):
                names.add(str(ref["name"]))
    return names


def _config_versioned(ctx: CheckContext) -> Iterator[Result]:
    immutable = {(o.namespace or "", o.name) for o in ctx.objects("ConfigMap") if o.raw.get("immutable") is True}
    for w in ctx.workloads:
        used = _configmaps_used(w)
        if not used:
            yield not_applicable(w.subject, "uses no ConfigMap")
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
