"""The archive: versioned, write-once, hash-chained, signed reports, and their verification.

Layout (one folder per jurisdiction profile, one entry per run, numbered)::

    ARCHIVE/<profile-id>/000001/report.json, report.pdf, ..., evidence.json, manifest.json, manifest.sig
    ARCHIVE/<profile-id>/000002/...

``manifest.json`` (canonical JSON) records the sha256 of every file of the entry, the sequence
number, the previous entry's manifest digest (the hash chain), the tool version, the profile's id,
version and digest, and the times. ``manifest.sig`` signs the manifest's bytes with the operator's
key (Ed25519 or ECDSA P-256, made by ``auditor keygen``) and names the key's fingerprint.

Write once: an entry's folder is created with ``mkdir`` (atomic: a second writer of the same number
fails) under an exclusive lock on the profile's folder, and every file is created exclusively (``xb``),
never overwritten. ``verify`` recomputes every digest, walks the chain and checks every signature,
and names each altered, missing, reordered, inserted or forged entry.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from auditor import __version__
from auditor.errors import InputError, OutputError

FORMAT = "auditor.archive/v1"
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
_ENTRY = re.compile(r"^\d{6}$")
SigningKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
VerifyKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(key: VerifyKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + sha256_hex(der)


# ---------------------------------------------------------------------- keys


def keygen(out: Path, kind: str = "ed25519") -> tuple[Path, Path]:
    """A signing key pair for unattended archives: ``auditor-signing.key`` (PKCS#8 PEM, mode 0600) and ``.pub``."""
    private: SigningKey = (
        ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    )
    out.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = out / "auditor-signing.key", out / "auditor-signing.pub"
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise OutputError(f"{key_path}: already exists; a signing key is never overwritten") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path.write_bytes(pub)
    return key_path, pub_path


def load_signing_key(path: Path) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the signing key: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if isinstance(key, ed25519.Ed25519PrivateKey) or (
        isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    ):
        return key
    raise InputError(f"{path}: the archive signs with Ed25519 or ECDSA P-256 keys (auditor keygen makes one)")


def load_verify_key(path: Path) -> VerifyKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read the public key: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: not a PEM public key ({exc})") from None
    if isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        return key
    raise InputError(f"{path}: not an Ed25519 or ECDSA public key")


def _sign(key: SigningKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _verify(key: VerifyKey, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


# ---------------------------------------------------------------------- stores


class LocalStore:
    """A folder: ``ROOT/<profile-id>/<sequence>/<file>``; files created exclusively, folders with ``mkdir``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)

    def exists(self) -> bool:
        return self.root.is_dir()

    def profiles(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def entries(self, profile: str) -> list[int]:
        folder = self.root / profile
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and _ENTRY.match(p.name))

    def strays(self, profile: str) -> list[str]:
        folder = self.root / profile
        return sorted(
            p.name for p in folder.iterdir() if p.name != ".lock" and not (p.is_dir() and _ENTRY.match(p.name))
        )

    def names(self, profile: str, sequence: int) -> list[str]:
        return sorted(p.name for p in (self.root / profile / f"{sequence:06d}").iterdir())

    def read(self, profile: str, sequence: int, name: str) -> bytes | None:
        try:
            return (self.root / profile / f"{sequence:06d}" / name).read_bytes()
        except OSError:
            return None

    @contextmanager
    def lock(self, profile: str) -> Iterator[None]:
        """An exclusive lock on one profile's folder: concurrent nightly runs take turns."""
        folder = self.root / profile
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def create(self, profile: str, sequence: int, files: Mapping[str, bytes], retention_days: int | None) -> str:
        entry = self.root / profile / f"{sequence:06d}"
        entry.mkdir()  # atomic: a second writer of this number fails here
        for name, data in sorted(files.items()):
            with (entry / name).open("xb") as fh:  # exclusive: never overwrite
                fh.write(data)
        return str(entry)


def open_store(target: str) -> Any:
    """A local folder, or ``s3://bucket/prefix`` (auditor/archive_s3.py)."""
    if target.startswith("s3://"):
        from auditor.archive_s3 import S3Store

        return S3Store(target)
    return LocalStore(Path(target))


# ---------------------------------------------------------------------- writing


def append(
    archive: Path | Any,
    profile: Mapping[str, Any],
    files: Mapping[str, bytes],
    key: SigningKey,
    *,
    created_at: str,
    retention_days: int | None = None,
) -> str:
    """Write one entry (the next sequence number for this profile), chained to the previous one, signed."""
    store = LocalStore(archive) if isinstance(archive, Path) else archive
    pid = str(profile["id"])
    try:
        with store.lock(pid):
            entries = store.entries(pid)
            previous = None
            if entries:
                last_manifest = store.read(pid, entries[-1], MANIFEST)
                if last_manifest is None:
                    raise OutputError(f"{store.label}/{pid}/{entries[-1]:06d}: has no manifest; run auditor verify")
                previous = {"sequence": entries[-1], "manifest_sha256": sha256_hex(last_manifest)}
            sequence = entries[-1] + 1 if entries else 1
            manifest = {
                "format": FORMAT,
                "sequence": sequence,
                "previous": previous,
                "profile": dict(profile),
                "tool": {"name": "auditor", "version": __version__},
                "created_at": created_at,
                "files": {
                    name: {"sha256": sha256_hex(data), "bytes": len(data)} for name, data in sorted(files.items())
                },
            }
            manifest_bytes = canonical(manifest) + b"\n"
            sig = {
                "key": fingerprint(key.public_key()),
                "signature": base64.b64encode(_sign(key, manifest_bytes)).decode(),
            }
            everything = {**files, MANIFEST: manifest_bytes, SIGNATURE: canonical(sig) + b"\n"}
            return str(store.create(pid, sequence, everything, retention_days))
    except FileExistsError as exc:
        raise OutputError(f"{exc.filename}: already exists; archive entries are written once") from None
    except OSError as exc:
        raise OutputError(
            f"{exc.filename or store.label}: cannot write the archive entry: {exc.strerror or exc}"
        ) from None


# ---------------------------------------------------------------------- verifying


@dataclass
class Verification:
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(archive: Path | Any, keys: Sequence[VerifyKey]) -> Verification:
    """Recompute every digest, walk every profile's chain, check every signature; name every problem."""
    store = LocalStore(archive) if isinstance(archive, Path) else archive
    result = Verification()
    if not store.exists():
        result.problems.append(f"{store.label}: no such archive")
        return result
    trusted = {fingerprint(k): k for k in keys}
    profiles = store.profiles()
    if not profiles:
        result.problems.append(f"{store.label}: the archive holds no profile folder")
    for pid in profiles:
        for name in store.strays(pid):
            result.problems.append(f"{pid}/{name}: not an archive entry (inserted)")
        previous_sha: str | None = None
        expected = 1
        for number in store.entries(pid):
            result.entries += 1
            where = f"{pid}/{number:06d}"
            if number != expected:
                result.problems.append(
                    f"{where}: entries {expected:06d}..{number - 1:06d} are missing (removed, or the chain was cut)"
                    if number > expected
                    else f"{where}: out of sequence"
                )
            expected = number + 1
            manifest_sha, problems = _verify_entry(store, pid, number, where, previous_sha, trusted)
            result.problems.extend(problems)
            previous_sha = manifest_sha
    return result


def _verify_entry(
    store: Any, pid: str, number: int, where: str, previous_sha: str | None, trusted: Mapping[str, VerifyKey]
) -> tuple[str | None, list[str]]:
    problems: list[str] = []
    manifest_bytes = store.read(pid, number, MANIFEST)
    if manifest_bytes is None:
        return None, [f"{where}/{MANIFEST}: missing"]
    manifest_sha = sha256_hex(manifest_bytes)
    try:
        manifest = json.loads(manifest_bytes)
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        return manifest_sha, [f"{where}/{MANIFEST}: not a readable manifest (altered or truncated)"]
    # The signature first: a manifest that is not signed by a trusted key proves nothing else.
    try:
        sig = json.loads(store.read(pid, number, SIGNATURE) or b"")
        signature = base64.b64decode(sig["signature"])
        signer = str(sig["key"])
    except (ValueError, KeyError, TypeError):
        problems.append(f"{where}/{SIGNATURE}: missing or unreadable: the entry is not signed")
    else:
        key = trusted.get(signer)
        if key is None:
            problems.append(f"{where}: signed by {signer[:23]}..., which is not a given public key (forged entry?)")
        elif not _verify(key, signature, manifest_bytes):
            problems.append(f"{where}/{MANIFEST}: the signature does not match (the manifest was edited)")
    if manifest.get("sequence") != number:
        problems.append(f"{where}: the manifest says sequence {manifest.get('sequence')} (entries swapped or renamed)")
    if manifest.get("profile", {}).get("id") != pid:
        problems.append(f"{where}: the manifest belongs to profile {manifest.get('profile', {}).get('id')!r}")
    prev = manifest.get("previous")
    if previous_sha is None and number == 1 and prev is not None:
        problems.append(f"{where}: the first entry names a previous one")
    elif previous_sha is not None and (not isinstance(prev, dict) or prev.get("manifest_sha256") != previous_sha):
        problems.append(
            f"{where}: the chain is broken: it does not follow the entry before it (inserted, reordered or replaced)"
        )
    listed = set(files) | {MANIFEST, SIGNATURE}
    for name in store.names(pid, number):
        if name not in listed:
            problems.append(f"{where}/{name}: not in the manifest (inserted)")
    for name, meta in sorted(files.items()):
        data = store.read(pid, number, name)
        if data is None:
            problems.append(f"{where}/{name}: missing")
            continue
        if sha256_hex(data) != meta.get("sha256"):
            size = f"; {len(data)} bytes, {meta.get('bytes')} recorded" if len(data) != meta.get("bytes") else ""
            problems.append(f"{where}/{name}: altered (its sha256 differs from the manifest's{size})")
    return manifest_sha, problems
