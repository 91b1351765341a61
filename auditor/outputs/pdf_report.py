"""report.pdf: the document a compliance officer hands to a regulator.

Rendered from the same report model as report.json (Jinja2 template in
``report_templates/``, WeasyPrint). It summarizes: findings are grouped by check
and namespace with a few examples each, and long lists are cut with a pointer to
report.json, so the page count stays bounded however large the platform.
Everything it says is derived from the report (scope, methodology, limitations),
so it stays true when sources, sections or statuses are added.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from auditor.checklist import CHECKLIST_VERSION, ITEMS_BY_KEY, SECTIONS
from auditor.models import EvidenceKind
from auditor.outputs.interface import Output

MAX_GROUPS = 120
EXAMPLES_PER_GROUP = 4
MAX_GAPS = 60
MAX_WAIVED_LISTED = 50
_STATUS_ORDER = ("pass", "fail", "waived", "not_assessed", "not_applicable")
_COLORS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "waived": "#ef6c00",
    "not_assessed": "#757575",
    "not_applicable": "#b0bec5",
}
_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_GLOB = re.compile(r"[*?\[]")


def _ident(value: str) -> Markup:
    """An identifier that must not break across lines (ids, names with hyphens)."""
    return Markup('<span class="nobr">{}</span>').format(value)


STATUS_GLOSSARY = (
    ("pass", "Every in-scope subject the item's checks examined meets the requirement."),
    ("fail", "At least one in-scope subject does not meet the requirement, and no active waiver covers it."),
    ("waived", "Subjects fail, but every failure is covered by an active, approved waiver (see Waivers)."),
    (
        "not_applicable",
        "The checks found nothing in scope that the item applies to (for example, no workload of that kind).",
    ),
    (
        "not_assessed",
        "The evidence needed to judge the item was not collected or could not be read. The reason is given "
        "per item. Never counted as passing.",
    ),
    (
        "error",
        "A check failed to run on a subject. Recorded as a finding; the item counts as not assessed, never as passing.",
    ),
)
SEVERITY_GLOSSARY = (
    ("critical", "A failure can directly expose the platform, player funds or payment data."),
    ("high", "A serious control gap that an attacker or an outage can readily exploit."),
    ("medium", "Weakens defence in depth or resilience; to be fixed in the normal release cycle."),
    ("low", "Good practice with limited impact on its own."),
    ("info", "Recorded for information."),
)
CONTROL_STATUS_LEGEND = (
    ("confirmed", "the clause and its mapping are confirmed from a public primary source"),
    ("secondary", "known from a secondary source only"),
    ("unconfirmed", "not confirmed: the operator's compliance team must confirm it before relying on this report"),
)

# What each kind of evidence shows, and what a report without it cannot show.
_EVIDENCE_TEXT: dict[EvidenceKind, tuple[str, str]] = {
    EvidenceKind.K8S_OBJECTS: (
        "Kubernetes objects",
        "The declared configuration: workloads and their pod security settings, images, ServiceAccounts, RBAC, "
        "network policies, disruption budgets, autoscalers, priority classes, and references to Secrets and "
        "ConfigMaps (key names only, never values)",
    ),
    EvidenceKind.CLUSTER_STATE: (
        "Live cluster state",
        "What is actually running: admission policy reports, controller status, secret ages, service mesh mode",
    ),
    EvidenceKind.REGISTRY: (
        "Registry evidence",
        "Image signatures and their signers, SBOMs, vulnerability scans and multi-platform image indexes",
    ),
    EvidenceKind.GIT: (
        "Git release history",
        "Release provenance: signed tags, reviewed merges, the commit each release was built from, runbooks",
    ),
    EvidenceKind.DRILLS: (
        "Backup and drill records",
        "Backups taken, restore drills and disaster-recovery rehearsals actually performed",
    ),
    EvidenceKind.TELEMETRY: (
        "Telemetry configuration",
        "Tracing, alerting and monitoring as configured in the running platform",
    ),
}
_SOURCE_WORDS = {
    "manifests": "rendered manifests (declared configuration, as files: Helm or kustomize output, kubectl exports)",
    "cluster": "live clusters (observed configuration and controller status)",
    "registry": "the images' registries (signatures, SBOMs, scans)",
    "git": "the release's Git history",
    "drills": "restore-drill, DR-cutover and backup-run records",
}
_SIGNOFF_ROLES = (("prepared_by", "Prepared by"), ("reviewed_by", "Reviewed by"), ("approved_by", "Approved by"))


def _subject_label(subject: Mapping[str, Any]) -> str:
    if "image" in subject:
        return str(subject["image"])
    if "repo" in subject:
        return f"{subject['repo']}@{subject['ref']}"
    return f"{subject.get('kind')} {subject.get('name')}"


def _chart(sections: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Geometry of a horizontal stacked bar per checklist section (drawn as inline SVG)."""
    width, label_w, bar_h, gap = 640, 200, 16, 6
    most = max((sum(s[k] for k in _STATUS_ORDER) for s in sections), default=1) or 1
    rows = []
    for i, s in enumerate(sections):
        x = float(label_w)
        segs = []
        for k in _STATUS_ORDER:
            w = (width - label_w - 40) * s[k] / most
            if s[k]:
                segs.append({"x": x, "w": w, "color": _COLORS[k], "n": s[k]})
            x += w
        total = sum(s[k] for k in _STATUS_ORDER)
        rows.append({"y": i * (bar_h + gap), "label": s["section"], "segs": segs, "total": total, "end": x})
    return {
        "width": width,
        "height": len(sections) * (bar_h + gap) + 2,
        "bar_h": bar_h,
        "rows": rows,
        "label_w": label_w,
    }


