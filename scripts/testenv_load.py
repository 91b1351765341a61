"""Load the test environment's API server: upstream CRDs, deploy/, the demo platform, the auditor's token.

Run by `scripts/testenv up kube` (with the repo's .venv Python; it needs only PyYAML and the standard
library), against any API server reachable with a token kubeconfig:

    testenv_load.py --kubeconfig admin.kubeconfig [--crds corpus/crds/index.json] [--deploy deploy]
                    [--demo fixtures/demo/manifests] [--auditor-kubeconfig out] [--report out.json]

Everything is written with server-side apply (PATCH, application/apply-patch+yaml, one field
manager), so loading twice is a no-op and CRDs far over the 256 KiB annotation limit of client-side
`kubectl apply` load like any other object. There is no controller manager, so for each Deployment
this also does what its controllers would have done: one ReplicaSet and its Pods (owner references,
pod-template-hash), with the Pods' status set through the status subresource as a kubelet would
(Running, Ready, each container's imageID the declared digest). A CRD or object that cannot load is
a printed warning, not a failure; failures are listed in the --report JSON.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

FIELD_MANAGER = "auditor-testenv"
AUDITOR_NAMESPACE = "auditor-system"
AUDITOR_SERVICE_ACCOUNT = "auditor"
TOKEN_SECONDS = 365 * 24 * 3600
MAX_RETRIES = 10  # of a request answered 429 with Retry-After, as client-go
# What a pod-template-hash is spelled with (k8s.io/apimachinery/pkg/util/rand.SafeEncodeString).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Objects are applied in this order (anything else after them, workloads last): what others refer to first.
KIND_ORDER = [
    "Namespace",
    "CustomResourceDefinition",
    "ConstraintTemplate",
    "PriorityClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "Service",
]
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it


def say(message: str) -> None:
    print(f"testenv: {message}", file=sys.stderr, flush=True)


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


@dataclass
class Credentials:
    server: str
    ca_pem: str
    token: str


def read_kubeconfig(path: Path) -> Credentials:
    """The server, CA and bearer token of a kubeconfig's current context."""
    config: Obj = yaml.load(path.read_text(), Loader=_Loader)
    current = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    if "certificate-authority-data" in cluster:
        ca_pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
    else:
        ca_pem = (path.parent / cluster["certificate-authority"]).read_text()
    token = user["token"] if "token" in user else Path(user["tokenFile"]).read_text().strip()
    return Credentials(server=cluster["server"].rstrip("/"), ca_pem=ca_pem, token=token)


def write_kubeconfig(path: Path, creds: Credentials, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "auditor-testenv",
                "cluster": {
                    "server": creds.server,
                    "certificate-authority-data": base64.b64encode(creds.ca_pem.encode()).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": creds.token}}],
        "contexts": [{"name": f"{user}@auditor-testenv", "context": {"cluster": "auditor-testenv", "user": user}}],
        "current-context": f"{user}@auditor-testenv",
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)


class Client:
    """A minimal Kubernetes REST client: bearer token, TLS verified against the kubeconfig's CA."""

    def __init__(self, creds: Credentials) -> None:
        self.server = creds.server
        self._token = creds.token
        self._tls = ssl.create_default_context(cadata=creds.ca_pem)
        # (apiVersion) -> {kind: (plural, namespaced)}, or None when the version is not served
        self._discovery: dict[str, dict[str, tuple[str, bool]] | None] = {}

    def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Obj:
        url = self.server + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        for attempt in range(MAX_RETRIES + 1):
            try:
                with urllib.request.urlopen(req, context=self._tls, timeout=120) as resp:
                    raw = resp.read()
                break
            except urllib.error.HTTPError as e:
                payload = e.read()
                # 429 with Retry-After (e.g. "storage is (re)initializing" just after a CRD is created):
                # retried as client-go does
                retry_after = e.headers.get("Retry-After")
                if e.code == 429 and retry_after and attempt < MAX_RETRIES:
                    time.sleep(min(float(retry_after), 1.0))
                    continue
                try:
                    status: Obj = json.loads(payload)
                    reason, message = str(status.get("reason", "")), str(status.get("message", ""))
                except ValueError:
                    reason, message = e.reason, payload.decode(errors="replace")[:500]
                raise ApiError(e.code, reason, message) from None
        result: Obj = json.loads(raw) if raw else {}
        return result

    # --- discovery --------------------------------------------------------------------------

    def resources(self, api_version: str, *, refresh: bool = False) -> dict[str, tuple[str, bool]] | None:
        if refresh or api_version not in self._discovery:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                listing = self.request("GET", path)
            except ApiError as e:
                if e.status != 404:
                    raise
                self._discovery[api_version] = None
            else:
                self._discovery[api_version] = {
                    r["kind"]: (r["name"], bool(r["namespaced"]))
                    for r in listing.get("resources", [])
                    if "/" not in r["name"]
                }
        return self._discovery[api_version]

    def object_path(self, api_version: str, kind: str, namespace: str | None, name: str) -> str:
        served = self.resources(api_version)
        if served is None or kind not in served:
            raise ApiError(404, "NotServed", f"{kind} {api_version} is not served by this API server")
        plural, namespaced = served[kind]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced:
            if not namespace:
                raise ApiError(422, "Invalid", f"{kind} {name} is namespaced but has no namespace")
            base += f"/namespaces/{namespace}"
        return f"{base}/{plural}/{name}"

    # --- writes -----------------------------------------------------------------------------

    def apply(self, obj: Obj, *, strict: bool = True) -> Obj:
        """Server-side apply `obj` (create or update), forcing ownership of conflicting fields."""
        meta = obj["metadata"]
        path = self.object_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        if strict:
            query["fieldValidation"] = "Strict"
        return self.request("PATCH", path, obj, content_type="application/apply-patch+yaml", query=query)

    def patch_status(self, obj: Obj, status: Obj) -> Obj:
        meta = obj["metadata"]
        path = self.object_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]) + "/status"
        return self.request("PATCH", path, {"status": status}, content_type="application/merge-patch+json")


