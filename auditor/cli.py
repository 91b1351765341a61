"""Command line: the contract that tests, CI and users rely on (shared/DESIGN.md).

Exit codes: 0 nothing blocking; 1 blocking findings; 2 usage or input error;
3 evidence incomplete for a blocking item. Every AuditorError is caught here, in
one place, and printed as one message.
"""

from __future__ import annotations

import datetime as dt
import enum
import gc
import json
import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, assert_never

import click

from auditor import __version__
from auditor import evidence as evidence_mod
from auditor import profiles as profiles_mod
from auditor.assessment import EXIT_BLOCKING, EXIT_INCOMPLETE, EXIT_OK, assess
from auditor.catalog import all_checks
from auditor.errors import AuditorError, InputError
from auditor.models import EvidenceSet, Severity
from auditor.outputs.interface import Output
from auditor.outputs.json_report import render_json
from auditor.sources.interface import Collected
from auditor.sources.manifests import ManifestSource


class Format(enum.StrEnum):
    JSON = "json"
    PDF = "pdf"
    SARIF = "sarif"
    JUNIT = "junit"


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


def _warn(msg: str) -> None:
    click.echo(f"auditor: {msg}", err=True)


def gather_evidence(
    manifests: Sequence[str], evidence_file: str | None, *, as_of: str, max_file_mib: int, default_namespace: str
) -> EvidenceSet:
    """Run the sources (or load a snapshot) and report coverage gaps on stderr."""
    if evidence_file and manifests:
        raise InputError("give either --evidence or sources (--manifests), not both")
    if evidence_file:
        ev = evidence_mod.load(Path(evidence_file))
    elif manifests:
        source = ManifestSource(manifests, default_namespace=default_namespace, max_bytes=max_file_mib * 1024 * 1024)
        collected: list[Collected] = [source.collect()]
        ev = evidence_mod.build(collected, collected_at=as_of)
    else:
        raise InputError("no sources: give --manifests PATH (repeatable, '-' for stdin) or --evidence FILE")
    for gap in ev.gaps[:20]:
        _warn(f"{gap.target}: {gap.reason}")
    if len(ev.gaps) > 20:
        _warn(f"... and {len(ev.gaps) - 20} more coverage gaps (see the report's coverage section)")
    if not ev.objects:
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
) -> int:
    """Assess under each profile, write DIR/<profile-id>/report.*, print one verdict line each."""
    loaded = [profiles_mod.load(p) for p in profile_specs]
    ids = [p.id for p in loaded]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise InputError(f"two profiles share the id {', '.join(sorted(dupes))}; reports would overwrite each other")
    checks = all_checks()
    codes = []
    for profile in loaded:
        report = assess(ev, profile, checks, as_of=as_of, fail_on=fail_on, mode=mode)
        summary = report["summary"]
        codes.append(summary["exit_code"])
        written = []
        if out is not None and formats:
            target = out / profile.id
            target.mkdir(parents=True, exist_ok=True)
            json_bytes = render_json(report)
            json_sha = evidence_mod.sha256_hex(json_bytes)
            for fmt in formats:
                written.append(str(output_for(fmt).write(report, target, json_sha256=json_sha)))
        counts = summary["items"]
        click.echo(
            f"{profile.id}: {summary['verdict'].upper()} (exit {summary['exit_code']}) - items pass {counts['pass']}, "
            f"fail {counts['fail']}, waived {counts['waived']}, not assessed {counts['not_assessed']}, "
            f"n/a {counts['not_applicable']}" + (f" -> {', '.join(written)}" if written else "")
        )
    if EXIT_BLOCKING in codes:
        return EXIT_BLOCKING
    if EXIT_INCOMPLETE in codes:
        return EXIT_INCOMPLETE
    return EXIT_OK


# ---------------------------------------------------------------------- options


def _source_options(f: Any) -> Any:
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
        help="Manifest file or directory (recursive); '-' reads stdin. Repeatable.",
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditor")
def cli() -> None:
    """Release-checklist compliance auditor for Kubernetes platforms that move money."""


@cli.command()
@_source_options
@_profile_options
@click.option(
    "--out", type=click.Path(file_okay=False), required=True, help="Output directory; reports go to DIR/<profile-id>/."
)
@click.option(
    "--format", "formats", default="json,pdf", show_default=True, help="Comma-separated: json, pdf, sarif, junit."
)
def audit(
    manifests: tuple[str, ...],
    evidence_file: str | None,
    as_of: str | None,
    max_file_mib: int,
    default_namespace: str,
    profile_specs: tuple[str, ...],
    fail_on: str | None,
    out: str,
    formats: str,
) -> None:
    """Assess sources under one or more jurisdiction profiles and write reports."""
    _assess_and_exit(
        manifests, evidence_file, as_of, max_file_mib, default_namespace, profile_specs, fail_on, out, formats
    )