def _trend_chart(trend: Mapping[str, Any]) -> dict[str, Any]:
    """Geometry of the trend page: the overall pass rate per archived run as a line (inline SVG), and one
    sparkline per checklist section. A run without a verdict on any item breaks the line rather than drop to 0."""
    runs = trend["runs"]
    width, height, left, bottom, top = 640, 170, 40, 22, 8
    plot_w, plot_h = width - left - 12, height - bottom - top
    step = plot_w / max(len(runs) - 1, 1)

    def y(rate: float) -> float:
        return top + plot_h * (1 - rate)

    def segments(rates: Sequence[float | None], xs: Sequence[float], ys: Any) -> list[str]:
        out: list[list[str]] = [[]]
        for x, r in zip(xs, rates, strict=True):
            if r is None:
                out.append([])
            else:
                out[-1].append(f"{x:.1f},{ys(r):.1f}")
        return [" ".join(seg) for seg in out if seg]

    xs = [left + i * step for i in range(len(runs))]
    overall = [r["pass_rate"] for r in runs]
    points = [{"x": x, "y": y(r), "rate": r} for x, r in zip(xs, overall, strict=True) if r is not None]
    labels = [
        {"x": xs[i], "text": "this" if runs[i]["sequence"] is None else f"#{runs[i]['sequence']}"}
        for i in sorted({0, len(runs) - 1, *range(0, len(runs), max(1, len(runs) // 6))})
    ]
    spark_w, spark_h = 160, 18
    spark_step = spark_w / max(len(runs) - 1, 1)
    sections = []
    for name in SECTIONS:
        rates = [r["sections"].get(name) for r in runs]
        if all(v is None for v in rates):
            continue
        known = [v for v in rates if v is not None]
        sections.append(
            {
                "name": name,
                "lines": segments(
                    rates, [i * spark_step for i in range(len(runs))], lambda v: 1 + (spark_h - 2) * (1 - v)
                ),
                "first": known[0],
                "last": rates[-1],
                "dot": None
                if rates[-1] is None
                else (spark_w if len(runs) > 1 else 0, 1 + (spark_h - 2) * (1 - rates[-1])),
            }
        )
    return {
        "width": width,
        "height": height,
        "left": left,
        "top": top,
        "plot_w": plot_w,
        "plot_h": plot_h,
        "grid": [{"y": y(v), "label": f"{v * 100:.0f}%"} for v in (0.0, 0.25, 0.5, 0.75, 1.0)],
        "lines": segments(overall, xs, y),
        "points": points,
        "labels": labels,
        "runs": runs,
        "sections": sections,
        "spark_w": spark_w,
        "spark_h": spark_h,
        "unreadable": trend.get("unreadable_entries", 0),
    }


def _words_list(values: Sequence[str]) -> Markup:
    idents = [_ident(v) for v in values]
    if len(idents) <= 2:
        return Markup(" and ").join(idents)
    return Markup(", ").join(idents[:-1]) + Markup(" and ") + idents[-1]


def scope_in_words(scope: Mapping[str, Any]) -> Markup:
    """The profile's namespace selector as a sentence (not JSON)."""
    selector = scope.get("selector", {})
    ns = selector.get("namespaces", {})
    parts = []
    if ns.get("all"):
        parts.append(Markup("all namespaces"))
    if ns.get("match_labels"):
        labels = _words_list([f"{k}={v}" for k, v in sorted(ns["match_labels"].items())])
        parts.append(Markup("namespaces labelled {}").format(labels))
    if ns.get("names"):
        parts.append(Markup("the namespace(s) {}").format(_words_list(sorted(ns["names"]))))
    text = Markup(" and ").join(parts) if parts else Markup("no namespace")
    if ns.get("exclude"):
        text += Markup(", except {}").format(_words_list(ns["exclude"]))
    included = "included" if scope.get("cluster_scoped") else "excluded"
    return Markup("{}{}; cluster-scoped objects (RBAC, priority classes) {}.").format(
        Markup(text[:1].upper()), Markup(text[1:]), included
    )


def covers_in_words(waiver: Mapping[str, Any]) -> Markup:
    """What a waiver (or plan entry) covers, as a sentence: check, kind, name and namespace."""
    if waiver.get("check") and waiver.get("item"):
        what = Markup("check {} (item {})").format(_ident(waiver["check"]), _ident(waiver["item"]))
    elif waiver.get("check"):
        what = Markup("check {}").format(_ident(waiver["check"]))
    else:
        what = Markup("every check of item {}").format(_ident(waiver.get("item", "")))
    subject = waiver.get("subject", {})

    def given(key: str) -> str | None:
        value = subject.get(key)
        return None if value in (None, "", "*") else str(value)

    kind, name, ns = given("kind"), given("name"), given("namespace")
    if kind is None and name is not None:
        target = Markup("any object")
        target += Markup(" named like {}" if _GLOB.search(name) else " named {}").format(_ident(name))
        name = None
    elif kind is None:
        target = Markup("any object")
    elif _GLOB.search(kind):
        target = Markup("objects of a kind matching {}").format(_ident(kind))
    else:
        target = _ident(kind)
    if name is not None:
        target += Markup(" named like {}" if _GLOB.search(name) else " {}").format(_ident(name))
    if ns is None:
        where = Markup("in any namespace")
    elif _GLOB.search(ns):
        where = Markup("in namespaces matching {}").format(_ident(ns))
    else:
        where = Markup("in namespace {}").format(_ident(ns))
    return Markup("{} for {} {}").format(what, target, where)


def methodology(report: Mapping[str, Any]) -> dict[str, Any]:
    """What was read, what it can show, and what this run's sources cannot show (derived from evidence kinds)."""
    rep = report["report"]
    present = set(rep["evidence"]["kinds"])
    order = {t: i for i, t in enumerate(_SOURCE_WORDS)}
    source_types = sorted({s["type"] for s in rep["evidence"]["sources"]}, key=lambda t: (order.get(t, 99), t))
    not_assessed_by_kind: dict[str, int] = defaultdict(int)
    for item in report["items"]:
        if item["status"] == "not_assessed" and item["key"] in ITEMS_BY_KEY:
            not_assessed_by_kind[ITEMS_BY_KEY[item["key"]].evidence.value] += 1
    read: list[dict[str, Any]] = []
    unread: list[dict[str, Any]] = []
    for kind, (label, shows) in _EVIDENCE_TEXT.items():
        row = {"kind": kind.value, "label": label, "shows": shows, "items": not_assessed_by_kind.get(kind.value, 0)}
        (read if kind.value in present else unread).append(row)
    observed = EvidenceKind.CLUSTER_STATE.value in present or EvidenceKind.TELEMETRY.value in present
    declared = EvidenceKind.K8S_OBJECTS.value in present and (not observed or "manifests" in source_types)
    if declared and observed:
        nature = "declared and observed configuration"
    elif observed:
        nature = "observed configuration (a running platform)"
    else:
        nature = "declared configuration (what the platform's manifests say it runs)"
    return {
        "nature": nature,
        "declared_only": declared and not observed,
        "sources": [_SOURCE_WORDS.get(t, t) for t in source_types],
        "read": read,
        "unread": unread,
    }


def _control_tables(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each distinct control once per section, with the items it applies to."""
    seen: dict[tuple[str, str, str, str], list[str]] = {}
    for item in items:
        for c in item["controls"]:
            key = (c["framework"], c["ref"], c["status"], c.get("note", ""))
            keys = seen.setdefault(key, [])
            if item["key"] not in keys:
                keys.append(item["key"])
    all_keys = [i["key"] for i in items]
    rows = []
    for (framework, ref, status, note), keys in seen.items():
        prefix, applies = "", _compress(keys, all_keys)
        if keys == all_keys and len(keys) > 1:
            applies = ["all items in this section"]
        elif len(all_keys) - len(keys) <= 2 < len(keys):
            prefix, applies = "all except", _compress([k for k in all_keys if k not in keys], all_keys)
        rows.append(
            {"framework": framework, "ref": ref, "status": status, "note": note, "prefix": prefix, "applies": applies}
        )
    return rows


def _compress(keys: Sequence[str], all_keys: Sequence[str]) -> list[str]:
    """Item keys, with every item of a prefix in the section written once as ``prefix.* (n)``."""
    out: list[str] = []
    done: set[str] = set()
    for key in keys:
        prefix = key.split(".", 1)[0]
        family = [k for k in all_keys if k.split(".", 1)[0] == prefix]
        missing = [k for k in family if k not in keys]
        if prefix in done:
            continue
        if len(family) > 1 and not missing:
            out.append(f"{prefix}.* ({len(family)})")
            done.add(prefix)
        elif len(family) >= 3 and len(missing) == 1:
            out.append(f"{prefix}.* except {missing[0]}")
            done.add(prefix)
        else:
            out.append(key)
    return out


def _signoff(signoff: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"label": label, **dict(signoff.get(key) or {})} for key, label in _SIGNOFF_ROLES]


def _metadata(report: Mapping[str, Any]) -> dict[str, str]:
    rep = report["report"]
    prepared = (rep.get("signoff") or {}).get("prepared_by") or {}
    tool = f"{rep['tool']['name']} {rep['tool']['version']}"
    return {
        "title": f"{rep['jurisdiction']['name']} release-readiness compliance report {rep['id']}",
        "author": prepared.get("name") or f"{tool} (automated assessment)",
        "description": (
            f"Automated assessment under profile {rep['profile']['id']} {rep['profile']['version']} "
            f"for {rep['jurisdiction']['regulator']}; verdict {report['summary']['verdict']}"
        ),
        "keywords": ", ".join(
            ["compliance", "release checklist", rep["jurisdiction"]["name"], rep["jurisdiction"]["regulator"]]
        ),
        "generator": tool,
        "created": rep["generated_at"],
    }


MAX_IMAGES = 200


def _image_rows(images: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The supply-chain table's rows, in words (report.json keeps the structured form)."""
    rows = []
    for i in images[:MAX_IMAGES]:
        verdicts = i.get("verdicts") or {}
        status = {k: str((v or {}).get("status", "not_assessed")) for k, v in verdicts.items()}.get
        signers = i.get("signers") or []
        trusted = [s for s in signers if s.get("trusted_as")]
        if trusted:
            signer = f"{trusted[0]['signer']} (trusted as {trusted[0]['trusted_as']})"
        elif signers:
            signer = f"{signers[0]['signer']}: not a trusted signer"
        else:
            signer = i.get("error") or "no verified signature"
        sbom = i.get("sbom")
        vulns = i.get("vulnerabilities")
        closed = i.get("closed") or []
        runs = i.get("runs_in") or []
        rows.append(
            {
                "name": i["image"].split("@", 1)[0],
                "digest": i.get("digest") or "(not resolved)",
                "runs": ", ".join(runs[:2]) + (f" and {len(runs) - 2} more" if len(runs) > 2 else ""),
                "signed_status": status("image.signed", "not_assessed"),
                "signer": signer,
                "sbom_status": status("image.sbom", "not_assessed"),
                "sbom": f"{sbom['format']}, {sbom['components']} components" if sbom else "none usable",
                "vuln_status": status("image.vulns-within-budget", "not_assessed"),
                "vulns": ", ".join(f"{n} {sev}" for sev, n in vulns.items() if n) or "none open"
                if vulns is not None
                else "no trusted scan",
                "closed": f"{len(closed)} closed by VEX or accepted risk" if closed else "",
                "arch_status": status("image.multi-arch", "not_assessed"),
                "platforms": ", ".join(i.get("platforms") or []) or "unknown",
            }
        )
    return rows


def view_model(report: dict[str, Any], json_sha256: str) -> dict[str, Any]:
    """Everything the template shows, precomputed and bounded."""
    items_by_section: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in report["items"]:
        items_by_section[ITEMS_BY_KEY[item["key"]].section].append(item)

    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for f in report["findings"]:
        if f["status"] not in ("fail", "error"):
            continue
        ns = f["subject"].get("namespace") or "(cluster-wide)"
        key = (f["check"], ns)
        g = groups.setdefault(
            key,
            {"check": f["check"], "namespace": ns, "severity": f["severity"], "count": 0, "planned": 0, "examples": []},
        )
        g["count"] += 1
        g["planned"] += "remediation_plan" in f
        if len(g["examples"]) < EXAMPLES_PER_GROUP:
            g["examples"].append(
                {
                    "subject": _subject_label(f["subject"]),
                    "message": f["message"],
                    "location": f.get("location"),
                    "plan": f.get("remediation_plan"),
                }
            )
    ordered = sorted(groups.values(), key=lambda g: (_SEVERITY_RANK[g["severity"]], g["check"], g["namespace"]))
    titles = {c["id"]: c["title"] for c in report["checks"]}
    rep = report["report"]
    waivers = report["waivers"]
    sources = rep["evidence"]["sources"]
    sections = [
        {"name": s, "items": items_by_section[s], "controls": _control_tables(items_by_section[s])}
        for s in SECTIONS
        if items_by_section.get(s)
    ]
    return {
        "r": report,
        "json_sha256": json_sha256,
        "meta": _metadata(report),
        "checklist_version": CHECKLIST_VERSION,
        "scope_words": scope_in_words(rep["scope"]),
        "method": methodology(report),
        "revisions": [s for s in sources if s.get("git_commit")][:6],
        "sections": sections,
        "chart": _chart(report["summary"]["sections"]),
        "trend": _trend_chart(report["trend"]) if report.get("trend") else None,
        "colors": _COLORS,
        "status_order": _STATUS_ORDER,
        "blocking_failures": [i for i in report["items"] if i["blocking"] and i["status"] == "fail"],
        "blocking_gaps": [i for i in report["items"] if i["blocking"] and i["status"] != "fail"],
        "groups": ordered[:MAX_GROUPS],
        "groups_omitted": max(0, len(ordered) - MAX_GROUPS),
        "failing_total": sum(g["count"] for g in ordered),
        "planned_total": sum(g["planned"] for g in ordered),
        "plan": rep.get("remediation_plan"),
        "check_titles": titles,
        "not_assessed": [i for i in report["items"] if i["status"] == "not_assessed"],
        "waived_findings": [f for f in report["findings"] if f["status"] == "waived"][:MAX_WAIVED_LISTED],
        "active_waivers": [{**w, "covers": covers_in_words(w)} for w in waivers["active"]],
        "expired_waivers": [{**w, "covers": covers_in_words(w)} for w in waivers["expired"]],
        "gaps": report["coverage"][:MAX_GAPS],
        "gaps_omitted": max(0, len(report["coverage"]) - MAX_GAPS),
        "unconfirmed_controls": sum(1 for i in report["items"] for c in i["controls"] if c["status"] != "confirmed"),
        "status_glossary": STATUS_GLOSSARY,
        "severity_glossary": SEVERITY_GLOSSARY,
        "control_legend": CONTROL_STATUS_LEGEND,
        "signoff": _signoff(rep.get("signoff") or {}),
        "images": _image_rows(report["images"]) if "images" in report else None,
        "images_omitted": max(0, len(report.get("images", ())) - MAX_IMAGES),
    }


def render_html(
    report: dict[str, Any],
    json_sha256: str,
    *,
    embedded: Sequence[Mapping[str, Any]] = (),
    evidence_withheld: bool = False,
) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("auditor_report_templates", "."),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    # Our own stylesheet, trusted: marked safe, or autoescaping turns its quotes into entities and the
    # browser-less renderer drops the rules (page numbers, fonts) that contain them.
    css = Markup(resources.files("auditor_report_templates").joinpath("report.css").read_text("utf-8"))
    return env.get_template("report.html.j2").render(
        css=css, embedded=embedded, evidence_withheld=evidence_withheld, **view_model(report, json_sha256)
    )


# Above this the evidence snapshot is not embedded (the report names its digest and where the archive keeps it):
# a PDF of hundreds of megabytes helps no reader. Embedded files are Flate-compressed like every other stream.
MAX_EMBEDDED_EVIDENCE = 64 * 1024 * 1024


def _timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def embedded_files(report: Mapping[str, Any], evidence: bytes | None) -> list[tuple[str, bytes, str, str]]:
    """What the PDF carries as PDF/A-3 associated files: (name, bytes, relationship, description).

    report.json is the PDF's Source (the document is rendered from it); the evidence snapshot is its Data."""
    from auditor.outputs.json_report import render_json

    files = [("report.json", render_json(dict(report)), "Source", "The machine-readable report this PDF renders")]
    if evidence is not None and len(evidence) <= MAX_EMBEDDED_EVIDENCE:
        files.append(("evidence.json", evidence, "Data", "The evidence snapshot the report was assessed from"))
    return files


class PdfOutput(Output):
    """PDF/A-3b: the report.json it renders and the evidence snapshot travel inside it as associated files,
    with fixed dates (the report's time), so the same inputs give the same bytes."""

    filename = "report.pdf"

    def render(self, report: dict[str, Any], *, json_sha256: str, evidence: bytes | None = None) -> bytes:
        try:
            import weasyprint
        except (ImportError, OSError) as exc:  # OSError: pango/harfbuzz system libraries missing
            from auditor.errors import AuditorError

            raise AuditorError(
                f"PDF output needs WeasyPrint and its system libraries (pip install 'auditor[pdf]'; "
                f"apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0): {exc}"
            ) from None
        when = _timestamp(report["report"]["generated_at"])
        files = embedded_files(report, evidence)
        attachments = [
            weasyprint.Attachment(
                string=data, name=name, description=desc, created=when, modified=when, relationship=rel
            )
            for name, data, rel, desc in files
        ]
        embedded = [{"name": n, "bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d, _, _ in files]
        withheld = evidence is not None and len(evidence) > MAX_EMBEDDED_EVIDENCE
        html = render_html(report, json_sha256, embedded=embedded, evidence_withheld=withheld)
        pdf: bytes = weasyprint.HTML(string=html).write_pdf(
            pdf_variant="pdf/a-3b", attachments=attachments, finisher=_unique_associated_files
        )
        return pdf


def _unique_associated_files(document: Any, pdf: Any) -> None:
    """WeasyPrint 70 lists each attachment twice in the catalog's /AF (once from the EmbeddedFiles name tree, once
    from the file specifications); a PDF/A-3 associated file belongs there once."""
    refs = pdf.catalog.get("AF")
    if refs is not None:
        unique = list(dict.fromkeys(refs))
        del refs[:]
        refs.extend(unique)
