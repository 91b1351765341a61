"""Drill records: restore drills, DR cutover rehearsals and backup runs, as the people who ran them wrote them.

Plain YAML or JSON files (``--drills PATH``, a file or a directory read recursively): one record per
document, several documents per YAML file, or a top-level list. Each record becomes a normalised dict
(see :func:`normalise`): dates in UTC, durations in seconds, the scope as three lists. Bad input never
stops the run: a malformed file, a record with a missing or wrongly typed field, an unknown kind, a file
over the size limit or a binary file is a coverage gap naming the file, the line and the field, and the
other records still load. The parser is the manifest source's (yaml-rs, YAML 1.2, duplicate keys refused,
alias expansion bounded). Free text (``notes``) is never kept, and an evidence link that looks like it
carries a credential is replaced by its classification.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml_rs

from auditor.models import CoverageGap, SourceRecord
from auditor.sources import manifests as yaml_reading  # the project's YAML reading: document split, alias bounds
from auditor.sources.revision import git_commit
from auditor.sources.scrub import classify_text

SOURCE = "drills"
MAX_BYTES = 8 * 1024 * 1024
_SUFFIXES = (".yaml", ".yml", ".json")

KINDS: Mapping[str, str] = {"RestoreDrill": "restore-drill", "DRCutover": "dr-cutover", "BackupRun": "backup-run"}
"""The kinds a record may declare, and the name each has in the evidence."""
RESULTS = ("success", "failed", "partial")
STEP_RESULTS = (*RESULTS, "skipped")
_FIELDS = (
    "kind",
    "id",
    "date",
    "scope",
    "result",
    "rpo_achieved",
    "rto_achieved",
    "signoff",
    "steps",
    "pitr_window",
    "notes",
    "evidence",
    "apiVersion",
)
_SCOPE_FIELDS = ("namespaces", "clusters", "databases")
_SIGNOFF_FIELDS = ("name", "role", "date")
_STEP_FIELDS = ("step", "result", "at", "stages", "notes")

_SHORT_DURATION = re.compile(r"(?:(\d{1,9})d)?(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?")
_ISO_DURATION = re.compile(
    r"P(?:(\d{1,9})W)?(?:(\d{1,9})D)?(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9}(?:[.,]\d+)?)S)?)?", re.IGNORECASE
)


class Drills(NamedTuple):
    """What the drills source read: the normalised records (sorted), what it could not read, and its inputs."""

    records: list[dict[str, Any]]
    gaps: list[CoverageGap]
    sources: list[SourceRecord]


# ---------------------------------------------------------------------- values


def parse_when(value: Any) -> str | None:
    """An ISO 8601 date or date-time as UTC text ending in ``Z`` (a date is its midnight; no zone means UTC),
    or None when ``value`` is not one."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            when = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)
        else:
            when = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        utc = when.astimezone(dt.UTC)
    except OverflowError:
        return None
    return utc.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(value: Any) -> int | None:
    """Seconds in ``30s``, ``5m``, ``2h``, ``1d`` (or combined: ``1h30m``) or ISO 8601 (``PT42M``, ``P1DT2H``);
    None when ``value`` is not a duration. A bare number has no unit and is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    m = _SHORT_DURATION.fullmatch(text)
    if m and text:
        d, h, mi, s = (int(g or 0) for g in m.groups())
        return ((d * 24 + h) * 60 + mi) * 60 + s
    m = _ISO_DURATION.fullmatch(text)
    if m and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
        w, d, h, mi = (int(g or 0) for g in m.groups()[:4])
        secs = float((m.group(5) or "0").replace(",", "."))
        return round((((w * 7 + d) * 24 + h) * 60 + mi) * 60 + secs)
    return None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def _shown(value: Any) -> str:
    """A short rendering of a bad value for a message (never more than 40 characters of it)."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, dict | list):
        return f"a {_type_name(value)}"
    return repr(value)


def _unknown(keys: Sequence[Any], known: Sequence[str], where: str) -> list[str]:
    import difflib

    out = []
    for key in keys:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        out.append(f"{where}{key}: unknown field{hint}, ignored")
    return out


