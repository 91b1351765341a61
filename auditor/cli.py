"""Command line: the contract that tests, CI and users rely on (shared/DESIGN.md).

Exit codes: 0 nothing blocking; 1 blocking findings; 2 usage, input or tool error
(an unwritable --out, a full disk); 3 evidence incomplete for a blocking item. Every
AuditorError is caught here, in one place, and printed as one message (a JSON line
with --log-format json). What the terminal shows lives in auditor/terminal.py.
"""

from __future__ import annotations

import datetime as dt
import enum
import errno
import functools
import gc
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, assert_never

import click

from auditor import __version__, terminal
from auditor import evidence as evidence_mod
from auditor import profiles as profiles_mod
from auditor.assessment import EXIT_BLOCKING, EXIT_INCOMPLETE, EXIT_OK, assess
from auditor.catalog import all_checks
from auditor.errors import AuditorError, InputError, OutputError
from auditor.models import EvidenceSet, Severity, SourceRecord
from auditor.outputs.interface import Output
from auditor.outputs.json_report import render_json
from auditor.remediation import RemediationPlan
from auditor.sources.interface import Collected
from auditor.sources.manifests import ManifestSource

COMPLETE_VAR = "_AUDITOR_COMPLETE"
"""Click's shell completion variable: `_AUDITOR_COMPLETE=bash_source auditor` prints the bash script."""


class Format(enum.StrEnum):
    JSON = "json"
    PDF = "pdf"
    SARIF = "sarif"
    JUNIT = "junit"
    CSV = "csv"
    XLSX = "xlsx"


def output_for(fmt: Format) -> Output:
    """Explicit wiring: one format, one class."""
    if fmt is Format.JSON:
        from auditor.outputs.json_report import JsonOutput

        return JsonOutput()
    if fmt is Format.PDF:
        from auditor.outputs.pdf_report import PdfOutput  # WeasyPrint is heavy: imported only when asked for

        return PdfOutput()
    if fmt is Format.SARIF:
        from auditor.outputs.sarif import SarifOutput

        return SarifOutput()
    if fmt is Format.JUNIT:
        from auditor.outputs.junit import JunitOutput

        return JunitOutput()
    if fmt is Format.CSV:
        from auditor.outputs.spreadsheet import CsvOutput  # pandas: imported only for spreadsheets

        return CsvOutput()
    if fmt is Format.XLSX:
        from auditor.outputs.spreadsheet import XlsxOutput

        return XlsxOutput()
    assert_never(fmt)


