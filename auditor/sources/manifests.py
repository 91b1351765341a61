"""Rendered manifests: files, directories (recursive) and stdin.

Reads multi-document YAML and JSON, ``kind: List``, and ``helm template`` /
``kustomize build`` output as it comes. Every problem is a coverage gap naming
the file and line; one bad document never hides the good ones beside it.
Memory stays bounded: files over ``max_bytes`` are refused before reading, and
a document that expands past ``max_nodes`` (YAML alias bombs) is refused.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml_rs

from auditor.models import CoverageGap, EvidenceKind, K8sObject, SourceLocation, SourceRecord
from auditor.sources.interface import Collected, Source
from auditor.sources.revision import git_commit
from auditor.sources.scrub import scrub
from auditor.sources.shape import normalize_booleans, shape_problems

# yaml-rs (Rust) parses manifests about ten times faster than PyYAML. It reads YAML 1.2: `on`/`yes` stay
# strings, as Kubernetes' own decoder keeps them for string fields; the boolean fields checks read are
# normalized from YAML 1.1 words in `shape.normalize`, and merge keys (`<<`) are resolved in `plain_data`.
ALIAS_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=1_000_000)
_ERROR_LINE = re.compile(r"at line (\d+)")

MAX_BYTES_DEFAULT = 32 * 1024 * 1024
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
MAX_WORKERS = 4
MAX_NODES_DEFAULT = 500_000
_SUFFIXES = (".yaml", ".yml", ".json")
_DOC_SEPARATOR = re.compile(r"^---(?:[ \t].*)?$")

# Kinds that have no namespace. Unknown kinds are namespaced unless named Cluster*.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "PriorityClass",
        "StorageClass",
        "CustomResourceDefinition",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "IngressClass",
        "RuntimeClass",
        "CSIDriver",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "PodSecurityPolicy",
        "VolumeSnapshotClass",
        "ComponentStatus",
        "CertificateSigningRequest",
    }
)


class TooBig(Exception):
    pass


class ManifestSource(Source):
    """Kubernetes objects from rendered manifests."""

    def __init__(
        self,
        paths: Sequence[str],
        *,
        default_namespace: str = "default",
        max_bytes: int = MAX_BYTES_DEFAULT,
        max_nodes: int = MAX_NODES_DEFAULT,
    ) -> None:
        self.paths = list(paths)
        self.default_namespace = default_namespace
        self.max_bytes = max_bytes
        self.max_nodes = max_nodes

    def collect(self) -> Collected:
        # Parsed manifests are acyclic: the cyclic GC only burns time rescanning them as they pile up.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._collect()
        finally:
            if was_enabled:
                gc.enable()

    def _collect(self) -> Collected:
        out = Collected(kinds={EvidenceKind.K8S_OBJECTS})
        # Work units in a fixed order: a file to load, or a gap found while listing.
        units: list[tuple[str, str] | CoverageGap] = []
        for given in self.paths:
            out.records.append(SourceRecord(type="manifests", target=given, git_commit=git_commit(given)))
            if given == "-":
                units.append(("-", "<stdin>"))
                continue
            path = Path(given)
            if path.is_dir():
                files, unrendered = _walk(path)
                units.extend(unrendered)
                if not files and not unrendered:
                    units.append(
                        CoverageGap("manifests", given, "empty", "directory holds no .yaml, .yml or .json files")
                    )
                units.extend((str(f), str(f)) for f in files)
            elif path.name in _RENDER_ROOTS:
                units.append(_unrendered_gap(path.parent, path.name))
            elif path.is_file() or given.startswith("/dev/fd/"):
                units.append((given, given))
            else:
                units.append(CoverageGap("manifests", given, "unreadable", "no such file or directory"))
        to_load = [u for u in units if isinstance(u, tuple) and u[0] != "-"]
        parallel = len(to_load) > 1 and (os.cpu_count() or 1) > 1 and _total_size(to_load) >= PARALLEL_MIN_BYTES
        loaded: dict[str, Collected] = {}
        if parallel:
            # YAML construction is CPU-bound Python: large inputs are parsed by one process per core.
            # Results are merged in input order, so the evidence is identical to a serial run.
            from concurrent.futures import ProcessPoolExecutor  # only large inputs pay for the import

            workers = min(os.cpu_count() or 1, MAX_WORKERS)
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for (path_str, _label), part in zip(to_load, pool.map(self._load, to_load, chunksize=4), strict=True):
                    loaded[path_str] = part
        for unit in units:
            if isinstance(unit, CoverageGap):
                out.gaps.append(unit)
                continue
            part = loaded.get(unit[0]) or self._load(unit)
            out.objects.extend(part.objects)
            out.gaps.extend(part.gaps)
        return out

    def _load(self, unit: tuple[str, str]) -> Collected:
        """Read and parse one file (or stdin) into its own partial result."""
        part = Collected()
        text = self._read_text(unit[0], part)
        if text is not None:
            self._parse(unit[1], text, part)
        return part

    # ------------------------------------------------------------------ reading

    def _gap(self, out: Collected, target: str, gap: str, reason: str) -> None:
        out.gaps.append(CoverageGap(source="manifests", target=target, gap=gap, reason=reason))

    def _read_text(self, given: str, out: Collected) -> str | None:
        """The text of a file (or stdin, for '-'), or None with the reason recorded as a gap."""
        label = "<stdin>" if given == "-" else given
        mib = self.max_bytes // (1024 * 1024)
        try:
            if given == "-":
                data = sys.stdin.buffer.read(self.max_bytes + 1)
            else:
                size = os.stat(given).st_size
                if size > self.max_bytes:
                    reason = f"file is {size / 1048576:.1f} MiB, over the {mib} MiB limit (--max-file-mib); not read"
                    self._gap(out, label, "too-large", reason)
                    return None
                with open(given, "rb") as fh:
                    data = fh.read(self.max_bytes + 1)
        except OSError as exc:
            self._gap(out, label, "unreadable", exc.strerror or str(exc))
            return None
        if len(data) > self.max_bytes:  # stdin, or a file that grew while being read
            self._gap(out, label, "too-large", f"over the {mib} MiB limit (--max-file-mib); not read")
            return None
        return self._decode(label, data, out)

    def _decode(self, label: str, data: bytes, out: Collected) -> str | None:
        # UTF-16 and UTF-32 with a byte-order mark, as kubectl reads them (PowerShell's `>` writes UTF-16LE).
        for bom, codec in BOMS:
            if data.startswith(bom):
                try:
                    return data[len(bom) :].decode(codec)
                except UnicodeDecodeError as exc:
                    self._gap(
                        out, label, "unreadable", f"invalid {codec} text after its byte-order mark (byte {exc.start})"
                    )
                    return None
        if b"\x00" in data[:8192]:
            self._gap(out, label, "unreadable", "binary file (NUL bytes), not YAML or JSON")
            return None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self._gap(out, label, "unreadable", f"not UTF-8 text (byte {exc.start})")
            return None

    # ------------------------------------------------------------------ parsing

    def _parse(self, label: str, text: str, out: Collected) -> None:
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                self._gap(out, f"{label}:{exc.lineno}", "malformed", f"invalid JSON: {exc.msg} (column {exc.colno})")
                return
            self._accept(label, 1, doc, out, chunk=text)
            return
        for start_line, chunk, origin in split_documents(text):
            templated = "{{" in chunk and _looks_templated(chunk)
            try:
                doc = yaml_rs.loads(chunk, parse_datetime=False, alias_limits=ALIAS_LIMITS)
            except yaml_rs.YAMLDecodeError as exc:
                message = str(exc)
                if "alias" in message and "limit" in message:
                    reason = "document expands too many aliases (YAML alias bomb?); not assessed"
                    self._gap(out, f"{label}:{start_line}", "too-large", reason)
                    continue
                if "{{" in chunk:
                    self._gap(out, f"{label}:{start_line}", "not-rendered", _TEMPLATE_REASON)
                    continue
                self._gap(
                    out,
                    f"{label}:{error_line(message, chunk, start_line)}",
                    "malformed",
                    f"invalid YAML: {error_reason(message)}",
                )
                continue
            except (RecursionError, ValueError, OverflowError) as exc:
                self._gap(out, f"{label}:{start_line}", "malformed", f"invalid YAML: {type(exc).__name__}")
                continue
            if doc is None:
                continue
            if templated or ("{{" in chunk and _templated_identity(doc)):
                self._gap(out, f"{label}:{start_line}", "not-rendered", _TEMPLATE_REASON)
                continue
            self._accept(label, start_line, doc, out, origin, chunk=chunk)

    def _accept(
        self, label: str, line: int, doc: Any, out: Collected, origin: str | None = None, *, chunk: str
    ) -> None:
        target = f"{label}:{line}"
        try:
            plain = doc if _already_plain(doc, chunk) else plain_data(doc, [self.max_nodes])
        except TooBig:
            self._gap(
                out,
                target,
                "too-large",
                f"document expands past {self.max_nodes:,} nodes (YAML alias bomb?); not assessed",
            )
            return
        except RecursionError:
            self._gap(out, target, "too-large", "document nests too deeply; not assessed")
            return
        may_patch = "$patch" in chunk or "$setElementOrder" in chunk
        if isinstance(plain, list):
            self._gap(out, target, "not-an-object", "top-level JSON array is not a Kubernetes object; use kind: List")
            return
        if not isinstance(plain, dict):
            self._gap(out, target, "not-an-object", f"document is a {type(plain).__name__}, not a Kubernetes object")
            return
        if plain.get("kind") == "List" or (
            str(plain.get("kind", "")).endswith("List") and isinstance(plain.get("items"), list)
        ):
            items = plain.get("items")
            if not isinstance(items, list):
                self._gap(out, target, "invalid-object", "kind: List without an items list")
                return
            for i, item in enumerate(items):
                self._object(f"{target} items[{i}]", label, line, item, out, origin, may_patch=may_patch)
            return
        self._object(target, label, line, plain, out, origin, may_patch=may_patch)

    def _object(
        self,
        target: str,
        label: str,
        line: int,
        obj: Any,
        out: Collected,
        origin: str | None = None,
        *,
        may_patch: bool = True,
    ) -> None:
        if not isinstance(obj, dict):
            self._gap(out, target, "not-an-object", "list item is not a Kubernetes object")
            return
        if not isinstance(obj.get("apiVersion"), str) or not isinstance(obj.get("kind"), str):
            self._gap(out, target, "not-an-object", "document has no apiVersion and kind; not a Kubernetes object")
            return
        if may_patch and _is_patch(obj):
            self._gap(
                out,
                target,
                "not-an-object",
                "a patch ($patch directive), not an object; render it with kustomize build",
            )
            return
        problems = shape_problems(obj)
        normalize_booleans(obj)
        if problems:
            raw_meta = obj.get("metadata")
            name = raw_meta.get("name", "?") if isinstance(raw_meta, dict) else "?"
            who = f"{obj['kind']} {name}"
            self._gap(out, target, "invalid-object", f"{who}: " + "; ".join(problems[:3]))
            return
        kind = obj["kind"]
        meta = obj.setdefault("metadata", {})
        if kind not in CLUSTER_SCOPED and not kind.startswith("Cluster") and not meta.get("namespace"):
            meta["namespace"] = self.default_namespace
        out.objects.append(K8sObject(raw=scrub(obj), location=SourceLocation(file=label, line=line, origin=origin)))


def error_line(message: str, chunk: str, start_line: int) -> int:
    """The file line of a parse error; errors found at end of input point at the document's last line."""
    dup = _DUPLICATE_KEY.search(message)
    if dup:
        line = _duplicate_key_line(chunk, dup.group(1))
        if line is not None:
            return start_line + line - 1
    m = _ERROR_LINE.search(message)
    if not m:
        return start_line
    last = max(chunk.rstrip("\n").count("\n") + 1, 1)
    return start_line + min(int(m.group(1)), last) - 1