class _Problems:
    """The problems found in one record: errors make it unusable; notes (unknown fields) do not."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.notes: list[str] = []

    def error(self, text: str) -> None:
        self.errors.append(text)


def _names(value: Any, field: str, p: _Problems) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        hint = f" (write [{value}])" if isinstance(value, str) and len(value) <= 40 else ""
        p.error(f"{field}: expected a list of names, got {_type_name(value)} {_shown(value)}{hint}")
        return []
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            p.error(f"{field}[{i}]: expected a name, got {_type_name(item)} {_shown(item)}")
        else:
            out.append(item.strip())
    return out


def _date_field(value: Any, field: str, p: _Problems, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            p.error(f"{field}: missing (an ISO 8601 date or date-time is required)")
        return None
    when = parse_when(value)
    if when is None:
        p.error(f"{field}: {_shown(value)} is not an ISO 8601 date or date-time (e.g. 2026-10-02T09:00:00Z)")
    return when


def _duration_field(value: Any, field: str, p: _Problems) -> int | None:
    if value is None:
        return None
    seconds = parse_duration(value)
    if seconds is None:
        p.error(f"{field}: {_shown(value)} is not a duration (30s, 5m, 2h, 1d, or ISO 8601 such as PT42M)")
    return seconds


def _text(value: Any, field: str, p: _Problems, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            p.error(f"{field}: missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        p.error(f"{field}: expected text, got {_type_name(value)} {_shown(value)}")
        return None
    text = str(value).strip()
    if not text:
        if required:
            p.error(f"{field}: empty")
        return None
    return text


def _scope(value: Any, p: _Problems) -> dict[str, list[str]]:
    scope: dict[str, list[str]] = {k: [] for k in _SCOPE_FIELDS}
    if value is None:
        p.error("scope: missing (name what the record covers: scope.namespaces, scope.clusters or scope.databases)")
        return scope
    if not isinstance(value, dict):
        p.error(f"scope: expected a mapping (namespaces, clusters, databases), got {_type_name(value)}")
        return scope
    p.notes.extend(_unknown(list(value), _SCOPE_FIELDS, "scope."))
    for key in _SCOPE_FIELDS:
        scope[key] = _names(value.get(key), f"scope.{key}", p)
    if not any(scope.values()) and not p.errors:
        p.error("scope: names nothing (give at least one of scope.namespaces, scope.clusters, scope.databases)")
    return scope


def _signoff(value: Any, p: _Problems) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        name = _text(value, "signoff", p, required=True)
        return {"name": name, "role": None, "date": None} if name else None
    if not isinstance(value, dict):
        p.error(f"signoff: expected a mapping (name, role, date), got {_type_name(value)}")
        return None
    p.notes.extend(_unknown(list(value), _SIGNOFF_FIELDS, "signoff."))
    name = _text(value.get("name"), "signoff.name", p, required=True)
    role = _text(value.get("role"), "signoff.role", p)
    date = _date_field(value.get("date"), "signoff.date", p)
    return {"name": name, "role": role, "date": date}


def _stages(value: Any, field: str, p: _Problems) -> list[int | float]:
    if value is None:
        return []
    if not isinstance(value, list):
        p.error(f"{field}: expected a list of traffic percentages, got {_type_name(value)} {_shown(value)}")
        return []
    out: list[int | float] = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int | float) or not 0 <= item <= 100:
            p.error(f"{field}[{i}]: expected a percentage from 0 to 100, got {_type_name(item)} {_shown(item)}")
        else:
            out.append(item)
    return out


def _steps(value: Any, p: _Problems) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        p.error(f"steps: expected a list of steps, got {_type_name(value)}")
        return []
    out = []
    for i, raw in enumerate(value):
        where = f"steps[{i}]"
        if not isinstance(raw, dict):
            p.error(f"{where}: expected a mapping (step, result, at, stages), got {_type_name(raw)} {_shown(raw)}")
            continue
        p.notes.extend(_unknown(list(raw), _STEP_FIELDS, f"{where}."))
        name = _text(raw.get("step"), f"{where}.step", p, required=True)
        result = raw.get("result")
        if result is not None and result not in STEP_RESULTS:
            p.error(f"{where}.result: {_shown(result)} is not one of {', '.join(STEP_RESULTS)}")
            result = None
        out.append(
            {
                "step": name,
                "result": result,
                "at": _date_field(raw.get("at"), f"{where}.at", p),
                "stages": _stages(raw.get("stages"), f"{where}.stages", p),
            }
        )
    return out


def _pitr(value: Any, p: _Problems) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        p.error(f"pitr_window: expected a mapping (from, to), got {_type_name(value)}")
        return None
    p.notes.extend(_unknown(list(value), ("from", "to"), "pitr_window."))
    start = _date_field(value.get("from"), "pitr_window.from", p, required=True)
    end = _date_field(value.get("to"), "pitr_window.to", p, required=True)
    if start and end and start > end:
        p.error(f"pitr_window: from {start} is after to {end}")
    return {"from": start, "to": end}


def _evidence_links(value: Any, p: _Problems) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        p.error(f"evidence: expected a list of links, got {_type_name(value)}")
        return []
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            p.error(f"evidence[{i}]: expected a link, got {_type_name(item)} {_shown(item)}")
            continue
        info = classify_text(item)
        if info["secretLike"]:  # a link with a token in it: the value never reaches the evidence
            out.append(f"<redacted secret-like text: {info['length']} chars, fingerprint {info['fingerprint']}>")
        else:
            out.append(item)
    return out


def normalise(raw: Any, *, file: str, line: int | None, default_id: str) -> tuple[dict[str, Any] | None, _Problems]:
    """One record as the evidence keeps it, or None with the problems that make it unusable."""
    p = _Problems()
    if not isinstance(raw, dict):
        p.error(f"expected a record (a mapping with kind, date, scope, result), got {_type_name(raw)} {_shown(raw)}")
        return None, p
    kind_raw = raw.get("kind")
    kind = KINDS.get(kind_raw) if isinstance(kind_raw, str) else None
    if kind is None and isinstance(kind_raw, str) and kind_raw in KINDS.values():
        kind = kind_raw  # the evidence's own spelling (restore-drill, ...) is accepted too
    if kind_raw is None:
        p.error(f"kind: missing (one of {', '.join(KINDS)})")
    elif kind is None:
        import difflib

        close = difflib.get_close_matches(str(kind_raw), list(KINDS), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        p.error(f"kind: {_shown(kind_raw)} is not one of {', '.join(KINDS)}{hint}")
    p.notes.extend(_unknown(list(raw), _FIELDS, ""))
    record_id = _text(raw.get("id"), "id", p) or default_id
    date = _date_field(raw.get("date"), "date", p, required=True)
    scope = _scope(raw.get("scope"), p)
    result = raw.get("result")
    if result is None:
        p.error(f"result: missing (one of {', '.join(RESULTS)})")
    elif result not in RESULTS:
        p.error(f"result: {_shown(result)} is not one of {', '.join(RESULTS)}")
    record = {
        "kind": kind,
        "id": record_id,
        "file": file,
        "line": line,
        "date": date,
        "scope": scope,
        "result": result,
        "rpo_achieved_seconds": _duration_field(raw.get("rpo_achieved"), "rpo_achieved", p),
        "rto_achieved_seconds": _duration_field(raw.get("rto_achieved"), "rto_achieved", p),
        "signoff": _signoff(raw.get("signoff"), p),
        "steps": _steps(raw.get("steps"), p),
        "pitr_window": _pitr(raw.get("pitr_window"), p),
        "evidence": _evidence_links(raw.get("evidence"), p),
    }
    return (None if p.errors else record), p


def sort_key(record: Mapping[str, Any]) -> tuple[str, str, str, int]:
    """The order records are kept in: date, id, then where they were read."""
    return (str(record["date"]), str(record["id"]), str(record["file"]), int(record.get("line") or 0))


# ---------------------------------------------------------------------- snapshot validation

_SNAPSHOT_KEYS = frozenset(
    {
        "kind",
        "id",
        "file",
        "line",
        "date",
        "scope",
        "result",
        "rpo_achieved_seconds",
        "rto_achieved_seconds",
        "signoff",
        "steps",
        "pitr_window",
        "evidence",
    }
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def record_problem(rec: Any) -> str | None:
    """Why a record read back from an evidence snapshot is not one this source writes (None if it is)."""
    if not isinstance(rec, dict):
        return f"expected an object, got {_type_name(rec)}"
    missing = sorted(_SNAPSHOT_KEYS - set(rec))
    if missing:
        return f"missing {', '.join(missing)}"
    extra = sorted(set(rec) - _SNAPSHOT_KEYS)
    if extra:
        return f"unexpected {', '.join(map(str, extra))}"
    if rec["kind"] not in KINDS.values():
        return f"kind: {_shown(rec['kind'])} is not one of {', '.join(KINDS.values())}"
    for key in ("id", "file", "date"):
        if not isinstance(rec[key], str):
            return f"{key}: expected a string"
    if parse_when(rec["date"]) != rec["date"]:
        return "date: expected UTC ISO 8601 text ending in Z"
    if rec["line"] is not None and not _is_int(rec["line"]):
        return "line: expected an integer or null"
    scope = rec["scope"]
    if not isinstance(scope, dict) or set(scope) != set(_SCOPE_FIELDS) or not all(_str_list(v) for v in scope.values()):
        return "scope: expected namespaces, clusters and databases as lists of strings"
    if rec["result"] not in RESULTS:
        return f"result: expected one of {', '.join(RESULTS)}"
    for key in ("rpo_achieved_seconds", "rto_achieved_seconds"):
        if rec[key] is not None and not _is_int(rec[key]):
            return f"{key}: expected an integer or null"
    signoff = rec["signoff"]
    if signoff is not None and (
        not isinstance(signoff, dict)
        or set(signoff) != set(_SIGNOFF_FIELDS)
        or not all(v is None or isinstance(v, str) for v in signoff.values())
    ):
        return "signoff: expected null or {name, role, date} strings"
    steps = rec["steps"]
    if not isinstance(steps, list):
        return "steps: expected a list"
    for i, step in enumerate(steps):
        if (
            not isinstance(step, dict)
            or set(step) != {"step", "result", "at", "stages"}
            or not isinstance(step["step"], str)
            or not (step["result"] is None or step["result"] in STEP_RESULTS)
            or not (step["at"] is None or isinstance(step["at"], str))
            or not isinstance(step["stages"], list)
            or not all(isinstance(s, int | float) and not isinstance(s, bool) for s in step["stages"])
        ):
            return f"steps[{i}]: expected {{step, result, at, stages}}"
    pitr = rec["pitr_window"]
    if pitr is not None and (
        not isinstance(pitr, dict) or set(pitr) != {"from", "to"} or not all(isinstance(v, str) for v in pitr.values())
    ):
        return "pitr_window: expected null or {from, to} strings"
    if not _str_list(rec["evidence"]):
        return "evidence: expected a list of strings"
    return None


# ---------------------------------------------------------------------- the source


class DrillsSource:
    """Drill and backup-run records from files and directories."""

    def __init__(
        self, paths: Sequence[str], *, max_bytes: int = MAX_BYTES, max_nodes: int = yaml_reading.MAX_NODES_DEFAULT
    ) -> None:
        self.paths = list(paths)
        self.max_bytes = max_bytes
        self.max_nodes = max_nodes

    def collect(self) -> Drills:
        records: list[dict[str, Any]] = []
        gaps: list[CoverageGap] = []
        sources: list[SourceRecord] = []
        seen: set[str] = set()
        for given in self.paths:
            sources.append(SourceRecord(type=SOURCE, target=given, git_commit=git_commit(given)))
            path = Path(given)
            if path.is_dir():
                files = _walk(path)
                if not files:
                    gaps.append(_gap(given, "empty", "directory holds no .yaml, .yml or .json files"))
            elif path.is_file() or given.startswith("/dev/fd/"):
                files = [given]
            else:
                gaps.append(_gap(given, "unreadable", "no such file or directory"))
                continue
            for f in files:
                key = os.path.realpath(f)
                if key in seen:  # a file named twice (itself and its directory) is read once
                    continue
                seen.add(key)
                self._load(f, records, gaps)
        records.sort(key=sort_key)
        gaps.extend(_duplicate_ids(records))
        return Drills(records, gaps, sources)

    # ------------------------------------------------------------------ one file

    def _load(self, label: str, records: list[dict[str, Any]], gaps: list[CoverageGap]) -> None:
        text = self._read(label, gaps)
        if text is None:
            return
        count = 0
        for line, raw in self._documents(label, text, gaps):
            count += 1
            record, problems = normalise(raw, file=label, line=line, default_id=f"{label}#{count}")
            target = f"{label}:{line}" if line else label
            what = _what(raw)
            if record is None:
                more = f"; and {len(problems.errors) - 5} more" if len(problems.errors) > 5 else ""
                gaps.append(
                    _gap(
                        target,
                        "invalid-object",
                        f"{what}: " + "; ".join(problems.errors[:5]) + more + "; the record is not used",
                    )
                )
                continue
            records.append(record)
            for note in problems.notes[:5]:
                gaps.append(_gap(target, "unknown-field", f"{what}: {note}"))

    def _read(self, label: str, gaps: list[CoverageGap]) -> str | None:
        mib = self.max_bytes / (1024 * 1024)
        try:
            size = os.stat(label).st_size
            if size > self.max_bytes:
                reason = f"file is {size / 1048576:.1f} MiB, over the {mib:g} MiB limit for drill records; not read"
                gaps.append(_gap(label, "too-large", reason))
                return None
            with open(label, "rb") as fh:
                data = fh.read(self.max_bytes + 1)
        except OSError as exc:
            gaps.append(_gap(label, "unreadable", exc.strerror or str(exc)))
            return None
        if len(data) > self.max_bytes:
            gaps.append(_gap(label, "too-large", f"over the {mib:g} MiB limit for drill records; not read"))
            return None
        for bom, codec in yaml_reading.BOMS:
            if data.startswith(bom):
                try:
                    return data[len(bom) :].decode(codec)
                except UnicodeDecodeError as exc:
                    reason = f"invalid {codec} text after its byte-order mark (byte {exc.start})"
                    gaps.append(_gap(label, "unreadable", reason))
                    return None
        if b"\x00" in data[:8192]:
            gaps.append(_gap(label, "unreadable", "binary file (NUL bytes), not YAML or JSON drill records"))
            return None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            gaps.append(_gap(label, "unreadable", f"not UTF-8 text (byte {exc.start})"))
            return None

    def _documents(self, label: str, text: str, gaps: list[CoverageGap]) -> Iterator[tuple[int | None, Any]]:
        """Each record's (1-based line, parsed value): documents, or the items of a top-level list."""
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            yield from _json_documents(label, text, gaps)
            return
        for start, chunk, _origin in yaml_reading.split_documents(text):
            target = f"{label}:{start}"
            try:
                doc = yaml_rs.loads(chunk, parse_datetime=False, alias_limits=yaml_reading.ALIAS_LIMITS)
            except yaml_rs.YAMLDecodeError as exc:
                message = str(exc)
                if "alias" in message and "limit" in message:
                    gaps.append(_gap(target, "too-large", "document expands too many aliases (YAML alias bomb?)"))
                else:
                    where = f"{label}:{yaml_reading.error_line(message, chunk, start)}"
                    gaps.append(_gap(where, "malformed", f"invalid YAML: {yaml_reading.error_reason(message)}"))
                continue
            except (RecursionError, ValueError, OverflowError) as exc:
                gaps.append(_gap(target, "malformed", f"invalid YAML: {type(exc).__name__}"))
                continue
            try:
                doc = yaml_reading.plain_data(doc, [self.max_nodes])
            except yaml_reading.TooBig:
                reason = f"document expands past {self.max_nodes:,} nodes (YAML alias bomb?); not read"
                gaps.append(_gap(target, "too-large", reason))
                continue
            except RecursionError:
                gaps.append(_gap(target, "too-large", "document nests too deeply; not read"))
                continue
            if doc is None:
                continue
            if isinstance(doc, list):
                lines = _yaml_item_lines(chunk, start, len(doc))
                yield from zip(lines, doc, strict=True)
            else:
                yield start, doc


