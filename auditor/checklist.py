"""The release checklist (shared/CHECKLIST.md) as data: stable keys, sections, control families.

Keys never change meaning; new items get new keys. ``family`` groups items the
way jurisdiction profiles map controls (see shared/JURISDICTIONS.md §8).
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.models import EvidenceKind, Severity

K = EvidenceKind

RELEASE_EVIDENCE = frozenset({K.K8S_OBJECTS, K.REGISTRY, K.GIT})
"""Evidence a release candidate carries before it runs anywhere."""


@dataclass(frozen=True)
class Item:
    """One checklist item."""

    key: str
    section: str
    title: str
    family: str
    """Control family a profile maps to regulatory controls."""
    evidence: K
    """The kind of evidence that can show this item holds."""

    @property
    def phase(self) -> str:
        """``release`` (manifests, registries and Git show it: the gate judges it) or ``runtime``
        (only a running platform or drill records show it: judged by an audit of the platform)."""
        return "release" if self.evidence in RELEASE_EVIDENCE else "runtime"


SECTIONS = (
    "Supply chain",
    "Policy and least privilege",
    "Availability and release safety",
    "Secrets and configuration",
    "Observability",
    "Backup and disaster recovery",
    "Release provenance",
    "Resilience and data",
)

_S, _P, _A, _C, _O, _B, _R, _D = SECTIONS

ITEMS: tuple[Item, ...] = (
    Item("image.pinned-digest", _S, "Images pinned by digest", "supply-chain", K.K8S_OBJECTS),
    Item("image.registry-allowed", _S, "Images from allowed registries", "supply-chain", K.K8S_OBJECTS),
    Item("image.signed", _S, "Image signatures verify against trusted identities", "supply-chain", K.REGISTRY),
    Item("image.sbom", _S, "SBOM attached or attested for the digest", "supply-chain", K.REGISTRY),
    Item("image.vulns-within-budget", _S, "Vulnerabilities within the profile's budget", "supply-chain", K.REGISTRY),
    Item("image.multi-arch", _S, "Image index covers required platforms", "supply-chain", K.REGISTRY),
    Item("pod.run-as-non-root", _P, "Containers cannot run as UID 0", "hardening", K.K8S_OBJECTS),
    Item("pod.read-only-root-fs", _P, "Read-only root filesystem", "hardening", K.K8S_OBJECTS),
    Item("pod.no-privilege", _P, "No privileged containers or privilege escalation", "hardening", K.K8S_OBJECTS),
    Item(
        "pod.capabilities-dropped",
        _P,
        "Capabilities dropped (ALL), none added outside allow-list",
        "hardening",
        K.K8S_OBJECTS,
    ),
    Item("pod.seccomp", _P, "Seccomp RuntimeDefault or Localhost", "hardening", K.K8S_OBJECTS),
    Item("pod.no-host-access", _P, "No host namespaces, hostPath or hostPort", "hardening", K.K8S_OBJECTS),
    Item("pod.resources", _P, "CPU and memory requests and limits", "availability", K.K8S_OBJECTS),
    Item(
        "policy.admission-enforced", _P, "Admission policy enforced, PolicyReports clean", "hardening", K.CLUSTER_STATE
    ),
    Item("sa.token-scoped", _P, "Dedicated ServiceAccounts, tokens mounted only where needed", "access", K.K8S_OBJECTS),
    Item("rbac.no-wildcards", _P, "No wildcard verbs or resources for non-system subjects", "access", K.K8S_OBJECTS),
    Item(
        "rbac.cluster-admin-restricted",
        _P,
        "cluster-admin bound only to allow-listed subjects",
        "access",
        K.K8S_OBJECTS,
    ),
    Item("rbac.secrets-read-restricted", _P, "Only allow-listed subjects can read Secrets", "access", K.K8S_OBJECTS),
    Item("net.default-deny", _P, "Default-deny NetworkPolicy for ingress and egress", "network", K.K8S_OBJECTS),
    Item("net.egress-restricted", _P, "Egress only to declared destinations", "network", K.K8S_OBJECTS),
    Item("probe.readiness", _A, "Readiness probes on serving containers", "availability", K.K8S_OBJECTS),
    Item("probe.startup", _A, "Startup probe or long-enough readiness grace", "availability", K.K8S_OBJECTS),
    Item(
        "pdb.present",
        _A,
        "PodDisruptionBudget covers replicated workloads and allows eviction",
        "availability",
        K.K8S_OBJECTS,
    ),
    Item("priority.class", _A, "Pods name an existing PriorityClass", "availability", K.K8S_OBJECTS),
    Item("replicas.ha", _A, "Critical-tier workloads run the minimum replicas", "availability", K.K8S_OBJECTS),
    Item("scale.autoscaled", _A, "API and realtime workloads autoscale", "availability", K.K8S_OBJECTS),
    Item("scale.non-cpu-metric", _A, "Autoscaling on an application metric", "availability", K.K8S_OBJECTS),
    Item("rollout.safe-strategy", _A, "Rolling updates keep capacity", "change", K.K8S_OBJECTS),
    Item(
        "rollout.canary-gates", _A, "Canary steps with SLO analysis and automatic rollback", "change", K.CLUSTER_STATE
    ),
    Item("secrets.no-literal-env", _C, "No secret-looking literal env values", "secrets", K.K8S_OBJECTS),
    Item("secrets.external-source", _C, "Secrets produced by an external manager", "secrets", K.CLUSTER_STATE),
    Item("secrets.mounted-not-env", _C, "Secrets mounted as files, not env", "secrets", K.K8S_OBJECTS),
    Item("secrets.rotated", _C, "Secrets refreshed within the maximum age", "secrets", K.CLUSTER_STATE),
    Item("config.versioned", _C, "Config changes roll pods", "change", K.K8S_OBJECTS),
    Item("obs.tracing", _O, "Workloads export OpenTelemetry traces", "logging", K.TELEMETRY),
    Item("obs.sli-alerts", _O, "Alert rules for the business SLIs", "logging", K.TELEMETRY),
    Item("backup.scheduled", _B, "Stateful namespaces covered by a backup schedule", "backup", K.CLUSTER_STATE),
    Item("backup.recent", _B, "Last successful backup within RPO", "backup", K.CLUSTER_STATE),
    Item("backup.pitr", _B, "Continuous WAL/binlog archiving (PITR)", "backup", K.CLUSTER_STATE),
    Item("dr.restore-tested", _B, "Restore drill succeeded within the window", "backup", K.DRILLS),
    Item("dr.cutover-tested", _B, "DR cutover rehearsal succeeded within the window", "backup", K.DRILLS),
    Item("release.tag-signed", _R, "Release tag signed by a trusted key", "change", K.GIT),
    Item("release.reviewed", _R, "Every commit since the last release was reviewed", "change", K.GIT),
    Item("release.gitops-pinned", _R, "Git pins digests and the cluster runs what Git declares", "change", K.GIT),
    Item("release.runbook", _R, "Release ships a runbook", "change", K.GIT),
    # Added in checklist 1.1.
    Item("data.residency", _D, "Stateful data stays in the jurisdiction's allowed regions", "backup", K.CLUSTER_STATE),
    Item("net.mtls-strict", _D, "Service-to-service mTLS in STRICT mode", "network", K.CLUSTER_STATE),
    Item(
        "net.egress-timeouts",
        _D,
        "Provider calls have timeouts, bounded retries and outlier detection",
        "availability",
        K.CLUSTER_STATE,
    ),
    Item(
        "db.connection-pooling", _D, "Databases behind a connection pooler with limits", "availability", K.CLUSTER_STATE
    ),
    Item("gitops.synced", _D, "GitOps controllers report Synced and Healthy", "change", K.CLUSTER_STATE),
    Item("scale.warm-capacity", _D, "Warm capacity ahead of peaks", "availability", K.CLUSTER_STATE),
)

CHECKLIST_VERSION = "1.1"
"""The version of shared/CHECKLIST.md these items follow (shipped as auditor/data/CHECKLIST.md)."""

ITEMS_BY_KEY = {item.key: item for item in ITEMS}

# Severity of items no check covers yet (their checks' severity wins once they exist;
# a profile's items.<key>.severity wins over both).
UNCOVERED_SEVERITY: dict[str, Severity] = {
    "image.signed": Severity.HIGH,
    "image.sbom": Severity.MEDIUM,
    "image.vulns-within-budget": Severity.HIGH,
    "image.multi-arch": Severity.LOW,
    "policy.admission-enforced": Severity.HIGH,
    "rollout.canary-gates": Severity.MEDIUM,
    "secrets.external-source": Severity.HIGH,
    "secrets.rotated": Severity.MEDIUM,
    "obs.tracing": Severity.LOW,
    "obs.sli-alerts": Severity.MEDIUM,
    "backup.scheduled": Severity.HIGH,
    "backup.recent": Severity.HIGH,
    "backup.pitr": Severity.HIGH,
    "dr.restore-tested": Severity.HIGH,
    "dr.cutover-tested": Severity.MEDIUM,
    "release.tag-signed": Severity.HIGH,
    "release.reviewed": Severity.HIGH,
    "release.gitops-pinned": Severity.MEDIUM,
    "release.runbook": Severity.MEDIUM,
    "data.residency": Severity.HIGH,
    "net.mtls-strict": Severity.HIGH,
    "net.egress-timeouts": Severity.MEDIUM,
    "db.connection-pooling": Severity.MEDIUM,
    "gitops.synced": Severity.MEDIUM,
    "scale.warm-capacity": Severity.LOW,
}

FAMILIES = ("supply-chain", "hardening", "access", "network", "secrets", "availability", "change", "backup", "logging")

EVIDENCE_SUPPLIERS: dict[K, str] = {
    K.K8S_OBJECTS: "--manifests PATH (rendered manifests) or --evidence FILE",
    K.CLUSTER_STATE: "a live-cluster source (--kubeconfig/--context/--in-cluster) or --evidence from one",
    K.REGISTRY: "registry verification of the images (--registries, --trust-key KEY, --trusted-root FILE)",
    K.GIT: "--git REPO --tag T (release provenance)",
    K.DRILLS: "--drills PATH (restore-drill, DR-cutover and backup-run records)",
    K.TELEMETRY: "tracing and alerting configuration (read as Kubernetes objects: PrometheusRule, Instrumentation)",
}
"""Which flag or source supplies each evidence kind: what an INCOMPLETE verdict tells the user to add."""

EVIDENCE_REASONS: dict[K, str] = {
    K.K8S_OBJECTS: "no Kubernetes objects were collected (give --manifests or --evidence)",
    K.CLUSTER_STATE: "needs live-cluster evidence (admission reports, controller status, secret ages); this run collected none",
    K.REGISTRY: "needs registry evidence (signatures, SBOMs, attestations read from the OCI registry); this run collected none",
    K.GIT: "needs Git release evidence (tags, tag signatures, reviewed merges, runbooks); this run collected none",
    K.DRILLS: "needs restore-drill and DR-cutover records (--drills PATH); this run collected none",
    K.TELEMETRY: "needs tracing and alerting configuration from the running platform; this run collected none",
}
