"""What the user sees: stderr logging (text or JSON lines), colour, progress, and the gate's explanation.

stdout carries results (verdict lines and what explains them, catalogs, diffs);
stderr carries everything else. Colour and progress appear only on a terminal:
never when the stream is not a TTY, never with ``--no-color`` or a non-empty
``NO_COLOR`` (https://no-color.org), never in ``--log-format json``.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

import click

from auditor.models import subject_text

LOGGER_NAME = "auditor"
log = logging.getLogger(LOGGER_NAME)

PROGRESS_AFTER_SECONDS = 2.0
"""A phase that runs longer than this shows a progress line (terminal only)."""

# Input problems that make a verdict incomplete (auditor.assessment.INCOMPLETE_GAPS; not imported
# from there so that help and completion stay fast).
INPUT_PROBLEM_GAPS = frozenset({"unreadable", "malformed", "invalid-object", "too-large"})
SCOPE_GAPS = frozenset({"scope-unknown", "empty-scope"})
FINDINGS_PER_ITEM = 3
LISTED_GAPS = 5


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class Verbosity(enum.IntEnum):
    QUIET = 0
    """Errors and verdict lines only."""
    NORMAL = 1
    VERBOSE = 2
    """Also what was read, how long each phase took and what was written."""


def color_wanted(stream: TextIO, *, no_color_flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never when the user opted out (flag or NO_COLOR)."""
    env = os.environ if environ is None else environ
    if no_color_flag or env.get("NO_COLOR", ""):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def default_log_format() -> LogFormat:
    """Text for a person at a terminal; JSON lines off a terminal (cron, CI, a pod's log), which log shippers
    parse. AUDITOR_LOG_FORMAT=text|json fixes it either way, and --log-format wins over both."""
    wanted = os.environ.get("AUDITOR_LOG_FORMAT", "").strip().lower()
    if wanted in (LogFormat.TEXT, LogFormat.JSON):
        return LogFormat(wanted)
    try:
        return LogFormat.TEXT if sys.stderr.isatty() else LogFormat.JSON
    except (AttributeError, ValueError):
        return LogFormat.TEXT


@dataclass
class Settings:
    """The global output options (-q/-v, --log-format, --no-color), shared by every command."""

    verbosity: Verbosity = Verbosity.NORMAL
    log_format: LogFormat = field(default_factory=default_log_format)
    no_color: bool = False

    @property
    def quiet(self) -> bool:
        return self.verbosity is Verbosity.QUIET

    def color_out(self) -> bool:
        return color_wanted(sys.stdout, no_color_flag=self.no_color)

    def color_err(self) -> bool:
        return self.log_format is LogFormat.TEXT and color_wanted(sys.stderr, no_color_flag=self.no_color)

    def progress_enabled(self) -> bool:
        if self.quiet or self.log_format is LogFormat.JSON:
            return False
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False


settings = Settings()
_err_lock = threading.Lock()
_progress: _Progress | None = None


# ---------------------------------------------------------------------- logging


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, then the record's fields (target, file, path, ...)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        if record.name != LOGGER_NAME:  # a library's record (WeasyPrint, Python warnings)
            entry["logger"] = record.name
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update({k: v for k, v in fields.items() if k not in entry})
        return json.dumps(entry, ensure_ascii=False, default=str)


_LEVEL_STYLE = {
    logging.ERROR: {"fg": "red", "bold": True},
    logging.WARNING: {"fg": "yellow"},
    logging.DEBUG: {"dim": True},
}


class _TextFormatter(logging.Formatter):
    """``auditor: message`` (``auditor: error: message`` for errors), coloured on a terminal."""

    def __init__(self, color: bool) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        label = "error: " if record.levelno >= logging.ERROR else ""
        text = f"{label}{record.getMessage()}"
        if self.color and record.levelno in _LEVEL_STYLE:
            text = click.style(text, **_LEVEL_STYLE[record.levelno])  # type: ignore[arg-type]
        return f"auditor: {text}"