def _gap(target: str, gap: str, reason: str) -> CoverageGap:
    return CoverageGap(source=SOURCE, target=target, gap=gap, reason=reason)


def _what(raw: Any) -> str:
    """How a gap names a record: its kind and id when it has them."""
    if not isinstance(raw, dict):
        return "drill record"
    kind = raw.get("kind")
    rid = raw.get("id")
    kind_text = kind if isinstance(kind, str) and len(kind) <= 40 else "record"
    return f"{kind_text} {rid}" if isinstance(rid, str | int) and len(str(rid)) <= 80 else str(kind_text)


_TOP_ITEM = re.compile(r"^-(?:[ \t]|$)")


def _yaml_item_lines(chunk: str, start: int, count: int) -> list[int | None]:
    """The line of each item of a top-level block sequence; the document's line where the layout is not that."""
    lines = [start + n for n, text in enumerate(chunk.splitlines()) if _TOP_ITEM.match(text)]
    if len(lines) == count:
        return list(lines)
    return [start] * count


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


_WS = re.compile(r"[ \t\r\n]*")


def _skip_ws(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


def _json_documents(label: str, text: str, gaps: list[CoverageGap]) -> Iterator[tuple[int | None, Any]]:
    """A JSON record, or the items of a top-level JSON array, each at its own line. Duplicate keys are refused."""
    decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates)
    pos = _skip_ws(text, 0)
    items: list[tuple[int | None, Any]] = []
    try:
        if text.startswith("[", pos):
            pos = _skip_ws(text, pos + 1)
            if text.startswith("]", pos):
                pos += 1
            else:
                while True:
                    value, end = decoder.raw_decode(text, pos)
                    items.append((_line_at(text, pos), value))
                    pos = _skip_ws(text, end)
                    if text.startswith(",", pos):
                        pos = _skip_ws(text, pos + 1)
                        continue
                    if text.startswith("]", pos):
                        pos += 1
                        break
                    raise json.JSONDecodeError("expected ',' or ']'", text, pos)
        else:
            start = pos
            value, pos = decoder.raw_decode(text, pos)
            items.append((_line_at(text, start), value))
        pos = _skip_ws(text, pos)
        if pos != len(text):
            raise json.JSONDecodeError("extra data after the JSON value", text, pos)
    except json.JSONDecodeError as exc:
        gaps.append(_gap(f"{label}:{exc.lineno}", "malformed", f"invalid JSON: {exc.msg} (column {exc.colno})"))
        return
    except ValueError as exc:  # a duplicate key (from the hook), or a number too long to convert
        gaps.append(_gap(f"{label}:{_line_at(text, pos)}", "malformed", f"invalid JSON: {exc}"))
        return
    except RecursionError:
        gaps.append(_gap(label, "too-large", "JSON nests too deeply; not read"))
        return
    yield from items


def _walk(root: Path) -> list[str]:
    """Record files under a directory, in sorted order."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        files.extend(Path(dirpath, f) for f in filenames if Path(f).suffix.lower() in _SUFFIXES)
    return [str(f) for f in sorted(files) if f.is_file()]


def _duplicate_ids(records: Sequence[Mapping[str, Any]]) -> list[CoverageGap]:
    """Two different records with one id: a regulator cannot tell which one the report means."""
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_id.setdefault(str(r["id"]), []).append(r)
    out = []
    for rid, same in sorted(by_id.items()):
        if len(same) < 2:
            continue
        where = ", ".join(f"{r['file']}:{r['line']}" if r.get("line") else str(r["file"]) for r in same)
        out.append(
            _gap(
                where.split(", ")[0],
                "duplicate-id",
                f"record id {rid} is used by {len(same)} records ({where}); give each record its own id",
            )
        )
    return out
