"""Live clusters: what a kube-apiserver holds, read with the official ``kubernetes`` client.

Read-only and fail closed. Every kind the checklist needs is listed in pages (``limit`` and
``continue``, listed again from the start on 410 Gone), with bounded concurrency, retries with
backoff for 429, 5xx and timeouts, and one overall deadline. What cannot be listed (403, a
missing CRD, a timeout) becomes a coverage gap that names the resource and the exact permission
missing; the kinds listed completely are recorded in the source record, so a check can tell
"not seen" from "seen and empty".

Secret values never leave the cluster: Secrets and ConfigMaps are listed as
``PartialObjectMetadataList`` (the API server sends metadata only), and every object passes
through the same scrubbing as manifests.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.models import CoverageGap, EvidenceKind, K8sObject, SourceLocation, SourceRecord
from auditor.sources.interface import Collected, Source
from auditor.sources.scrub import scrub
from auditor.sources.shape import normalize_booleans, shape_problems

PAGE_SIZE = 500
_SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
MAX_CONCURRENCY = 4
DEADLINE_SECONDS = 300.0
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
_RETRYABLE = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Resource:
    """A kind the auditor lists, and what depends on it."""

    group: str
    """API group (``""`` for the core group)."""
    plural: str
    kind: str
    items: tuple[str, ...] = ()
    """Checklist items whose checks read this kind (named in a gap when it cannot be listed)."""
    metadata_only: bool = False
    """List as PartialObjectMetadata: the API server never sends the data (Secrets, ConfigMaps)."""
    optional: bool = False
    """Served only when a CRD (or an optional API) is installed: absence is a gap, not an error."""

    @property
    def label(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> str:
        """How the snapshot names it among the kinds collected: ``group/Kind``, or ``Kind`` for core."""
        return f"{self.group}/{self.kind}" if self.group else self.kind


_POD = ("pod.run-as-non-root", "pod.no-privilege", "pod.no-host-access", "image.pinned-digest")
_RBAC = ("rbac.no-wildcards", "rbac.cluster-admin-restricted", "rbac.secrets-read-restricted", "sa.token-scoped")
_ADMISSION = ("policy.admission-enforced",)
_SECRETS = ("secrets.external-source", "secrets.rotated")
_BACKUP = ("backup.scheduled", "backup.recent", "backup.pitr")

RESOURCES: tuple[Resource, ...] = (
    Resource("", "namespaces", "Namespace", ("net.default-deny",)),
    Resource("", "pods", "Pod", _POD),
    Resource("", "services", "Service", ("probe.readiness",)),
    Resource("", "serviceaccounts", "ServiceAccount", ("sa.token-scoped",)),
    Resource("", "configmaps", "ConfigMap", ("config.versioned",), metadata_only=True),
    Resource("", "secrets", "Secret", _SECRETS, metadata_only=True),
    Resource(
        "", "persistentvolumeclaims", "PersistentVolumeClaim", ("rollout.safe-strategy", *_BACKUP, "data.residency")
    ),
    Resource("", "persistentvolumes", "PersistentVolume", ("data.residency",)),
    Resource("", "nodes", "Node", ("data.residency", "scale.warm-capacity"), metadata_only=True),
    Resource("storage.k8s.io", "storageclasses", "StorageClass", ("data.residency",)),
    Resource("apps", "deployments", "Deployment", _POD),
    Resource("apps", "statefulsets", "StatefulSet", _POD),
    Resource("apps", "daemonsets", "DaemonSet", _POD),
    Resource("apps", "replicasets", "ReplicaSet", _POD),
    Resource("batch", "jobs", "Job", _POD),
    Resource("batch", "cronjobs", "CronJob", _POD),
    Resource("policy", "poddisruptionbudgets", "PodDisruptionBudget", ("pdb.present",)),
    Resource("autoscaling", "horizontalpodautoscalers", "HorizontalPodAutoscaler", ("scale.autoscaled",)),
    Resource("networking.k8s.io", "networkpolicies", "NetworkPolicy", ("net.default-deny", "net.egress-restricted")),
    Resource("rbac.authorization.k8s.io", "roles", "Role", _RBAC),
    Resource("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", _RBAC),
    Resource("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", _RBAC),
    Resource("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", _RBAC),
    Resource("scheduling.k8s.io", "priorityclasses", "PriorityClass", ("priority.class",)),
    Resource("admissionregistration.k8s.io", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", _ADMISSION),
    Resource(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        _ADMISSION,
    ),
    Resource(
        "admissionregistration.k8s.io", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", _ADMISSION
    ),
    # Custom resources: listed when their CRD is installed, a coverage gap naming the items otherwise.
    Resource("keda.sh", "scaledobjects", "ScaledObject", ("scale.autoscaled", "scale.non-cpu-metric"), optional=True),
    Resource("argoproj.io", "rollouts", "Rollout", ("rollout.safe-strategy", "rollout.canary-gates"), optional=True),
    Resource("argoproj.io", "analysistemplates", "AnalysisTemplate", ("rollout.canary-gates",), optional=True),
    Resource(
        "argoproj.io", "clusteranalysistemplates", "ClusterAnalysisTemplate", ("rollout.canary-gates",), optional=True
    ),
    Resource("argoproj.io", "applications", "Application", ("gitops.synced",), optional=True),
    Resource("kustomize.toolkit.fluxcd.io", "kustomizations", "Kustomization", ("gitops.synced",), optional=True),
    Resource("flagger.app", "canaries", "Canary", ("rollout.canary-gates",), optional=True),
    Resource("external-secrets.io", "externalsecrets", "ExternalSecret", _SECRETS, optional=True),
    Resource("external-secrets.io", "secretstores", "SecretStore", _SECRETS, optional=True),
    Resource("external-secrets.io", "clustersecretstores", "ClusterSecretStore", _SECRETS, optional=True),
    Resource("secrets-store.csi.x-k8s.io", "secretproviderclasses", "SecretProviderClass", _SECRETS, optional=True),
    Resource("kyverno.io", "clusterpolicies", "ClusterPolicy", _ADMISSION, optional=True),
    Resource("kyverno.io", "policies", "Policy", _ADMISSION, optional=True),
    Resource("wgpolicyk8s.io", "policyreports", "PolicyReport", _ADMISSION, optional=True),
    Resource("wgpolicyk8s.io", "clusterpolicyreports", "ClusterPolicyReport", _ADMISSION, optional=True),
    Resource("templates.gatekeeper.sh", "constrainttemplates", "ConstraintTemplate", _ADMISSION, optional=True),
    Resource("policy.sigstore.dev", "clusterimagepolicies", "ClusterImagePolicy", ("image.signed",), optional=True),
    Resource("velero.io", "schedules", "Schedule", _BACKUP, optional=True),
    Resource("velero.io", "backups", "Backup", _BACKUP, optional=True),
    Resource("velero.io", "backupstoragelocations", "BackupStorageLocation", ("data.residency",), optional=True),
    Resource("postgresql.cnpg.io", "clusters", "Cluster", _BACKUP, optional=True),
    Resource("postgresql.cnpg.io", "scheduledbackups", "ScheduledBackup", _BACKUP, optional=True),
    Resource("postgresql.cnpg.io", "backups", "Backup", _BACKUP, optional=True),
    Resource("postgresql.cnpg.io", "poolers", "Pooler", ("db.connection-pooling",), optional=True),
    Resource("security.istio.io", "peerauthentications", "PeerAuthentication", ("net.mtls-strict",), optional=True),
    Resource("networking.istio.io", "virtualservices", "VirtualService", ("net.egress-timeouts",), optional=True),
    Resource("networking.istio.io", "destinationrules", "DestinationRule", ("net.egress-timeouts",), optional=True),
    Resource("monitoring.coreos.com", "prometheusrules", "PrometheusRule", ("obs.sli-alerts",), optional=True),
    Resource("opentelemetry.io", "instrumentations", "Instrumentation", ("obs.tracing",), optional=True),
)
# Gatekeeper generates one CRD per constraint template in this group; every kind it serves is listed.
GATEKEEPER_CONSTRAINTS = "constraints.gatekeeper.sh"


class _ListError(Exception):
    """A list that could not complete: the HTTP status (0 for transport errors) and what to say."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Discovery:
    """What the API server serves: (group, plural) -> (version, namespaced, kind)."""

    served: dict[tuple[str, str], tuple[str, bool, str]] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    """group -> preferred version."""


