"""report.sarif: SARIF 2.1.0 for code-scanning UIs (GitHub, GitLab, Azure DevOps)."""

from __future__ import annotations

import json
from typing import Any

from auditor.outputs.interface import Output

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}


class SarifOutput(Output):
    filename = "report.sarif"

    def render(self, report: dict[str, Any], *, json_sha256: str) -> bytes:
        rules = [
            {
                "id": c["id"],
                "name": c["id"],
                "shortDescription": {"text": c["title"]},
                "fullDescription": {"text": c["rationale"]},
                "help": {"text": c["remediation"]},
                "defaultConfiguration": {"level": _LEVEL[c["severity"]]},
                "properties": {"tags": c["items"], "references": c["references"]},
            }
            for c in report["checks"]
        ]
        index = {r["id"]: i for i, r in enumerate(rules)}
        results = []
        for f in report["findings"]:
            if f["status"] not in ("fail", "waived"):
                continue
            subject = f["subject"]
            label = (
                subject.get("image") or f"{subject.get('kind')} {subject.get('namespace') or ''}/{subject.get('name')}"
            )
            result: dict[str, Any] = {
                "ruleId": f["check"],
                "ruleIndex": index[f["check"]],
                "level": _LEVEL[f["severity"]],
                "message": {"text": f"{label}: {f['message']}"},
                "properties": {"items": f["items"], "facets": f["facets"]},
            }
            loc = f.get("location")
            if loc:
                region = {"startLine": loc["line"]} if loc.get("line") else {}
                result["locations"] = [
                    {"physicalLocation": {"artifactLocation": {"uri": loc["file"]}, "region": region}}
                ]
            if f.get("waiver"):
                w = f["waiver"]
                result["suppressions"] = [
                    {"kind": "external", "justification": f"waiver {w['id']} ({w['ticket']}), expires {w['expires']}"}
                ]
            results.append(result)
        sarif = {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {"name": "auditor", "version": report["report"]["tool"]["version"], "rules": rules}
                    },
                    "automationDetails": {
                        "id": f"auditor/{report['report']['profile']['id']}/{report['report']['id']}"
                    },
                    "properties": {"verdict": report["summary"]["verdict"], "reportJsonSha256": json_sha256},
                    "results": results,
                }
            ],
        }
        return json.dumps(sarif, indent=2, sort_keys=True).encode("utf-8") + b"\n"
