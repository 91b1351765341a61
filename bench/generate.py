#!/usr/bin/env python3
"""Generate N synthetic workloads (Deployment + Service + PDB + HPA each) as multi-document YAML.

Deterministic: the same N gives the same files. About one workload in seven carries
a deliberate violation so every tool has something to report.

    python bench/generate.py --workloads 1000 --out bench/data/w1000
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

PER_FILE = 100
PER_NAMESPACE = 500

TEMPLATE = """---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}, tier: {tier}}}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: {name}}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: 0, maxSurge: 1}}
  template:
    metadata:
      labels: {{app: {name}, tier: {tier}}}
      annotations: {{checksum/config: "{digest}"}}
    spec:
      serviceAccountName: {name}
      automountServiceAccountToken: false
      priorityClassName: system-cluster-critical
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        seccompProfile: {{type: RuntimeDefault}}
      containers:
      - name: app
        image: {image}
        ports:
        - containerPort: 8080
        env:
        - name: LOG_LEVEL
          value: info{extra_env}
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
          limits: {{cpu: 500m, memory: 256Mi}}
        securityContext:
          readOnlyRootFilesystem: {ro}
          allowPrivilegeEscalation: false
          privileged: {privileged}
          capabilities: {{drop: [ALL]}}
        readinessProbe:
          httpGet: {{path: /ready, port: 8080}}
        livenessProbe:
          httpGet: {{path: /live, port: 8080}}
          initialDelaySeconds: 30
        startupProbe:
          httpGet: {{path: /live, port: 8080}}
          periodSeconds: 5
          failureThreshold: 12
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector: {{app: {name}}}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {name}
  namespace: {ns}
spec:
  {pdb_budget}
  selector:
    matchLabels: {{app: {name}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
  namespace: {ns}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
  minReplicas: 3
  maxReplicas: 12
  metrics:
  - type: Pods
    pods:
      metric: {{name: http_requests_per_second}}
      target: {{type: AverageValue, averageValue: "100"}}
"""


def workload(i: int) -> str:
    name = f"svc-{i:05d}"
    ns = f"bench-{i // PER_NAMESPACE:03d}"
    digest = hashlib.sha256(name.encode()).hexdigest()
    image = f"registry.example.com/bench/{name}:1.0@sha256:{digest}"
    if i % 7 == 3:
        image = f"registry.example.com/bench/{name}:1.0"  # mutable tag
    return TEMPLATE.format(
        name=name,
        ns=ns,
        tier="critical" if i % 10 == 0 else "standard",
        digest=digest[:16],
        image=image,
        ro="false" if i % 11 == 5 else "true",
        privileged="true" if i % 97 == 13 else "false",
        extra_env="\n        - name: DB_PASSWORD\n          value: bench-fixture-value" if i % 53 == 7 else "",
        pdb_budget="minAvailable: 3" if i % 13 == 2 else "maxUnavailable: 1",
    )


def generate(n: int, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for start in range(0, n, PER_FILE):
        path = out / f"workloads-{start // PER_FILE:04d}.yaml"
        path.write_text("".join(workload(i) for i in range(start, min(n, start + PER_FILE))))
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    files = generate(args.workloads, args.out)
    print(f"{args.workloads} workloads in {len(files)} files under {args.out}")


if __name__ == "__main__":
    main()
