"""The check catalog as the engine sees it (the checks live in the top-level ``checks/`` folder)."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from typing import cast

from auditor.checkapi import Check
from auditor.checklist import ITEMS_BY_KEY


@functools.cache
def all_checks() -> Sequence[Check]:
    """Every check, in catalog order, validated once: ids unique, item keys real."""
    module = importlib.import_module("auditor_checks")
    checks = cast(Sequence[Check], module.ALL_CHECKS)
    seen: set[str] = set()
    for check in checks:
        meta = check.meta
        if meta.id in seen:
            raise RuntimeError(f"duplicate check id {meta.id}")
        seen.add(meta.id)
        unknown = [k for k in meta.items if k not in ITEMS_BY_KEY]
        if unknown:
            raise RuntimeError(f"check {meta.id} names unknown checklist items {unknown}")
        stray = sorted(set(meta.facet_severity) - set(meta.facets))
        if stray:
            raise RuntimeError(f"check {meta.id} gives severities to undeclared facets {stray}")
    return checks