def _parse_formats(value: str) -> list[Format]:
    out = []
    for part in value.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            out.append(Format(part))
        except ValueError:
            raise click.BadParameter(
                f"unknown format {part!r} (choose from {', '.join(f.value for f in Format)})"
            ) from None
    return out


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_as_of(value: str | None) -> str:
    if value is None:
        return _now()
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 timestamp (e.g. 2026-11-27T02:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _io_failure(path: Path, exc: OSError, what: str) -> OutputError:
    """One line naming the path that could not be written (read-only, full disk, a file where a directory goes)."""
    where = exc.filename if isinstance(exc.filename, str) and exc.filename else str(path)
    return OutputError(f"{where}: cannot write {what}: {exc.strerror or exc}")


@dataclass(frozen=True)
class SourceSpec:
    """Where evidence comes from, as the command line gave it."""

    manifests: tuple[str, ...] = ()
    evidence_file: str | None = None
    max_file_mib: int = 32
    default_namespace: str = "default"
    kubeconfig: str | None = None
    contexts: tuple[str, ...] = ()
    in_cluster: bool = False
    registry: RegistrySpec | None = None
    git: GitSpec | None = None
    drills: tuple[str, ...] = ()
    """Drill record files or directories (--drills): added to the evidence, also to a loaded --evidence snapshot."""

    @property
    def cluster(self) -> bool:
        return bool(self.kubeconfig or self.contexts or self.in_cluster)


# The demo platform's live state (backup status, drill records) was recorded at this time; assessing it later
# would only show the backups aging.
DEMO_AS_OF = "2026-11-27T02:00:00Z"


@dataclass(frozen=True)
class ArchiveSpec:
    store: Any  # auditor.archive.LocalStore or auditor.archive_s3.S3Store
    key: Any  # auditor.archive.SigningKey (cryptography is imported only when archiving)


def _archive_spec(
    archive: str | None, sign_key: str | None, keyless: bool = False, trust_config: str | None = None
) -> ArchiveSpec | None:
    if not archive:
        if keyless or sign_key:
            raise InputError("--sign-key and --sign-keyless sign archive entries: give --archive DIR|s3://... too")
        return None
    key_file = sign_key or (None if keyless else os.environ.get("AUDITOR_SIGN_KEY"))
    if keyless and key_file:
        raise InputError("give either --sign-key (unattended runs) or --sign-keyless (CI with an OIDC identity)")
    if not key_file and not keyless:
        raise InputError(
            "--archive needs --sign-key FILE (or AUDITOR_SIGN_KEY), or --sign-keyless in CI: an unsigned archive "
            "proves nothing (`auditor keygen --out DIR` makes a key pair)"
        )
    from auditor import archive as archive_mod

    key: Any = (
        archive_mod.KeylessSigner(Path(trust_config) if trust_config else None)
        if keyless
        else archive_mod.load_signing_key(Path(str(key_file)))
    )
    store = archive_mod.open_store(archive)
    if archive.startswith("s3://"):
        store.require_object_lock()
    return ArchiveSpec(store, key)


def _since_last_report(report: dict[str, Any], archive: ArchiveSpec, profile_id: str) -> None:
    """Add the "since the last report" section (what changed against this profile's latest archived report) and
    the trend (pass rates of its recent archived reports and this one)."""
    from auditor.diff import diff_reports
    from auditor.trend import recent

    store = archive.store
    report["trend"] = recent(store, profile_id, report)
    entries = store.entries(profile_id) if store.exists() else []
    previous = store.read(profile_id, entries[-1], "report.json") if entries else None
    if previous is None:
        report["since_last_report"] = {"previous": None, "note": "the first report in this archive: nothing to compare"}
        return
    try:
        old = json.loads(previous)
        changes = diff_reports(old, report)
    except (ValueError, KeyError, TypeError):
        report["since_last_report"] = {"previous": None, "note": f"entry {entries[-1]:06d}'s report.json is unreadable"}
        return
    report["since_last_report"] = {
        "previous": {
            "sequence": entries[-1],
            "report": old["report"]["id"],
            "generated_at": old["report"]["generated_at"],
        },
        "new": changes["new"],
        "resolved": changes["resolved"],
        "still_failing": len(changes["still_failing"]),
        "items_changed": changes["items_changed"],
    }


@dataclass(frozen=True)
class GitSpec:
    """The release in Git, as the command line named it."""

    repo: str
    tag: str
    allowed_signers: tuple[str, ...] = ()
    gpg_keys: tuple[str, ...] = ()
    review_evidence: str | None = None


def _read_git(ev: EvidenceSet, spec: GitSpec, profiles: Sequence[profiles_mod.Profile]) -> EvidenceSet:
    """Read the release from Git (tag, signature, history, runbook, pinned images) into the evidence."""
    from auditor.sources.git import (
        GitError,
        GitSource,
        GitTrust,
        gpg_fingerprints,
        read_allowed_signers,
        ssh_fingerprint,
    )

    trust = GitTrust()
    cli: list[str] = []
    try:
        for f in spec.allowed_signers:
            for key in read_allowed_signers(Path(f)):
                trust.ssh_keys.append(("cli", key))
                cli.append(ssh_fingerprint(key) or "")
        for f in spec.gpg_keys:
            trust.gpg_files.append(("cli", Path(f)))
            cli.extend(gpg_fingerprints(Path(f)))
        for profile in profiles:
            for f in profile.release_key_files:
                head = Path(f).read_text("utf-8", "replace")
                if "BEGIN PGP PUBLIC KEY BLOCK" in head:
                    trust.gpg_files.append(("profile", Path(f)))
                else:
                    trust.ssh_keys.append(("profile", head.strip().splitlines()[0]))
    except (GitError, OSError) as exc:
        raise InputError(str(exc)) from None
    params: Mapping[str, Any] = profiles[0].parameters if profiles else {}
    source = GitSource(
        spec.repo,
        spec.tag,
        tag_pattern=str(params.get("release_tag_pattern", "v*")),
        trust=trust,
        review_evidence=Path(spec.review_evidence) if spec.review_evidence else None,
        runbook_paths=tuple(params.get("runbook_paths", ("RUNBOOK.md", "docs/runbook*.md", "runbook*.md"))),
        manifest_paths=tuple(params.get("gitops_paths", ())),
    )
    with terminal.progress(f"reading {spec.tag} from {spec.repo}"):
        release, gaps, record = source.collect()
    release["trust"] = {"cli": sorted(set(filter(None, cli)))}
    return evidence_mod.with_git(ev, release, gaps, record)


@dataclass(frozen=True)
class RegistrySpec:
    """Registry verification of the images the other sources name, as the command line asked for it."""

    trust_keys: tuple[str, ...] = ()
    trusted_root: str | None = None
    registry_configs: tuple[str, ...] = ()
    insecure: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()
    cache_dir: str | None = None
    cache_ttl: float = 3600.0
    concurrency: int = 8


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "auditor" / "registry"


def _read_registry(ev: EvidenceSet, spec: RegistrySpec, profiles: Sequence[profiles_mod.Profile]) -> EvidenceSet:
    """Look every image the evidence names up in its registry, verify what is attached, add it to the evidence."""
    from auditor.sources.oci import Credentials, RegistryClient, RegistryError, load_docker_config
    from auditor.sources.registry import ImageUse, RegistrySource, image_uses
    from auditor.sources.signatures import SigstoreTrust, TrustedKey, TrustKeyError, load_public_key

    keys: dict[str, TrustedKey] = {}
    cli: list[str] = []
    try:
        for f in spec.trust_keys:
            k = load_public_key(Path(f))
            keys.setdefault(k.fingerprint, k)
            cli.append(k.fingerprint)
        for profile in profiles:
            for f in profile.key_files:
                k = load_public_key(Path(f))
                keys.setdefault(k.fingerprint, k)
    except TrustKeyError as exc:
        raise InputError(str(exc)) from None
    credentials: dict[str, Credentials] = {}
    configs = list(spec.registry_configs)
    default_config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    if not configs and default_config.is_file():
        configs.append(str(default_config))
    try:
        for c in configs:
            credentials.update(load_docker_config(Path(c)))
    except RegistryError as exc:
        raise InputError(str(exc)) from None
    mirrors: dict[str, str] = {}
    for m in spec.mirrors:
        src, eq, dst = m.partition("=")
        if not eq or not src or not dst:
            raise InputError(
                f"--registry-mirror {m!r}: expected REGISTRY=MIRROR (e.g. registry.example=127.0.0.1:5000)"
            )
        mirrors[src] = dst
    insecure = set(spec.insecure)
    for profile in profiles:
        insecure.update(str(h) for h in profile.parameters.get("insecure_registries", ()))
    trust = SigstoreTrust(Path(spec.trusted_root) if spec.trusted_root else None)
    if trust.error:
        raise InputError(trust.error)
    uses = image_uses(ev.objects)
    for ref in ev.git.get("manifests", ()) if ev.git else ():  # what the release's GitOps manifests name
        uses.setdefault(str(ref["image"]), []).append(ImageUse("", "", "Git", f"{ref['file']}:{ref['line']}", ""))
    client = RegistryClient(credentials=credentials, insecure=sorted(insecure), mirrors=mirrors)
    source = RegistrySource(
        uses,
        client,
        keys=list(keys.values()),
        cli_keys=cli,
        trust=trust,
        cache_dir=None if spec.cache_dir == "" else Path(spec.cache_dir) if spec.cache_dir else _default_cache_dir(),
        cache_ttl=spec.cache_ttl,
        concurrency=spec.concurrency,
    )
    with terminal.progress(f"verifying {len(uses)} image(s) in their registries"):
        result = source.collect()
    terminal.debug(f"registry: {result.requests} requests, {result.cache_hits} cache hits")
    return evidence_mod.with_registry(ev, result.records, source.trust_json(), result.gaps, result.record)


def _read_drills(ev: EvidenceSet, paths: Sequence[str]) -> EvidenceSet:
    """Read restore-drill, DR-cutover and backup-run records into the evidence."""
    from auditor.sources.drills import DrillsSource

    more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
    with terminal.progress(f"reading drill records from {paths[0]}{more}"):
        found = DrillsSource(paths).collect()
    return evidence_mod.with_drills(ev, found.records, found.gaps, found.sources)


def gather_evidence(spec: SourceSpec, *, as_of: str, profiles: Sequence[profiles_mod.Profile] = ()) -> EvidenceSet:
    """Run the sources (or load a snapshot) and report coverage gaps on stderr."""
    if spec.evidence_file and (spec.manifests or spec.cluster):
        raise InputError("give either --evidence or sources (PATH/--manifests, --kubeconfig/--context), not both")
    if spec.evidence_file:
        with terminal.progress(f"loading {spec.evidence_file}"):
            ev = evidence_mod.load(Path(spec.evidence_file))
    elif spec.manifests or spec.cluster or spec.git:
        collected: list[Collected] = []
        if spec.manifests:
            manifests = spec.manifests
            source = ManifestSource(
                manifests, default_namespace=spec.default_namespace, max_bytes=spec.max_file_mib * 1024 * 1024
            )
            more = f" and {len(manifests) - 1} more" if len(manifests) > 1 else ""
            with terminal.progress(f"reading {manifests[0]}{more}"):
                collected.append(source.collect())
        if spec.cluster:
            from auditor.sources.cluster import ClusterSource  # the kubernetes client loads only for clusters

            cluster = ClusterSource(
                kubeconfig=spec.kubeconfig, contexts=spec.contexts, in_cluster=spec.in_cluster, progress=terminal.step
            )
            with terminal.progress("reading the cluster" + ("s" if len(spec.contexts) > 1 else "")):
                collected.append(cluster.collect())
        ev = evidence_mod.build(collected, collected_at=as_of)
    else:
        raise InputError(
            "no sources: give PATH or --manifests PATH (repeatable, '-' for stdin), --kubeconfig/--context "
            "(a live cluster), --git REPO --tag T, or --evidence FILE"
            + ("; --drills adds drill records to one of these" if spec.drills else "")
        )
    if spec.git is not None:
        ev = _read_git(ev, spec.git, profiles)
    if spec.registry is not None:
        ev = _read_registry(ev, spec.registry, profiles)
    if spec.drills:
        ev = _read_drills(ev, spec.drills)
    terminal.debug(f"evidence: {len(ev.objects)} objects, {len(ev.gaps)} coverage gaps, {ev.digest}")
    for gap in ev.gaps[:20]:
        terminal.warning(f"{gap.target}: {gap.reason}", target=gap.target, gap=gap.gap, source=gap.source)
    if len(ev.gaps) > 20:
        terminal.warning(f"... and {len(ev.gaps) - 20} more coverage gaps (see the report's coverage section)")
    # A cluster that answered but let the auditor list nothing (a token with no rights) still gets a report:
    # one that passes nothing and says, kind by kind, which permission is missing.
    refused = any(g.source == "cluster" and g.gap in ("forbidden", "unauthenticated") for g in ev.gaps)
    if not ev.objects and not refused and spec.git is None:
        detail = f" ({len(ev.gaps)} input problem(s) above)" if ev.gaps else ""
        raise InputError(f"nothing could be read: no Kubernetes objects in the inputs{detail}")
    gc.freeze()  # the evidence lives for the whole run: keep the cyclic GC from rescanning it
    return ev


def write_reports(
    ev: EvidenceSet,
    profile_specs: Sequence[str],
    out: Path | None,
    formats: Sequence[Format],
    *,
    as_of: str,
    fail_on: Severity | None,
    mode: str = "audit",
    remediation_plan: RemediationPlan | None = None,
    archive: ArchiveSpec | None = None,
) -> int:
    """Assess under each profile, write DIR/<profile-id>/report.*, print one verdict line each; with an archive,
    add each profile's reports and the evidence snapshot to it as the next signed entry."""
    loaded = [profiles_mod.load(p) for p in profile_specs]
    ids = [p.id for p in loaded]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise InputError(f"two profiles share the id {', '.join(sorted(dupes))}; reports would overwrite each other")
    checks = all_checks()
    codes = []
    snapshot: bytes | None = None
    for profile in loaded:
        with terminal.progress(f"{profile.id}: assessing"):
            report = assess(
                ev, profile, checks, as_of=as_of, fail_on=fail_on, mode=mode, remediation_plan=remediation_plan
            )
        if archive is not None:
            _since_last_report(report, archive, profile.id)
        summary = report["summary"]
        codes.append(summary["exit_code"])
        written = []
        if out is not None and formats:
            target = out / profile.id
            try:
                if out.exists() and not out.is_dir():
                    raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a directory", str(out))
                target.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _io_failure(target, exc, "the report directory") from None
            json_bytes = render_json(report)
            json_sha = evidence_mod.sha256_hex(json_bytes)
            if Format.PDF in formats and snapshot is None:
                snapshot = evidence_mod.dumps(ev)  # the PDF embeds it; made once for all profiles
            for fmt in formats:
                output = output_for(fmt)
                with terminal.progress(f"{profile.id}: writing {output.filename}"):
                    try:
                        written.append(str(output.write(report, target, json_sha256=json_sha, evidence=snapshot)))
                    except OSError as exc:
                        raise _io_failure(target / output.filename, exc, "the report") from None
                terminal.debug(f"wrote {written[-1]}", file=written[-1], profile=profile.id)
        if archive is not None:
            from auditor import archive as archive_mod

            files = {Path(w).name: Path(w).read_bytes() for w in written}
            files["evidence.json"] = snapshot if snapshot is not None else evidence_mod.dumps(ev)
            meta = {"id": profile.id, "version": profile.version, "sha256": profile.sha256}
            years = profile.retention.get("years")
            days = int(float(years) * 365.25) if isinstance(years, int | float) and years > 0 else None
            with terminal.progress(f"{profile.id}: archiving"):
                entry = archive_mod.append(
                    archive.store, meta, files, archive.key, created_at=as_of, retention_days=days
                )
            written.append(str(entry))
        terminal.echo(terminal.verdict_line(profile.id, summary, written))
        from auditor.outputs import github

        if github.active():  # inside GitHub Actions: annotations on the diff and the job summary
            github.write_annotations(report, sys.stdout)
            try:
                github.write_summary(report)
            except OSError as exc:
                terminal.warning(f"GITHUB_STEP_SUMMARY: cannot write the job summary: {exc.strerror or exc}")
        if not terminal.settings.quiet:
            for line in terminal.explain(report):
                terminal.echo(line)
        terminal.info(
            f"{profile.id}: {summary['verdict']} (exit {summary['exit_code']})",
            profile=profile.id,
            verdict=summary["verdict"],
            exit_code=summary["exit_code"],
            reports=written,
        )
    if EXIT_BLOCKING in codes:
        return EXIT_BLOCKING
    if EXIT_INCOMPLETE in codes:
        return EXIT_INCOMPLETE
    return EXIT_OK


# ---------------------------------------------------------------------- options


def _source_options(command: Any) -> Any:
    @functools.wraps(command)
    def with_paths(
        *args: Any,
        paths: tuple[str, ...] = (),
        manifests: tuple[str, ...] = (),
        evidence_file: str | None = None,
        max_file_mib: int = 32,
        default_namespace: str = "default",
        kubeconfig: str | None = None,
        contexts: tuple[str, ...] = (),
        in_cluster: bool = False,
        trust_keys: tuple[str, ...] = (),
        trusted_root: str | None = None,
        registry_configs: tuple[str, ...] = (),
        insecure_registries: tuple[str, ...] = (),
        registry_mirrors: tuple[str, ...] = (),
        registries: bool = False,
        registry_cache: str | None = None,
        no_registry_cache: bool = False,
        registry_cache_ttl: float = 3600.0,
        registry_concurrency: int = 8,
        git_repo: str | None = None,
        git_tag: str | None = None,
        allowed_signers: tuple[str, ...] = (),
        gpg_keys: tuple[str, ...] = (),
        review_evidence: str | None = None,
        drills: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> Any:
        if bool(git_repo) != bool(git_tag):
            raise click.UsageError("--git REPO and --tag TAG go together")
        git = GitSpec(git_repo, git_tag, allowed_signers, gpg_keys, review_evidence) if git_repo and git_tag else None
        wanted = registries or bool(
            trust_keys or trusted_root or registry_configs or insecure_registries or registry_mirrors
        )
        registry = (
            RegistrySpec(
                trust_keys=trust_keys,
                trusted_root=trusted_root,
                registry_configs=registry_configs,
                insecure=insecure_registries,
                mirrors=registry_mirrors,
                cache_dir="" if no_registry_cache else registry_cache,
                cache_ttl=registry_cache_ttl,
                concurrency=registry_concurrency,
            )
            if wanted
            else None
        )
        # Positional paths (as `kubectl -f` and `trivy config` take them) add to --manifests.
        kwargs["sources"] = SourceSpec(
            manifests=(*manifests, *paths),
            evidence_file=evidence_file,
            max_file_mib=max_file_mib,
            default_namespace=default_namespace,
            kubeconfig=kubeconfig,
            contexts=contexts,
            in_cluster=in_cluster,
            registry=registry,
            git=git,
            drills=drills,
        )
        return command(*args, **kwargs)

    f = with_paths
    f = click.option(
        "--drills",
        "drills",
        multiple=True,
        type=click.Path(),
        metavar="PATH",
        help="Restore-drill, DR-cutover and backup-run records (YAML or JSON file, or a directory read recursively; "
        "format in the README). Repeatable. Adds to the other sources, or to a snapshot given with --evidence.",
    )(f)
    f = click.option(
        "--review-evidence",
        type=click.Path(dir_okay=False),
        help="JSON export of merged pull requests and their approvers (format in the README).",
    )(f)
    f = click.option(
        "--gpg-key",
        "gpg_keys",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Armored OpenPGP public key trusted to sign release tags. Repeatable.",
    )(f)
    f = click.option(
        "--allowed-signers",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="git's allowed-signers file: SSH keys trusted to sign release tags. Repeatable.",
    )(f)
    f = click.option("--tag", "git_tag", help="The release tag to judge (with --git).")(f)
    f = click.option("--git", "git_repo", help="Git repository (local path or clone URL) holding the release tag.")(f)
    f = click.option(
        "--registry-concurrency",
        type=click.IntRange(1, 64),
        default=8,
        show_default=True,
        help="Images looked up in parallel.",
    )(f)
    f = click.option(
        "--registry-cache-ttl",
        type=click.FloatRange(0),
        default=3600.0,
        show_default=True,
        help="Seconds an image's list of signatures and attestations is reused from the cache (each artifact's "
        "verification is cached for good: it cannot change for the same trust inputs).",
    )(f)
    f = click.option("--no-registry-cache", is_flag=True, help="Neither read nor write the registry cache.")(f)
    f = click.option(
        "--registry-cache",
        type=click.Path(file_okay=False),
        help="Registry cache directory (default: $XDG_CACHE_HOME/auditor/registry).",
    )(f)
    f = click.option(
        "--registry-mirror",
        "registry_mirrors",
        multiple=True,
        metavar="REGISTRY=MIRROR",
        help="Read REGISTRY's images from MIRROR (same repositories and digests), e.g. an air-gapped copy. Repeatable.",
    )(f)
    f = click.option(
        "--insecure-registry",
        "insecure_registries",
        multiple=True,
        metavar="HOST:PORT",
        help="Speak plain HTTP to this registry (loopback test registries only; TLS stays on for all others). Repeatable.",
    )(f)
    f = click.option(
        "--registry-config",
        "registry_configs",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Docker config.json (or a .dockerconfigjson taken from an imagePullSecret) with registry credentials. "
        "Repeatable. Default: $DOCKER_CONFIG/config.json or ~/.docker/config.json.",
    )(f)
    f = click.option(
        "--trusted-root",
        type=click.Path(dir_okay=False),
        help="Sigstore trusted_root.json for keyless signatures (default: the public-good production root, offline).",
    )(f)
    f = click.option(
        "--trust-key",
        "trust_keys",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Public key (PEM or DER; ECDSA, Ed25519, RSA) trusted to sign every image. Repeatable.",
    )(f)
    f = click.option(
        "--registries",
        is_flag=True,
        help="Verify the images the other sources name in their registries (implied by any registry option).",
    )(f)
    f = click.option(
        "--in-cluster",
        is_flag=True,
        help="Read the cluster this runs in (its ServiceAccount token), as the nightly CronJob does.",
    )(f)
    f = click.option(
        "--context",
        "contexts",
        multiple=True,
        help="kubeconfig context to audit (repeatable: one run covers several clusters). Default: the current one.",
    )(f)
    f = click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False),
        help="kubeconfig file, as kubectl's flag (default: $KUBECONFIG or ~/.kube/config).",
    )(f)
    f = click.argument("paths", nargs=-1, type=click.Path(), metavar="[PATH]...")(f)
    f = click.option(
        "--default-namespace",
        default="default",
        show_default=True,
        help="Namespace for objects that name none (as kubectl apply would).",
    )(f)
    f = click.option(
        "--max-file-mib",
        type=click.IntRange(1, 4096),
        default=32,
        show_default=True,
        help="Refuse manifest files larger than this.",
    )(f)
    f = click.option(
        "--as-of",
        "as_of",
        help="Run time (ISO 8601, UTC). Fixes report time and waiver expiry for reproducible reports.",
    )(f)
    f = click.option(
        "--evidence", "evidence_file", type=click.Path(dir_okay=False), help="Assess a saved evidence snapshot."
    )(f)
    f = click.option(
        "--manifests",
        "manifests",
        multiple=True,
        help="Manifest file or directory (recursive); '-' reads stdin. Repeatable; positional PATHs add to these.",
    )(f)
    return f