class ClusterSource(Source):
    """Kubernetes objects from one or more live clusters (kubeconfig contexts, or in-cluster config)."""

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        contexts: Sequence[str] = (),
        in_cluster: bool = False,
        deadline_seconds: float = DEADLINE_SECONDS,
        page_size: int = PAGE_SIZE,
        concurrency: int = MAX_CONCURRENCY,
        progress: Any = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.contexts = list(contexts)
        self.in_cluster = in_cluster
        self.deadline_seconds = deadline_seconds
        self.page_size = page_size
        self.concurrency = max(1, concurrency)
        self.progress = progress
        """Optional callable(message) for per-cluster, per-kind progress (the CLI's terminal)."""

    def collect(self) -> Collected:
        out = Collected(kinds={EvidenceKind.K8S_OBJECTS, EvidenceKind.CLUSTER_STATE})
        deadline = time.monotonic() + self.deadline_seconds
        for target, make_client in self._targets(out):
            _ClusterReader(self, target, make_client, deadline).read(out)
        return out

    # ------------------------------------------------------------------ connection

    def _targets(self, out: Collected) -> Iterator[tuple[str, Any]]:
        """(context name, factory of an ApiClient) for every cluster to read; configuration errors are gaps."""
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        if self.in_cluster:

            def in_cluster_client() -> Any:
                from kubernetes.config.incluster_config import InClusterConfigLoader

                # The pod's ServiceAccount: token and CA where the kubelet mounts them, API server from the
                # KUBERNETES_SERVICE_HOST/PORT variables. AUDITOR_SERVICEACCOUNT_DIR moves the mount (tests).
                mount = Path(os.environ.get("AUDITOR_SERVICEACCOUNT_DIR", _SERVICEACCOUNT_DIR))
                configuration = client.Configuration()
                InClusterConfigLoader(
                    token_filename=str(mount / "token"), cert_filename=str(mount / "ca.crt")
                ).load_and_set(client_configuration=configuration)
                return client.ApiClient(configuration)

            yield "in-cluster", in_cluster_client
            return
        contexts = self.contexts
        if not contexts:
            try:
                _all, active = config.list_kube_config_contexts(config_file=self.kubeconfig)
            except (ConfigException, OSError, TypeError, ValueError) as exc:
                out.gaps.append(
                    CoverageGap(
                        "cluster", self.kubeconfig or "kubeconfig", "unreachable", f"cannot read kubeconfig: {exc}"
                    )
                )
                return
            contexts = [str(active["name"])] if active else []
        for context in contexts:

            def from_kubeconfig(context: str = context) -> Any:
                return config.new_client_from_config(config_file=self.kubeconfig, context=context, persist_config=False)

            yield context, from_kubeconfig