def error_reason(message: str) -> str:
    """The parser's own words: the last line of its message, past the source excerpt."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip() and not ln.strip().startswith("|")]
    return lines[-1] if lines else "syntax error"


def _total_size(files: Sequence[tuple[str, str]]) -> int:
    total = 0
    for path_str, _label in files:
        try:
            total += os.stat(path_str).st_size
        except OSError:
            continue
    return total


_BOUNDARY = re.compile(r"^(?:---(?:[ \t][^\n]*)?|\.\.\.)\r?$", re.MULTILINE)


def split_documents(text: str) -> Iterator[tuple[int, str, str | None]]:
    """Split a YAML stream at document markers: each document's first line (1-based), text, and origin.

    Splitting ourselves (rather than ``load_all``) means a syntax error in one
    document does not hide the documents after it. The origin is the template Helm
    names in its ``# Source:`` comment before the document, so findings can point at it.
    """
    pos, line = 0, 1  # start of the current document's text, and its line number
    for m in _BOUNDARY.finditer(text):
        yield from _document(text[pos : m.start()], line)
        marker = m.group(0).rstrip("\r")
        line += text.count("\n", pos, m.end())
        pos = m.end() + 1  # past the marker line's newline
        if marker.startswith("---"):
            rest = marker[3:].strip()
            if rest and not rest.startswith("#"):
                # content after '--- ' on the marker line belongs to the next document
                yield from _document(rest + "\n" + text[pos : _next_boundary(text, pos)], line)
                nxt = _next_boundary(text, pos)
                line += 1 + text.count("\n", pos, nxt)
                pos = nxt
                continue
        line += 1
    if pos < len(text):
        yield from _document(text[pos:], line)


def _next_boundary(text: str, pos: int) -> int:
    m = _BOUNDARY.search(text, pos)
    return m.start() if m else len(text)


def _document(chunk: str, first_line: int) -> Iterator[tuple[int, str, str | None]]:
    """One document's text without its leading blank and comment lines (helm's `# Source:` gives its origin)."""
    origin: str | None = None
    offset = 0
    n = first_line
    while offset < len(chunk):
        nl = chunk.find("\n", offset)
        end = len(chunk) if nl < 0 else nl
        stripped = chunk[offset:end].strip()
        if stripped and not stripped.startswith("#"):
            yield n, chunk[offset:], origin
            return
        if stripped.startswith("# Source:"):
            origin = stripped[len("# Source:") :].strip() or None
        offset = end + 1
        n += 1


_DUPLICATE_KEY = re.compile(r"duplicate (?:mapping )?key:? '?([^'\n]+)'?")
_KEY_LINE = re.compile(
    r"^(?P<indent>\s*)(?P<dash>(?:-\s+)*)(?P<key>[^\s#'\"{\[][^:#]*?|'[^']*'|\"[^\"]*\")\s*:(?:\s|$)"
)


def _duplicate_key_line(chunk: str, key: str) -> int | None:
    """The 1-based line of a duplicated key in a block-style YAML document: the second occurrence
    within the same mapping. None if the layout is not one this simple scan understands (flow style)."""
    stack: list[tuple[int, set[str]]] = []  # (indent of a mapping's keys, keys seen in it)
    for n, line in enumerate(chunk.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _KEY_LINE.match(line)
        if not m:
            continue
        indent = len(m.group("indent")) + len(m.group("dash"))
        name = m.group("key").strip().strip("'\"")
        while stack and stack[-1][0] > indent:
            stack.pop()
        if m.group("dash") or not stack or stack[-1][0] < indent:
            if stack and stack[-1][0] == indent:
                stack.pop()  # a new list item starts a new mapping at the same indent
            stack.append((indent, set()))
        keys = stack[-1][1]
        if name in keys and name == key:
            return n
        keys.add(name)
    return None


_TEMPLATE_LINE = re.compile(r"^\s*(?:-\s*)?\{\{")
_UNQUOTED_TEMPLATE = re.compile(r"^\s*(?:-\s+)?[A-Za-z_][\w.-]*:\s+\{\{")
_TEMPLATE_REASON = (
    "unrendered template (Go/Helm template markers {{ }}), not a manifest: render it first, "
    "e.g. `helm template RELEASE CHART | auditor audit - ...`"
)


def _looks_templated(chunk: str) -> bool:
    """Template control lines (`{{- if ... }}`, `{{ include ... }}` alone on a line) or unquoted `key: {{ x }}`."""
    return any(_TEMPLATE_LINE.match(line) or _UNQUOTED_TEMPLATE.search(line) for line in chunk.splitlines())


def _templated_identity(doc: Any) -> bool:
    """A template placeholder where a real object has a name (`name: vttablet-{{uid}}`)."""
    if not isinstance(doc, dict):
        return False
    meta = doc.get("metadata")
    fields = [doc.get("kind"), doc.get("apiVersion")]
    if isinstance(meta, dict):
        fields += [meta.get("name"), meta.get("namespace")]
    return any(isinstance(v, str) and "{{" in v for v in fields)


def _is_patch(obj: dict[str, Any]) -> bool:
    """A strategic-merge patch carries `$patch` directives somewhere; an object never does."""
    stack: list[Any] = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            if "$patch" in cur or any(isinstance(k, str) and k.startswith("$setElementOrder/") for k in cur):
                return True
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return False


# Directories that hold sources to render, not rendered manifests, and the command that renders them.
_RENDER_ROOTS = {
    "kustomization.yaml": "kustomize build {dir} | auditor audit - ...",
    "kustomization.yml": "kustomize build {dir} | auditor audit - ...",
    "Kustomization": "kustomize build {dir} | auditor audit - ...",
    "Chart.yaml": "helm template RELEASE {dir} -f VALUES.yaml | auditor audit - ...",
}
BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def _unrendered_gap(directory: Path, marker: str) -> CoverageGap:
    what = "a Helm chart" if marker == "Chart.yaml" else "a kustomize directory"
    command = _RENDER_ROOTS[marker].format(dir=directory)
    return CoverageGap(
        "manifests",
        str(directory),
        "not-rendered",
        f"{what} ({marker}), not rendered manifests; not read. Render it first: {command}",
    )


def _walk(root: Path) -> tuple[list[Path], list[CoverageGap]]:
    """Manifest files under a directory (sorted), skipping Helm charts and kustomize directories,
    which are named as gaps with the command that renders them."""
    files: list[Path] = []
    gaps: list[CoverageGap] = []
    for dirpath, dirnames, filenames in os.walk(root):
        marker = next((m for m in _RENDER_ROOTS if m in filenames), None)
        if marker is not None:
            gaps.append(_unrendered_gap(Path(dirpath), marker))
            dirnames[:] = []
            continue
        dirnames.sort()
        files.extend(Path(dirpath, f) for f in filenames if Path(f).suffix.lower() in _SUFFIXES)
    files = [f for f in files if f.is_file()]
    return sorted(files), sorted(gaps)


def _merge_keys(mapping: dict[Any, Any]) -> dict[Any, Any]:
    """YAML merge keys, as Kubernetes' decoder applies them: own keys win, then earlier merged maps."""
    sources = mapping["<<"]
    merged: dict[Any, Any] = {}
    for src in reversed(sources if isinstance(sources, list) else [sources]):
        if isinstance(src, dict):
            merged.update(src)
    merged.update((k, v) for k, v in mapping.items() if k != "<<")
    return merged


# Text that may need the slow copy below: merge keys, anchors (hence aliases, hence bombs), NaN/Infinity.
_NEEDS_COPY = re.compile(r"<<|&|\.(?:nan|NaN|NAN|inf|Inf|INF)\b|NaN|Infinity")


def _already_plain(doc: Any, chunk: str) -> bool:
    """Whether the parser's output is already plain JSON data, so the copy in `plain_data` can be skipped.

    Without merge keys, anchors or NaN/Infinity in the text, only non-string keys (`80: http`) or
    extreme nesting could need it, and orjson (C) refuses exactly those, far faster than a Python walk.
    """
    if _NEEDS_COPY.search(chunk):
        return False
    try:
        orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


def plain_data(value: Any, budget: list[int]) -> Any:
    """Copy into plain JSON types, bounded in size (aliases are expanded, so bombs stop here)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise TooBig
    if isinstance(value, dict):
        if "<<" in value:
            value = _merge_keys(value)
        return {str(k) if not isinstance(k, str) else k: plain_data(v, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_data(v, budget) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN/Infinity are not JSON
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return "<binary>"
    if isinstance(value, set):
        return sorted(str(v) for v in value)
    return str(value)
