"""No secret value reaches evidence, reports or logs."""

from __future__ import annotations

from pathlib import Path

from auditor.sources.scrub import classify_literal

from .conftest import AS_OF, run_cli

SECRET_VALUES = [
    "s3cr3t-wallet-db-password",
    "AKIAIOSFODNN7EXAMPLE",
    "c2VjcmV0LWRhdGE=",
    "cafebabe-psp-token-0001",
    "last-applied-leak-7",
]

MANIFEST = f"""apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{{"data":{{"password":"{SECRET_VALUES[4]}"}}}}'
data:
  password: {SECRET_VALUES[2]}
stringData:
  other: {SECRET_VALUES[0]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: wallet, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: wallet}}}}
  template:
    metadata: {{labels: {{app: wallet}}}}
    spec:
      containers:
      - name: wallet
        image: registry.example.com/wallet:1
        args: ["--psp-token={SECRET_VALUES[3]}", "--port=8080"]
        env:
        - name: DB_PASSWORD
          value: {SECRET_VALUES[0]}
        - name: AWS_ACCESS_KEY_ID
          value: {SECRET_VALUES[1]}
        - name: LOG_LEVEL
          value: debug
---
apiVersion: v1
kind: PodTemplate
metadata: {{name: tpl, namespace: shop}}
template:
  spec:
    containers:
    - name: c
      image: registry.example.com/wallet:1
      env:
      - name: DB_PASSWORD
        value: {SECRET_VALUES[0]}
"""


def test_values_never_appear_in_evidence_reports_or_output(tmp_path: Path) -> None:
    src = tmp_path / "m.yaml"
    src.write_text(MANIFEST)
    ev = tmp_path / "ev.json"
    c = run_cli("collect", "--manifests", str(src), "--as-of", AS_OF, "--out", str(ev))
    a = run_cli(
        "audit",
        "--evidence",
        str(ev),
        "--profile",
        "baseline",
        "--as-of",
        AS_OF,
        "--out",
        str(tmp_path / "out"),
        "--format",
        "json,sarif,junit,pdf",
    )
    assert c.returncode == 0 and a.returncode == 1, a.stderr
    produced = [ev, *sorted((tmp_path / "out").rglob("*.*"))]
    assert len(produced) == 5
    texts = [p.read_bytes() for p in produced] + [(c.stdout + c.stderr + a.stdout + a.stderr).encode()]
    for value in SECRET_VALUES:
        for blob in texts:
            assert value.encode() not in blob
    report = (tmp_path / "out" / "baseline" / "report.json").read_text()
    assert (
        "DB_PASSWORD" in report and "AWS access key" in report
    )  # the finding names the variable and why, not the value


def test_classifier() -> None:
    assert classify_literal("DB_PASSWORD", "hunter2")["secretLike"] is True
    assert classify_literal("DB_PASSWORD_FILE", "/run/secrets/db")["secretLike"] is False
    assert classify_literal("SESSION_TOKEN_TTL", "3600")["secretLike"] is False
    assert classify_literal("PSP_ENDPOINT", "https://user:pw@psp.example/api")["secretLike"] is True
    assert classify_literal("LOG_LEVEL", "info")["secretLike"] is False
    assert "hunter2" not in str(classify_literal("DB_PASSWORD", "hunter2"))