@dataclass
class Report:
    crds_loaded: list[str] = field(default_factory=list)
    crds_failed: dict[str, str] = field(default_factory=dict)
    applied: Counter[str] = field(default_factory=Counter)
    failed: list[Obj] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def warn(self, obj: Obj, reason: str) -> None:
        meta = obj.get("metadata", {})
        ident = "/".join(p for p in (meta.get("namespace"), meta.get("name")) if p)
        say(f"warning: {obj.get('kind')} {ident} ({obj.get('apiVersion')}) not loaded: {reason}")
        self.failed.append(
            {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "reason": reason,
            }
        )

    def note(self, message: str) -> None:
        if message not in self.notes:
            say(f"note: {message}")
            self.notes.append(message)

    def as_json(self) -> Obj:
        return {
            "crds": {"loaded": sorted(self.crds_loaded), "failed": self.crds_failed},
            "objects": {"applied": dict(sorted(self.applied.items())), "failed": self.failed},
            "notes": self.notes,
        }


def read_documents(path: Path) -> list[Obj]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=_Loader) if isinstance(d, dict)]


# --- CRDs --------------------------------------------------------------------------------------


def load_crds(client: Client, index_path: Path, report: Report) -> None:
    """Apply every CRD that index.json lists, then wait until each is Established and discoverable."""
    index: list[Obj] = json.loads(index_path.read_text())
    documents: dict[str, list[Obj]] = {}
    applied: list[Obj] = []
    for entry in index:
        name = entry["name"]
        try:
            file = entry["file"]
            if file not in documents:
                documents[file] = read_documents(index_path.parent / file)
            crd = documents[file][entry["document_index"]]
            if crd.get("kind") != "CustomResourceDefinition" or crd["metadata"]["name"] != name:
                raise ValueError(f"document {entry['document_index']} of {file} is not the CRD {name}")
            client.apply(crd, strict=False)
            applied.append(entry)
        except (ApiError, OSError, ValueError, yaml.YAMLError) as e:
            report.crds_failed[name] = str(e)
            say(f"warning: CRD {name} not loaded: {e}")
    deadline = time.monotonic() + 90
    for entry in applied:
        name = entry["name"]
        reason = wait_crd_served(client, entry, deadline)
        if reason:
            report.crds_failed[name] = reason
            say(f"warning: CRD {name} not served: {reason}")
        else:
            report.crds_loaded.append(name)
    groups = sorted({e["group"] for e in index if e["name"] in report.crds_loaded})
    say(f"CRDs: {len(report.crds_loaded)} of {len(index)} loaded and served ({', '.join(groups)})")


