"""Jurisdiction profiles: policy as data.

A profile says which namespaces are in scope, which items apply at what severity,
what blocks a release, which regulatory controls each item maps to (with the
confirmed/unconfirmed status carried from shared/JURISDICTIONS.md), parameters,
waivers and report retention. Shipped profiles are starting points; a user's own
file loads the same way.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from auditor import yaml_text
from auditor.checklist import FAMILIES, ITEMS_BY_KEY
from auditor.errors import ProfileError
from auditor.models import Severity, Subject, selects


@dataclass(frozen=True)
class Control:
    """One regulatory or framework control an item gives evidence for."""

    framework: str
    ref: str
    status: str
    """``confirmed`` (public primary source), ``secondary`` or ``unconfirmed`` (the operator must confirm)."""
    note: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"framework": self.framework, "ref": self.ref, "status": self.status}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Waiver:
    """An approved exception: a check or item, for matching subjects, until it expires."""

    id: str
    reason: str
    approver: str
    ticket: str
    expires: dt.date
    check: str | None = None
    item: str | None = None
    subject: Mapping[str, str] = field(default_factory=dict)

    def expired(self, as_of: dt.date) -> bool:
        return as_of > self.expires

    def matches(self, check_id: str, items: Sequence[str], subject: Subject) -> bool:
        return selects(self.check, self.item, self.subject, check_id, items, subject)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "reason": self.reason,
            "approver": self.approver,
            "ticket": self.ticket,
            "expires": self.expires.isoformat(),
            "subject": dict(self.subject),
        }
        if self.check:
            out["check"] = self.check
        if self.item:
            out["item"] = self.item
        return out


@dataclass(frozen=True)
class Profile:
    """A loaded, validated jurisdiction profile."""

    id: str
    version: str
    title: str
    jurisdiction: Mapping[str, Any]
    notice: str
    sha256: str
    source: str
    scope: Mapping[str, Any]
    block_on: frozenset[Severity]
    not_assessed_blocks: bool
    runtime_items_block_release: bool
    """Whether `gate` holds a release on runtime items whose evidence was not given (default: no)."""
    items: Mapping[str, Mapping[str, Any]]
    controls: Mapping[str, Sequence[Control]]
    parameters: Mapping[str, Any]
    waivers: Sequence[Waiver]
    retention: Mapping[str, Any]
    signoff: Mapping[str, Any] = field(default_factory=dict)
    """Prefilled sign-off: ``prepared_by``, ``reviewed_by``, ``approved_by``, each ``{name, role, date}``."""
    key_files: tuple[str, ...] = ()
    """Image-signing public key files named by ``parameters.trusted_signers`` (fingerprints are in the parameters)."""
    release_key_files: tuple[str, ...] = ()
    """Release-tag keys named by ``parameters.trusted_signers``: OpenSSH public key lines and armored OpenPGP keys."""

    def applies(self, key: str) -> bool:
        return bool(self.items.get(key, {}).get("applies", True))

    def severity_for(self, key: str, default: Severity) -> Severity:
        value = self.items.get(key, {}).get("severity")
        return Severity(value) if value else default

    def controls_for(self, key: str) -> list[Control]:
        own = self.items.get(key, {}).get("controls")
        if own is not None:
            return [_control(c) for c in own]
        return list(self.controls.get(ITEMS_BY_KEY[key].family, ()))

    def namespace_in_scope(self, namespace: str, labels: Mapping[str, str] | None) -> bool | None:
        """True/False, or None when the decision needs labels the evidence does not have."""
        ns_scope = self.scope.get("namespaces", {})
        if namespace in ns_scope.get("exclude", []):
            return False
        if namespace in ns_scope.get("names", []):
            return True
        if ns_scope.get("all"):
            return True
        selector = ns_scope.get("match_labels")
        if selector:
            if labels is None:
                return None
            return all(labels.get(k) == v for k, v in selector.items())
        return False

    @property
    def cluster_scoped_in_scope(self) -> bool:
        return bool(self.scope.get("cluster_scoped", True))


def _control(raw: Mapping[str, Any]) -> Control:
    return Control(framework=raw["framework"], ref=str(raw["ref"]), status=raw["status"], note=raw.get("note", ""))


_SCHEMA_CACHE: dict[str, Any] = {}


def _schema() -> Any:
    if "profile" not in _SCHEMA_CACHE:
        text = resources.files("auditor").joinpath("data/profile.schema.json").read_text("utf-8")
        _SCHEMA_CACHE["profile"] = json.loads(text)
    return _SCHEMA_CACHE["profile"]


def _field_path(path: Sequence[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _schema_errors(raw: Any) -> list[Any]:
    import jsonschema  # imported here: only user-supplied profiles pay for it

    validator = jsonschema.Draft202012Validator(_schema())
    return sorted(validator.iter_errors(raw), key=lambda e: (list(e.absolute_path), e.message))


# Selectors are replaced whole: merging `match_labels` into a parent's `all: true` would widen the scope.
_REPLACED_WHOLE = frozenset({("scope", "namespaces")})


def _merge(parent: Any, child: Any, path: tuple[str, ...] = ()) -> Any:
    """Deep-merge mappings; anything else (lists, selectors) in the child replaces the parent's value."""
    if isinstance(parent, dict) and isinstance(child, dict) and path not in _REPLACED_WHOLE:
        out = dict(parent)
        for k, v in child.items():
            out[k] = _merge(parent.get(k), v, (*path, str(k))) if k in parent else v
        return out
    return child


