"""Backup and disaster recovery: schedules cover every namespace with state, the last good backup is within the
RPO, databases archive their WAL continuously (point-in-time recovery).

Sources: Velero (Schedule, Backup), CloudNativePG (Cluster, ScheduledBackup, Backup) and generic backup-run
records (``--drills``, kind BackupRun) for databases no operator reports on. Declarations (schedules, archiving
configuration) are judged from manifests too; whether a backup completed, and when, from status wherever the
evidence carries it (a live cluster, a ``kubectl get -o yaml`` export) or from records. Evidence with no backup
status at all leaves ``backup.recent`` not assessed, never passed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from auditor.checkapi import (
    CNPG,
    VELERO,
    Check,
    CheckContext,
    CheckMeta,
    Failures,
    age_hours,
    condition,
    hours_text,
    not_assessed,
    timestamp,
)
from auditor.kube import as_list, as_mapping
from auditor.models import K8sObject, Result, Severity, Subject

_REFS = ("ISO/IEC 27001:2022 A.8.13", "PCI DSS v4.0 12.10.1")
_FAILED_PHASES = ("Failed", "PartiallyFailed", "FailedValidation", "failed")


def velero_covers(spec: Mapping[str, Any], namespace: str) -> bool:
    """Whether a Velero backup (or a Schedule's template) includes the namespace: includedNamespaces defaults to
    every namespace ("*"), excludedNamespaces wins."""
    included = [str(n) for n in as_list(spec.get("includedNamespaces"))] or ["*"]
    excluded = [str(n) for n in as_list(spec.get("excludedNamespaces"))]
    if any(fnmatch.fnmatchcase(namespace, e) for e in excluded):
        return False
    return any(fnmatch.fnmatchcase(namespace, i) for i in included)


def covering_schedules(ctx: CheckContext, namespace: str) -> list[K8sObject]:
    """Velero Schedules that back the namespace up: not paused, not failed validation, including it."""
    out = []
    for schedule in ctx.of_group(VELERO, "Schedule"):
        if schedule.spec.get("paused") is True:
            continue
        if as_mapping(schedule.raw.get("status")).get("phase") == "FailedValidation":
            continue
        if velero_covers(as_mapping(schedule.spec.get("template")), namespace):
            out.append(schedule)
    return sorted(out, key=lambda s: (s.namespace or "", s.name))


def databases(ctx: CheckContext, namespace: str) -> list[K8sObject]:
    return sorted((o for o in ctx.stateful.get(namespace, ()) if o.kind == "Cluster"), key=lambda o: o.name)


def scheduled_backups(ctx: CheckContext, namespace: str | None, database: str) -> list[K8sObject]:
    """CloudNativePG ScheduledBackups of one database cluster that are not suspended."""
    return [
        s
        for s in ctx.of_group(CNPG, "ScheduledBackup")
        if s.namespace == namespace
        and as_mapping(s.spec.get("cluster")).get("name") == database
        and s.spec.get("suspend") is not True
    ]


def _backup_scheduled(ctx: CheckContext) -> Iterator[Result]:
    for ns in sorted(ctx.stateful):
        subject = ctx.namespace_subject(ns)
        f = Failures(subject)
        held = ctx.stateful[ns]
        schedules = covering_schedules(ctx, ns)
        volumes = [o for o in held if o.kind != "Cluster" and not o.labels.get("cnpg.io/cluster")]
        if volumes and not schedules:
            names = ", ".join(f"{o.kind} {o.name}" for o in volumes[:3]) + (" ..." if len(volumes) > 3 else "")
            f.add("no-schedule", f"holds state ({names}) and no Velero Schedule includes the namespace")
        covered_by = [f"Velero Schedule {s.namespace}/{s.name} ({s.spec.get('schedule', '?')})" for s in schedules]
        for db in databases(ctx, ns):
            scheduled = scheduled_backups(ctx, db.namespace, db.name)
            if scheduled:
                covered_by.append(f"ScheduledBackup {scheduled[0].name} for database {db.name}")
            elif not schedules:
                f.add("database-unscheduled", f"database {db.name} (CloudNativePG) has no ScheduledBackup")
            else:
                f.add(
                    "database-unscheduled",
                    f"database {db.name} (CloudNativePG) has no ScheduledBackup; a Velero volume backup of a "
                    "running database is not a consistent database backup",
                )
        yield f.result("covered by " + "; ".join(covered_by))


BACKUP_SCHEDULED = Check(
    CheckMeta(
        id="backup-scheduled",
        title="Every namespace holding state is covered by a backup schedule",
        items=("backup.scheduled",),
        severity=Severity.HIGH,
        kinds=("Namespace", "PersistentVolumeClaim", "StatefulSet", "Cluster"),
        reads=("Schedule", "ScheduledBackup"),
        rationale=(
            "Wallet balances, bets and KYC files that are not backed up on a schedule are lost with the volume or "
            "the region; regulators expect backups of player data to be routine, not ad hoc."
        ),
        remediation=(
            "Add a Velero Schedule whose template includes the namespace, and a CloudNativePG ScheduledBackup for "
            "each database cluster."
        ),
        references=_REFS,
        facets={
            "no-schedule": "state in the namespace and no Velero Schedule includes it",
            "database-unscheduled": "a database cluster has no ScheduledBackup",
        },
    ),
    _backup_scheduled,
)


def _finished(obj: K8sObject) -> str:
    status = as_mapping(obj.raw.get("status"))
    return str(
        status.get("completionTimestamp")
        or status.get("stoppedAt")
        or status.get("startTimestamp")
        or status.get("startedAt")
        or obj.metadata.get("creationTimestamp")
        or ""
    )


def _phase(obj: K8sObject) -> str:
    return str(as_mapping(obj.raw.get("status")).get("phase") or "")


Run = tuple[str, str, str]
"""A backup run the evidence shows: (finished at, in UTC; outcome: completed, failed or running; what it was)."""


def _outcome(phase: str, completed: str) -> str:
    return "completed" if phase == completed else "failed" if phase in _FAILED_PHASES else "running"


def backup_targets(ctx: CheckContext, ns: str) -> list[tuple[str, list[Run]]]:
    """What of the namespace is backed up, each with its runs, newest last: the namespace's volumes (Velero; when it
    holds state other than database clusters) and each database cluster (its own Backups, the operator's
    ``lastSuccessfulBackup``; Velero does not count: a volume copy of a running database is not a backup of it).
    Backup-run records count for what their scope names (databases by name, else the namespace's volumes)."""
    held = ctx.stateful.get(ns, ())
    out: list[tuple[str, list[Run]]] = []
    record_runs = [
        (r, _outcome("success" if r.get("result") == "success" else "failed", "success"))
        for r in records(ctx, "backup-run")
        if covers_namespace(r, ns, ctx.cluster)
    ]
    if any(o.kind != "Cluster" and not o.labels.get("cnpg.io/cluster") for o in held):
        runs: list[Run] = [
            (_finished(b), _outcome(_phase(b), "Completed"), f"Velero Backup {b.name} ({_phase(b) or 'no phase'})")
            for b in ctx.of_group(VELERO, "Backup")
            if velero_covers(b.spec, ns)
        ]
        runs += [
            (str(r.get("date", "")), outcome, f"backup record {r.get('id')}")
            for r, outcome in record_runs
            if not as_list(as_mapping(r.get("scope")).get("databases"))
        ]
        out.append((f"namespace {ns} (volumes)", _sorted(runs)))
    for db in databases(ctx, ns):
        runs = [
            (
                _finished(b),
                _outcome(_phase(b), "completed"),
                f"CloudNativePG Backup {b.name} ({_phase(b) or 'no phase'})",
            )
            for b in ctx.of_group(CNPG, "Backup")
            if b.namespace == ns and as_mapping(b.spec.get("cluster")).get("name") == db.name
        ]
        last = as_mapping(db.raw.get("status")).get("lastSuccessfulBackup")
        if last:
            runs.append((str(last), "completed", "the operator's lastSuccessfulBackup"))
        runs += [
            (str(r.get("date", "")), outcome, f"backup record {r.get('id')}")
            for r, outcome in record_runs
            if db.name in [str(d) for d in as_list(as_mapping(r.get("scope")).get("databases"))]
        ]
        out.append((f"database {db.name}", _sorted(runs)))
    return out


def _sorted(runs: Sequence[Run]) -> list[Run]:
    return sorted((_utc(when), outcome, what) for when, outcome, what in runs if _utc(when))


def _utc(value: str) -> str:
    """A timestamp in one comparable form (UTC, Z), or "" when it is not one."""
    when = timestamp(value)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


def records(ctx: CheckContext, kind: str) -> list[Mapping[str, Any]]:
    """Records of one kind from the drills source (restore-drill, dr-cutover, backup-run)."""
    return [r for r in getattr(ctx.evidence, "drills", ()) if r.get("kind") == kind]


def covers_namespace(record: Mapping[str, Any], namespace: str, cluster: str) -> bool:
    scope = as_mapping(record.get("scope"))
    clusters = [str(c) for c in as_list(scope.get("clusters"))]
    if cluster and clusters and cluster not in clusters:
        return False
    return any(fnmatch.fnmatchcase(namespace, str(g)) for g in as_list(scope.get("namespaces")))


def rpo_hours(ctx: CheckContext) -> float:
    return ctx.param("rpo_hours", float, 24.0)


def _backup_status_seen(ctx: CheckContext) -> bool:
    """Whether the evidence shows the backup system's state at all: a live cluster, backup records, or any backup
    with a status (a `kubectl get -o yaml` export). Then a namespace with no backup run has none, rather than one
    the evidence cannot show."""
    return (
        ctx.has_cluster_state
        or bool(records(ctx, "backup-run"))
        or any(b.raw.get("status") for b in (*ctx.of_group(VELERO, "Backup"), *ctx.of_group(CNPG, "Backup")))
        or any(as_mapping(db.raw.get("status")).get("lastSuccessfulBackup") for db in ctx.of_group(CNPG, "Cluster"))
    )


def _backup_recent(ctx: CheckContext) -> Iterator[Result]:
    rpo = rpo_hours(ctx)
    seen = _backup_status_seen(ctx)
    for ns in sorted(ctx.stateful):
        subject = ctx.namespace_subject(ns)
        if not seen:
            yield not_assessed(
                subject,
                "no backup status in the evidence: whether a backup completed is read from a live cluster "
                "(Velero and CloudNativePG status), status in the inputs (kubectl get -o yaml), or backup records "
                "(--drills)",
            )
            continue
        f = Failures(subject)
        passes = []
        for target, runs in backup_targets(ctx, ns):
            passes.append(_judge_runs(f, target, runs, rpo, ctx.as_of))
        yield f.result("; ".join(passes))


def _judge_runs(f: Failures, target: str, runs: Sequence[Run], rpo: float, as_of: str) -> str:
    """Add what is wrong with one target's backups to ``f``; return the sentence for a pass."""
    done = [r for r in runs if r[1] == "completed"]
    if not done:
        f.add(
            "no-completed-backup",
            f"{target}: no completed backup of it in the evidence"
            + (
                f" (its {len(runs)} backup run(s) did not complete)"
                if runs
                else ", which shows the backup system's state"
            ),
        )
        return ""
    when, _, what = done[-1]
    age = age_hours(when, as_of)
    if age is None:
        f.add("stale", f"{target}: {what}: finish time {when!r} is not a timestamp")
    elif age < 0:
        f.add("stale", f"{target}: {what} finished at {when}, after the report time: the evidence and --as-of disagree")
    elif age > rpo:
        f.add(
            "stale",
            f"{target}: last completed backup {hours_text(age)} ago ({what}, {when}), over the RPO of {rpo:g} h",
        )
    failed_after = [r for r in runs if r[1] == "failed" and r[0] > when]
    if failed_after:
        f.add("backup-failed", f"{target}: the latest backup failed: {failed_after[-1][2]} at {failed_after[-1][0]}")
    return f"{target}: last completed backup {hours_text(max(age or 0, 0))} ago ({what}, {when}), within {rpo:g} h"


BACKUP_RECENT = Check(
    CheckMeta(
        id="backup-recent",
        title="The last successful backup is within the RPO",
        items=("backup.recent",),
        severity=Severity.HIGH,
        kinds=("Namespace", "PersistentVolumeClaim", "StatefulSet", "Cluster"),
        reads=("Backup", "Schedule"),
        rationale=(
            "A schedule proves intent, not a backup: only a completed backup within the recovery point objective "
            "bounds how many deposits, bets and withdrawals a restore loses."
        ),
        remediation=(
            "Fix failing Velero or CloudNativePG backups (see the backup's status and logs) and keep the schedule "
            "frequent enough for parameters.rpo_hours."
        ),
        references=_REFS,
        facets={
            "no-completed-backup": "no backup of the namespace completed",
            "stale": "the last completed backup is older than the RPO",
            "backup-failed": "the latest backup failed or partially failed",
        },
    ),
    _backup_recent,
)


def archiving_configured(db: K8sObject) -> str | None:
    """How the database archives its WAL, or None: barmanObjectStore, or a WAL-archiver plugin."""
    store = as_mapping(as_mapping(db.spec.get("backup")).get("barmanObjectStore"))
    if store.get("destinationPath"):
        return f"barmanObjectStore {store.get('destinationPath')}"
    for plugin in as_list(db.spec.get("plugins")):
        plugin = as_mapping(plugin)
        if plugin.get("isWALArchiver") is True or plugin.get("name") == "barman-cloud.cloudnative-pg.io":
            return f"plugin {plugin.get('name')}"
    return None


DB_IMAGE = re.compile(r"(^|/)(postgres(ql)?|mysql|mariadb|percona[^/:]*)(:|@|$)")
"""Images of self-managed databases (a StatefulSet running one is a database without an operator)."""


def self_managed_databases(ctx: CheckContext, ns: str) -> list[Any]:
    """StatefulSets of the namespace whose containers run a database image."""
    return [
        w
        for w in ctx.workloads_of(ns)
        if w.kind == "StatefulSet" and any(DB_IMAGE.search(str(c.spec.get("image", ""))) for c in w.app_containers())
    ]


def latest_pitr_record(ctx: CheckContext, ns: str, database: str) -> Mapping[str, Any] | None:
    """The backup-run record with a pitr_window for this database whose window ends last, or None."""
    found = [
        r
        for r in records(ctx, "backup-run")
        if r.get("pitr_window")
        and covers_namespace(r, ns, ctx.cluster)
        and database in [str(d) for d in as_list(as_mapping(r.get("scope")).get("databases"))]
    ]
    return max(found, key=lambda r: str(as_mapping(r.get("pitr_window")).get("to", "")), default=None)


def _self_managed_pitr(ctx: CheckContext, ns: str) -> Iterator[Result]:
    """A database no operator reports on: its recoverable window comes from BackupRun records' pitr_window."""
    rpo = rpo_hours(ctx)
    for w in self_managed_databases(ctx, ns):
        record = latest_pitr_record(ctx, ns, w.name)
        if record is None:
            yield not_assessed(
                w.subject,
                "a self-managed database: no operator reports its WAL/binlog archiving; give a BackupRun record "
                "with pitr_window for it (--drills)",
            )
            continue
        window = as_mapping(record.get("pitr_window"))
        end = str(window.get("to", ""))
        f = Failures(w.subject)
        age = age_hours(end, ctx.as_of)
        if age is None or age > rpo:
            f.add(
                "archiving-failing",
                f"the last recoverable point on record is {end} (record {record.get('id')}), "
                f"{hours_text(age or 0)} before the report, over the RPO of {rpo:g} h",
            )
        yield f.result(f"recoverable from {window.get('from')} to {end} (record {record.get('id')})")


def _backup_pitr(ctx: CheckContext) -> Iterator[Result]:
    for ns in sorted(ctx.stateful):
        yield from _self_managed_pitr(ctx, ns)
        for db in databases(ctx, ns):
            subject = Subject.of(db)
            f = Failures(subject)
            how = archiving_configured(db)
            if how is None:
                f.add("no-wal-archiving", "no WAL archiving configured (spec.backup.barmanObjectStore or a plugin)")
                yield f.result("")
                continue
            status = as_mapping(db.raw.get("status"))
            archiving = condition(db, "ContinuousArchiving")
            if archiving is None:
                yield not_assessed(
                    subject,
                    f"WAL archiving is configured ({how}); whether it works is read from the cluster's "
                    "ContinuousArchiving condition, which the evidence does not show",
                )
                continue
            if archiving.get("status") != "True":
                since = f" since {archiving['lastTransitionTime']}" if archiving.get("lastTransitionTime") else ""
                f.add(
                    "archiving-failing",
                    f"ContinuousArchiving is {archiving.get('status')}{since}: {archiving.get('reason', '?')} "
                    f"({str(archiving.get('message', ''))[:160]}); nothing after that point can be recovered",
                )
            first = status.get("firstRecoverabilityPoint")
            if not first:
                f.add("no-recoverability-point", "the operator reports no first recoverability point (no base backup)")
            yield f.result(f"WAL archived continuously ({how}); recoverable to any point since {first}")


BACKUP_PITR = Check(
    CheckMeta(
        id="backup-pitr",
        title="Databases archive their WAL continuously (point-in-time recovery)",
        items=("backup.pitr",),
        severity=Severity.HIGH,
        kinds=("Cluster", "StatefulSet"),
        rationale=(
            "Nightly snapshots lose a day of wagers; continuous WAL archiving lets a wallet database be restored "
            "to the second before corruption or a bad release."
        ),
        remediation=(
            "Configure spec.backup.barmanObjectStore (or the Barman Cloud plugin) on each CloudNativePG Cluster and "
            "keep its ContinuousArchiving condition True; take a base backup so a recoverability point exists."
        ),
        references=_REFS,
        facets={
            "no-wal-archiving": "no WAL archiving configured",
            "archiving-failing": "WAL archiving is configured but failing",
            "no-recoverability-point": "no base backup: nothing to recover from",
        },
    ),
    _backup_pitr,
)