def wait_crd_served(client: Client, entry: Obj, deadline: float) -> str | None:
    """None once the CRD is Established and its storage version lists its kind, else the reason."""
    name, group, kind = entry["name"], entry["group"], entry["kind"]
    api_version = f"{group}/{entry['storage_version']}"
    why = "not Established"
    while True:
        crd = client.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = {c["type"]: c for c in (crd.get("status") or {}).get("conditions") or []}
        established = conditions.get("Established", {}).get("status") == "True"
        if established:
            served = client.resources(api_version, refresh=True)
            if served is not None and kind in served:
                # its storage is ready once a list is answered (before, 429 "storage is (re)initializing")
                plural = served[kind][0]
                try:
                    client.request("GET", f"/apis/{api_version}/{plural}", query={"limit": "1"})
                    return None
                except ApiError as e:
                    why = f"listing {plural}: {e}"
            why = f"Established but {kind} is not in the discovery of {api_version}"
        else:
            bad = [c for c in conditions.values() if c["type"] in ("NamesAccepted", "NonStructuralSchema")]
            why = "; ".join(f"{c['type']}={c['status']}: {c.get('message', '')}" for c in bad) or why
        if time.monotonic() > deadline:
            return why
        time.sleep(0.2)


# --- objects -----------------------------------------------------------------------------------


def kind_rank(obj: Obj) -> int:
    kind = obj.get("kind", "")
    if kind in KIND_ORDER:
        return KIND_ORDER.index(kind)
    return len(KIND_ORDER) + (1 if kind in WORKLOAD_KINDS else 0)


def served_alternative(client: Client, obj: Obj) -> str | None:
    """When obj's apiVersion is not served but its group serves its kind at another version, that apiVersion."""
    group = obj["apiVersion"].rpartition("/")[0]
    if not group:
        return None
    try:
        groups = client.request("GET", f"/apis/{group}")
    except ApiError:
        return None
    preferred = groups.get("preferredVersion", {}).get("groupVersion")
    candidates = [preferred] + [v["groupVersion"] for v in groups.get("versions", [])]
    for api_version in candidates:
        if api_version and api_version != obj["apiVersion"]:
            served = client.resources(api_version)
            if served and obj["kind"] in served:
                return str(api_version)
    return None


def constraint_crd(template: Obj) -> Obj:
    """The CRD Gatekeeper generates for a ConstraintTemplate's constraint kind (there is no static one).

    As open-policy-agent/frameworks constraint/pkg/client/crds does: group constraints.gatekeeper.sh,
    plural and singular the kind lowercased, cluster-scoped, v1beta1 (storage) and v1alpha1, status
    subresource, `spec.parameters` the template's schema. `spec.match` is kept open here (Gatekeeper's
    match schema is long and the test environment runs no Gatekeeper to enforce it).
    """
    names = template["spec"]["crd"]["spec"]["names"]
    kind = names["kind"]
    plural = kind.lower()
    parameters = template["spec"]["crd"]["spec"].get("validation", {}).get("openAPIV3Schema") or {}
    if "type" not in parameters:
        parameters = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema = {
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 63}}},
            "spec": {
                "type": "object",
                "properties": {
                    "parameters": parameters,
                    "match": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "enforcementAction": {"type": "string", "default": "deny"},
                    "scopedEnforcementActions": {
                        "type": "array",
                        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                },
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.constraints.gatekeeper.sh", "labels": {"gatekeeper.sh/constraint": "yes"}},
        "spec": {
            "group": "constraints.gatekeeper.sh",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": plural,
                "categories": ["constraint", "constraints"],
            },
            "scope": "Cluster",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": version == "v1beta1",
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
                for version in ("v1beta1", "v1alpha1")
            ],
        },
    }


def apply_constraint_crd(client: Client, template: Obj, report: Report) -> None:
    """Create a ConstraintTemplate's constraint CRD and wait until it is served."""
    crd = constraint_crd(template)
    name = crd["metadata"]["name"]
    entry = {
        "name": name,
        "group": "constraints.gatekeeper.sh",
        "kind": crd["spec"]["names"]["kind"],
        "storage_version": "v1beta1",
    }
    try:
        client.apply(crd, strict=False)
        reason = wait_crd_served(client, entry, time.monotonic() + 60)
    except ApiError as e:
        reason = str(e)
    if reason:
        report.crds_failed[name] = reason
        say(f"warning: constraint CRD {name} not loaded: {reason}")
    else:
        report.crds_loaded.append(name)
        report.applied["CustomResourceDefinition"] += 1


