"""Remove secret values from objects before they become evidence.

Secrets and ConfigMaps keep their key names only; env literals are replaced by a
classification (secret-like or not, and why) that never includes the value;
secret-looking command-line flags are redacted; kubectl's last-applied
annotation (a full copy of the object, Secret data included) is dropped.
"""

from __future__ import annotations

import re
from typing import Any

from auditor.kube import pod_spec_of
from auditor.models import ENV_LITERAL_KEY

KEYS_KEY = "x-auditor-keys"
REDACTED = "<redacted by auditor>"
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|APIKEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|"
    r"AUTH_?KEY|CLIENT_?SECRET|DSN|CONN(ECTION)?_?STR(ING)?|SIGNING_?KEY|ENCRYPTION_?KEY|HMAC)",
    re.IGNORECASE,
)
_NOT_SECRET_NAME = re.compile(
    r"(_FILE|_PATH|_DIR|_URL_PATH|_TTL|_TIMEOUT|_EXPIRY|_LENGTH|_SIZE|_ENABLED|_HEADER|_NAME|_ID)$", re.IGNORECASE
)
_VALUE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("value matches an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("value is a PEM private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("value is a URL with embedded credentials", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)),
    ("value matches a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("value matches a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("value matches a Stripe secret key", re.compile(r"\b[sr]k_(live|test)_[A-Za-z0-9]{16,}")),
    ("value is a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")),
)
_PLACEHOLDER = re.compile(
    r"^(|true|false|yes|no|on|off|none|null|\d+(\.\d+)?[a-z]{0,2}|/.*|\$\(.*\)|\$\{.*\})$", re.IGNORECASE
)
_SECRET_FLAG = re.compile(
    r"^(--?[A-Za-z0-9_.-]*(password|passwd|secret|token|api-?key|private-?key|credential)[A-Za-z0-9_.-]*=)(.+)$",
    re.IGNORECASE,
)


def classify_literal(name: str, value: str) -> dict[str, Any]:
    """Classify an env literal. The result carries no part of the value."""
    for why, pattern in _VALUE_PATTERNS:
        if pattern.search(value):
            return {"secretLike": True, "why": why, "length": len(value)}
    if _SECRET_NAME.search(name) and not _NOT_SECRET_NAME.search(name) and not _PLACEHOLDER.match(value.strip()):
        return {"secretLike": True, "why": f"name {name} suggests a secret", "length": len(value)}
    return {"secretLike": False, "length": len(value)}


def scrub(obj: dict[str, Any]) -> dict[str, Any]:
    """Scrub one object in place (it is the source's own copy) and return it."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(_LAST_APPLIED, None)
    kind = obj.get("kind")
    if kind in ("Secret", "ConfigMap"):
        keys: set[str] = set()
        for field in ("data", "stringData", "binaryData"):
            block = obj.pop(field, None)
            if isinstance(block, dict):
                keys.update(str(k) for k in block)
        obj[KEYS_KEY] = sorted(keys)
        return obj
    spec = pod_spec_of(obj)
    if spec is None and kind == "PodTemplate":  # not a workload, but its env literals are secrets all the same
        template = obj.get("template")
        spec = template.get("spec") if isinstance(template, dict) and isinstance(template.get("spec"), dict) else None
    if spec is None:
        return obj
    for field in ("initContainers", "containers", "ephemeralContainers"):
        containers = spec.get(field)
        if not isinstance(containers, list):
            continue
        for c in containers:
            if not isinstance(c, dict):
                continue
            env = c.get("env")
            if isinstance(env, list):
                for entry in env:
                    if isinstance(entry, dict) and "value" in entry:
                        value = entry.pop("value")
                        entry[ENV_LITERAL_KEY] = classify_literal(
                            str(entry.get("name", "")), "" if value is None else str(value)
                        )
            for argv in ("command", "args"):
                items = c.get(argv)
                if isinstance(items, list):
                    c[argv] = [_redact_flag(a) for a in items]
    return obj


def _redact_flag(arg: Any) -> Any:
    if not isinstance(arg, str):
        return arg
    m = _SECRET_FLAG.match(arg)
    return f"{m.group(1)}{REDACTED}" if m else arg
