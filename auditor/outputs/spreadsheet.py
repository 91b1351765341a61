"""Spreadsheets for compliance officers: ``report.csv`` (the findings) and ``report.xlsx`` (items, findings,
waivers and coverage as sheets), through pandas and openpyxl, imported only when these formats are asked for.

The columns are a contract (officers annotate findings in spreadsheets and merge them back by ``finding_id``):
they are listed here and in the README, and only ever added to at the end. ``finding_id`` is stable for the
same check, subject and message across runs; ``officer_notes`` is left empty for the officer.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from auditor.models import subject_text
from auditor.outputs.interface import Output

FINDING_COLUMNS = (
    "finding_id",
    "check",
    "items",
    "status",
    "severity",
    "subject",
    "namespace",
    "kind",
    "name",
    "image",
    "digest",
    "repo",
    "ref",
    "cluster",
    "file",
    "line",
    "message",
    "waiver",
    "waiver_expires",
    "plan_owner",
    "plan_due",
    "officer_notes",
)
ITEM_COLUMNS = ("key", "title", "section", "status", "severity", "blocking", "checks", "controls", "reason")
WAIVER_COLUMNS = ("state", "id", "check", "item", "subject", "reason", "approver", "ticket", "expires")
COVERAGE_COLUMNS = ("source", "target", "gap", "reason")


def finding_id(f: Mapping[str, Any]) -> str:
    seed = "\x00".join((str(f["check"]), subject_text(f["subject"]), str(f["message"])))
    return hashlib.sha256(seed.encode()).hexdigest()[:12]


def finding_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for f in report["findings"]:
        s, loc = f["subject"], f.get("location") or {}
        waiver, plan = f.get("waiver") or {}, f.get("remediation_plan") or {}
        rows.append(
            {
                "finding_id": finding_id(f),
                "check": f["check"],
                "items": ", ".join(f["items"]),
                "status": f["status"],
                "severity": f["severity"],
                "subject": subject_text(s),
                "namespace": s.get("namespace") or "",
                "kind": s.get("kind") or "",
                "name": s.get("name") or "",
                "image": s.get("image") or "",
                "digest": s.get("digest") or "",
                "repo": s.get("repo") or "",
                "ref": s.get("ref") or "",
                "cluster": s.get("cluster") or "",
                "file": loc.get("file") or "",
                "line": loc.get("line") or "",
                "message": f["message"],
                "waiver": waiver.get("id", ""),
                "waiver_expires": waiver.get("expires", ""),
                "plan_owner": plan.get("owner", ""),
                "plan_due": plan.get("due", ""),
                "officer_notes": "",
            }
        )
    return rows


def _item_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    from auditor.checklist import ITEMS_BY_KEY

    return [
        {
            "key": i["key"],
            "title": i.get("title", ""),
            "section": ITEMS_BY_KEY[i["key"]].section,
            "status": i["status"],
            "severity": i["severity"],
            "blocking": bool(i.get("blocking")),
            "checks": ", ".join(i.get("checks", [])),
            "controls": "; ".join(f"{c['framework']} {c['ref']} ({c['status']})" for c in i.get("controls", [])),
            "reason": i.get("reason", ""),
        }
        for i in report["items"]
    ]


def _waiver_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for state in ("active", "expired"):
        for w in report["waivers"][state]:
            rows.append(
                {
                    "state": state,
                    "id": w.get("id"),
                    "check": w.get("check") or "",
                    "item": w.get("item") or "",
                    "subject": ", ".join(f"{k}={v}" for k, v in sorted((w.get("subject") or {}).items())),
                    "reason": w.get("reason"),
                    "approver": w.get("approver"),
                    "ticket": w.get("ticket"),
                    "expires": w.get("expires"),
                }
            )
    return rows


def _frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Any:
    import pandas as pd

    return pd.DataFrame(list(rows), columns=list(columns))


class CsvOutput(Output):
    filename = "report.csv"

    def render(self, report: dict[str, Any], *, json_sha256: str, evidence: bytes | None = None) -> bytes:
        buf = io.StringIO()
        _frame(finding_rows(report), FINDING_COLUMNS).to_csv(buf, index=False, lineterminator="\n")
        return buf.getvalue().encode("utf-8")


class XlsxOutput(Output):
    filename = "report.xlsx"

    def render(self, report: dict[str, Any], *, json_sha256: str, evidence: bytes | None = None) -> bytes:
        import pandas as pd

        buf = io.BytesIO()
        with pd.ExcelWriter(buf, engine="openpyxl") as writer:
            sheets = (
                ("items", _item_rows(report), ITEM_COLUMNS),
                ("findings", finding_rows(report), FINDING_COLUMNS),
                ("waivers", _waiver_rows(report), WAIVER_COLUMNS),
                ("coverage", report["coverage"], COVERAGE_COLUMNS),
            )
            for name, rows, columns in sheets:
                _frame(rows, columns).to_excel(writer, sheet_name=name, index=False)
                writer.sheets[name].freeze_panes = "A2"
            book = writer.book
            # Deterministic bytes: the workbook's times are the report's, not the clock's.
            import datetime as dt

            when = dt.datetime.fromisoformat(str(report["report"]["generated_at"]).replace("Z", "+00:00")).replace(
                tzinfo=None
            )
            book.properties.created = when
            book.properties.modified = when
            book.properties.creator = "auditor"
        return _fixed_zip_times(buf.getvalue(), when.timetuple()[:6])


def _fixed_zip_times(data: bytes, when: tuple[int, ...]) -> bytes:
    """An xlsx is a zip whose entries carry the time they were written: rewrite them with the report's time,
    so the same report gives the same bytes on any day."""
    import zipfile

    out = io.BytesIO()
    stamp = (max(1980, when[0]), *when[1:6])
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)  # type: ignore[arg-type]
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time as "modified"
                stamp_text = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format(*stamp)
                content = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>" + stamp_text.encode() + rb"\g<2>",
                    content,
                )
            dst.writestr(fixed, content)
    return out.getvalue()
