"""The output axis: every format renders the same report model to one file."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any


class Output(abc.ABC):
    """One output format. Implementations live beside this file, one module each."""

    filename: str

    @abc.abstractmethod
    def render(self, report: dict[str, Any], *, json_sha256: str, evidence: bytes | None = None) -> bytes:
        """The file's bytes. ``json_sha256`` is the digest of report.json, for cross-reference; ``evidence`` is the
        snapshot's canonical bytes, for formats that carry it (the PDF embeds it)."""

    def write(self, report: dict[str, Any], out_dir: Path, *, json_sha256: str, evidence: bytes | None = None) -> Path:
        path = out_dir / self.filename
        path.write_bytes(self.render(report, json_sha256=json_sha256, evidence=evidence))
        return path
