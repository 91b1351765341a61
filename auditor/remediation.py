"""Remediation plans: who fixes a finding, what management answers, and by when.

A plan is a YAML file the operator keeps beside its profile (``audit --remediation-plan FILE``).
Entries match findings the way waivers do (auditor/profiles.py): a ``check`` id or a checklist
``item`` key, plus ``subject`` glob patterns on namespace, kind and name. The first matching
entry wins. A plan never changes a status: it only adds owner, management response and due date.

```yaml
entries:
  - id: RP-2026-031
    check: image-pinned-digest
    subject: {namespace: brand-uk, kind: Deployment, name: promo}
    owner: "Promotions team (A. Mensah)"
    response: "Accepted. The release pipeline resolves tags to digests from 2026-12."
    due: "2026-12-15"
```
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from auditor import yaml_text
from auditor.checklist import ITEMS_BY_KEY
from auditor.errors import InputError
from auditor.models import Subject, selects

_REQUIRED_TEXT = ("id", "owner", "response")
_ENTRY_KEYS = frozenset({"id", "check", "item", "subject", "owner", "response", "due"})
_SUBJECT_KEYS = frozenset({"namespace", "kind", "name"})


@dataclass(frozen=True)
class PlanEntry:
    """One agreed remediation: the findings it covers, its owner, the response and the due date."""

    id: str
    owner: str
    response: str
    due: dt.date
    check: str | None = None
    item: str | None = None
    subject: Mapping[str, str] = field(default_factory=dict)

    def matches(self, check_id: str, items: Sequence[str], subject: Subject) -> bool:
        return selects(self.check, self.item, self.subject, check_id, items, subject)

    def for_finding(self) -> dict[str, str]:
        """What a matched finding carries in report.json (``finding["remediation_plan"]``)."""
        return {"id": self.id, "owner": self.owner, "response": self.response, "due": self.due.isoformat()}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.for_finding(), "subject": dict(self.subject)}
        if self.check:
            out["check"] = self.check
        if self.item:
            out["item"] = self.item
        return out


@dataclass(frozen=True)
class RemediationPlan:
    """A loaded, validated plan file."""

    source: str
    sha256: str
    entries: Sequence[PlanEntry]

    def match(self, check_id: str, items: Sequence[str], subject: Subject) -> PlanEntry | None:
        for entry in self.entries:
            if entry.matches(check_id, items, subject):
                return entry
        return None


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key == "id":
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if value is None else f"got {type(value).__name__} {value!r}"
        raise InputError(f"{where}.{key}: a non-empty string is required ({got})")
    return value.strip()


def _entry(raw: Any, where: str, check_ids: Collection[str]) -> PlanEntry:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: an entry is a mapping with id, check or item, subject, owner, response, due")
    unknown = sorted(str(k) for k in raw if k not in _ENTRY_KEYS)
    if unknown:
        raise InputError(f"{where}.{unknown[0]}: unknown field (allowed: {', '.join(sorted(_ENTRY_KEYS))})")
    texts = {key: _text(raw, key, where) for key in _REQUIRED_TEXT}
    check, item = raw.get("check"), raw.get("item")
    if check is None and item is None:
        raise InputError(f"{where}: give check (a check id) or item (a checklist key), or both")
    if check is not None and (not isinstance(check, str) or (check_ids and check not in check_ids)):
        raise InputError(f"{where}.check: {check!r} is not a check id (see `auditor checks`)")
    if item is not None and (not isinstance(item, str) or item not in ITEMS_BY_KEY):
        raise InputError(f"{where}.item: {item!r} is not a checklist item key (see CHECKLIST.md)")
    subject = raw.get("subject", {})
    if not isinstance(subject, dict):
        raise InputError(f"{where}.subject: a mapping of namespace, kind and name glob patterns is required")
    for key, pattern in subject.items():
        if key not in _SUBJECT_KEYS:
            raise InputError(f"{where}.subject.{key}: unknown field (allowed: kind, name, namespace)")
        if not isinstance(pattern, str):
            raise InputError(f"{where}.subject.{key}: a glob pattern (string) is required, got {pattern!r}")
    due_raw = raw.get("due")
    try:
        due = dt.date.fromisoformat(str(due_raw))
    except ValueError:
        got = "missing" if due_raw is None else repr(due_raw)
        raise InputError(f"{where}.due: a date (YYYY-MM-DD) is required, got {got}") from None
    return PlanEntry(
        id=texts["id"],
        owner=texts["owner"],
        response=texts["response"],
        due=due,
        check=check,
        item=item,
        subject={k: str(v) for k, v in subject.items()},
    )


def parse(text: str, source: str, *, check_ids: Collection[str] = ()) -> RemediationPlan:
    """Validate a plan; every error names the file and the field (exit 2)."""
    try:
        raw = yaml_text.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(
            f"{source}{where}: remediation plan is not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise InputError(f"{source}: entries: a remediation plan is a YAML mapping with a list under `entries`")
    unknown = sorted(str(k) for k in raw if k != "entries")
    if unknown:
        raise InputError(f"{source}: {unknown[0]}: unknown field (a plan holds only `entries`)")
    entries = [_entry(e, f"{source}: entries[{i}]", check_ids) for i, e in enumerate(raw["entries"])]
    seen: set[str] = set()
    for i, e in enumerate(entries):
        if e.id in seen:
            raise InputError(f"{source}: entries[{i}].id: {e.id!r} is used by an earlier entry")
        seen.add(e.id)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return RemediationPlan(source=source, sha256=digest, entries=entries)


def load(path: str, *, check_ids: Collection[str] = ()) -> RemediationPlan:
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"{path}: cannot read remediation plan ({reason})") from None
    return parse(text, path, check_ids=check_ids)