def apply_objects(client: Client, objects: list[Obj], report: Report) -> list[Obj]:
    """Apply objects in dependency order; return what the server stored, for those that loaded."""
    stored: list[Obj] = []
    for obj in sorted(objects, key=kind_rank):
        try:
            try:
                stored.append(client.apply(obj))
            except ApiError as e:
                if e.reason != "NotServed":
                    raise
                alternative = served_alternative(client, obj)
                if alternative is None:
                    raise ApiError(
                        404, "NotServed", f"{obj['kind']} {obj['apiVersion']} is not served (its CRD is not loaded)"
                    ) from None
                report.note(
                    f"{obj['kind']} {obj['apiVersion']} is not served (the loaded CRD serves {alternative}): "
                    f"loaded as {alternative}"
                )
                stored.append(client.apply({**obj, "apiVersion": alternative}))
            report.applied[obj["kind"]] += 1
        except ApiError as e:
            report.warn(obj, f"{e.status} {e.reason}: {e.message}")
            continue
        if isinstance(obj.get("status"), dict) and obj["kind"] not in ("Deployment", "Pod"):
            # No controller runs here: the status a controller would report (Velero, CloudNativePG, Flagger, ...)
            # is written through the status subresource, as the controller writes it; apply ignores it.
            try:
                stored[-1] = client.patch_status(stored[-1], obj["status"])
                report.applied["(status)"] += 1
            except ApiError as e:
                if e.status != 404:  # 404: no status subresource, so apply already stored it with the object
                    report.warn(obj, f"status: {e.status} {e.reason}: {e.message}")
        if obj["kind"] == "ConstraintTemplate" and obj["apiVersion"].startswith("templates.gatekeeper.sh/"):
            apply_constraint_crd(client, stored[-1], report)
    return stored


def safe_encode(data: bytes, length: int) -> str:
    number = int.from_bytes(hashlib.sha256(data).digest(), "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(SAFE_ALPHABET))
        chars.append(SAFE_ALPHABET[index])
    return "".join(chars)


def image_id(image: str) -> str:
    """What a container runtime reports as imageID: repository@digest (the declared digest when pinned).

    An image given by tag only gets a made-up digest, stable for that reference (there is no registry here).
    """
    reference, _, digest = image.partition("@")
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    repository = reference[:colon] if colon > slash else reference
    if not digest:
        digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
    return f"{repository}@{digest}"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_reference(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def running_status(pod: Obj, started: str) -> Obj:
    """The status a kubelet reports for this pod once all its containers run and are ready."""
    spec = pod["spec"]
    uid = pod["metadata"]["uid"]

    def container_id(name: str) -> str:
        return "containerd://" + hashlib.sha256(f"{uid}/{name}".encode()).hexdigest()

    def base(container: Obj) -> Obj:
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": image_id(container["image"]),
            "containerID": container_id(container["name"]),
            "restartCount": 0,
        }

    init_statuses = []
    for c in spec.get("initContainers", []):
        if c.get("restartPolicy") == "Always":  # a sidecar: keeps running
            init_statuses.append(
                {**base(c), "ready": True, "started": True, "state": {"running": {"startedAt": started}}}
            )
        else:
            terminated = {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}
            init_statuses.append({**base(c), "ready": True, "started": False, "state": {"terminated": terminated}})
    status: Obj = {
        "phase": "Running",
        "startTime": started,
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": started}
            for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
        ],
        "containerStatuses": [
            {**base(c), "ready": True, "started": True, "state": {"running": {"startedAt": started}}}
            for c in spec["containers"]
        ],
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    return status


def run_deployment(client: Client, deployment: Obj, report: Report) -> None:
    """What the deployment and replicaset controllers and a kubelet would do: a ReplicaSet, running Pods."""
    meta, spec = deployment["metadata"], deployment["spec"]
    namespace, name = meta["namespace"], meta["name"]
    replicas = int(spec.get("replicas", 1))
    template = spec["template"]
    template_hash = safe_encode(json.dumps(template, sort_keys=True).encode(), 10)
    labels = {**template.get("metadata", {}).get("labels", {}), "pod-template-hash": template_hash}
    selector = json.loads(json.dumps(spec["selector"]))
    selector.setdefault("matchLabels", {})["pod-template-hash"] = template_hash
    pod_metadata: Obj = {"labels": labels}
    if template.get("metadata", {}).get("annotations"):
        pod_metadata["annotations"] = template["metadata"]["annotations"]
    replicaset: Obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name}-{template_hash}",
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(replicas),
                "deployment.kubernetes.io/revision": "1",
            },
            "ownerReferences": [owner_reference(deployment)],
        },
        "spec": {
            "replicas": replicas,
            "selector": selector,
            "template": {"metadata": pod_metadata, "spec": template["spec"]},
        },
    }
    try:
        replicaset = client.apply(replicaset)
    except ApiError as e:
        report.warn(replicaset, f"{e.status} {e.reason}: {e.message}")
        return
    report.applied["ReplicaSet"] += 1
    started = now_rfc3339()
    running = 0
    for i in range(replicas):
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                **pod_metadata,
                "name": f"{replicaset['metadata']['name']}-{safe_encode(f'{namespace}/{name}/{i}'.encode(), 5)}",
                "namespace": namespace,
                "ownerReferences": [owner_reference(replicaset)],
            },
            "spec": template["spec"],
        }
        try:
            stored = client.apply(pod)
            client.patch_status(stored, running_status(stored, started))
        except ApiError as e:
            report.warn(pod, f"{e.status} {e.reason}: {e.message}")
            continue
        report.applied["Pod"] += 1
        running += 1
    counts = {"replicas": running, "readyReplicas": running, "availableReplicas": running}
    client.patch_status(
        replicaset,
        {**counts, "fullyLabeledReplicas": running, "observedGeneration": replicaset["metadata"].get("generation", 1)},
    )
    available = "True" if running >= replicas else "False"
    client.patch_status(
        deployment,
        {
            **counts,
            "updatedReplicas": running,
            "observedGeneration": meta.get("generation", 1),
            "conditions": [
                {
                    "type": "Available",
                    "status": available,
                    "reason": "MinimumReplicasAvailable",
                    "lastTransitionTime": started,
                    "lastUpdateTime": started,
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{replicaset["metadata"]["name"]}" has successfully progressed.',
                    "lastTransitionTime": started,
                    "lastUpdateTime": started,
                },
            ],
        },
    )