def _profile_options(f: Any) -> Any:
    f = click.option(
        "--fail-on",
        type=click.Choice([s.value for s in Severity]),
        help="Block on this severity and above (overrides the profile's gate).",
    )(f)
    f = click.option(
        "--profile",
        "profile_specs",
        multiple=True,
        required=True,
        help="Shipped profile id (ukgc, mga, agco-on, baseline) or a profile file. Repeatable.",
    )(f)
    return f


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        quiet = param.name == "quiet"
        terminal.settings.verbosity = terminal.Verbosity.QUIET if quiet else terminal.Verbosity.VERBOSE
        terminal.configure()


def _set_log_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        terminal.settings.log_format = terminal.LogFormat(value)
        terminal.configure()


def _set_no_color(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        terminal.settings.no_color = True
        terminal.configure()


def _output_params() -> list[click.Parameter]:
    """-q/-v/--log-format/--no-color: global, accepted before the command name and after it."""
    return [
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_set_verbosity,
            help="Errors and verdict lines only.",
        ),
        click.Option(
            ["-v", "--verbose"],
            is_flag=True,
            expose_value=False,
            callback=_set_verbosity,
            help="Also what was read, phase timings and files written (stderr).",
        ),
        click.Option(
            ["--log-format"],
            type=click.Choice([f.value for f in terminal.LogFormat]),
            expose_value=False,
            callback=_set_log_format,
            help="stderr as text (default) or one JSON object per line (level, message, fields), e.g. for cron.",
        ),
        click.Option(
            ["--no-color"],
            is_flag=True,
            expose_value=False,
            callback=_set_no_color,
            help="No colour (also: NO_COLOR set). Colour is only ever used on a terminal.",
        ),
    ]


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, params=_output_params())
@click.version_option(__version__, prog_name="auditor")
def cli() -> None:
    """Release-checklist compliance auditor for Kubernetes platforms that move money."""


