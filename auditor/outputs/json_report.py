"""report.json: the source of truth, validated against the shipped JSON Schema."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import orjson

from auditor.outputs.interface import Output


def render_json(report: dict[str, Any]) -> bytes:
    """Deterministic bytes (sorted keys, fixed indentation): the same report model always gives the same file."""
    try:
        return orjson.dumps(report, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # integers beyond 64 bits
        return json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"


def report_schema() -> Any:
    return json.loads(resources.files("auditor").joinpath("data/report.schema.json").read_text("utf-8"))


class JsonOutput(Output):
    filename = "report.json"

    def render(self, report: dict[str, Any], *, json_sha256: str, evidence: bytes | None = None) -> bytes:
        return render_json(report)
