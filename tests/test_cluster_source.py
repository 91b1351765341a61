"""The cluster source against a real kube-apiserver and etcd (scripts/testenv), with the shipped read-only role."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .conftest import AS_OF, run_cli
from .kube_env import KubeEnv, kube_env_fixture  # noqa: F401  (the fixture `kube_env`)


def _context(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["current-context"])


def _audit(kubeconfig: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    proc = run_cli(
        "audit",
        "--kubeconfig",
        str(kubeconfig),
        *extra,
        "--profile",
        "baseline",
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        "--format",
        "json",
    )
    report = (
        json.loads((out / "baseline" / "report.json").read_text())
        if (out / "baseline" / "report.json").exists()
        else {}
    )
    return proc.returncode, report, proc.stdout + proc.stderr


def test_the_read_only_role_collects_what_the_checks_need(kube_env: KubeEnv, tmp_path: Path) -> None:
    code, report, output = _audit(kube_env.auditor_kubeconfig, tmp_path / "r")
    assert code in (1, 3), output
    assert "Traceback" not in output
    context = _context(kube_env.auditor_kubeconfig)
    source = next(s for s in report["report"]["evidence"]["sources"] if s["type"] == "cluster")
    assert source["target"] == context and source["server"].startswith("https://127.0.0.1:")
    assert len(source["cluster_id"]) == 36  # the kube-system namespace's uid
    collected = set(source["collected"])
    for kind in (
        "Namespace",
        "Pod",
        "apps/Deployment",
        "policy/PodDisruptionBudget",
        "rbac.authorization.k8s.io/ClusterRole",
    ):
        assert kind in collected, kind
    assert "unlisted" not in source, source.get("unlisted")
    gaps = {g["target"]: g for g in report["coverage"]}
    secrets = gaps[f"{context}: secrets"]
    assert secrets["gap"] == "withheld" and "RBAC cannot grant metadata-only access" in secrets["reason"]
    # the demo's deliberate findings are found in the live cluster, on the Deployments, with the cluster named
    promo = [f for f in report["findings"] if f["check"] == "image-pinned-digest" and f["subject"]["name"] == "promo"]
    assert promo and promo[0]["subject"]["cluster"] == context

    # Resilience from the upstream CRDs' objects, with the status a controller would report set through the status
    # subresource (scripts/testenv_load.py): Velero's and CloudNativePG's own fields decide.
    def failing(check: str, namespace: str) -> list[str]:
        return [
            f["message"]
            for f in report["findings"]
            if f["check"] == check and f["status"] == "fail" and f["subject"].get("namespace") == namespace
        ]

    assert "Velero Backup brand-mt-nightly-20261127013000 (PartiallyFailed)" in " ".join(
        failing("backup-recent", "brand-mt")
    )
    assert failing("backup-recent", "brand-uk") == []  # the hourly backup completed 56 minutes before
    assert "ContinuousArchivingFailing" in " ".join(failing("backup-pitr", "brand-mt"))
    assert failing("backup-pitr", "brand-uk") == [] and failing("db-connection-pooling", "brand-uk") == []
    assert failing("net-mtls-strict", "brand-uk") == [] and failing("net-mtls-strict", "brand-mt")
    assert failing("rollout-canary-gates", "brand-on")  # no Canary for most, and wallet's has no steps
    assert "no Velero Schedule includes the namespace" in " ".join(failing("backup-scheduled", "brand-on"))
    # Flux (its Kustomization CRD, status through /status): GB applied and Ready, Malta's health check failed
    # with v1.14.2 not applied, Ontario deployed by no GitOps controller at all.
    assert failing("gitops-synced", "brand-uk") == []
    assert "HealthCheckFailed" in " ".join(failing("gitops-synced", "brand-mt"))
    assert "last attempted v1.14.2@sha1:6f1c2b9e" in " ".join(failing("gitops-synced", "brand-mt"))
    assert failing("gitops-synced", "brand-on") == [
        "no Argo CD Application or Flux Kustomization deploys this namespace"
    ]
    # Pods and ReplicaSets are judged through their Deployment, not again
    judged_kinds = {f["subject"]["kind"] for f in report["findings"]}
    assert "Pod" not in judged_kinds and "ReplicaSet" not in judged_kinds


def test_snapshot_then_audit_equals_a_direct_audit(kube_env: KubeEnv, tmp_path: Path) -> None:
    # A Secret and a ConfigMap with canary values: neither value may come back (ConfigMaps are listed as metadata,
    # Secrets not at all with the shipped role; even the admin's collection gets Secret metadata only).
    kubectl = [str(kube_env.kubectl), "--kubeconfig", str(kube_env.kubeconfig), "-n", "brand-uk"]
    for kind in ("secret generic", "configmap"):
        subprocess.run(
            [*kubectl, "create", *kind.split(), "canary-" + kind.split()[0], "--from-literal=v=CANARY-LIVE-7e1d"],
            capture_output=True,
            check=False,
        )
    ev = tmp_path / "ev.json"
    c = run_cli("collect", "--kubeconfig", str(kube_env.auditor_kubeconfig), "--as-of", AS_OF, "--out", str(ev))
    assert c.returncode == 0, c.stderr
    snapshot = ev.read_text()
    assert "canary-configmap" in snapshot and "CANARY-LIVE-7e1d" not in snapshot
    admin_ev = tmp_path / "admin.json"
    run_cli("collect", "--kubeconfig", str(kube_env.kubeconfig), "--as-of", AS_OF, "--out", str(admin_ev))
    admin = admin_ev.read_text()
    assert "canary-secret" in admin and "CANARY-LIVE-7e1d" not in admin  # metadata-only listing, for real
    a = run_cli(
        "audit",
        "--evidence",
        str(ev),
        "--profile",
        "baseline",
        "--as-of",
        AS_OF,
        "--out",
        str(tmp_path / "a"),
        "--format",
        "json",
    )
    _code, direct, _out = _audit(kube_env.auditor_kubeconfig, tmp_path / "d")
    from_snapshot = json.loads((tmp_path / "a" / "baseline" / "report.json").read_text())
    assert a.returncode in (1, 3)
    # same moment, same evidence digest, same report
    assert from_snapshot["report"]["evidence"]["sha256"] == direct["report"]["evidence"]["sha256"]
    assert from_snapshot == direct


def test_a_token_with_no_rights_gets_a_report_that_passes_nothing(kube_env: KubeEnv, tmp_path: Path) -> None:
    kubectl = [str(kube_env.kubectl), "--kubeconfig", str(kube_env.kubeconfig)]
    subprocess.run([*kubectl, "create", "serviceaccount", "nobody", "-n", "default"], capture_output=True, check=False)
    token = subprocess.run(
        [*kubectl, "create", "token", "nobody", "-n", "default"], capture_output=True, text=True, check=True
    ).stdout.strip()
    config = yaml.safe_load(kube_env.auditor_kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    nobody = tmp_path / "nobody.kubeconfig"
    nobody.write_text(yaml.safe_dump(config))
    code, report, output = _audit(nobody, tmp_path / "r")
    assert code == 3, output
    assert report["summary"]["items"]["pass"] == 0
    forbidden = [g for g in report["coverage"] if g["gap"] == "forbidden"]
    assert any("the auditor needs `list` on pods" in g["reason"] for g in forbidden)
    assert any('apiGroups ["apps"], resources [deployments]' in g["reason"] for g in forbidden)


def test_several_contexts_in_one_run_stay_apart(kube_env: KubeEnv, tmp_path: Path) -> None:
    config = yaml.safe_load(kube_env.auditor_kubeconfig.read_text())
    first = config["contexts"][0]
    config["contexts"] = [
        {"name": "brand-uk-prod", "context": dict(first["context"])},
        {"name": "brand-mt-prod", "context": dict(first["context"])},
    ]
    config["current-context"] = "brand-uk-prod"
    both = tmp_path / "two.kubeconfig"
    both.write_text(yaml.safe_dump(config))
    code, report, output = _audit(both, tmp_path / "r", "--context", "brand-uk-prod", "--context", "brand-mt-prod")
    assert code in (1, 3), output
    targets = sorted(s["target"] for s in report["report"]["evidence"]["sources"])
    assert targets == ["brand-mt-prod", "brand-uk-prod"]
    promo = sorted(
        f["subject"]["cluster"]
        for f in report["findings"]
        if f["check"] == "image-pinned-digest" and f["subject"]["name"] == "promo"
    )
    assert promo == ["brand-mt-prod", "brand-uk-prod"]  # one finding per cluster, never merged across clusters


def test_a_kubeconfig_that_turns_tls_verification_off_is_reported(kube_env: KubeEnv, tmp_path: Path) -> None:
    config = yaml.safe_load(kube_env.auditor_kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"].pop("certificate-authority-data", None)
        cluster["cluster"].pop("certificate-authority", None)
        cluster["cluster"]["insecure-skip-tls-verify"] = True
    insecure = tmp_path / "insecure.kubeconfig"
    insecure.write_text(yaml.safe_dump(config))
    _code, report, _output = _audit(insecure, tmp_path / "r")
    assert any(g["gap"] == "tls-verification-off" for g in report["coverage"])


def test_paging_gives_the_same_evidence_as_one_page(kube_env: KubeEnv) -> None:
    from auditor import evidence
    from auditor.sources.cluster import ClusterSource

    from .conftest import AS_OF

    def snapshot(page_size: int) -> str:
        source = ClusterSource(kubeconfig=str(kube_env.auditor_kubeconfig), page_size=page_size)
        return evidence.build([source.collect()], collected_at=AS_OF).digest

    assert snapshot(2) == snapshot(500)  # lists of many pages (limit/continue) lose and repeat nothing


def test_in_cluster_configuration_reads_the_pods_service_account(kube_env: KubeEnv, tmp_path: Path) -> None:
    import base64
    import os

    config = yaml.safe_load(kube_env.auditor_kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    mount = tmp_path / "serviceaccount"  # what the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount
    mount.mkdir()
    (mount / "token").write_text(config["users"][0]["user"]["token"])
    (mount / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    host, _, port = cluster["server"].removeprefix("https://").rpartition(":")
    env = {
        **os.environ,
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "AUDITOR_SERVICEACCOUNT_DIR": str(mount),
    }
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "auditor",
            "collect",
            "--in-cluster",
            "--as-of",
            AS_OF,
            "--out",
            str(tmp_path / "ev.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    snapshot = json.loads((tmp_path / "ev.json").read_text())
    assert [s["target"] for s in snapshot["sources"]] == ["in-cluster"]
    assert any(
        o["object"]["kind"] == "Deployment" and o["object"]["metadata"]["name"] == "promo" for o in snapshot["objects"]
    )


def test_a_paged_list_that_spans_an_etcd_compaction_loses_nothing(kube_env: KubeEnv) -> None:
    """etcd is compacted between two pages of a list. Kubernetes 1.37 serves continued lists from its watch-cache
    snapshot, so the continue token survives here; where it does not (watch cache off, older servers) the API
    server answers 410 Gone and the source lists again from the start. Either way nothing is lost or repeated."""
    import urllib.request

    from auditor.sources.cluster import ClusterSource

    etcd = f"http://127.0.0.1:{(kube_env.kubeconfig.parent / 'etcd.port').read_text().strip()}"
    kubectl = [str(kube_env.kubectl), "--kubeconfig", str(kube_env.kubeconfig)]
    messages: list[str] = []
    compacted: list[int] = []

    def compact_once(message: str) -> None:
        messages.append(message)
        if "listing pods:" in message and "so far" in message and not compacted:
            # Write something so the compaction revision moves past the list's snapshot, then compact to it.
            subprocess.run([*kubectl, "create", "configmap", "bump", "-n", "default"], capture_output=True, check=False)
            status = json.loads(
                urllib.request.urlopen(urllib.request.Request(f"{etcd}/v3/maintenance/status", data=b"{}")).read()
            )
            revision = int(status["header"]["revision"])
            body = json.dumps({"revision": revision, "physical": True}).encode()
            urllib.request.urlopen(urllib.request.Request(f"{etcd}/v3/kv/compaction", data=body)).read()
            compacted.append(revision)

    source = ClusterSource(kubeconfig=str(kube_env.kubeconfig), page_size=5, progress=compact_once)
    out = source.collect()
    assert compacted, "the pod list never needed a second page"
    pods = [o for o in out.objects if o.kind == "Pod"]
    expected = json.loads(
        subprocess.run([*kubectl, "get", "pods", "-A", "-o", "json"], capture_output=True, check=True).stdout
    )
    assert sorted(p.name for p in pods) == sorted(i["metadata"]["name"] for i in expected["items"])
    assert not [g for g in out.gaps if g.target.endswith(": pods")]


class _FaultInjectingProxy:
    """A TLS proxy on loopback in front of the real API server that answers a few requests with the failures
    a busy or restarting control plane gives (429 with Retry-After, 503, 410 Gone on a continue token) and
    forwards everything else unchanged: fault injection around the real server, not a stand-in for it."""

    def __init__(self, upstream: str, pki: Path) -> None:
        import http.server
        import ssl
        import threading
        import urllib.error
        import urllib.request

        self.faults: dict[str, int] = {}
        self.served: list[tuple[int, str]] = []
        upstream_tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = proxy._fault(self.path)
                if status:
                    body = json.dumps({"kind": "Status", "code": status, "message": "injected"}).encode()
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")}
                request = urllib.request.Request(upstream + self.path, headers=headers)
                try:
                    with urllib.request.urlopen(request, context=upstream_tls, timeout=30) as answer:
                        code, body, ctype = answer.status, answer.read(), answer.headers.get("Content-Type", "")
                except urllib.error.HTTPError as exc:
                    code, body, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
                proxy.served.append((code, self.path))
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(pki / "server.crt"), str(pki / "server.key"))
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _fault(self, path: str) -> int:
        for prefix, status in list(self.faults.items()):
            if path.startswith(prefix) and (status != 410 or "continue=" in path):
                del self.faults[prefix]  # each fault fires once
                self.served.append((status, path))
                return status
        return 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_throttling_server_errors_and_expired_continue_tokens_are_survived(kube_env: KubeEnv, tmp_path: Path) -> None:
    from auditor.sources.cluster import ClusterSource

    config = yaml.safe_load(kube_env.kubeconfig.read_text())
    upstream = config["clusters"][0]["cluster"]["server"]
    proxy = _FaultInjectingProxy(upstream, kube_env.kubeconfig.parent / "pki")
    try:
        proxy.faults = {"/api/v1/pods": 429, "/apis/apps/v1/deployments": 503, "/api/v1/services?": 410}
        config["clusters"][0]["cluster"]["server"] = proxy.url
        faulty = tmp_path / "faulty.kubeconfig"
        faulty.write_text(yaml.safe_dump(config))
        messages: list[str] = []
        out = ClusterSource(kubeconfig=str(faulty), page_size=3, progress=messages.append).collect()
    finally:
        proxy.close()
    injected = sorted(status for status, path in proxy.served if status in (410, 429, 503))
    assert injected == [410, 429, 503], proxy.served[:20]
    # 429 with Retry-After is retried by the kubernetes client itself (as client-go does), 503 by the source.
    assert any("HTTP 503" in m and "deployments" in m for m in messages), [m for m in messages if "HTTP" in m]
    assert any("410 Gone" in m and "services" in m for m in messages)
    reference = ClusterSource(kubeconfig=str(kube_env.kubeconfig)).collect()

    def names(objects: Any) -> list[tuple[str, str, str]]:
        return sorted((o.kind, o.namespace or "", o.name) for o in objects)

    assert names(out.objects) == names(reference.objects)  # nothing lost, nothing repeated
    assert not [g for g in out.gaps if g.gap in ("unreadable", "forbidden", "unreachable")], out.gaps


def test_the_overall_deadline_ends_collection_with_gaps_not_a_hang(kube_env: KubeEnv) -> None:
    from auditor.sources.cluster import ClusterSource

    out = ClusterSource(kubeconfig=str(kube_env.auditor_kubeconfig), deadline_seconds=0).collect()
    assert not out.objects
    assert any(g.gap == "unreachable" and "deadline" in g.reason for g in out.gaps), out.gaps
