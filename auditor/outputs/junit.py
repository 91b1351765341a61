"""report.junit.xml: one test case per checklist item, for CI test-report views."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from auditor.models import subject_text
from auditor.outputs.interface import Output


class JunitOutput(Output):
    filename = "report.junit.xml"

    def render(self, report: dict[str, Any], *, json_sha256: str, evidence: bytes | None = None) -> bytes:
        profile = report["report"]["profile"]["id"]
        items = report["items"]
        by_item: dict[str, list[dict[str, Any]]] = {}
        for f in report["findings"]:
            for key in f["items"]:
                by_item.setdefault(key, []).append(f)
        failures = sum(1 for i in items if i["status"] == "fail")
        skipped = sum(1 for i in items if i["status"] in ("not_assessed", "not_applicable"))
        suite = ET.Element(
            "testsuite",
            name=f"auditor.{profile}",
            tests=str(len(items)),
            failures=str(failures),
            errors="0",
            skipped=str(skipped),
            timestamp=report["report"]["generated_at"],
        )
        for item in items:
            case = ET.SubElement(suite, "testcase", classname=f"{profile}.{item['section']}", name=item["key"])
            if item["status"] == "fail":
                fails = [f for f in by_item.get(item["key"], []) if f["status"] == "fail"]
                text = "\n".join(f"{_label(f['subject'])}: {f['message']}" for f in fails[:200])
                el = ET.SubElement(
                    case,
                    "failure",
                    message=f"{len(fails)} failing subject(s), severity {item['severity']}",
                    type=item["severity"],
                )
                el.text = text
            elif item["status"] in ("not_assessed", "not_applicable"):
                ET.SubElement(case, "skipped", message=f"{item['status']}: {item.get('reason', '')}".strip(": "))
        suites = ET.Element("testsuites", name="auditor")
        suites.append(suite)
        ET.indent(suites)
        xml: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
        return xml + b"\n"


def _label(subject: dict[str, Any]) -> str:
    return subject_text(subject)