class _ClusterReader:
    """Reads one cluster: identity, discovery, then every resource in parallel pages."""

    def __init__(self, source: ClusterSource, context: str, make_client: Any, deadline: float) -> None:
        self.source = source
        self.context = context
        self.make_client = make_client
        self.deadline = deadline
        self.lock = threading.Lock()

    def read(self, out: Collected) -> None:
        from kubernetes.config.config_exception import ConfigException

        try:
            self.api = self.make_client()
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            out.gaps.append(CoverageGap("cluster", self.context, "unreachable", f"cannot configure a client: {exc}"))
            out.records.append(SourceRecord(type="cluster", target=self.context))
            return
        configuration = self.api.configuration
        server = str(configuration.host)
        if not configuration.verify_ssl:
            out.gaps.append(
                CoverageGap(
                    "cluster",
                    self.context,
                    "tls-verification-off",
                    "the kubeconfig turns TLS verification off (insecure-skip-tls-verify): the auditor cannot prove "
                    "it talked to this cluster; set certificate-authority-data instead",
                )
            )
        self._say(f"{self.context}: reading {server}")
        cluster_id = self._cluster_id(out)
        try:
            discovery = self._discover()
        except _ListError as exc:
            out.gaps.append(CoverageGap("cluster", self.context, "unreachable", f"API discovery failed: {exc.reason}"))
            out.records.append(SourceRecord(type="cluster", target=self.context, server=server, cluster_id=cluster_id))
            return
        resources = [*RESOURCES, *self._gatekeeper_constraints(discovery)]
        collected: list[str] = []
        self.unlisted: set[str] = set()
        objects: dict[int, list[K8sObject]] = {}
        with ThreadPoolExecutor(max_workers=self.source.concurrency) as pool:
            futures = {i: pool.submit(self._list_resource, r, discovery, out) for i, r in enumerate(resources)}
            for i, fut in futures.items():
                listed = fut.result()
                if listed is not None:
                    objects[i] = listed
                    collected.append(resources[i].key)
        for i in sorted(objects):  # input order: the snapshot does not depend on which list finished first
            out.objects.extend(objects[i])
        out.records.append(
            SourceRecord(
                type="cluster",
                target=self.context,
                server=server,
                cluster_id=cluster_id,
                collected=tuple(sorted(set(collected))),
                unlisted=tuple(sorted(self.unlisted)),
            )
        )

    def _say(self, message: str) -> None:
        if self.source.progress is not None:
            self.source.progress(message)

    # ------------------------------------------------------------------ API calls

    def _get(self, path: str, query: Sequence[tuple[str, Any]] = (), accept: str = "application/json") -> Any:
        """GET a path as JSON, retrying 429/5xx/timeouts with backoff until the deadline."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        attempt = 0
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise _ListError(0, "the overall deadline passed before the list completed")
            retry_after: str | None = None
            try:
                status, data, retry_after = self._request(path, query, accept, min(60.0, remaining))
            except ApiException as exc:
                if not exc.status:  # TLS failures and the like
                    raise _ListError(0, f"{exc.reason}".strip().splitlines()[0][:300]) from None
                # (kubernetes client < 37 raises for every non-2xx answer)
                status, data = int(exc.status), (exc.body or b"")
                data = data.encode() if isinstance(data, str) else data
                retry_after = (exc.headers or {}).get("Retry-After")
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                status, data = 0, str(exc).encode()
            if 200 <= status < 300:
                try:
                    return json.loads(data)
                except ValueError:
                    raise _ListError(status, "the API server sent a response that is not JSON") from None
            if (status in _RETRYABLE or status == 0) and attempt < 6:
                attempt += 1
                delay = min(8.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2)
                if retry_after and retry_after.isdigit():
                    delay = min(float(retry_after), 30.0)
                what = f"HTTP {status}" if status else "no answer"
                self._say(f"{self.context}: {what} for {path}; retrying in {delay:.1f} s (attempt {attempt})")
                time.sleep(min(delay, max(0.0, self.deadline - time.monotonic())))
                continue
            raise _ListError(status, _status_reason(status, data))

    def _request(
        self, path: str, query: Sequence[tuple[str, Any]], accept: str, timeout: float
    ) -> tuple[int, bytes, str | None]:
        """One GET through the client's configured transport (TLS, token), for kubernetes clients before and after
        37, whose ApiClient changed shape (37 split request building into ``param_serialize``)."""
        if hasattr(self.api, "param_serialize"):
            method, url, headers, _body, _post = self.api.param_serialize(
                "GET", path, query_params=list(query), header_params={"Accept": accept}, auth_settings=["BearerToken"]
            )
            response = self.api.call_api(method, url, header_params=headers, _request_timeout=timeout)
            data = response.read()
            return int(response.status), data, response.getheader("Retry-After")
        response = self.api.call_api(
            path,
            "GET",
            query_params=list(query),
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=timeout,
        )
        return int(response.status), response.data, response.getheader("Retry-After")

    def _cluster_id(self, out: Collected) -> str | None:
        try:
            ns = self._get("/api/v1/namespaces/kube-system")
        except _ListError as exc:
            out.gaps.append(
                CoverageGap(
                    "cluster",
                    self.context,
                    "identity-unknown",
                    f"cannot read namespace kube-system for the cluster id ({exc.reason}); findings name the context only",
                )
            )
            return None
        uid = (ns.get("metadata") or {}).get("uid") if isinstance(ns, dict) else None
        return str(uid) if uid else None

    def _discover(self) -> _Discovery:
        d = _Discovery()
        core = self._get("/api/v1")
        for r in core.get("resources") or ():
            if "/" not in r.get("name", ""):
                d.served[("", r["name"])] = ("v1", bool(r.get("namespaced")), str(r.get("kind", "")))
        d.groups[""] = "v1"
        groups = self._get("/apis")
        wanted = {r.group for r in RESOURCES} | {GATEKEEPER_CONSTRAINTS}
        for g in groups.get("groups") or ():
            name = str(g.get("name", ""))
            if name not in wanted:
                continue
            version = str((g.get("preferredVersion") or {}).get("version", ""))
            d.groups[name] = version
            try:
                listing = self._get(f"/apis/{name}/{version}")
            except _ListError:
                continue  # an aggregated API that is down: its resources become gaps below
            for r in listing.get("resources") or ():
                if "/" not in r.get("name", ""):
                    d.served[(name, r["name"])] = (version, bool(r.get("namespaced")), str(r.get("kind", "")))
        return d

    def _gatekeeper_constraints(self, d: _Discovery) -> list[Resource]:
        return [
            Resource(GATEKEEPER_CONSTRAINTS, plural, kind, _ADMISSION, optional=True)
            for (group, plural), (_v, _ns, kind) in sorted(d.served.items())
            if group == GATEKEEPER_CONSTRAINTS
        ]

    def _list_resource(self, r: Resource, d: _Discovery, out: Collected) -> list[K8sObject] | None:
        """Every object of one kind, or None with the reason recorded as a gap."""
        served = d.served.get((r.group, r.plural))
        if served is None:
            what = "its CRD is not installed" if r.optional else "the API server does not serve it"
            self._gap(out, r, "not-served", f"{r.kind} ({r.label}) is not served: {what}")
            return None
        version, _namespaced, _kind = served
        base = f"/api/{version}" if not r.group else f"/apis/{r.group}/{version}"
        path = f"{base}/{r.plural}"
        accept = _METADATA_ONLY if r.metadata_only else "application/json"
        self._say(f"{self.context}: listing {r.label}")
        for _restart in range(3):
            items: list[dict[str, Any]] = []
            token: str | None = None
            try:
                while True:
                    query: list[tuple[str, Any]] = [("limit", self.source.page_size)]
                    if token:
                        query.append(("continue", token))
                    page = self._get(path, query, accept)
                    if not isinstance(page, dict):
                        raise _ListError(200, "the API server sent a list that is not a JSON object")
                    # An empty page may say `"items": null`.
                    items.extend(i for i in page.get("items") or () if isinstance(i, dict))
                    token = (page.get("metadata") or {}).get("continue") or None
                    if not token:
                        break
                    self._say(f"{self.context}: listing {r.label}: {len(items):,} so far")
            except _ListError as exc:
                if exc.status == 410:
                    # The continue token expired (etcd compacted past it): list again from the start.
                    self._say(f"{self.context}: listing {r.label}: the list expired (410 Gone); listing again")
                    continue
                # Secrets withheld by the shipped role are a known limit, not a hole in what the role should see.
                kind = "withheld" if exc.status == 403 and r.kind == "Secret" else _gap_kind(exc.status)
                self._gap(out, r, kind, _list_failure(r, exc))
                return None
            return self._objects(r, items, version, out)
        self._gap(out, r, "unreadable", f"{r.kind}: the list kept expiring (410 Gone) while paging; not collected")
        return None

    def _objects(self, r: Resource, items: list[dict[str, Any]], version: str, out: Collected) -> list[K8sObject]:
        api_version = f"{r.group}/{version}" if r.group else version
        objects = []
        for raw in items:
            # List items carry no apiVersion/kind of their own; PartialObjectMetadata items say meta.k8s.io.
            raw["apiVersion"], raw["kind"] = api_version, r.kind
            meta = raw.get("metadata")
            if isinstance(meta, dict):
                meta.pop("managedFields", None)
            if r.metadata_only:
                raw = {"apiVersion": api_version, "kind": r.kind, "metadata": raw.get("metadata") or {}}
            problems = shape_problems(raw)
            normalize_booleans(raw)
            ns = meta.get("namespace") if isinstance(meta, dict) else None
            name = meta.get("name", "?") if isinstance(meta, dict) else "?"
            where = f"{self.context}: {r.kind} {ns + '/' if ns else ''}{name}"
            if problems:
                self._gap(out, r, "invalid-object", f"{where}: " + "; ".join(problems[:3]))
                continue
            objects.append(
                K8sObject(raw=scrub(raw), location=SourceLocation(file=f"cluster {self.context}"), cluster=self.context)
            )
        return objects

    def _gap(self, out: Collected, r: Resource, gap: str, reason: str) -> None:
        needed = f"; items that read it: {', '.join(r.items)}" if r.items else ""
        with self.lock:
            if gap not in ("not-served", "invalid-object", "withheld"):
                self.unlisted.add(r.kind)
            out.gaps.append(CoverageGap("cluster", f"{self.context}: {r.label}", gap, reason + needed))


def _gap_kind(status: int) -> str:
    return {401: "unauthenticated", 403: "forbidden", 404: "not-served"}.get(status, "unreadable")


def _list_failure(r: Resource, exc: _ListError) -> str:
    if exc.status == 403 and r.kind == "Secret":
        return (
            "forbidden, as the shipped read-only role intends: RBAC cannot grant metadata-only access, and `list` on "
            "secrets would let the auditor's token read every Secret's data. Secret ages and sources are judged from "
            "ExternalSecret and SecretProviderClass objects instead. (Granting `list` on secrets adds Secret "
            "metadata; the auditor still asks for metadata only.)"
        )
    if exc.status == 403:
        group = f'"{r.group}"' if r.group else '""'
        return (
            f"forbidden: the auditor needs `list` on {r.label} (ClusterRole rule: apiGroups [{group}], "
            f"resources [{r.plural}], verbs [get, list, watch])"
        )
    if exc.status == 401:
        return "unauthenticated: the credentials in the kubeconfig were refused"
    return f"{r.kind} could not be listed: {exc.reason}"


def _status_reason(status: int, data: bytes) -> str:
    try:
        body = json.loads(data)
        message = body.get("message") if isinstance(body, Mapping) else None
    except ValueError:
        message = None
    text = str(message) if message else data.decode("utf-8", "replace")[:200]
    return f"HTTP {status}: {text}" if status else text[:300]
