"""scripts/testenv's kube part: a real API server with the demo platform, and the auditor's least privilege.

What the cluster source and the benchmarks rely on: the admin kubeconfig sees the demo platform as a
controller manager and kubelets would have left it (ReplicaSets, running Pods whose imageIDs are the
declared digests); the auditor's ServiceAccount token, TLS-verified with the CA its kubeconfig
carries, reads workloads, CRDs and custom resources, and can neither read a Secret (not even listed
as metadata) nor write; the upstream CRDs of the corpus are served.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from scripts.testenv_load import ApiError, Client, image_id, read_kubeconfig

from .conftest import require_corpus
from .kube_env import REPO, KubeEnv, kube_env_fixture, run_testenv  # noqa: F401  (the fixture `kube_env`)

DEMO = REPO / "fixtures" / "demo" / "manifests"
PARTIAL_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


def demo_objects(kind: str) -> list[dict[str, Any]]:
    return [
        d
        for path in sorted(DEMO.glob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
        if isinstance(d, dict) and d.get("kind") == kind
    ]


def client(kubeconfig: Path) -> Client:
    return Client(read_kubeconfig(kubeconfig))


def status_of(call: Any) -> int:
    try:
        call()
    except ApiError as e:
        return e.status
    return 200


def kubectl(env: KubeEnv, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env.kubectl), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=120
    )


def test_admin_sees_the_demo_platform_running(kube_env: KubeEnv) -> None:
    admin = client(kube_env.kubeconfig)
    namespaces = {n["metadata"]["name"] for n in admin.request("GET", "/api/v1/namespaces")["items"]}
    assert {n["metadata"]["name"] for n in demo_objects("Namespace")} <= namespaces
    assert "auditor-system" in namespaces

    for deployment in demo_objects("Deployment"):
        ns, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
        pods = admin.request("GET", f"/api/v1/namespaces/{ns}/pods", query={"labelSelector": selector})["items"]
        assert len(pods) == deployment["spec"].get("replicas", 1), f"{ns}/{name}"
        declared = {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
        for pod in pods:
            owner = pod["metadata"]["ownerReferences"][0]
            assert (owner["kind"], owner["name"]) == (
                "ReplicaSet",
                f"{name}-{pod['metadata']['labels']['pod-template-hash']}",
            )
            assert pod["status"]["phase"] == "Running"
            statuses = {s["name"]: s for s in pod["status"]["containerStatuses"]}
            assert statuses.keys() == declared.keys()
            for container, image in declared.items():
                image_ref = statuses[container]["imageID"]
                assert image_ref == image_id(image)
                if "@sha256:" in image:  # pinned: the running digest is the declared one
                    assert image_ref.endswith("@" + image.split("@", 1)[1])
                    assert image_ref.startswith(image.split("@", 1)[0].rsplit(":", 1)[0] + "@")
                else:  # a tag (the demo's promo): some digest all the same, as a runtime reports
                    assert "@sha256:" in image_ref
        rs = admin.request("GET", f"/apis/apps/v1/namespaces/{ns}/replicasets", query={"labelSelector": selector})
        assert [r["metadata"]["ownerReferences"][0]["name"] for r in rs["items"]] == [name]
        status = admin.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")["status"]
        assert status["readyReplicas"] == deployment["spec"].get("replicas", 1)

    # kubectl (the benchmarks' floor) reads the same through the admin kubeconfig
    out = kubectl(kube_env, kube_env.kubeconfig, "get", "pods", "-A", "-o", "name")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split()) == sum(d["spec"].get("replicas", 1) for d in demo_objects("Deployment"))


def test_auditor_token_reads_what_the_checks_need(kube_env: KubeEnv) -> None:
    creds = read_kubeconfig(kube_env.auditor_kubeconfig)
    assert creds.server.startswith("https://127.0.0.1:")
    assert "BEGIN CERTIFICATE" in creds.ca_pem  # TLS verified against the carried CA, never skipped
    assert "insecure-skip-tls-verify" not in kube_env.auditor_kubeconfig.read_text()
    auditor = Client(creds)
    review = auditor.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert review["status"]["userInfo"]["username"] == "system:serviceaccount:auditor-system:auditor"

    for path in (
        "/api/v1/pods",
        "/api/v1/namespaces",
        "/api/v1/serviceaccounts",
        "/api/v1/configmaps",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/replicasets",
        "/apis/policy/v1/poddisruptionbudgets",
        "/apis/autoscaling/v2/horizontalpodautoscalers",
        "/apis/networking.k8s.io/v1/networkpolicies",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
    ):
        assert auditor.request("GET", path)["items"] is not None, path
    pods = auditor.request("GET", "/api/v1/pods")["items"]
    assert len(pods) == sum(d["spec"].get("replicas", 1) for d in demo_objects("Deployment"))

    # the same through kubectl: a real client verifying TLS with the kubeconfig's CA
    out = kubectl(kube_env, kube_env.auditor_kubeconfig, "get", "deployments", "-A", "-o", "name")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split()) == len(demo_objects("Deployment"))


def test_auditor_reads_custom_resources(kube_env: KubeEnv) -> None:
    require_corpus("crds")
    auditor = client(kube_env.auditor_kubeconfig)
    scaled = auditor.request("GET", "/apis/keda.sh/v1alpha1/scaledobjects")["items"]
    assert len(scaled) == len(demo_objects("ScaledObject"))
    external = auditor.request("GET", "/apis/external-secrets.io/v1/externalsecrets")["items"]
    assert len(external) == len(demo_objects("ExternalSecret"))
    for path in (
        "/apis/kyverno.io/v1/clusterpolicies",
        "/apis/wgpolicyk8s.io/v1alpha2/policyreports",
        "/apis/templates.gatekeeper.sh/v1/constrainttemplates",
        "/apis/argoproj.io/v1alpha1/rollouts",
    ):
        assert auditor.request("GET", path)["items"] == [], path
    # the resilience objects of the demo (fixtures/demo/manifests/10-resilience.yaml), with their status
    for path, kind in (
        ("/apis/velero.io/v1/schedules", "Schedule"),
        ("/apis/velero.io/v1/backups", "Backup"),
        ("/apis/velero.io/v1/backupstoragelocations", "BackupStorageLocation"),
        ("/apis/postgresql.cnpg.io/v1/clusters", "Cluster"),
        ("/apis/postgresql.cnpg.io/v1/poolers", "Pooler"),
        ("/apis/flagger.app/v1beta1/canaries", "Canary"),
        ("/apis/monitoring.coreos.com/v1/prometheusrules", "PrometheusRule"),
        ("/apis/security.istio.io/v1/peerauthentications", "PeerAuthentication"),
        ("/apis/networking.istio.io/v1/virtualservices", "VirtualService"),
        ("/apis/storage.k8s.io/v1/storageclasses", "StorageClass"),
    ):
        items = auditor.request("GET", path)["items"]
        assert len(items) == len(demo_objects(kind)), path
    backups = {b["metadata"]["name"]: b for b in auditor.request("GET", "/apis/velero.io/v1/backups")["items"]}
    assert backups["brand-mt-nightly-20261127013000"]["status"]["phase"] == "PartiallyFailed"  # via /status
    clusters = auditor.request("GET", "/apis/postgresql.cnpg.io/v1/clusters")["items"]
    archiving = {
        c["metadata"]["namespace"]: next(x for x in c["status"]["conditions"] if x["type"] == "ContinuousArchiving")
        for c in clusters
    }
    assert archiving["brand-uk"]["status"] == "True" and archiving["brand-mt"]["status"] == "False"


def test_auditor_cannot_read_secrets_or_write(kube_env: KubeEnv) -> None:
    admin = client(kube_env.kubeconfig)
    auditor = client(kube_env.auditor_kubeconfig)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "testenv-probe", "namespace": "brand-uk"},
        "stringData": {"password": "hunter2"},
    }
    admin.apply(secret)
    path = "/api/v1/namespaces/brand-uk/secrets"
    assert status_of(lambda: admin.request("GET", f"{path}/testenv-probe")) == 200

    assert status_of(lambda: auditor.request("GET", f"{path}/testenv-probe")) == 403
    assert status_of(lambda: auditor.request("GET", path)) == 403
    assert status_of(lambda: auditor.request("GET", "/api/v1/secrets")) == 403
    # metadata-only listing is the same `list secrets` to the authorizer: refused too
    metadata_only = auditor.server + "/api/v1/secrets"
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            "/dev/stdin",
            "-H",
            f"Accept: {PARTIAL_METADATA_LIST}",
            "-H",
            f"Authorization: Bearer {read_kubeconfig(kube_env.auditor_kubeconfig).token}",
            metadata_only,
        ],
        input=read_kubeconfig(kube_env.auditor_kubeconfig).ca_pem,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout == "403"
    out = kubectl(kube_env, kube_env.auditor_kubeconfig, "get", "secrets", "-A")
    assert out.returncode != 0 and "forbidden" in out.stderr.lower()

    admin.request("DELETE", f"{path}/testenv-probe")

    # read-only: no write of any kind
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "brand-uk"}}
    assert status_of(lambda: auditor.request("POST", "/api/v1/namespaces/brand-uk/configmaps", config_map)) == 403
    assert status_of(lambda: auditor.request("DELETE", "/api/v1/namespaces/brand-uk/pods/none")) == 403
    token_path = "/api/v1/namespaces/auditor-system/serviceaccounts/auditor/token"
    assert status_of(lambda: auditor.request("POST", token_path, {"spec": {}})) == 403


def test_corpus_crds_are_served(kube_env: KubeEnv) -> None:
    index = json.loads((require_corpus("crds") / "index.json").read_text())
    admin = client(kube_env.kubeconfig)
    crds = admin.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
    established = {
        c["metadata"]["name"]
        for c in crds
        if any(x["type"] == "Established" and x["status"] == "True" for x in c["status"]["conditions"])
    }
    report = kube_env.load_report["crds"]
    assert isinstance(report, dict)
    assert report["failed"] == {}
    assert {e["name"] for e in index} <= established
    for entry in index:
        for version in entry["served_versions"]:
            served = admin.resources(f"{entry['group']}/{version}")
            assert served is not None and entry["kind"] in served, (entry["name"], version)


def test_env_is_sourceable_and_up_is_idempotent(kube_env: KubeEnv) -> None:
    script = f'set -e; eval "$({REPO}/scripts/testenv env)"; echo "$AUDITOR_TEST_AUDITOR_KUBECONFIG"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == str(kube_env.auditor_kubeconfig)

    started = time.monotonic()
    again = run_testenv("up", "kube", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stderr
    assert time.monotonic() - started < 30


def test_every_demo_object_loaded(kube_env: KubeEnv) -> None:
    objects = kube_env.load_report["objects"]
    assert isinstance(objects, dict)
    assert objects["failed"] == []
    kinds = Counter(
        d["kind"] for path in sorted(DEMO.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d
    )
    applied = objects["applied"]
    assert isinstance(applied, dict)
    for kind, count in kinds.items():
        assert applied[kind] >= count, kind  # deploy/ adds a Namespace, ServiceAccounts, RBAC
    replicas = sum(d["spec"].get("replicas", 1) for d in demo_objects("Deployment"))
    assert (applied["ReplicaSet"], applied["Pod"]) == (kinds["Deployment"], replicas)


CONSTRAINT_TEMPLATE = """
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8srequiredlabels
spec:
  crd:
    spec:
      names:
        kind: K8sRequiredLabels
      validation:
        openAPIV3Schema:
          type: object
          properties:
            labels:
              type: array
              items: {type: string}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredlabels
        violation[{"msg": msg}] {
          missing := {l | l := input.parameters.labels[_]; not input.review.object.metadata.labels[l]}
          count(missing) > 0
          msg := sprintf("missing labels: %v", [missing])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata:
  name: market-label
spec:
  enforcementAction: deny
  match:
    kinds: [{apiGroups: [""], kinds: [Namespace]}]
  parameters:
    labels: [market]
"""


def test_a_constraint_template_gets_its_constraint_crd(kube_env: KubeEnv, tmp_path: Path) -> None:
    require_corpus("crds")
    (tmp_path / "gatekeeper.yaml").write_text(CONSTRAINT_TEMPLATE)
    load = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "testenv_load.py"),
            *("--kubeconfig", str(kube_env.kubeconfig), "--demo", str(tmp_path)),
            *("--report", str(tmp_path / "report.json")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    admin = client(kube_env.kubeconfig)
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/k8srequiredlabels.constraints.gatekeeper.sh"
    try:
        assert load.returncode == 0, load.stderr
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["objects"]["failed"] == []
        assert report["crds"]["loaded"] == ["k8srequiredlabels.constraints.gatekeeper.sh"]
        # the shipped read-only role lists the gatekeeper-library constraint kinds
        constraints = client(kube_env.auditor_kubeconfig).request(
            "GET", "/apis/constraints.gatekeeper.sh/v1beta1/k8srequiredlabels"
        )["items"]
        assert [(c["metadata"]["name"], c["spec"]["parameters"]) for c in constraints] == [
            ("market-label", {"labels": ["market"]})
        ]
    finally:  # leave the shared cluster as `up` made it
        for path in (
            "/apis/constraints.gatekeeper.sh/v1beta1/k8srequiredlabels/market-label",
            "/apis/templates.gatekeeper.sh/v1/constrainttemplates/k8srequiredlabels",
            crd_path,
        ):
            status_of(lambda path=path: admin.request("DELETE", path))