@cli.command()
@_source_options
@_profile_options
@click.option("--out", type=click.Path(), required=True, help="Output directory; reports go to DIR/<profile-id>/.")
@click.option(
    "--format",
    "formats",
    default="json,pdf",
    show_default=True,
    help="Comma-separated: json, pdf, sarif, junit, csv, xlsx.",
)
@click.option(
    "--remediation-plan",
    "remediation_plan",
    type=click.Path(dir_okay=False),
    help="YAML plan: owner, management response and due date per finding (matched like waivers).",
)
@click.option(
    "--archive",
    help="Archive folder or s3://BUCKET/PREFIX (Object Lock): each profile's reports and the evidence become its next "
    "write-once, hash-chained, signed entry.",
)
@click.option(
    "--sign-key",
    type=click.Path(dir_okay=False),
    help="Private key signing archive manifests (default: $AUDITOR_SIGN_KEY).",
)
@click.option(
    "--sign-keyless",
    is_flag=True,
    help="Sign archive manifests with Sigstore keyless (CI: the job's OIDC identity; $SIGSTORE_IDENTITY_TOKEN).",
)
@click.option(
    "--sigstore-trust-config",
    type=click.Path(dir_okay=False),
    help="ClientTrustConfig JSON naming a private Sigstore instance for --sign-keyless (default: public-good).",
)
def audit(
    sources: SourceSpec,
    as_of: str | None,
    profile_specs: tuple[str, ...],
    fail_on: str | None,
    out: str,
    formats: str,
    remediation_plan: str | None,
    archive: str | None,
    sign_key: str | None,
    sign_keyless: bool,
    sigstore_trust_config: str | None,
) -> None:
    """Assess sources under one or more jurisdiction profiles and write reports."""
    spec = _archive_spec(archive, sign_key, sign_keyless, sigstore_trust_config)
    _assess_and_exit(
        sources, as_of, profile_specs, fail_on, out, formats, remediation_plan=remediation_plan, archive=spec
    )


