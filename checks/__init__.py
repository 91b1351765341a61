"""The check catalog: one module per family, metadata beside code.

Installed as ``auditor_checks``. Adding a check is one new definition in a family
module and one line here; the catalog order is the report order.
"""

from __future__ import annotations

from auditor.checkapi import Check

from . import (
    access,
    admission,
    availability,
    backup,
    drills,
    images,
    network,
    pod_security,
    probes,
    release,
    resilience,
    secrets,
    supply_chain,
)

ALL_CHECKS: tuple[Check, ...] = (
    images.PINNED_DIGEST,
    images.REGISTRY_ALLOWED,
    supply_chain.SIGNED,
    supply_chain.SBOM,
    supply_chain.VULNS,
    supply_chain.MULTI_ARCH,
    pod_security.RUN_AS_NON_ROOT,
    pod_security.READ_ONLY_ROOT_FS,
    pod_security.NO_PRIVILEGE,
    pod_security.CAPABILITIES_DROPPED,
    pod_security.SECCOMP,
    pod_security.NO_HOST_ACCESS,
    pod_security.RESOURCES,
    admission.ADMISSION_ENFORCED,
    access.SA_TOKEN_SCOPED,
    access.NO_WILDCARDS,
    access.CLUSTER_ADMIN_RESTRICTED,
    access.SECRETS_READ_RESTRICTED,
    network.DEFAULT_DENY,
    network.EGRESS_RESTRICTED,
    probes.READINESS,
    probes.STARTUP,
    availability.PDB_PRESENT,
    availability.PRIORITY_CLASS,
    availability.REPLICAS_HA,
    availability.AUTOSCALED,
    availability.NON_CPU_METRIC,
    availability.SAFE_STRATEGY,
    resilience.CANARY_GATES,
    resilience.WARM_CAPACITY,
    secrets.NO_LITERAL_ENV,
    secrets.EXTERNAL_SOURCE,
    secrets.MOUNTED_NOT_ENV,
    secrets.ROTATED,
    secrets.CONFIG_VERSIONED,
    release.TAG_SIGNED,
    release.REVIEWED,
    release.GITOPS_PINNED,
    release.RUNBOOK,
    resilience.SLI_ALERTS,
    resilience.TRACING,
    backup.BACKUP_SCHEDULED,
    backup.BACKUP_RECENT,
    backup.BACKUP_PITR,
    drills.RESTORE_TESTED,
    drills.CUTOVER_TESTED,
    resilience.DATA_RESIDENCY,
    resilience.MTLS_STRICT,
    resilience.EGRESS_TIMEOUTS,
    resilience.CONNECTION_POOLING,
    resilience.GITOPS_SYNCED,
)