def manifest_objects(folder: Path) -> list[Obj]:
    return [d for path in sorted(folder.glob("*.yaml")) for d in read_documents(path) if d.get("kind")]


def request_auditor_token(client: Client) -> str:
    """A ServiceAccount token for auditor-system/auditor from the TokenRequest API (not a Secret)."""
    response = client.request(
        "POST",
        f"/api/v1/namespaces/{AUDITOR_NAMESPACE}/serviceaccounts/{AUDITOR_SERVICE_ACCOUNT}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_SECONDS},
        },
    )
    return str(response["status"]["token"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", type=Path, required=True, help="admin kubeconfig (token, CA data)")
    parser.add_argument("--crds", type=Path, help="index.json of the CRD corpus")
    parser.add_argument("--deploy", type=Path, help="folder of the auditor's in-cluster manifests (deploy/)")
    parser.add_argument("--demo", type=Path, action="append", default=[], help="folder of demo platform manifests")
    parser.add_argument("--auditor-kubeconfig", type=Path, help="write the auditor ServiceAccount's kubeconfig here")
    parser.add_argument("--report", type=Path, help="write what loaded and what did not (JSON) here")
    args = parser.parse_args(argv)

    admin = read_kubeconfig(args.kubeconfig)
    client = Client(admin)
    report = Report()
    if args.crds:
        load_crds(client, args.crds, report)
    objects: list[Obj] = []
    if args.deploy:
        objects += manifest_objects(args.deploy)
    for folder in args.demo:
        objects += manifest_objects(folder)
    stored = apply_objects(client, objects, report)
    for obj in stored:
        if obj["kind"] == "Deployment":
            run_deployment(client, obj, report)
        elif obj["kind"] in WORKLOAD_KINDS:
            report.note(f"{obj['kind']} objects are stored but get no pods (only Deployments are run)")
    say("objects: " + ", ".join(f"{n} {kind}" for kind, n in sorted(report.applied.items())))
    if report.failed:
        say(f"{len(report.failed)} objects did not load (warnings above)")
    if args.auditor_kubeconfig:
        token = request_auditor_token(client)
        write_kubeconfig(args.auditor_kubeconfig, Credentials(admin.server, admin.ca_pem, token), "auditor")
        say(
            f"auditor kubeconfig (ServiceAccount {AUDITOR_NAMESPACE}/{AUDITOR_SERVICE_ACCOUNT}): {args.auditor_kubeconfig}"
        )
    if args.report:
        args.report.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