def _assess_and_exit(
    sources: SourceSpec,
    as_of: str | None,
    profile_specs: Sequence[str],
    fail_on: str | None,
    out: str | None,
    formats: str,
    mode: str = "audit",
    remediation_plan: str | None = None,
    archive: ArchiveSpec | None = None,
) -> NoReturn:
    """What `audit` and `gate` share: gather evidence, assess under each profile, exit with the verdict."""
    when = _parse_as_of(as_of)
    plan = _load_plan(remediation_plan) if remediation_plan else None
    wants_profiles = sources.registry is not None or sources.git is not None
    loaded = [profiles_mod.load(p) for p in profile_specs] if wants_profiles else []
    ev = gather_evidence(sources, as_of=when, profiles=loaded)
    code = write_reports(
        ev,
        profile_specs,
        Path(out) if out else None,
        _parse_formats(formats),
        as_of=when,
        fail_on=Severity(fail_on) if fail_on else None,
        mode=mode,
        remediation_plan=plan,
        archive=archive,
    )
    sys.exit(code)


def _load_plan(path: str) -> RemediationPlan:
    from auditor.remediation import load

    return load(path, check_ids=[c.meta.id for c in all_checks()])


@cli.command()
@_source_options
@click.option("--out", type=click.Path(), required=True, help="Where to write the evidence snapshot (JSON).")
def collect(sources: SourceSpec, as_of: str | None, out: str) -> None:
    """Collect an evidence snapshot only (canonical JSON with its sha256 digest)."""
    when = _parse_as_of(as_of)
    ev = gather_evidence(sources, as_of=when)
    try:
        with terminal.progress(f"writing {out}"):
            evidence_mod.save(ev, Path(out))
    except OSError as exc:
        raise _io_failure(Path(out), exc, "the evidence snapshot") from None
    click.echo(f"{out}: {len(ev.objects)} objects, {len(ev.gaps)} coverage gaps, {ev.digest}")


