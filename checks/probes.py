"""Probes: readiness on serving containers; startup protection for slow starters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from auditor.checkapi import Check, CheckContext, CheckMeta, Failures, annotation_or_param, not_applicable
from auditor.kube import SERVING_KINDS, Container, Workload
from auditor.models import Result, Severity

STARTUP_ANNOTATION = "auditor.dev/startup-seconds"


def _serving_containers(w: Workload) -> list[Container]:
    """Containers that take traffic: those declaring ports; where none declares any, those with a
    readiness probe (a port-less sidecar is not what the Service reaches); failing both, every app container.
    """
    app = list(w.app_containers())
    with_ports = [c for c in app if c.spec.get("ports")]
    with_readiness = [c for c in app if isinstance(c.spec.get("readinessProbe"), dict)]
    return with_ports or with_readiness or app


def _readiness(ctx: CheckContext) -> Iterator[Result]:
    for w in ctx.workloads:
        if not ctx.is_serving(w):
            yield not_applicable(
                w.subject, f"{w.kind} does not serve traffic (no container ports, no Service selects it)"
            )
            continue
        f = Failures(w.subject)
        for c in _serving_containers(w):
            if not isinstance(c.spec.get("readinessProbe"), Mapping):
                f.add("no-readiness-probe", f"container {c.name}: no readinessProbe")
        yield f.result("every serving container has a readiness probe")


READINESS = Check(
    CheckMeta(
        id="probe-readiness",
        title="Readiness probes on serving containers",
        items=("probe.readiness",),
        severity=Severity.HIGH,
        kinds=tuple(sorted(SERVING_KINDS)),
        reads=("Service",),
        rationale="Without a readiness probe a pod receives bets and deposits before it can process them, and keeps them while it is failing.",
        remediation="Add a readinessProbe that exercises the service's real dependencies (HTTP /ready, gRPC health).",
        references=("ISO/IEC 27001:2022 A.8.14",),
        facets={"no-readiness-probe": "serving container without readinessProbe"},
    ),
    _readiness,
)


def _budget(probe: Mapping[str, Any]) -> int:
    """Seconds before a probe gives up: initialDelay + failureThreshold x period (Kubernetes defaults 0, 3, 10)."""
    delay = probe.get("initialDelaySeconds", 0)
    threshold = probe.get("failureThreshold", 3)
    period = probe.get("periodSeconds", 10)
    values = [
        v if isinstance(v, int) and not isinstance(v, bool) else d
        for v, d in ((delay, 0), (threshold, 3), (period, 10))
    ]
    return values[0] + values[1] * values[2]


def _startup(ctx: CheckContext) -> Iterator[Result]:
    """A slow starter is protected when nothing restarts it before it has started: a startup probe whose budget
    covers the startup, or else a liveness probe that waits long enough. Readiness needs no grace: a readiness
    probe keeps the pod out of the Service until it passes, however early it starts probing. A serving container
    with no readiness probe at all is probe.readiness's finding, not repeated here."""
    default_seconds = ctx.param("startup_seconds", int, 30)
    for w in ctx.workloads:
        if not ctx.is_serving(w):
            yield not_applicable(w.subject, f"{w.kind} does not serve traffic")
            continue
        override = annotation_or_param(w, STARTUP_ANNOTATION)
        expected = int(override) if override and override.isdigit() else default_seconds
        judged = [c for c in _serving_containers(w) if isinstance(c.spec.get("readinessProbe"), Mapping)]
        if not judged:
            yield not_applicable(w.subject, "no serving container has a readiness probe (see probe.readiness)")
            continue
        f = Failures(w.subject)
        for c in judged:
            startup = c.spec.get("startupProbe")
            if isinstance(startup, Mapping):
                if _budget(startup) < expected:
                    f.add(
                        "startup-probe-too-short",
                        f"container {c.name}: startupProbe allows {_budget(startup)}s, startup takes up to {expected}s",
                    )
                continue
            liveness = c.spec.get("livenessProbe")
            if isinstance(liveness, Mapping) and _budget(liveness) < expected:
                f.add(
                    "liveness-kills-before-start",
                    f"container {c.name}: no startupProbe and livenessProbe restarts it after {_budget(liveness)}s, "
                    f"before its {expected}s startup",
                )
        yield f.result(f"every serving container is protected for its {expected}s startup")


STARTUP = Check(
    CheckMeta(
        id="probe-startup",
        title="Slow starters are not restarted before they start",
        items=("probe.startup",),
        severity=Severity.MEDIUM,
        kinds=tuple(sorted(SERVING_KINDS)),
        reads=("Service",),
        rationale=(
            "A slow starter (JVM wallet, cache warm-up) without a startup probe is either killed by its liveness probe "
            "or marked ready too early, giving 5xx to players during every rollout."
        ),
        remediation=(
            f"Add a startupProbe whose failureThreshold x periodSeconds covers the startup time; state the time with the "
            f"{STARTUP_ANNOTATION} annotation where it differs from parameters.startup_seconds."
        ),
        references=("ISO/IEC 27001:2022 A.8.14",),
        facets={
            "startup-probe-too-short": "startupProbe budget below expected startup",
            "liveness-kills-before-start": "liveness probe fires before startup completes",
        },
    ),
    _startup,
)