def _assess_and_exit(
    manifests: Sequence[str],
    evidence_file: str | None,
    as_of: str | None,
    max_file_mib: int,
    default_namespace: str,
    profile_specs: Sequence[str],
    fail_on: str | None,
    out: str | None,
    formats: str,
    mode: str = "audit",
) -> NoReturn:
    """What `audit` and `gate` share: gather evidence, assess under each profile, exit with the verdict."""
    when = _parse_as_of(as_of)
    ev = gather_evidence(
        manifests, evidence_file, as_of=when, max_file_mib=max_file_mib, default_namespace=default_namespace
    )
    code = write_reports(
        ev,
        profile_specs,
        Path(out) if out else None,
        _parse_formats(formats),
        as_of=when,
        fail_on=Severity(fail_on) if fail_on else None,
        mode=mode,
    )
    sys.exit(code)


@cli.command()
@_source_options
@click.option(
    "--out", type=click.Path(dir_okay=False), required=True, help="Where to write the evidence snapshot (JSON)."
)
def collect(
    manifests: tuple[str, ...],
    evidence_file: str | None,
    as_of: str | None,
    max_file_mib: int,
    default_namespace: str,
    out: str,
) -> None:
    """Collect an evidence snapshot only (canonical JSON with its sha256 digest)."""
    when = _parse_as_of(as_of)
    ev = gather_evidence(
        manifests, evidence_file, as_of=when, max_file_mib=max_file_mib, default_namespace=default_namespace
    )
    evidence_mod.save(ev, Path(out))
    click.echo(f"{out}: {len(ev.objects)} objects, {len(ev.gaps)} coverage gaps, {ev.digest}")


@cli.command()
@_source_options
@_profile_options
@click.option(
    "--out", type=click.Path(file_okay=False), help="Optional directory for reports (e.g. --format sarif,junit for CI)."
)
@click.option(
    "--format", "formats", default="sarif,junit", show_default=True, help="Formats written when --out is given."
)
def gate(
    manifests: tuple[str, ...],
    evidence_file: str | None,
    as_of: str | None,
    max_file_mib: int,
    default_namespace: str,
    profile_specs: tuple[str, ...],
    fail_on: str | None,
    out: str | None,
    formats: str,
) -> None:
    """CI release gate: one verdict line per profile and the exit code (0 pass, 1 blocked, 3 incomplete)."""
    _assess_and_exit(
        manifests, evidence_file, as_of, max_file_mib, default_namespace, profile_specs, fail_on, out, formats, "gate"
    )


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


@cli.command(name="profiles")
def profiles_cmd() -> None:
    """Shipped jurisdiction profiles."""
    for pid in profiles_mod.shipped_ids():
        p = profiles_mod.load(pid)
        click.echo(f"{p.id:<10} {p.version:<12} {p.title}")


@cli.command()
@click.argument("old", type=click.Path(dir_okay=False, exists=True))
@click.argument("new", type=click.Path(dir_okay=False, exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff(old: str, new: str, fmt: str) -> None:
    """What changed between two reports: new, resolved and still-failing findings."""
    from auditor.diff import diff_reports, load_report

    result = diff_reports(load_report(Path(old)), load_report(Path(new)))
    if fmt == "json":
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        for key in ("new", "resolved", "still_failing"):
            click.echo(f"{key.replace('_', ' ')}: {len(result[key])}")
            for f in result[key][:50]:
                click.echo(f"  {f['check']}  {f['subject']}  {f['message']}")
        for change in result["items_changed"]:
            click.echo(f"item {change['key']}: {change['old']} -> {change['new']}")
    sys.exit(EXIT_BLOCKING if result["new"] else EXIT_OK)


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output directory for the demo reports.")
@click.option("--format", "formats", default="json,pdf", show_default=True)
@click.option("--as-of", "as_of", help="Run time (ISO 8601); default now.")
def demo(out: str, formats: str, as_of: str | None) -> None:
    """Full run on the bundled demo platform (GB, Malta, Ontario), no cluster needed."""
    root = resources.files("auditor_demo")
    out_dir = Path(out).resolve()
    with resources.as_file(root) as demo_root:
        when = _parse_as_of(as_of)
        # Paths relative to the demo folder, so reports do not depend on where the package is installed.
        os.chdir(demo_root)
        ev = gather_evidence(["manifests"], None, as_of=when, max_file_mib=32, default_namespace="default")
        specs = [f"profiles/{p}.yaml" for p in ("ukgc", "mga", "agco-on")]
        code = write_reports(ev, specs, out_dir, _parse_formats(formats), as_of=when, fail_on=None)
    click.echo(f"demo reports written under {out}/ (gate verdict would exit {code}; the demo itself exits 0)")


def main() -> NoReturn:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        _warn("aborted")
        sys.exit(2)
    except AuditorError as exc:
        _warn(f"error: {exc.diagnostics()}")
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)