@cli.command()
@_source_options
@_profile_options
@click.option("--out", type=click.Path(), help="Optional directory for reports (e.g. --format sarif,junit for CI).")
@click.option(
    "--format", "formats", default="sarif,junit", show_default=True, help="Formats written when --out is given."
)
def gate(
    sources: SourceSpec,
    as_of: str | None,
    profile_specs: tuple[str, ...],
    fail_on: str | None,
    out: str | None,
    formats: str,
) -> None:
    """CI release gate: one verdict line per profile and the exit code (0 pass, 1 blocked, 3 incomplete)."""
    _assess_and_exit(sources, as_of, profile_specs, fail_on, out, formats, "gate")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def checks(fmt: str) -> None:
    """The check catalog."""
    catalog = [c.meta.to_json() for c in all_checks()]
    if fmt == "json":
        click.echo(json.dumps(catalog, indent=2))
    elif fmt == "markdown":
        from auditor.catalog_doc import catalog_markdown

        click.echo(catalog_markdown(), nl=False)
    else:
        for c in catalog:
            click.echo(f"{c['id']:<32} {c['severity']:<8} {', '.join(c['items']):<32} {c['title']}")


def _complete_shipped_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [pid for pid in profiles_mod.shipped_ids() if pid.startswith(incomplete)]


