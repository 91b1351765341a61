"""SBOMs, vulnerability scans and VEX documents, read into small secret-free summaries.

- CycloneDX JSON: validated against its schema with cyclonedx-python-lib's strict JSON validator
  (the spec version the document declares); components counted (nested ones too); the
  ``vulnerabilities`` section read, and its ``analysis`` states taken as inline VEX.
- SPDX JSON (2.2, 2.3): structural checks (``spdxVersion``, ``SPDXID``, ``packages``); packages counted.
- Scan results: Trivy JSON (``Results[].Vulnerabilities``), Grype JSON (``matches``), and cosign's
  vuln attestation predicate, whose ``scanner.result`` holds one of those.
- VEX: OpenVEX documents and CycloneDX VEX (``vulnerabilities[].analysis``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.kube import as_list, as_mapping

CYCLONEDX_PREDICATES = frozenset(
    {
        "https://cyclonedx.org/bom",
        "https://cyclonedx.org/bom/v1.4",
        "https://cyclonedx.org/bom/v1.5",
        "https://cyclonedx.org/bom/v1.6",
    }
)
SPDX_PREDICATES = frozenset({"https://spdx.dev/Document", "https://spdx.dev/Document/v2.3"})
VULN_PREDICATES = frozenset({"https://cosign.sigstore.dev/attestation/vuln/v1"})
OPENVEX_PREFIX = "https://openvex.dev/ns"
SBOM_MEDIA_TYPES = {
    "application/vnd.cyclonedx+json": "cyclonedx",
    "application/vnd.cyclonedx": "cyclonedx",
    "application/spdx+json": "spdx",
    "text/spdx+json": "spdx",
    "application/vnd.spdx+json": "spdx",
}
VEX_MEDIA_TYPES = frozenset({"application/openvex+json", "application/vnd.openvex+json"})
SEVERITIES = ("critical", "high", "medium", "low", "unknown")
CLOSING_STATES = {"not_affected", "false_positive", "resolved", "fixed"}


@dataclass
class Vulnerability:
    id: str
    severity: str
    package: str = ""
    published: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"id": self.id, "severity": self.severity}
        if self.package:
            out["package"] = self.package
        if self.published:
            out["published"] = self.published
        return out


@dataclass
class Document:
    """What one SBOM, scan or VEX document says, as far as the checks need it."""

    kind: str
    """``sbom``, ``scan`` or ``vex``."""
    format: str
    """``cyclonedx``, ``spdx``, ``trivy``, ``grype``, ``cosign-vuln``, ``openvex``."""
    valid: bool = True
    problems: list[str] = field(default_factory=list)
    spec_version: str = ""
    components: int = 0
    describes: list[str] = field(default_factory=list)
    """Image digests the document itself names as its subject (CycloneDX metadata.component, SPDX purls)."""
    scanned: bool = False
    """It carries scan results (a ``vulnerabilities`` section, or a scanner's output): absence of findings means none."""
    scanner: str = ""
    scanned_at: str = ""
    vulnerabilities: list[Vulnerability] = field(default_factory=list)
    vex: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "format": self.format, "valid": self.valid}
        if self.problems:
            out["problems"] = self.problems[:5]
        if self.spec_version:
            out["spec_version"] = self.spec_version
        if self.kind == "sbom":
            out["components"] = self.components
        if self.describes:
            out["describes"] = sorted(set(self.describes))
        if self.scanned:
            out["scanned"] = True
            out["vulnerabilities"] = [
                v.to_json() for v in sorted(self.vulnerabilities, key=lambda v: (v.id, v.package))
            ]
        if self.scanner:
            out["scanner"] = self.scanner
        if self.scanned_at:
            out["scanned_at"] = self.scanned_at
        if self.vex:
            out["vex"] = sorted(self.vex, key=lambda s: (s["id"], s.get("status", "")))
        return out


