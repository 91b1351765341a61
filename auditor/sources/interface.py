"""The source axis: what every source returns."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from auditor.models import CoverageGap, EvidenceKind, K8sObject, SourceRecord


@dataclass
class Collected:
    """What one source saw (objects), could not see (gaps), and which evidence kinds it provides."""

    objects: list[K8sObject] = field(default_factory=list)
    gaps: list[CoverageGap] = field(default_factory=list)
    records: list[SourceRecord] = field(default_factory=list)
    kinds: set[EvidenceKind] = field(default_factory=set)


class Source(abc.ABC):
    """A source of evidence. Implementations live beside this file, one module each."""

    @abc.abstractmethod
    def collect(self) -> Collected:
        """Read the outside world once. Never raises for bad input: bad input is a gap."""