@cli.group(name="profiles", invoke_without_command=True)
@click.pass_context
def profiles_cmd(ctx: click.Context) -> None:
    """Shipped jurisdiction profiles (`profiles show ID` prints one as shipped)."""
    if ctx.invoked_subcommand is not None:
        return
    for pid in profiles_mod.shipped_ids():
        p = profiles_mod.load(pid)
        click.echo(f"{p.id:<10} {p.version:<12} {p.title}")


@profiles_cmd.command(name="show")
@click.argument("profile_id", metavar="ID", shell_complete=_complete_shipped_ids)
def profiles_show(profile_id: str) -> None:
    """Print a shipped profile's YAML, byte for byte as shipped (a starting point for your own file)."""
    shipped = profiles_mod.shipped_ids()
    if profile_id not in shipped:
        raise InputError(f"{profile_id}: no shipped profile has this id (shipped: {', '.join(shipped)})")
    text = resources.files("auditor").joinpath(f"data/profiles/{profile_id}.yaml").read_text("utf-8")
    click.echo(text, nl=False)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--path", "show_path", is_flag=True, help="Print where the shipped checklist (CHECKLIST.md) is.")
def checklist(fmt: str, show_path: bool) -> None:
    """The release checklist: every item with its section, phase, evidence kind and the checks covering it."""
    from auditor.checklist import CHECKLIST_VERSION, ITEMS

    shipped = resources.files("auditor").joinpath("data/CHECKLIST.md")
    if show_path:
        click.echo(str(shipped))
        return
    covering: dict[str, list[str]] = {item.key: [] for item in ITEMS}
    for check in all_checks():
        for key in check.meta.items:
            covering.setdefault(key, []).append(check.meta.id)
    rows = [
        {
            "key": item.key,
            "section": item.section,
            "title": item.title,
            "phase": item.phase,
            "evidence": item.evidence.value,
            "checks": covering[item.key],
        }
        for item in ITEMS
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "markdown":
        click.echo(f"# Release checklist {CHECKLIST_VERSION}: {len(rows)} items\n")
        click.echo("| key | section | title | phase | evidence | checks |\n|---|---|---|---|---|---|")
        for r in rows:
            checks_cell = ", ".join(f"`{c}`" for c in r["checks"]) or "(none yet)"
            click.echo(
                f"| `{r['key']}` | {r['section']} | {r['title']} | {r['phase']} | {r['evidence']} | {checks_cell} |"
            )
    else:
        section = None
        for r in rows:
            if r["section"] != section:
                section = r["section"]
                click.echo(("" if r is rows[0] else "\n") + f"{section}")
            checks_cell = ", ".join(r["checks"]) or "-"
            click.echo(f"  {r['key']:<30} {r['phase']:<8} {r['evidence']:<14} {checks_cell:<32} {r['title']}")
        click.echo(f"\n{len(rows)} items, checklist {CHECKLIST_VERSION}; the full text: {shipped}")


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    In ~/.bashrc: eval "$(auditor completion bash)"; zsh: source <(auditor completion zsh);
    fish: auditor completion fish | source.
    """
    from click.shell_completion import get_completion_class

    completion_class = get_completion_class(shell)
    assert completion_class is not None  # the choice lists only shells click supports
    click.echo(completion_class(cli, {}, "auditor", COMPLETE_VAR).source())


@cli.command()
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False, exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff(old: str, new: str, fmt: str) -> None:
    """What changed between two reports: new, resolved and still-failing findings.

    When OLD does not exist yet (the first nightly run), NEW becomes the baseline and the exit code is 0.
    """
    from auditor.diff import baseline_result, diff_reports, load_report

    new_report = load_report(Path(new))
    if not Path(old).exists():
        result = baseline_result(new_report, old_path=old)
    else:
        result = diff_reports(load_report(Path(old)), new_report)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    elif result.get("baseline"):
        click.echo(f"no previous report at {old}: this run is the baseline, nothing counts as new")
        click.echo(f"baseline: {len(result['failing'])} failing findings in {new}")
        for f in result["failing"][:50]:
            click.echo(f"  {f['check']}  {f['subject']}  {f['message']}")
    else:
        for key in ("new", "resolved", "still_failing"):
            click.echo(f"{key.replace('_', ' ')}: {len(result[key])}")
            for f in result[key][:50]:
                click.echo(f"  {f['check']}  {f['subject']}  {f['message']}")
        for change in result["items_changed"]:
            click.echo(f"item {change['key']}: {change['old']} -> {change['new']}")
    sys.exit(EXIT_BLOCKING if result["new"] else EXIT_OK)


@cli.command()
@click.option("--out", type=click.Path(), required=True, help="Output directory for the demo reports.")
@click.option("--format", "formats", default="json,pdf", show_default=True)
@click.option(
    "--as-of",
    "as_of",
    default=DEMO_AS_OF,
    show_default=True,
    help="Run time (ISO 8601); default the time the demo platform's state (backups, drills) was recorded.",
)
def demo(out: str, formats: str, as_of: str | None) -> None:
    """Full run on the bundled demo platform (GB, Malta, Ontario), no cluster needed."""
    root = resources.files("auditor_demo")
    out_dir = Path(out).resolve()
    with resources.as_file(root) as demo_root:
        when = _parse_as_of(as_of)
        # Paths relative to the demo folder, so reports do not depend on where the package is installed.
        os.chdir(demo_root)
        ev = gather_evidence(SourceSpec(manifests=("manifests",), drills=("drills",)), as_of=when)
        # The demo's registry evidence was recorded from scripts/testenv's registry (scripts/record_demo_registry.py):
        # the demo images, really signed and attested with cosign, as the registry source verified them.
        recorded = json.loads(Path("registry.json").read_text("utf-8"))
        record = SourceRecord(type="registry", target="recorded: registry.json (scripts/record_demo_registry.py)")
        ev = evidence_mod.with_registry(ev, recorded["images"], recorded["trust"], (), record)
        specs = [f"profiles/{p}.yaml" for p in ("ukgc", "mga", "agco-on")]
        plan = _load_plan("profiles/remediation-plan.yaml")
        code = write_reports(
            ev, specs, out_dir, _parse_formats(formats), as_of=when, fail_on=None, remediation_plan=plan
        )
    click.echo(f"demo reports written under {out}/ (gate verdict would exit {code}; the demo itself exits 0)")


@cli.command()
@click.argument("archive_path", metavar="ARCHIVE")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def trend(archive_path: str, fmt: str) -> None:
    """Each checklist section's pass rate per archived run, and time to remediate, per profile."""
    from auditor import archive as archive_mod
    from auditor import trend as trend_mod

    store = archive_mod.open_store(archive_path)
    if not store.exists():
        raise InputError(f"{archive_path}: no such archive")
    data = trend_mod.trend(store)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        for line in trend_mod.render_text(data) or [f"{archive_path}: no archived reports"]:
            click.echo(line)


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for the key pair.")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["ed25519", "ecdsa-p256"]),
    default="ed25519",
    show_default=True,
    help="Key type.",
)
def keygen(out: str, kind: str) -> None:
    """Make a signing key pair for unattended archives (auditor-signing.key, mode 0600, and .pub)."""
    from auditor import archive as archive_mod

    key, pub = archive_mod.keygen(Path(out), kind)
    click.echo(f"wrote {key} (keep it secret: it signs the archive) and {pub} (give it to whoever verifies)")