class _StderrHandler(logging.Handler):
    """Writes to the current sys.stderr, clearing a progress line first."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with _err_lock:
            if _progress is not None:
                _progress.clear_locked()
            sys.stderr.write(line + "\n")
            sys.stderr.flush()


def configure(new: Settings | None = None) -> None:
    """(Re)apply the settings to the ``auditor`` logger. Idempotent."""
    global settings
    if new is not None:
        settings = new
    handler = _StderrHandler()
    if settings.log_format is LogFormat.JSON:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter(settings.color_err()))
    log.handlers[:] = [handler]
    log.propagate = False
    levels = {
        Verbosity.QUIET: logging.ERROR,
        Verbosity.NORMAL: logging.INFO if settings.log_format is LogFormat.JSON else logging.WARNING,
        Verbosity.VERBOSE: logging.DEBUG,
    }
    log.setLevel(levels[settings.verbosity])
    # Libraries' warnings (WeasyPrint's, Python's own) take the same way out, so a JSON log stays JSON.
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.WARNING, levels[settings.verbosity]))
    logging.captureWarnings(True)


def error(message: str, **fields: Any) -> None:
    log.error(message, extra={"fields": fields})


def warning(message: str, **fields: Any) -> None:
    log.warning(message, extra={"fields": fields})


def info(message: str, **fields: Any) -> None:
    log.info(message, extra={"fields": fields})


def debug(message: str, **fields: Any) -> None:
    log.debug(message, extra={"fields": fields})


# ---------------------------------------------------------------------- progress


class _Progress:
    """A one-line spinner on stderr, shown once a phase has run for PROGRESS_AFTER_SECONDS."""

    FRAMES = "|/-\\"

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.shown = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="auditor-progress", daemon=True)

    def _run(self) -> None:
        if self.stop.wait(PROGRESS_AFTER_SECONDS):
            return
        frame = 0
        while not self.stop.is_set():
            with _err_lock:
                if self.stop.is_set():
                    break
                elapsed = time.monotonic() - self.started
                sys.stderr.write(f"\r\x1b[2K{self.FRAMES[frame % 4]} {self.label} ({elapsed:.0f} s)")
                sys.stderr.flush()
                self.shown = True
            frame += 1
            self.stop.wait(0.25)

    def clear_locked(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self.shown = False


@contextmanager
def progress(label: str) -> Iterator[None]:
    """Show ``label`` with a spinner on a terminal if the block takes longer than about 2 s."""
    global _progress
    started = time.monotonic()
    if not settings.progress_enabled() or _progress is not None:
        yield
        debug(f"{label}: {time.monotonic() - started:.2f} s", phase=label)
        return
    current = _Progress(label)
    _progress = current
    current.thread.start()
    try:
        yield
    finally:
        current.stop.set()
        current.thread.join()
        with _err_lock:
            current.clear_locked()
        _progress = None
        debug(f"{label}: {time.monotonic() - started:.2f} s", phase=label)


def step(message: str, **fields: Any) -> None:
    """A step inside a long phase (a cluster, a resource kind): shown in the spinner's line on a terminal,
    logged at debug level (`-v`, or JSON lines for cron)."""
    current = _progress
    if current is not None:
        with _err_lock:
            current.label = message
    debug(message, **fields)


# ---------------------------------------------------------------------- results on stdout


_VERDICT_COLOR = {"pass": "green", "blocked": "red", "incomplete": "yellow"}


def echo(text: str = "") -> None:
    """A result line on stdout (colour codes stripped unless stdout is a colour terminal)."""
    click.echo(text, color=settings.color_out())


def style(text: str, **kwargs: Any) -> str:
    return click.style(text, **kwargs) if settings.color_out() else text


def verdict_line(profile_id: str, summary: Mapping[str, Any], written: Sequence[str]) -> str:
    counts = summary["items"]
    verdict = str(summary["verdict"])
    word = style(verdict.upper(), fg=_VERDICT_COLOR.get(verdict), bold=True)
    return (
        f"{profile_id}: {word} (exit {summary['exit_code']}) - items pass {counts['pass']}, "
        f"fail {counts['fail']}, waived {counts['waived']}, not assessed {counts['not_assessed']}, "
        f"n/a {counts['not_applicable']}" + (f" -> {', '.join(written)}" if written else "")
    )


def subject_label(subject: Mapping[str, Any]) -> str:
    return subject_text(subject)


def _location(finding: Mapping[str, Any]) -> str:
    loc = finding.get("location")
    if not loc:
        return ""
    return f"{loc['file']}:{loc['line']}" if loc.get("line") else str(loc["file"])


def explain(report: Mapping[str, Any]) -> list[str]:
    """Why the gate decided as it did, in a few lines: what blocks and how to fix it, or what evidence is missing."""
    verdict = report["summary"]["verdict"]
    lines = (
        _explain_blocked(report)
        if verdict == "blocked"
        else _explain_incomplete(report)
        if verdict == "incomplete"
        else []
    )
    deferred = [i["key"] for i in report["items"] if i.get("deferred")]
    if deferred:
        lines.append(
            f"  deferred to the platform audit (runtime items without their evidence, not held against a release): "
            f"{', '.join(deferred)}"
        )
    return lines


def _explain_blocked(report: Mapping[str, Any]) -> list[str]:
    remediation = {c["id"]: c.get("remediation", "") for c in report.get("checks", [])}
    lines: list[str] = []
    for item in report["items"]:
        if not (item.get("blocking") and item["status"] == "fail"):
            continue
        lines.append(f"  {style('FAIL', fg='red', bold=True)} {item['key']} ({item['severity']}): {item['title']}")
        failing = [f for f in report["findings"] if f["status"] == "fail" and item["key"] in f["items"]]
        for f in failing[:FINDINGS_PER_ITEM]:
            where = _location(f)
            lines.append(f"    {subject_label(f['subject'])}" + (f" ({where})" if where else "") + f": {f['message']}")
        if len(failing) > FINDINGS_PER_ITEM:
            lines.append(f"    ... and {len(failing) - FINDINGS_PER_ITEM} more (see the report)")
        for check_id in dict.fromkeys(f["check"] for f in failing):
            if remediation.get(check_id):
                lines.append(f"    fix ({check_id}): {remediation[check_id]}")
    lacking = [i for i in report["items"] if i.get("blocking") and i["status"] == "not_assessed"]
    if lacking:
        lines.append(f"  also {len(lacking)} blocking item(s) lack evidence: {', '.join(i['key'] for i in lacking)}")
    return lines


def _explain_incomplete(report: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    by_supplier: dict[str, list[str]] = {}
    for item in report["items"]:
        if item.get("blocking") and item["status"] == "not_assessed":
            supplier = item.get("supplied_by") or item.get("reason") or "evidence this run did not collect"
            by_supplier.setdefault(supplier, []).append(item["key"])
    for supplier, keys in by_supplier.items():
        lines.append(f"  {style('MISSING', fg='yellow', bold=True)} {', '.join(keys)}")
        lines.append(f"    supplied by: {supplier}")
    coverage = report.get("coverage", [])
    for title, kinds in (("input problems", INPUT_PROBLEM_GAPS), ("scope gaps", SCOPE_GAPS)):
        gaps = [g for g in coverage if g["gap"] in kinds]
        if not gaps:
            continue
        lines.append(f"  {style(title.upper(), fg='yellow', bold=True)} {len(gaps)}")
        lines.extend(f"    {g['target']}: {g['reason']}" for g in gaps[:LISTED_GAPS])
        if len(gaps) > LISTED_GAPS:
            lines.append(f"    ... and {len(gaps) - LISTED_GAPS} more (see the report's coverage section)")
    return lines
