"""Safe YAML for the files people write (profiles, remediation plans), with dates kept as text.

YAML 1.1 turns `2027-06-30` into a date and rejects `2026-13-01` inside the parser with no field to
name; kept as text, every date is checked by the code that reads the field, which names it.
Parsed by libyaml when PyYAML has it (its wheels do): the same semantics, in C.
"""

from __future__ import annotations

from typing import Any

import yaml

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TextDateLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    pass


def _date_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(node.value)


_TextDateLoader.add_constructor("tag:yaml.org,2002:timestamp", _date_as_text)


def load(text: str) -> Any:
    """Parse one YAML document safely, dates as text. Raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_TextDateLoader)  # a SafeLoader subclass
