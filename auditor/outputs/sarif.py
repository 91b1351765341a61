"""report.sarif: SARIF 2.1.0 for code-scanning UIs (GitHub, GitLab, Azure DevOps).

Every result carries a location, because GitHub code scanning drops results without one:
the subject's file and line; for a namespace-level finding without one (a namespace that
has no Namespace manifest in the inputs), the first input file, marked as approximate.
Every result also names its Kubernetes subject as a logical location.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from auditor.outputs.interface import Output

LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
"""SARIF result level per severity."""

SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
"""GitHub code scanning's ``security-severity`` score per severity (it reads >= 9.0 as critical,
7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low). A string, as GitHub's documentation shows it."""


def _uri(file: str) -> dict[str, str]:
    """An artifactLocation: absolute paths as file:// URIs, relative ones against the checkout (%SRCROOT%)."""
    path = PurePosixPath(file)
    if path.is_absolute():
        return {"uri": "file://" + quote(str(path))}
    return {"uri": quote(str(path)), "uriBaseId": "%SRCROOT%"}


def _physical(file: str, line: int | None) -> dict[str, Any]:
    return {"physicalLocation": {"artifactLocation": _uri(file), "region": {"startLine": max(1, line or 1)}}}


def _logical(subject: Mapping[str, Any]) -> dict[str, str]:
    if subject.get("image"):
        return {"name": str(subject["image"]), "kind": "resource", "fullyQualifiedName": str(subject["image"])}
    if subject.get("repo"):
        name = f"{subject['repo']}@{subject.get('ref')}"
        return {"name": name, "kind": "resource", "fullyQualifiedName": name}
    kind, name, ns = subject.get("kind"), str(subject.get("name")), subject.get("namespace")
    if kind == "Namespace":
        return {"name": name, "kind": "namespace", "fullyQualifiedName": f"namespace/{name}"}
    qualified = f"{ns}/{kind}/{name}" if ns else f"{kind}/{name}"
    return {"name": name, "kind": "resource", "fullyQualifiedName": qualified}


def _label(subject: Mapping[str, Any]) -> str:
    if subject.get("image"):
        return str(subject["image"])
    if subject.get("repo"):
        return f"{subject['repo']}@{subject.get('ref')}"
    if subject.get("kind") == "Namespace":
        return f"Namespace {subject.get('name')}"
    return f"{subject.get('kind')} {subject.get('namespace') or ''}/{subject.get('name')}"


def _fallback_file(report: Mapping[str, Any]) -> str:
    """The first input file: the first located file in input order (sorted, as sources read them), else the source."""
    files = sorted({f["location"]["file"] for f in report["findings"] if f.get("location")})
    if files:
        return str(files[0])
    sources = report["report"]["evidence"].get("sources") or []
    return str(sources[0]["target"]) if sources else "auditor-evidence"


def _namespace_locations(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Where each Namespace object is declared, as far as the findings show it."""
    out: dict[str, Mapping[str, Any]] = {}
    for f in report["findings"]:
        subject = f["subject"]
        if subject.get("kind") == "Namespace" and f.get("location"):
            out.setdefault(str(subject.get("name")), f["location"])
    return out


def _fingerprint(check: str, subject: Mapping[str, Any]) -> str:
    """Stable across runs when lines move, so code scanning keeps tracking the same alert."""
    key = json.dumps([check, dict(subject)], sort_keys=True)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class SarifOutput(Output):
    filename = "report.sarif"

    def render(self, report: dict[str, Any], *, json_sha256: str, evidence: bytes | None = None) -> bytes:
        rules = [
            {
                "id": c["id"],
                "name": c["id"],
                "shortDescription": {"text": c["title"]},
                "fullDescription": {"text": c["rationale"]},
                "help": {"text": c["remediation"]},
                "defaultConfiguration": {"level": LEVEL[c["severity"]]},
                "properties": {
                    "tags": ["security", "kubernetes", *c["items"]],
                    "references": c["references"],
                    "security-severity": SECURITY_SEVERITY[c["severity"]],
                },
            }
            for c in report["checks"]
        ]
        index = {r["id"]: i for i, r in enumerate(rules)}
        namespaces = _namespace_locations(report)
        fallback = _fallback_file(report)
        blocking = {i["key"] for i in report["items"] if i.get("blocking")}
        results = []
        for f in report["findings"]:
            if f["status"] not in ("fail", "waived"):
                continue
            subject = f["subject"]
            properties: dict[str, Any] = {
                "items": f["items"],
                # whether the finding holds the verdict (its item blocks), as the JSON report's items say
                "blocking": f["status"] == "fail" and any(k in blocking for k in f["items"]),
                "facets": f["facets"],
                "severity": f["severity"],
                "security-severity": SECURITY_SEVERITY[f["severity"]],
            }
            loc = f.get("location") or namespaces.get(str(subject.get("namespace") or ""))
            if loc:
                physical = _physical(str(loc["file"]), loc.get("line"))
            else:
                physical = _physical(fallback, 1)
                properties["locationApproximate"] = "the subject has no file location; first input file shown"
            result: dict[str, Any] = {
                "ruleId": f["check"],
                "ruleIndex": index[f["check"]],
                "level": LEVEL[f["severity"]],
                "message": {"text": f"{_label(subject)}: {f['message']}"},
                "locations": [{**physical, "logicalLocations": [_logical(subject)]}],
                "partialFingerprints": {"auditorSubject/v1": _fingerprint(f["check"], subject)},
                "properties": properties,
            }
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
                        "driver": {
                            "name": "auditor",
                            "version": report["report"]["tool"]["version"],
                            "rules": rules,
                        }
                    },
                    "automationDetails": {
                        "id": f"auditor/{report['report']['profile']['id']}/{report['report']['id']}"
                    },
                    "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the directory auditor ran in"}}},
                    "properties": {"verdict": report["summary"]["verdict"], "reportJsonSha256": json_sha256},
                    "results": results,
                }
            ],
        }
        return json.dumps(sarif, indent=2, sort_keys=True).encode("utf-8") + b"\n"
