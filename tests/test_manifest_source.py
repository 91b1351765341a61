"""The manifest source: formats, documents, and hostile input (named, bounded, never a traceback)."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest

from auditor.sources.manifests import ManifestSource

from .conftest import collect, require_corpus, run_cli

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: shop
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: app
        image: nginx:1.27
"""


def write(tmp: Path, name: str, text: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_multi_document_yaml_with_helm_comments_and_list(tmp_path: Path) -> None:
    text = (
        "---\n# Source: chart/templates/a.yaml\n"
        + DEPLOY.format(name="a", replicas=2)
        + "---\n# Source: chart/templates/empty.yaml\n---\n"
        + "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n"
        + "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n"
    )
    ev = collect(write(tmp_path, "all.yaml", text))
    assert [(o.kind, o.name) for o in ev.objects] == [("Deployment", "a"), ("Service", "s"), ("ConfigMap", "c")]
    assert ev.objects[0].location.line == 3
    assert ev.objects[1].namespace == "default"  # namespaced kind without a namespace: as kubectl would
    assert not ev.gaps


def test_json_object_and_json_list(tmp_path: Path) -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    lst = {"apiVersion": "v1", "kind": "List", "items": [obj]}
    ev = collect(write(tmp_path, "a.json", json.dumps(obj)), write(tmp_path, "b.json", json.dumps(lst)))
    # The same object in two inputs is one object, with both locations kept.
    assert [o.name for o in ev.objects] == ["shop"]
    assert [str(loc) for loc in ev.objects[0].locations] == [f"{tmp_path}/a.json:1", f"{tmp_path}/b.json:1"]
    assert ev.objects[0].namespace is None  # cluster-scoped


def test_directory_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "z" / "deep").mkdir(parents=True)
    write(tmp_path / "z" / "deep", "b.yaml", DEPLOY.format(name="b", replicas=1))
    write(tmp_path, "a.yml", DEPLOY.format(name="a", replicas=1))
    write(tmp_path, "notes.txt", "not read")
    ev = collect(tmp_path)
    assert [o.name for o in ev.objects] == ["a", "b"]


def test_stdin_is_read(tmp_path: Path) -> None:
    out = tmp_path / "ev.json"
    proc = run_cli("collect", "--manifests", "-", "--out", str(out), stdin=DEPLOY.format(name="a", replicas=1).encode())
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["objects"][0]["location"]["file"] == "<stdin>"


def test_malformed_yaml_names_file_and_line_and_keeps_good_documents(tmp_path: Path) -> None:
    text = (
        DEPLOY.format(name="good", replicas=1)
        + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n---\n"
        + DEPLOY.format(name="after", replicas=1)
    )
    path = write(tmp_path, "mixed.yaml", text)
    ev = collect(path)
    assert [o.name for o in ev.objects] == ["good", "after"]
    (gap,) = ev.gaps
    assert gap.gap == "malformed"
    assert gap.target.startswith(f"{path}:")
    line = int(gap.target.rsplit(":", 1)[1])
    assert 18 <= line <= 22  # the broken document starts at line 17


