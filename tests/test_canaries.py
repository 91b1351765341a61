"""A distinct canary in every vector a manifest can carry a credential in; none may reach any output or log."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.sources.scrub import classify_text

from .conftest import AS_OF, run_cli

CANARIES = {
    "flag value as the next argument": "CANARY-NEXT-ARG-1f0e",
    "--flag=value, a password abbreviation": "CANARY-EQ-FORM-2a9d",
    "short flag with glued value (mysql -pX)": "CANARY-SHORT-3b8c",
    "shell snippet in command": "CANARY-SHELL-4c7b",
    "probe HTTP header": "CANARY-HEADER-5d6a",
    "JVM system property inside an env value": "CANARY-JVM-6e59",
    "annotation with a credential-like key": "CANARY-ANNOT-7f48",
    "pod template annotation": "CANARY-PODANNOT-8a37",
    "exec probe command": "CANARY-EXEC-9b26",
    "lifecycle hook header": "CANARY-HOOK-0c15",
    "env literal": "CANARY-ENV-1d04",
    "Secret stringData": "CANARY-SECRET-2e93",
    "ConfigMap data": "CANARY-CM-3f82",
    "last-applied annotation": "CANARY-LAST-4a71",
    "CronJob job template annotation": "CANARY-JOBANNOT-5b60",
}
C = list(CANARIES.values())

MANIFEST = f"""apiVersion: v1
kind: Namespace
metadata: {{name: shop, labels: {{market: uk}}}}
---
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{{"stringData":{{"password":"{C[13]}"}}}}'
stringData:
  password: {C[11]}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: shop}}
data:
  app.properties: "db.password={C[12]}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: wallet
  namespace: shop
  annotations:
    acme.io/api-token: {C[6]}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: wallet}}}}
  template:
    metadata:
      labels: {{app: wallet}}
      annotations:
        vault.example.com/db-credentials: {C[7]}
    spec:
      containers:
      - name: wallet
        image: registry.example.com/wallet:1
        command: ["sh", "-c", "export DB_PASSWORD={C[3]} && exec /wallet"]
        args: ["--password", "{C[0]}", "--db-pass={C[1]}", "-p{C[2]}", "--port=8080"]
        env:
        - name: JAVA_OPTS
          value: "-Xmx512m -Ddb.password={C[5]} -Dfile.encoding=UTF-8"
        - name: PSP_API_KEY
          value: {C[10]}
        readinessProbe:
          httpGet:
            path: /ready
            port: 8080
            httpHeaders:
            - name: Authorization
              value: "Bearer {C[4]}"
        livenessProbe:
          exec:
            command: ["mysql", "-uroot", "-p{C[8]}", "-e", "select 1"]
        lifecycle:
          preStop:
            httpGet:
              path: /drain
              port: 8080
              httpHeaders: [{{name: X-Api-Key, value: "{C[9]}"}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: settle, namespace: shop}}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    metadata:
      annotations: {{ops.example.com/webhook-secret: {C[14]}}}
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{{name: settle, image: registry.example.com/settle:1}}]
"""


def test_every_canary_vector_is_covered() -> None:
    assert all(c in MANIFEST for c in C)


def test_no_canary_reaches_evidence_reports_or_logs(tmp_path: Path) -> None:
    src = tmp_path / "m.yaml"
    src.write_text(MANIFEST)
    ev = tmp_path / "ev.json"
    runs = [
        run_cli("-v", "collect", "--manifests", str(src), "--as-of", AS_OF, "--out", str(ev)),
        run_cli(
            "-v",
            "--log-format",
            "json",
            "audit",
            "--evidence",
            str(ev),
            "--profile",
            "baseline",
            "--profile",
            "ukgc",
            "--as-of",
            AS_OF,
            "--out",
            str(tmp_path / "out"),
            "--format",
            "json,sarif,junit,pdf",
        ),
        run_cli("-v", "gate", str(src), "--profile", "ukgc", "--as-of", AS_OF),
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[1].returncode in (1, 3), runs[1].stderr
    produced = [ev, *sorted((tmp_path / "out").rglob("*.*"))]
    assert {p.suffix for p in produced} == {".json", ".sarif", ".xml", ".pdf"}
    blobs: dict[str, str] = {str(p): p.read_text("utf-8", "replace") for p in produced if p.suffix != ".pdf"}
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.fail("pdftotext (poppler-utils) is needed to read the PDF back; scripts/setup.sh installs it")
    for pdf in (p for p in produced if p.suffix == ".pdf"):
        blobs[str(pdf)] = subprocess.run([pdftotext, str(pdf), "-"], capture_output=True, text=True).stdout
    for i, proc in enumerate(runs):
        blobs[f"run {i} stdout+stderr"] = proc.stdout + proc.stderr
    leaks = [
        f"{vector}: {where}" for vector, canary in CANARIES.items() for where, text in blobs.items() if canary in text
    ]
    assert not leaks, leaks
    # What checks need survives: the findings name the variable, the argument and why, never the value.
    report = json.loads((tmp_path / "out" / "baseline" / "report.json").read_text())
    literal = next(f for f in report["findings"] if f["check"] == "secrets-no-literal-env")
    text = " ".join(literal["evidence"])
    assert "env PSP_API_KEY" in text and "env JAVA_OPTS" in text and "text assigns db.password" in text
    assert "args[1]" in text and "args[2]" in text and "command[2]" in text


def test_classifier_shapes() -> None:
    secret = [
        ("", "-----BEGIN RSA PRIVATE KEY-----\nMIIB"),
        ("", "----BEGIN OPENSSH PRIVATE KEY----"),
        ("", "-----BEGIN PGP PRIVATE KEY BLOCK-----"),
        ("", "-----BEGIN PKCS8 PRIVATE KEY-----"),
        ("PWD", "hunter2"),
        ("DB_PWD", "hunter2"),
        ("SMTP_PASS", "hunter2"),
        ("AZURE_STORAGE_KEY", "abc123"),
        ("STRIPE_KEY", "abc123"),
        ("KEY", "abc123"),
        ("Authorization", "Bearer abcdefghijklmnop"),
        ("JAVA_OPTS", "-Ddb.password=hunter2"),
        ("", "sh -c 'export DB_PASSWORD=hunter2'"),
    ]
    not_secret = [
        ("PUBLIC_KEY", "abc"),
        ("CACHE_KEY", "users"),
        ("BYPASS_CACHE", "true"),
        ("PASSTHROUGH", "on"),
        ("AWS_ACCESS_KEY_ID_FILE", "/run/secrets/id"),
        ("JAVA_OPTS", "-Xmx512m -Dfile.encoding=UTF-8"),
        ("DB_PASSWORD", "$(DB_PASSWORD_FROM_SECRET)"),
    ]
    for name, value in secret:
        info = classify_text(value, name)
        assert info["secretLike"] is True, (name, value)
        assert value not in json.dumps(info)
    for name, value in not_secret:
        assert classify_text(value, name)["secretLike"] is False, (name, value)
