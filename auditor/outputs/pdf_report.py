"""report.pdf: the document a compliance officer hands to a regulator.

Rendered from the same report model as report.json (Jinja2 template in
``report_templates/``, WeasyPrint). It summarizes: findings are grouped by check
and namespace with a few examples each, and long lists are cut with a pointer to
report.json, so the page count stays bounded however large the platform.
"""

from __future__ import annotations

from collections import defaultdict
from importlib import resources
from typing import Any

import jinja2

from auditor.checklist import ITEMS_BY_KEY, SECTIONS
from auditor.outputs.interface import Output

MAX_GROUPS = 120
EXAMPLES_PER_GROUP = 4
MAX_GAPS = 60
_STATUS_ORDER = ("pass", "fail", "waived", "not_assessed", "not_applicable")
_COLORS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "waived": "#ef6c00",
    "not_assessed": "#757575",
    "not_applicable": "#b0bec5",
}
_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def _subject_label(subject: dict[str, Any]) -> str:
    if "image" in subject:
        return str(subject["image"])
    if "repo" in subject:
        return f"{subject['repo']}@{subject['ref']}"
    return f"{subject.get('kind')} {subject.get('name')}"


def _chart(sections: list[dict[str, Any]]) -> dict[str, Any]:
    """Geometry of a horizontal stacked bar per checklist section (drawn as inline SVG)."""
    width, label_w, bar_h, gap = 640, 210, 18, 8
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
        rows.append(
            {"y": i * (bar_h + gap), "label": s["section"], "segs": segs, "total": sum(s[k] for k in _STATUS_ORDER)}
        )
    return {
        "width": width,
        "height": len(sections) * (bar_h + gap) + 4,
        "bar_h": bar_h,
        "rows": rows,
        "label_w": label_w,
    }


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
            key, {"check": f["check"], "namespace": ns, "severity": f["severity"], "count": 0, "examples": []}
        )
        g["count"] += 1
        if len(g["examples"]) < EXAMPLES_PER_GROUP:
            g["examples"].append(
                {"subject": _subject_label(f["subject"]), "message": f["message"], "location": f.get("location")}
            )
    ordered = sorted(groups.values(), key=lambda g: (_SEVERITY_RANK[g["severity"]], g["check"], g["namespace"]))
    titles = {c["id"]: c["title"] for c in report["checks"]}
    not_assessed = [i for i in report["items"] if i["status"] == "not_assessed"]
    return {
        "r": report,
        "json_sha256": json_sha256,
        "sections": [(s, items_by_section.get(s, [])) for s in SECTIONS if items_by_section.get(s)],
        "chart": _chart(report["summary"]["sections"]),
        "colors": _COLORS,
        "status_order": _STATUS_ORDER,
        "blocking": [i for i in report["items"] if i["blocking"]],
        "groups": ordered[:MAX_GROUPS],
        "groups_omitted": max(0, len(ordered) - MAX_GROUPS),
        "failing_total": sum(g["count"] for g in ordered),
        "check_titles": titles,
        "not_assessed": not_assessed,
        "waived_findings": [f for f in report["findings"] if f["status"] == "waived"][:50],
        "gaps": report["coverage"][:MAX_GAPS],
        "gaps_omitted": max(0, len(report["coverage"]) - MAX_GAPS),
        "unconfirmed_controls": sum(1 for i in report["items"] for c in i["controls"] if c["status"] != "confirmed"),
    }


def render_html(report: dict[str, Any], json_sha256: str) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("auditor_report_templates", "."),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    css = resources.files("auditor_report_templates").joinpath("report.css").read_text("utf-8")
    return env.get_template("report.html.j2").render(css=css, **view_model(report, json_sha256))


class PdfOutput(Output):
    filename = "report.pdf"

    def render(self, report: dict[str, Any], *, json_sha256: str) -> bytes:
        try:
            import weasyprint
        except (ImportError, OSError) as exc:  # OSError: pango/harfbuzz system libraries missing
            from auditor.errors import AuditorError

            raise AuditorError(
                f"PDF output needs WeasyPrint and its system libraries (pip install 'auditor[pdf]'; "
                f"apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0): {exc}"
            ) from None
        html = render_html(report, json_sha256)
        pdf: bytes = weasyprint.HTML(string=html).write_pdf()
        return pdf