def test_binary_file_is_a_named_gap(tmp_path: Path) -> None:
    path = write(tmp_path, "image.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    ev = collect(path)
    assert not ev.objects
    assert ev.gaps[0].target == str(path) and "binary" in ev.gaps[0].reason


def test_document_that_is_not_a_kubernetes_object(tmp_path: Path) -> None:
    ev = collect(
        write(tmp_path, "values.yaml", "replicaCount: 3\nimage: {repository: nginx}\n"),
        write(tmp_path, "s.yaml", "just a string\n"),
    )
    assert not ev.objects
    assert {g.gap for g in ev.gaps} == {"not-an-object"}


def test_wrong_types_are_named_by_field_and_object_is_not_assessed(tmp_path: Path) -> None:
    text = DEPLOY.format(name="bad", replicas='"three"') + "---\n" + DEPLOY.format(name="ok", replicas=2)
    ev = collect(write(tmp_path, "types.yaml", text))
    assert [o.name for o in ev.objects] == ["ok"]
    (gap,) = ev.gaps
    assert gap.gap == "invalid-object"
    assert "Deployment bad" in gap.reason and "spec.replicas must be an integer, got string 'three'" in gap.reason


def test_containers_not_a_list(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: {name: app}\n"
    ev = collect(write(tmp_path, "pod.yaml", text))
    assert not ev.objects
    assert "spec.containers must be a list, got mapping" in ev.gaps[0].reason


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        fh.write(b"# padding\n" * (5 * 1024 * 1024 + 1))  # > 50 MB
    ev = collect(path, write(tmp_path, "ok.yaml", DEPLOY.format(name="ok", replicas=1)))
    assert [o.name for o in ev.objects] == ["ok"]
    (gap,) = ev.gaps
    assert gap.gap == "too-large" and gap.target == str(path) and "MiB" in gap.reason


def test_yaml_alias_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: bomb}",
        'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ev = collect(write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n"))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert not ev.objects
    assert ev.gaps[0].gap == "too-large" and "alias" in ev.gaps[0].reason
    assert grown_mib < 400


def test_missing_path_is_a_gap_not_a_crash() -> None:
    ev = collect("/nonexistent/manifests")
    assert ev.gaps[0].gap == "unreadable" and "no such file" in ev.gaps[0].reason


def test_real_manifests_corpus_reads_without_crashing() -> None:
    root = require_corpus("real-manifests")
    source = ManifestSource([str(root)])
    out = source.collect()
    assert len(out.objects) > 600
    # the archived templates (with {{ }}) are named as not rendered; the openshift-origin files have duplicate keys
    assert all(g.target.startswith(str(root)) for g in out.gaps)
    by_target = {g.target.removeprefix(str(root) + "/"): g for g in out.gaps}
    assert {g.gap for g in out.gaps} == {"malformed", "not-an-object", "not-rendered"}
    assert sorted(t for t, g in by_target.items() if g.gap == "not-rendered") == [
        "kubernetes__examples/_archived/newrelic-infrastructure/newrelic-config-template.yaml:1",
        "kubernetes__examples/_archived/newrelic/newrelic-config-template.yaml:1",
        "kubernetes__examples/_archived/storage/vitess/etcd-controller-template.yaml:1",
        "kubernetes__examples/_archived/storage/vitess/etcd-service-template.yaml:1",
        "kubernetes__examples/_archived/storage/vitess/vtctld-controller-template.yaml:1",
        "kubernetes__examples/_archived/storage/vitess/vtgate-controller-template.yaml:1",
        "kubernetes__examples/_archived/storage/vitess/vttablet-pod-template.yaml:1",
    ]
    # a duplicate key is reported at the duplicate's line, not at the document's start
    dup = next(
        g
        for t, g in by_target.items()
        if t.startswith("kubernetes__examples/_archived/openshift-origin/etcd-controller")
    )
    assert dup.target.endswith(":12"), dup.target


def test_parallel_parsing_gives_identical_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    from auditor import evidence
    from auditor.sources import manifests

    for i in range(6):
        write(
            tmp_path,
            f"f{i}.yaml",
            "---\n".join(DEPLOY.format(name=f"w{i}-{j}", replicas=j) for j in range(1, 4)) + "---\nkind: [\n",
        )
    monkeypatch.setattr(manifests, "PARALLEL_MIN_BYTES", 10**12)
    serial = evidence.build([ManifestSource([str(tmp_path)]).collect()], collected_at="2026-01-01T00:00:00Z")
    monkeypatch.setattr(manifests, "PARALLEL_MIN_BYTES", 0)
    parallel = evidence.build([ManifestSource([str(tmp_path)]).collect()], collected_at="2026-01-01T00:00:00Z")
    assert len(serial.objects) == 18 and len(serial.gaps) == 6
    assert evidence.dumps(serial) == evidence.dumps(parallel)


def test_yaml_merge_keys_are_resolved(tmp_path: Path) -> None:
    text = """apiVersion: v1
kind: Pod
metadata: {name: merged, namespace: shop}
x-defaults: &hardened {privileged: true, runAsNonRoot: true}
spec:
  containers:
  - name: app
    image: nginx
    securityContext:
      <<: *hardened
      runAsNonRoot: false
"""
    ev = collect(write(tmp_path, "m.yaml", text))
    sc = ev.objects[0].raw["spec"]["containers"][0]["securityContext"]
    assert sc == {"privileged": True, "runAsNonRoot": False}


def test_yaml_1_1_booleans_in_security_fields_read_as_kubernetes_reads_them(tmp_path: Path) -> None:
    from .conftest import run_check

    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, labels: {market: on}}\nspec:\n  hostNetwork: yes\n  containers:\n  - name: app\n    image: nginx\n    securityContext: {privileged: yes, allowPrivilegeEscalation: off}\n"
    ev = collect(write(tmp_path, "b.yaml", text))
    obj = ev.objects[0].raw
    assert obj["metadata"]["labels"] == {"market": "on"}  # a string field keeps the text
    assert obj["spec"]["hostNetwork"] is True
    (priv,) = run_check("pod-no-privilege", ev)
    assert priv.facets == ("privileged",)  # allowPrivilegeEscalation: off is false, privileged: yes is true
    (host,) = run_check("pod-no-host-access", ev)
    assert "host-namespaces" in host.facets


def test_duplicate_keys_are_malformed(tmp_path: Path) -> None:
    ev = collect(write(tmp_path, "d.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nkind: Secret\n"))
    assert not ev.objects and ev.gaps[0].gap == "malformed" and "duplicate" in ev.gaps[0].reason
