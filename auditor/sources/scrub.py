"""Remove secret values from objects before they become evidence.

Keep only what checks need. Secrets and ConfigMaps keep their key names only; kubectl's
last-applied annotation (a full copy of the object, Secret data included) is dropped.
Every piece of free text a manifest can carry a credential in becomes a classification
(secret-like or not, and why) plus a fingerprint, never the text itself:

- env literal values (``env[].value``), JVM ``-Dkey=value`` properties inside them included;
- container ``command`` and ``args`` (flags keep their names: ``--db-password=<redacted ...>``;
  the value after a secret-named flag, ``--password X``, is judged by the flag's name; shell
  snippets such as ``sh -c "export DB_PASSWORD=..."`` are judged by what they assign);
- exec commands and HTTP headers of probes and lifecycle hooks (``Authorization: Bearer ...``);
- annotation values, except the few whose values checks read.

The fingerprint is a truncated, domain-separated SHA-256: it tells whether two values are
equal (the same literal in two places, a value changed since last night), not what they are.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from auditor.kube import dig, template_path_of
from auditor.models import ENV_LITERAL_KEY, LITERALS_KEY

KEYS_KEY = "x-auditor-keys"
REDACTED = "<redacted by auditor>"
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_FINGERPRINT_DOMAIN = b"auditor/fingerprint/v1\x00"

# Annotations whose values checks read; every other annotation value is redacted.
_KEPT_ANNOTATIONS = frozenset(
    {
        "auditor.dev/startup-seconds",
        "rbac.authorization.kubernetes.io/autoupdate",
        "reloader.stakater.com/auto",
        "reloader.stakater.com/search",
        # mesh membership and mTLS policy (net.mtls-strict): enumerations, not free text
        "linkerd.io/inject",
        "config.linkerd.io/default-inbound-policy",
        "sidecar.istio.io/inject",
        "sidecar.opentelemetry.io/inject",
    }
)

_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|APIKEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|"
    r"AUTH_?KEY|CLIENT_?SECRET|DSN|CONN(ECTION)?_?STR(ING)?|SIGNING_?KEY|ENCRYPTION_?KEY|HMAC|"
    # abbreviations: PWD, DB_PWD, DB_PASS, SMTP_PASS (but not PASSTHROUGH, BYPASS...)
    r"(^|[_.-])PWD($|[_.-])|(^|[_.-])PASS($|[_.-])|"
    # a credential built on a bare KEY: STRIPE_KEY, AZURE_STORAGE_KEY, KEY
    r"(^|[_.-])KEY$)",
    re.IGNORECASE,
)
_NOT_SECRET_NAME = re.compile(
    r"(_FILE|_PATH|_DIR|_URL_PATH|_TTL|_TIMEOUT|_EXPIRY|_LENGTH|_SIZE|_ENABLED|_HEADER|_NAME|_ID|_REF)$|"
    r"(^|[_.-])(PUBLIC|PUB|CACHE|PARTITION|SORT|ROUTING|HASH|PRIMARY|FOREIGN|IDEMPOTENCY|SHARD|LOOKUP)[_.-]?KEY$",
    re.IGNORECASE,
)
_VALUE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("value matches an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    # PEM and OpenSSH keys (any label: RSA, EC, OPENSSH, PKCS8, ED25519...), with any run of dashes
    ("value is a PEM private key", re.compile(r"-{2,}\s*BEGIN [A-Z0-9 ]*PRIVATE KEY\s*-{2,}")),
    ("value is a PGP private key block", re.compile(r"-{2,}\s*BEGIN PGP PRIVATE KEY BLOCK\s*-{2,}")),
    ("value is a URL with embedded credentials", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)),
    ("value matches a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("value matches a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("value matches a Stripe secret key", re.compile(r"\b[sr]k_(live|test)_[A-Za-z0-9]{16,}")),
    ("value is a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")),
    ("value is an HTTP Authorization credential", re.compile(r"\b(Bearer|Basic|Digest)\s+[A-Za-z0-9._~+/=-]{8,}")),
)
_PLACEHOLDER = re.compile(
    r"^(|true|false|yes|no|on|off|none|null|\d+(\.\d+)?[a-z]{0,2}|/.*|\$\(.*\)|\$\{.*\})$", re.IGNORECASE
)
# NAME=value, -Dname=value, --name=value, name: value inside free text (shell snippets, JAVA_OPTS)
_ASSIGNMENT = re.compile(r"(?:^|[\s;&|'\"(])(?:export\s+|-D|--?)?([A-Za-z_][A-Za-z0-9_.-]*)\s*[=:]\s*(\S+)")
_LONG_FLAG = re.compile(r"^--[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_SHORT_FLAG = re.compile(r"^-[A-Za-z]$")
_FLAG_WITH_VALUE = re.compile(r"^(--?[A-Za-z][A-Za-z0-9_.-]{0,63})=(.*)$", re.DOTALL)


def fingerprint(value: str) -> str:
    """A short, domain-separated digest: equal values have equal fingerprints; the value is not kept."""
    return hashlib.sha256(_FINGERPRINT_DOMAIN + value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _name_suggests_secret(name: str) -> bool:
    normalized = name.replace("-", "_").replace(".", "_")
    return bool(_SECRET_NAME.search(normalized)) and not _NOT_SECRET_NAME.search(normalized)


def classify_text(value: str, name: str = "") -> dict[str, Any]:
    """Classify free text that may hold a credential. The result carries no part of the value."""
    out: dict[str, Any] = {"secretLike": False, "length": len(value), "fingerprint": fingerprint(value)}
    for why, pattern in _VALUE_PATTERNS:
        if pattern.search(value):
            out.update(secretLike=True, why=why)
            return out
    if name and _name_suggests_secret(name) and not _PLACEHOLDER.match(value.strip()):
        out.update(secretLike=True, why=f"name {name} suggests a secret")
        return out
    for m in _ASSIGNMENT.finditer(value):
        key, assigned = m.group(1), m.group(2).strip("'\";")
        if _name_suggests_secret(key) and not _PLACEHOLDER.match(assigned):
            out.update(secretLike=True, why=f"text assigns {key}")
            return out
    return out


def classify_literal(name: str, value: str) -> dict[str, Any]:
    """Classify an env literal (name and value). The result carries no part of the value."""
    return classify_text(value, name)


def _placeholder(info: dict[str, Any]) -> str:
    kind = "secret-like text" if info["secretLike"] else "text"
    return f"<redacted {kind}: {info['length']} chars, fingerprint {info['fingerprint']}>"


def _redact_argv(items: list[Any], field: str, literals: list[dict[str, Any]]) -> list[Any]:
    """Flags keep their names; every value becomes a placeholder, classified by the flag that names it."""
    out: list[Any] = []
    previous_flag = ""
    for i, arg in enumerate(items):
        if not isinstance(arg, str):
            out.append(arg)
            previous_flag = ""
            continue
        if _LONG_FLAG.match(arg) or _SHORT_FLAG.match(arg):
            out.append(arg)
            previous_flag = arg.lstrip("-")
            continue
        flag_value = _FLAG_WITH_VALUE.match(arg)
        if flag_value:
            flag, value = flag_value.group(1), flag_value.group(2)
            info = classify_text(value, flag.lstrip("-"))
            out.append(f"{flag}={_placeholder(info)}")
        else:
            info = classify_text(arg, previous_flag)
            out.append(_placeholder(info))
        literals.append({"field": f"{field}[{i}]", **info})
        previous_flag = ""
    return out


# Security settings kept in annotations (AppArmor before 1.30, the legacy alpha seccomp field): values are
# profile names, not free text, and pod-hardening checks and the Pod Security Standards read them.
_KEPT_ANNOTATION_PREFIXES = (
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
    "container.seccomp.security.alpha.kubernetes.io/",
    # OpenTelemetry operator injection (obs.tracing): "true", "false" or an Instrumentation's name
    "instrumentation.opentelemetry.io/inject-",
)


def _scrub_annotations(meta: Any) -> None:
    if not isinstance(meta, dict) or not isinstance(meta.get("annotations"), dict):
        return
    annotations = meta["annotations"]
    annotations.pop(_LAST_APPLIED, None)
    for key, value in list(annotations.items()):
        if key in _KEPT_ANNOTATIONS or key.startswith(_KEPT_ANNOTATION_PREFIXES) or not isinstance(value, str):
            continue
        if not value:
            continue
        annotations[key] = _placeholder(classify_text(value, key.rsplit("/", 1)[-1]))


def _scrub_http_get(handler: Any) -> None:
    """Probe and lifecycle handlers: exec commands and HTTP header values are free text."""
    if not isinstance(handler, dict):
        return
    exec_block = handler.get("exec")
    if isinstance(exec_block, dict) and isinstance(exec_block.get("command"), list):
        exec_block["command"] = _redact_argv(exec_block["command"], "exec.command", [])
    http = handler.get("httpGet")
    if isinstance(http, dict) and isinstance(http.get("httpHeaders"), list):
        for header in http["httpHeaders"]:
            if isinstance(header, dict) and isinstance(header.get("value"), str):
                header["value"] = _placeholder(classify_text(header["value"], str(header.get("name", ""))))


# Environment switches whose values checks read: short enumerations, kept only when they look like one.
_KEPT_ENV = frozenset({"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"})
_SWITCH = re.compile(r"[A-Za-z0-9_,.-]{1,32}")


def _scrub_container(c: dict[str, Any]) -> None:
    env = c.get("env")
    if isinstance(env, list):
        for entry in env:
            if isinstance(entry, dict) and "value" in entry:
                if entry.get("name") in _KEPT_ENV and _SWITCH.fullmatch(str(entry["value"])):
                    continue  # an on/off switch checks read (obs.tracing), not a secret
                value = entry.pop("value")
                entry[ENV_LITERAL_KEY] = classify_literal(
                    str(entry.get("name", "")), "" if value is None else str(value)
                )
    literals: list[dict[str, Any]] = []
    for argv in ("command", "args"):
        items = c.get(argv)
        if isinstance(items, list):
            c[argv] = _redact_argv(items, argv, literals)
    if literals:
        c[LITERALS_KEY] = literals
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        _scrub_http_get(c.get(probe))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            _scrub_http_get(lifecycle.get(hook))


def scrub(obj: dict[str, Any]) -> dict[str, Any]:
    """Scrub one object in place (it is the source's own copy) and return it."""
    _scrub_annotations(obj.get("metadata"))
    kind = obj.get("kind")
    if kind in ("Secret", "ConfigMap"):
        keys: set[str] = set()
        for field in ("data", "stringData", "binaryData"):
            block = obj.pop(field, None)
            if isinstance(block, dict):
                keys.update(str(k) for k in block)
        obj[KEYS_KEY] = sorted(keys)
        return obj
    # The pod template (metadata and spec): the Pod itself, a PodTemplate's (not a workload, but its env literals
    # are secrets all the same), or a workload's.
    if kind == "Pod":
        template: Any = obj
    elif kind == "PodTemplate":
        template = obj.get("template")
    else:
        path = template_path_of(obj)
        template = dig(obj, *path) if path is not None else None
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return obj
    if template is not obj:
        _scrub_annotations(template.get("metadata"))
    if kind == "CronJob":
        _scrub_annotations(dig(obj, "spec", "jobTemplate", "metadata"))
    spec = template["spec"]
    for field in ("initContainers", "containers", "ephemeralContainers"):
        containers = spec.get(field)
        if isinstance(containers, list):
            for c in containers:
                if isinstance(c, dict):
                    _scrub_container(c)
    return obj