def read_document(data: bytes, hint: str = "") -> Document:
    """Parse an SBOM, scan or VEX document of any supported format (``hint``: a media or predicate type)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return Document(
            "sbom", SBOM_MEDIA_TYPES.get(hint, "unknown"), valid=False, problems=[f"not JSON ({exc})"[:160]]
        )
    return read_parsed(doc, hint)


def read_parsed(doc: Any, hint: str = "") -> Document:
    if not isinstance(doc, dict):
        return Document("sbom", "unknown", valid=False, problems=["not a JSON object"])
    if hint in VULN_PREDICATES or ("scanner" in doc and "invocation" in doc):
        return _cosign_vuln(doc)
    if doc.get("bomFormat") == "CycloneDX" or hint in CYCLONEDX_PREDICATES or SBOM_MEDIA_TYPES.get(hint) == "cyclonedx":
        return _cyclonedx(doc)
    if (
        str(doc.get("spdxVersion", "")).startswith("SPDX-")
        or hint in SPDX_PREDICATES
        or SBOM_MEDIA_TYPES.get(hint) == "spdx"
    ):
        return _spdx(doc)
    if (
        str(doc.get("@context", "")).startswith(OPENVEX_PREFIX)
        or hint.startswith(OPENVEX_PREFIX)
        or hint in VEX_MEDIA_TYPES
    ):
        return _openvex(doc)
    if "Results" in doc and "SchemaVersion" in doc:
        return _trivy(doc)
    if "matches" in doc and isinstance(doc.get("matches"), list):
        return _grype(doc)
    return Document(
        "sbom", "unknown", valid=False, problems=["neither CycloneDX, SPDX, a Trivy or Grype scan, nor OpenVEX"]
    )


# ---------------------------------------------------------------------- CycloneDX


@functools.cache
def _cdx_validator(version: str) -> Any:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        schema = SchemaVersion.from_version(version)
    except (ValueError, KeyError):
        return None
    return JsonStrictValidator(schema)


def _cyclonedx(doc: Mapping[str, Any]) -> Document:
    version = str(doc.get("specVersion", ""))
    out = Document("sbom", "cyclonedx", spec_version=version)
    validator = _cdx_validator(version) if version else None
    if validator is None:
        out.valid = False
        out.problems.append(f"specVersion {version!r} is not a CycloneDX version this validator knows (1.0-1.7)")
    else:
        error = validator.validate_str(json.dumps(doc))
        if error is not None:
            out.valid = False
            out.problems.append(
                f"fails the CycloneDX {version} schema: {str(error.data.message if hasattr(error.data, 'message') else error)[:200]}"
            )
    out.components = sum(1 for _ in _walk_components(doc.get("components")))
    meta = as_mapping(doc.get("metadata"))
    comp = as_mapping(meta.get("component"))
    out.describes = [d for d in (_digest_of_component(comp),) if d]
    vulns = doc.get("vulnerabilities")
    if isinstance(vulns, list):
        out.scanned = True
        refs = _bom_refs(doc)
        for v in vulns:
            if not isinstance(v, dict) or not isinstance(v.get("id"), str):
                continue
            analysis = as_mapping(v.get("analysis"))
            state = str(analysis.get("state", ""))
            affects = [
                refs.get(str(a.get("ref")), str(a.get("ref", "")))
                for a in v.get("affects") or ()
                if isinstance(a, dict)
            ]
            if state in CLOSING_STATES or state == "not_affected":
                out.vex.append(
                    {
                        "id": v["id"],
                        "status": state,
                        "justification": str(analysis.get("justification", ""))[:120],
                        "source": "CycloneDX analysis",
                    }
                )
                continue
            out.vulnerabilities.append(
                Vulnerability(
                    id=v["id"],
                    severity=_cdx_severity(v.get("ratings")),
                    package=", ".join(affects)[:120],
                    published=str(v.get("published", ""))[:32],
                )
            )
    if out.vulnerabilities == [] and out.vex and out.components == 0:
        out.kind = "vex"
    return out


def _walk_components(components: Any) -> Iterator[Mapping[str, Any]]:
    for c in components if isinstance(components, list) else ():
        if isinstance(c, dict):
            yield c
            yield from _walk_components(c.get("components"))


def _bom_refs(doc: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for c in _walk_components(doc.get("components")):
        if isinstance(c.get("bom-ref"), str):
            out[c["bom-ref"]] = f"{c.get('name', '')}@{c.get('version', '')}".strip("@")
    return out


def _digest_of_component(comp: Mapping[str, Any]) -> str | None:
    """A container component names its image digest in its purl (pkg:oci/...@sha256%3A...) or its hashes."""
    purl = str(comp.get("purl", ""))
    if "@sha256%3A" in purl or "@sha256:" in purl:
        tail = purl.split("@", 1)[1].split("?", 1)[0].replace("%3A", ":").replace("%3a", ":")
        if tail.startswith("sha256:") and len(tail) == 71:
            return tail
    version = str(comp.get("version", ""))
    if comp.get("type") == "container" and version.startswith("sha256:") and len(version) == 71:
        return version
    return None


def _cdx_severity(ratings: Any) -> str:
    best = "unknown"
    for r in ratings if isinstance(ratings, list) else ():
        sev = str(r.get("severity", "")).lower() if isinstance(r, dict) else ""
        if sev in SEVERITIES and (best == "unknown" or SEVERITIES.index(sev) < SEVERITIES.index(best)):
            best = sev
    return best


# ---------------------------------------------------------------------- SPDX


def _spdx(doc: Mapping[str, Any]) -> Document:
    version = str(doc.get("spdxVersion", ""))
    out = Document("sbom", "spdx", spec_version=version.removeprefix("SPDX-"))
    if version not in ("SPDX-2.2", "SPDX-2.3"):
        out.valid = False
        out.problems.append(f"spdxVersion {version!r} (expected SPDX-2.2 or SPDX-2.3 JSON)")
    for required in ("SPDXID", "name", "dataLicense", "creationInfo"):
        if required not in doc:
            out.valid = False
            out.problems.append(f"required field {required} is missing")
    packages = doc.get("packages")
    if packages is not None and not isinstance(packages, list):
        out.valid = False
        out.problems.append("packages is not a list")
        packages = []
    out.components = sum(1 for p in packages or () if isinstance(p, dict))
    for p in packages or ():
        for ref in p.get("externalRefs") or () if isinstance(p, dict) else ():
            locator = str(ref.get("referenceLocator", "")) if isinstance(ref, dict) else ""
            if locator.startswith("pkg:oci/"):
                d = _digest_of_component({"purl": locator})
                if d:
                    out.describes.append(d)
    return out


# ---------------------------------------------------------------------- scans


def _trivy(doc: Mapping[str, Any], scanned_at: str = "") -> Document:
    out = Document(
        "scan", "trivy", scanned=True, scanner="trivy", scanned_at=scanned_at or str(doc.get("CreatedAt", ""))[:32]
    )
    for result in as_list(doc.get("Results")):
        if not isinstance(result, dict):
            continue
        for v in as_list(result.get("Vulnerabilities")):
            if isinstance(v, dict) and isinstance(v.get("VulnerabilityID"), str):
                out.vulnerabilities.append(
                    Vulnerability(
                        id=v["VulnerabilityID"],
                        severity=str(v.get("Severity", "unknown")).lower(),
                        package=f"{v.get('PkgName', '')}@{v.get('InstalledVersion', '')}".strip("@")[:120],
                        published=str(v.get("PublishedDate", ""))[:32],
                    )
                )
    return out


def _grype(doc: Mapping[str, Any], scanned_at: str = "") -> Document:
    out = Document("scan", "grype", scanned=True, scanner="grype", scanned_at=scanned_at)
    for m in as_list(doc.get("matches")):
        vuln = m.get("vulnerability") if isinstance(m, dict) else None
        if isinstance(vuln, dict) and isinstance(vuln.get("id"), str):
            art = as_mapping(m.get("artifact"))
            out.vulnerabilities.append(
                Vulnerability(
                    id=vuln["id"],
                    severity=str(vuln.get("severity", "unknown")).lower(),
                    package=f"{art.get('name', '')}@{art.get('version', '')}".strip("@")[:120],
                )
            )
    return out


def _cosign_vuln(doc: Mapping[str, Any]) -> Document:
    scanner = as_mapping(doc.get("scanner"))
    meta = as_mapping(doc.get("metadata"))
    finished = str(meta.get("scanFinishedOn", ""))[:32]
    result = scanner.get("result")
    if isinstance(result, dict) and "Results" in result:
        out = _trivy(result, finished)
    elif isinstance(result, dict) and "matches" in result:
        out = _grype(result, finished)
    elif isinstance(result, dict) and result.get("bomFormat") == "CycloneDX":
        out = _cyclonedx(result)
        out.kind, out.scanned_at = "scan", finished
    else:
        return Document(
            "scan",
            "cosign-vuln",
            valid=False,
            scanner=str(scanner.get("uri", ""))[:120],
            problems=["the vuln attestation carries no Trivy, Grype or CycloneDX result (scanner.result)"],
        )
    out.format = "cosign-vuln"
    out.scanner = str(scanner.get("uri", "") or out.scanner)[:120]
    return out


# ---------------------------------------------------------------------- VEX


def _openvex(doc: Mapping[str, Any]) -> Document:
    out = Document("vex", "openvex")
    statements = doc.get("statements")
    if not isinstance(statements, list):
        out.valid = False
        out.problems.append("an OpenVEX document without statements")
        return out
    author = str(doc.get("author", ""))[:80]
    for s in statements:
        if not isinstance(s, dict):
            continue
        vuln = s.get("vulnerability")
        vid = vuln.get("name") if isinstance(vuln, dict) else vuln
        if isinstance(vid, str):
            out.vex.append(
                {
                    "id": vid,
                    "status": str(s.get("status", "")),
                    "justification": str(s.get("justification", ""))[:120],
                    "source": f"OpenVEX {doc.get('@id', '')}".strip()[:160] + (f" by {author}" if author else ""),
                }
            )
    return out
