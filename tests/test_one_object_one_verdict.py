"""One object, one verdict, at its own place: copies, owned objects, unrendered inputs, encodings."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import FIXTURES, collect, require_corpus, run_audit, run_check

INPUTS = FIXTURES / "inputs"


def _findings(out: Path, profile: str = "baseline") -> list[tuple[str, str, str, str]]:
    report = json.loads((out / profile / "report.json").read_text())
    return sorted(
        (f["check"], f["status"], f["subject"].get("kind", ""), f["subject"].get("name", ""))
        for f in report["findings"]
    )


def test_kubectl_get_all_gives_the_same_findings_as_the_controllers_alone(tmp_path: Path) -> None:
    run_audit(INPUTS / "deployment-alone.yaml", ["baseline"], tmp_path / "alone")
    run_audit(INPUTS / "kubectl-get-all.yaml", ["baseline"], tmp_path / "all")
    alone, everything = _findings(tmp_path / "alone"), _findings(tmp_path / "all")
    assert alone == everything
    kinds = {k for _c, _s, k, _n in everything}
    assert "Pod" not in kinds and "ReplicaSet" not in kinds and "Job" not in kinds
    assert {"Deployment", "CronJob"} <= kinds


def test_owned_objects_whose_controller_is_absent_are_judged_themselves(tmp_path: Path) -> None:
    text = (INPUTS / "kubectl-get-all.yaml").read_text()
    doc = json.loads(json.dumps(__import__("yaml").safe_load(text)))
    doc["items"] = [i for i in doc["items"] if i["kind"] == "Pod" and i["metadata"]["name"].startswith("web-")]
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(doc))
    results = run_check("pod-no-privilege", collect(path))
    assert sorted(r.subject.name for r in results) == ["web-5d8f7c9b4-q9m4z", "web-5d8f7c9b4-x7k2p"]


def test_identical_copies_collapse_and_keep_every_location(tmp_path: Path) -> None:
    src = (INPUTS / "deployment-alone.yaml").read_text()
    (tmp_path / "a.yaml").write_text(src)
    (tmp_path / "b.yaml").write_text("# a copy\n" + src)
    ev = collect(tmp_path)
    deployments = [o for o in ev.objects if o.kind == "Deployment"]
    assert len(deployments) == 1
    assert [str(loc) for loc in deployments[0].locations] == [f"{tmp_path}/a.yaml:1", f"{tmp_path}/b.yaml:2"]
    assert not ev.gaps
    out = tmp_path / "r"
    run_audit(tmp_path, ["baseline"], out)
    report = json.loads((out / "baseline" / "report.json").read_text())
    pinned = [f for f in report["findings"] if f["check"] == "image-pinned-digest"]
    assert [f["subject"]["name"] for f in pinned] == ["settle", "web"]
    web = next(f for f in pinned if f["subject"]["name"] == "web")
    assert web["location"] == {"file": f"{tmp_path}/a.yaml", "line": 1}
    assert web["also_at"] == [{"file": f"{tmp_path}/b.yaml", "line": 2}]


def test_copies_that_differ_are_judged_once_and_named_as_a_gap(tmp_path: Path) -> None:
    src = (INPUTS / "deployment-alone.yaml").read_text()
    (tmp_path / "a.yaml").write_text(src)
    (tmp_path / "b.yaml").write_text(src.replace("nginx:1.27", "nginx@sha256:" + "b" * 64))
    (tmp_path / "c.yaml").write_text(src)
    ev = collect(tmp_path)
    gaps = [g for g in ev.gaps if g.gap == "conflicting-copies"]
    assert [g.target for g in gaps] == ["Deployment shop/web"]
    assert f"{tmp_path}/a.yaml:1" in gaps[0].reason and f"{tmp_path}/b.yaml:1" in gaps[0].reason
    assert "spec.template.spec.containers[0].image" in gaps[0].reason
    assert f"Only the definition at {tmp_path}/a.yaml:1 was judged" in gaps[0].reason
    results = [r for r in run_check("image-pinned-digest", ev) if r.subject.name == "web"]
    assert [(r.status.value, str(r.subject.location)) for r in results] == [("fail", f"{tmp_path}/a.yaml:1")]
    web = next(o for o in ev.objects if o.kind == "Deployment")
    assert [str(loc) for loc in web.locations] == [f"{tmp_path}/a.yaml:1", f"{tmp_path}/c.yaml:1"]


def test_an_unjudged_copy_makes_the_verdict_incomplete_not_a_pass(tmp_path: Path) -> None:
    from auditor import profiles
    from auditor.assessment import assess
    from auditor.catalog import all_checks
    from auditor.checklist import ITEMS

    from .conftest import AS_OF

    src = (INPUTS / "deployment-alone.yaml").read_text().replace("nginx:1.27", "nginx@sha256:" + "b" * 64)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.yaml").write_text(
        src.replace("registry.example.com/settle:2.1", "r.example/s@sha256:" + "c" * 64)
    )
    (tmp_path / "in" / "b.yaml").write_text(src)  # differs: the CronJob's image is a mutable tag here
    prof = tmp_path / "p.yaml"
    skip = "".join(f"  {i.key}: {{applies: false}}\n" for i in ITEMS if i.key != "image.pinned-digest")
    prof.write_text(f"extends: baseline\nid: digests\nversion: '1'\nitems:\n{skip}")
    report = assess(collect(tmp_path / "in"), profiles.load(str(prof)), all_checks(), as_of=AS_OF)
    assert [i["status"] for i in report["items"]] == ["pass"]
    assert report["summary"]["verdict"] == "incomplete" and report["summary"]["exit_code"] == 3


def test_unknown_kinds_with_a_pod_template_are_judged() -> None:
    ev = collect(INPUTS / "deploymentconfig.yaml")
    privileged = {r.subject.name: r for r in run_check("pod-no-privilege", ev)}
    assert privileged["legacy-cashier"].status.value == "fail"
    assert "privileged" in privileged["legacy-cashier"].facets
    host = {r.subject.name: r for r in run_check("pod-no-host-access", ev)}
    assert host["roulette"].status.value == "fail"
    pdb = {r.subject.name: r for r in run_check("pdb-present", ev)}
    assert pdb["legacy-cashier"].status.value == "fail"  # 2 replicas, no PDB


def test_unrendered_inputs_are_named_with_the_command_that_renders_them(tmp_path: Path) -> None:
    (tmp_path / "chart" / "templates").mkdir(parents=True)
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: wallet\nversion: 1.0.0\n")
    (tmp_path / "chart" / "templates" / "deploy.yaml").write_text(
        "{{- if .Values.enabled }}\nkind: Deployment\n{{- end }}\n"
    )
    (tmp_path / "overlay").mkdir()
    (tmp_path / "overlay" / "kustomization.yaml").write_text("resources: [../base]\npatches: [{path: patch.yaml}]\n")
    (tmp_path / "overlay" / "patch.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
    (tmp_path / "tpl.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: vt-{{uid}}\nspec:\n  containers: [{name: a, image: b}]\n"
    )
    (tmp_path / "patch.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: y}\nspec:\n  template:\n    spec:\n"
        "      containers:\n      - name: sidecar\n        $patch: delete\n"
    )
    ev = collect(tmp_path)
    assert not ev.objects
    gaps = {g.target.removeprefix(str(tmp_path) + "/"): g for g in ev.gaps}
    assert gaps["chart"].gap == "not-rendered" and "helm template RELEASE" in gaps["chart"].reason
    assert gaps["overlay"].gap == "not-rendered" and "kustomize build" in gaps["overlay"].reason
    assert gaps["tpl.yaml:1"].gap == "not-rendered" and "helm template" in gaps["tpl.yaml:1"].reason
    assert gaps["patch.yaml:1"].gap == "not-an-object" and "patch" in gaps["patch.yaml:1"].reason


def test_utf16_with_bom_is_read_as_kubectl_reads_it(tmp_path: Path) -> None:
    text = (INPUTS / "deployment-alone.yaml").read_text()
    (tmp_path / "le.yaml").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    (tmp_path / "be.yaml").write_bytes(b"\xfe\xff" + text.replace("name: web", "name: web2").encode("utf-16-be"))
    ev = collect(tmp_path)
    assert not ev.gaps
    assert sorted(o.name for o in ev.objects if o.kind == "Deployment") == ["web", "web2"]


def test_helm_source_comments_give_finding_locations(tmp_path: Path) -> None:
    text = "---\n# Source: wallet/templates/deployment.yaml\n" + (INPUTS / "deployment-alone.yaml").read_text()
    path = tmp_path / "rendered.yaml"
    path.write_text(text)
    out = tmp_path / "r"
    run_audit(path, ["baseline"], out)
    report = json.loads((out / "baseline" / "report.json").read_text())
    web = next(f for f in report["findings"] if f["subject"].get("name") == "web")
    assert web["location"] == {"file": str(path), "line": 3, "origin": "wallet/templates/deployment.yaml"}


def test_duplicate_key_error_points_at_the_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: etcd\nspec:\n  replicas: 1\n"
        "  selector:\n    name: etcd\n  template:\n    metadata:\n      labels: {name: etcd}\n  selector:\n    x: y\n"
    )
    ev = collect(path)
    assert [(g.target, g.gap) for g in ev.gaps] == [(f"{path}:12", "malformed")]
    assert "duplicate" in ev.gaps[0].reason


def test_real_corpora_give_one_finding_per_object(tmp_path: Path) -> None:
    root = require_corpus("real-manifests")
    argo = root / "argoproj__argo-cd" / "manifests"
    out = tmp_path / "argo"
    run_audit(argo, ["baseline"], out)
    report = json.loads((out / "baseline" / "report.json").read_text())
    keys = [
        (
            f["check"],
            f["subject"].get("kind"),
            f["subject"].get("namespace"),
            f["subject"].get("name"),
            str(f.get("location")),
        )
        for f in report["findings"]
    ]
    assert len(keys) == len(set(keys)), "a finding repeats for the same definition"
    # install.yaml and namespace-install.yaml define the same workloads: each is judged once, with both places
    server = [
        f for f in report["findings"] if f["check"] == "pod-resources" and f["subject"].get("name") == "argocd-server"
    ]
    assert len(server) == 1
    assert server[0]["location"]["file"].endswith("install.yaml")
    assert server[0]["also_at"][0]["file"].endswith("namespace-install.yaml")