@cli.command()
@click.argument("archive_path", metavar="ARCHIVE|ENTRY")
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Public key the archive's manifests must be signed with. Repeatable (key rotation).",
)
@click.option(
    "--certificate-identity",
    "identities",
    multiple=True,
    help="Keyless-signed entries: the signer identity (certificate SAN: CI workflow URI or e-mail). Repeatable.",
)
@click.option("--certificate-oidc-issuer", "issuer", help="Keyless: the identity's OIDC issuer must be this one.")
@click.option(
    "--trusted-root",
    type=click.Path(dir_okay=False),
    help="Keyless: Sigstore trusted root or ClientTrustConfig (default: the public-good root, offline).",
)
def verify(
    archive_path: str,
    public_keys: tuple[str, ...],
    identities: tuple[str, ...],
    issuer: str | None,
    trusted_root: str | None,
) -> None:
    """Verify an archive (every file's digest, every profile's hash chain, every manifest's signature), or one
    entry (ARCHIVE/<profile>/<sequence>, or a report file inside one: its digests and signature)."""
    from auditor import archive as archive_mod

    if not public_keys and not identities:
        raise InputError(
            "verify needs --public-key FILE or --certificate-identity ID: what must the entries be signed by?"
        )
    keys = [archive_mod.load_verify_key(Path(k)) for k in public_keys]
    who = [archive_mod.Identity(i, issuer) for i in identities]
    root = Path(trusted_root) if trusted_root else None
    entry = archive_mod.entry_folder(archive_path)
    with terminal.progress(f"verifying {archive_path}"):
        if entry is not None:
            result = archive_mod.verify_entry(entry, keys, who, root)
        else:
            result = archive_mod.verify(archive_mod.open_store(archive_path), keys, who, root)
    what = (
        "entry: its digests and signature" if entry is not None else "entries, every digest, chain link and signature"
    )
    if result.ok:
        click.echo(f"{archive_path}: OK - {result.entries} {what} verified")
        if entry is not None:
            click.echo("  (its place in the chain is checked by verifying the whole archive)")
        sys.exit(EXIT_OK)
    for problem in result.problems:
        click.echo(f"INTEGRITY {problem}")
    click.echo(f"{archive_path}: FAILED - {len(result.problems)} problem(s) in {result.entries} entries")
    sys.exit(EXIT_BLOCKING)


def _with_output_params(group: click.Group) -> None:
    """-q/-v/--log-format/--no-color after any command name too (`auditor gate -q ...`), wired in one place."""
    for command in group.commands.values():
        command.params.extend(_output_params())
        if isinstance(command, click.Group):
            _with_output_params(command)


_with_output_params(cli)


def main() -> NoReturn:
    terminal.configure()
    try:
        cli.main(prog_name="auditor", complete_var=COMPLETE_VAR, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        if terminal.settings.log_format is terminal.LogFormat.JSON:
            terminal.error(exc.format_message(), kind="usage")
        else:
            exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        terminal.error("aborted")
        sys.exit(2)
    except AuditorError as exc:
        terminal.error(exc.diagnostics(), kind=type(exc).__name__)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)