_MAX_EXTENDS_DEPTH = 8


def _resolve_extends(raw: dict[str, Any], source: str, base_dir: Path | None, *, depth: int) -> dict[str, Any]:
    """Merge the profile over what it extends: a shipped id (`ukgc`) or a file (a company base profile),
    relative to the extending file; a base may itself extend another."""
    parent_ref = raw.pop("extends", None)
    if parent_ref is None:
        return raw
    if not isinstance(parent_ref, str) or not parent_ref:
        raise ProfileError(f"{source}: extends: expected a shipped profile id or a file path, got {parent_ref!r}")
    if depth >= _MAX_EXTENDS_DEPTH:
        raise ProfileError(f"{source}: extends: more than {_MAX_EXTENDS_DEPTH} levels (a cycle?)")
    if parent_ref in shipped_ids():
        parent_text = resources.files("auditor").joinpath(f"data/profiles/{parent_ref}.yaml").read_text("utf-8")
        parent_source, parent_dir = f"profile {parent_ref}", None
    else:
        path = Path(parent_ref)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ProfileError(
                f"{source}: extends: {parent_ref!r} is neither a shipped profile ({', '.join(shipped_ids())}) "
                f"nor a file{f' (looked for {path})' if str(path) != parent_ref else ''}"
            )
        try:
            parent_text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{source}: extends: cannot read {path} ({exc})") from None
        parent_source, parent_dir = str(path), path.parent
    try:
        parent = yaml_text.load(parent_text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{parent_source}: profile is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(parent, dict):
        raise ProfileError(f"{parent_source}: a profile is a YAML mapping with id, version, scope, ...")
    parent = _resolve_extends(parent, parent_source, parent_dir, depth=depth + 1)
    merged = _merge(parent, raw)
    assert isinstance(merged, dict)
    return merged


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@functools.cache
def known_parameters() -> tuple[str, ...]:
    """Parameter names the profile schema defines (what checks read)."""
    return tuple(sorted(_schema()["properties"]["parameters"]["properties"]))


def _check_names(raw: Mapping[str, Any], source: str) -> None:
    """Names a typo would silently ignore: parameters, item keys, control families, waivers' checks and items.
    Each error names the field and, where one is close, the name that was probably meant."""
    from auditor.catalog import all_checks  # the catalog imports every check module: only needed here

    checklist_file = resources.files("auditor").joinpath("data/CHECKLIST.md")
    checklist = f"a checklist item key (`auditor checklist` lists them; see {checklist_file})"
    params = raw.get("parameters")
    if isinstance(params, dict):
        for key in params:
            if key not in known_parameters():
                raise ProfileError(
                    f"{source}: parameters.{key}: unknown parameter{_suggest(str(key), known_parameters())} "
                    f"(known: {', '.join(known_parameters())})"
                )
    items = raw.get("items")
    if isinstance(items, dict):
        for key in items:
            if key not in ITEMS_BY_KEY:
                raise ProfileError(f"{source}: items.{key}: not {checklist}{_suggest(str(key), list(ITEMS_BY_KEY))}")
    controls = raw.get("controls")
    if isinstance(controls, dict):
        for fam in controls:
            if fam not in FAMILIES:
                raise ProfileError(
                    f"{source}: controls.{fam}: unknown control family (one of {', '.join(FAMILIES)})"
                    f"{_suggest(str(fam), FAMILIES)}"
                )
    check_ids = [c.meta.id for c in all_checks()]
    waivers = raw.get("waivers")
    for i, w in enumerate(waivers if isinstance(waivers, list) else []):
        if not isinstance(w, dict):
            continue
        check, item = w.get("check"), w.get("item")
        if check is not None and check not in check_ids:
            raise ProfileError(
                f"{source}: waivers[{i}].check: {check!r} is not a check id (`auditor checks` lists them)"
                f"{_suggest(str(check), check_ids)}"
            )
        if item is not None and item not in ITEMS_BY_KEY:
            raise ProfileError(
                f"{source}: waivers[{i}].item: {item!r} is not {checklist}{_suggest(str(item), list(ITEMS_BY_KEY))}"
            )


def parse(text: str, source: str, *, validate: bool = True, base_dir: Path | None = None) -> Profile:
    """Validate and load a profile from YAML text; errors name the source and the field.

    ``validate=False`` is for the shipped profiles only: the test suite validates them against the
    schema, so a run that uses them unmodified does not pay for importing jsonschema.
    """

    try:
        raw = yaml_text.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ProfileError(f"{source}{where}: profile is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: a profile is a YAML mapping with id, version, scope, ...")
    raw = _resolve_extends(raw, source, base_dir, depth=0)
    _check_names(raw, source)
    errors = _schema_errors(raw) if validate else []
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ProfileError(f"{source}: {_field_path(list(first.absolute_path))}: {first.message}{more}")
    for role, who in raw.get("signoff", {}).items():
        if isinstance(who, dict) and "date" in who:
            try:
                dt.date.fromisoformat(str(who["date"]))
            except ValueError:
                raise ProfileError(
                    f"{source}: signoff.{role}.date: {who['date']!r} is not a date (YYYY-MM-DD)"
                ) from None
    waivers = []
    for i, w in enumerate(raw.get("waivers", [])):
        try:
            expires = dt.date.fromisoformat(str(w["expires"]))
        except ValueError:
            raise ProfileError(f"{source}: waivers[{i}].expires: {w['expires']!r} is not a date (YYYY-MM-DD)") from None
        waivers.append(
            Waiver(
                id=w["id"],
                reason=w["reason"],
                approver=w["approver"],
                ticket=w["ticket"],
                expires=expires,
                check=w.get("check"),
                item=w.get("item"),
                subject={k: str(v) for k, v in w.get("subject", {}).items()},
            )
        )
    key_files, release_key_files = _resolve_signer_keys(raw, source, base_dir)
    gate = raw.get("gate", {})
    return Profile(
        id=raw["id"],
        version=str(raw["version"]),
        title=raw["title"],
        jurisdiction=raw["jurisdiction"],
        notice=raw.get("notice", ""),
        # The effective policy (after extends), canonically serialized: same policy, same digest.
        sha256=hashlib.sha256(json.dumps(raw, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest(),
        source=source,
        scope=raw["scope"],
        block_on=frozenset(Severity(s) for s in gate.get("block_on", ["critical", "high"])),
        not_assessed_blocks=bool(gate.get("not_assessed_blocks", True)),
        runtime_items_block_release=bool(gate.get("runtime_items_block_release", False)),
        items=raw.get("items", {}),
        controls={fam: [_control(c) for c in cs] for fam, cs in raw.get("controls", {}).items()},
        parameters=raw.get("parameters", {}),
        waivers=waivers,
        retention=raw.get("retention", {}),
        signoff=raw.get("signoff", {}),
        key_files=key_files,
        release_key_files=release_key_files,
    )


def _resolve_signer_keys(
    raw: dict[str, Any], source: str, base_dir: Path | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``trusted_signers[].key`` may name a public key file (relative to the profile): it becomes the key's
    fingerprint, so the profile's digest changes when the key does, and checks compare fingerprints only.

    - PEM or DER (cosign keys): ``key`` becomes ``sha256:`` of the SubjectPublicKeyInfo (image signatures).
    - An OpenSSH public key line: ``ssh_fingerprint`` (``SHA256:...``, as git prints it) for release tags.
    - An armored OpenPGP key: ``gpg_fingerprints`` for release tags.

    Returns the image key files (the registry source verifies with them) and the release key files (the Git
    source verifies tags with them)."""
    image_files: list[str] = []
    release_files: list[str] = []
    signers = raw.get("parameters", {}).get("trusted_signers")
    for i, signer in enumerate(signers if isinstance(signers, list) else ()):
        key = signer.get("key") if isinstance(signer, dict) else None
        if not isinstance(key, str) or key.startswith("sha256:"):
            continue
        where = f"{source}: parameters.trusted_signers[{i}].key"
        path = Path(key)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            head = path.read_bytes()[:65536]
        except OSError as exc:
            raise ProfileError(f"{where}: {path}: cannot read the key: {exc.strerror or exc}") from None
        if b"BEGIN PGP PUBLIC KEY BLOCK" in head:
            from auditor.sources.git import GitError, gpg_fingerprints

            try:
                signer["gpg_fingerprints"] = gpg_fingerprints(path)
            except GitError as exc:
                raise ProfileError(f"{where}: {exc}") from None
            signer["key"] = "openpgp:" + signer["gpg_fingerprints"][0]
            release_files.append(str(path))
            continue
        text = head.decode("utf-8", "replace").strip()
        if text.startswith(("ssh-", "ecdsa-sha2-", "sk-")):
            from auditor.sources.git import ssh_fingerprint

            fp = ssh_fingerprint(text.splitlines()[0])
            if fp is None:
                raise ProfileError(f"{where}: {path}: not an OpenSSH public key line")
            signer["ssh_fingerprint"] = fp
            signer["key"] = "ssh:" + fp
            release_files.append(str(path))
            continue
        from auditor.sources.signatures import TrustKeyError, load_public_key  # cryptography: only for key files

        try:
            loaded = load_public_key(path)
        except TrustKeyError as exc:
            raise ProfileError(f"{where}: {exc}") from None
        signer["key"] = loaded.fingerprint
        image_files.append(str(path))
    return tuple(image_files), tuple(release_files)


def shipped_ids() -> list[str]:
    folder = resources.files("auditor").joinpath("data/profiles")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load(spec: str) -> Profile:
    """Load a profile by shipped id (``ukgc``) or by file path."""
    if spec in shipped_ids():
        text = resources.files("auditor").joinpath(f"data/profiles/{spec}.yaml").read_text("utf-8")
        return parse(text, f"profile {spec}", validate=False)
    path = Path(spec)
    if not path.is_file():
        raise ProfileError(
            f"{spec}: no shipped profile has this id and no such file (shipped: {', '.join(shipped_ids())})"
        )
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{spec}: cannot read profile ({exc})") from None
    return parse(text, spec, base_dir=path.parent)
