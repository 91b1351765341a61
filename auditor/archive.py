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
import datetime
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
from auditor.errors import InputError, OutputError, short

FORMAT = "auditor.archive/v1"
MANIFEST, SIGNATURE, SIGSTORE_BUNDLE = "manifest.json", "manifest.sig", "manifest.sigstore.json"
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


class KeylessSigner:
    """Sigstore keyless signing for CI: sigstore-python asks Fulcio for a short-lived certificate bound to the CI
    job's OIDC identity and logs the signature in Rekor; the entry keeps the bundle as ``manifest.sigstore.json``.

    The identity token comes from ``SIGSTORE_IDENTITY_TOKEN`` or the CI system's ambient credential (GitHub
    Actions with ``permissions: id-token: write``, GitLab, Buildkite, Google Cloud). The Sigstore instance is the
    public-good one, or the one a ClientTrustConfig file names (``--sigstore-trust-config``)."""

    def __init__(self, trust_config: Path | None = None) -> None:
        import logging

        logging.getLogger("sigstore").setLevel(logging.ERROR)
        from sigstore.errors import Error as SigstoreError
        from sigstore.oidc import IdentityToken, detect_credential

        try:
            raw = os.environ.get("SIGSTORE_IDENTITY_TOKEN") or detect_credential()
        except SigstoreError as exc:
            raise InputError(f"keyless signing: the CI system's OIDC credential failed: {exc}") from None
        if not raw:
            raise InputError(
                "keyless signing needs an OIDC identity: none in SIGSTORE_IDENTITY_TOKEN and none ambient (in GitHub "
                "Actions, give the job `permissions: id-token: write`); unattended runs sign with --sign-key"
            )
        try:
            self.token = IdentityToken(raw)
        except SigstoreError as exc:
            raise InputError(f"keyless signing: the OIDC identity token is unusable: {exc}") from None
        self.trust_config = trust_config
        self.identity = f"{self.token.identity} ({self.token.issuer})"

    def sign(self, data: bytes) -> bytes:
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import ClientTrustConfig
        from sigstore.sign import SigningContext

        where = str(self.trust_config) if self.trust_config else "the public-good Sigstore instance"
        try:
            config = (
                ClientTrustConfig.from_json(self.trust_config.read_text("utf-8"))
                if self.trust_config
                else ClientTrustConfig.production()
            )
            with SigningContext.from_trust_config(config).signer(self.token) as signer:
                bundle = signer.sign_artifact(data)
        except OSError as exc:  # also requests' connection errors: Fulcio, Rekor or the TUF mirror unreachable
            raise OutputError(f"keyless signing with {where} failed: {type(exc).__name__}: {short(exc, 240)}") from None
        except (SigstoreError, ValueError) as exc:
            raise OutputError(f"keyless signing with {where} failed: {short(exc, 240)}") from None
        except Exception as exc:  # requests' connection errors and the TUF client's surface unwrapped
            raise OutputError(f"keyless signing with {where} failed: {type(exc).__name__}: {short(exc, 240)}") from None
        return bundle.to_json().encode("utf-8")


def _created_at(manifest: bytes) -> str:
    try:
        return str(json.loads(manifest).get("created_at") or "")
    except (ValueError, AttributeError):
        return ""


def _when(text: str) -> datetime.datetime:
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


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

    def overwritten(self, profile: str, sequence: int) -> dict[str, str]:
        return {}  # files are created exclusively; an edit shows as a changed digest

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
    key: SigningKey | KeylessSigner,
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
                before = _created_at(last_manifest)
                if before and _when(created_at) < _when(before):
                    raise InputError(
                        f"{store.label}/{pid}: the report time {created_at} is before entry {entries[-1]:06d}'s "
                        f"({before}); the archive runs forward in time (check --as-of)"
                    )
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
            if isinstance(key, KeylessSigner):
                signature = {SIGSTORE_BUNDLE: key.sign(manifest_bytes)}
            else:
                sig = {
                    "key": fingerprint(key.public_key()),
                    "signature": base64.b64encode(_sign(key, manifest_bytes)).decode(),
                }
                signature = {SIGNATURE: canonical(sig) + b"\n"}
            everything = {**files, MANIFEST: manifest_bytes, **signature}
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


@dataclass(frozen=True)
class Identity:
    """A keyless signer the verifier trusts: the certificate's identity (SAN) and, optionally, its OIDC issuer."""

    identity: str
    issuer: str | None = None

    def matches(self, signer: Mapping[str, str]) -> bool:
        return signer.get("identity") == self.identity and self.issuer in (None, signer.get("issuer"))


class _Trust:
    def __init__(self, keys: Sequence[VerifyKey], identities: Sequence[Identity], trusted_root: Path | None) -> None:
        self.keys = {fingerprint(k): k for k in keys}
        self.identities = list(identities)
        self.trusted_root = trusted_root
        self._sigstore: Any = None

    def sigstore(self) -> Any:
        if self._sigstore is None:
            from auditor.sources.signatures import SigstoreTrust

            self._sigstore = SigstoreTrust(self.trusted_root)
        return self._sigstore


def verify(
    archive: Path | Any,
    keys: Sequence[VerifyKey],
    identities: Sequence[Identity] = (),
    trusted_root: Path | None = None,
) -> Verification:
    """Recompute every digest, walk every profile's chain, check every signature; name every problem.

    Key-signed entries verify with ``keys``; keyless ones (Sigstore) against ``trusted_root`` (the public-good
    root by default, offline) and must be signed by one of ``identities``."""
    store = LocalStore(archive) if isinstance(archive, Path) else archive
    result = Verification()
    if not store.exists():
        result.problems.append(f"{store.label}: no such archive")
        return result
    trust = _Trust(keys, identities, trusted_root)
    profiles = store.profiles()
    if not profiles:
        result.problems.append(f"{store.label}: the archive holds no profile folder")
    for pid in profiles:
        for name in store.strays(pid):
            result.problems.append(f"{pid}/{name}: not an archive entry (inserted)")
        previous_sha: str | None = None
        previous_time = ""
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
            manifest_sha, created, problems = _verify_entry(store, pid, number, where, previous_sha, trust)
            result.problems.extend(problems)
            previous_sha = manifest_sha
            if created and previous_time and _when(created) < _when(previous_time):
                result.problems.append(f"{where}: its report time {created} is before the previous entry's")
            previous_time = created or previous_time
    return result


def entry_folder(target: str) -> Path | None:
    """The entry folder ``target`` names (the folder, or a file in it), or None for a whole archive."""
    if target.startswith("s3://"):
        return None
    path = Path(target)
    folder = path if path.is_dir() else path.parent
    if _ENTRY.match(folder.name) and (folder / MANIFEST).is_file():
        return folder
    if path.is_file():
        raise InputError(f"{target}: not inside an archive entry (no {MANIFEST} beside it): verify its archive entry")
    return None


def verify_entry(
    folder: Path, keys: Sequence[VerifyKey], identities: Sequence[Identity] = (), trusted_root: Path | None = None
) -> Verification:
    """One entry on its own (what a regulator is handed): every file's digest and the manifest's signature. Its
    link to the previous entry needs that entry, so only a whole archive's verification checks the chain."""
    store = LocalStore(folder.parent.parent)
    pid, number = folder.parent.name, int(folder.name)
    _, _, problems = _verify_entry(
        store, pid, number, f"{pid}/{number:06d}", None, _Trust(keys, identities, trusted_root)
    )
    return Verification(entries=1, problems=problems)


def _signature_problems(
    store: Any, pid: str, number: int, where: str, manifest: bytes, names: set[str], trust: _Trust
) -> list[str]:
    """Whether the manifest's bytes are signed by a given key or a given keyless identity."""
    if SIGNATURE not in names and SIGSTORE_BUNDLE not in names:
        return [f"{where}/{SIGNATURE}: missing: the entry is not signed"]
    problems = []
    if SIGNATURE in names:
        try:
            sig = json.loads(store.read(pid, number, SIGNATURE) or b"")
            signature = base64.b64decode(sig["signature"])
            signer = str(sig["key"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"{where}/{SIGNATURE}: unreadable: the entry is not signed")
        else:
            key = trust.keys.get(signer)
            if key is None:
                problems.append(f"{where}: signed by {signer[:23]}..., which is not a given public key (forged entry?)")
            elif not _verify(key, signature, manifest):
                problems.append(f"{where}/{MANIFEST}: the signature does not match (the manifest was edited)")
    if SIGSTORE_BUNDLE in names:
        problem = _keyless_problem(store.read(pid, number, SIGSTORE_BUNDLE) or b"", manifest, trust)
        if problem:
            problems.append(f"{where}/{SIGSTORE_BUNDLE}: {problem}")
    return problems


def _keyless_problem(bundle_bytes: bytes, manifest: bytes, trust: _Trust) -> str | None:
    """Sigstore verification of the manifest's bytes (certificate chain to the trusted root, SCT, Rekor inclusion,
    signing time), then the certificate's identity against the given ones."""
    from auditor.sources.signatures import RecordIdentity, cert_identity

    sigstore = trust.sigstore()
    verifier = sigstore.verifier()
    if verifier is None:
        return f"cannot be checked: {sigstore.error}"
    from sigstore.models import Bundle

    try:
        bundle = Bundle.from_json(bundle_bytes)
    except Exception as exc:  # InvalidBundle and the model's validation errors
        return f"not a readable Sigstore bundle ({type(exc).__name__}; altered or truncated)"
    signer = cert_identity(bundle.signing_certificate)
    try:
        verifier.verify_artifact(manifest, bundle, RecordIdentity())
    except Exception as exc:  # sigstore's VerificationError, and cryptography's errors from some paths
        return f"the Sigstore signature does not verify against {sigstore.name} (manifest edited?): {short(exc, 240)}"
    if not any(i.matches(signer) for i in trust.identities):
        who = f"{signer.get('identity', '?')} (issuer {signer.get('issuer', '?')})"
        return f"signed keyless by {who}, which is not a given identity (--certificate-identity)"
    return None


def _verify_entry(
    store: Any, pid: str, number: int, where: str, previous_sha: str | None, trust: _Trust
) -> tuple[str | None, str, list[str]]:
    """(the manifest's sha256, its report time, the problems) of one entry; the sha and time are None and "" when
    the manifest is missing or unreadable."""
    manifest_bytes = store.read(pid, number, MANIFEST)
    if manifest_bytes is None:
        return None, "", [f"{where}/{MANIFEST}: missing"]
    manifest_sha = sha256_hex(manifest_bytes)
    names = set(store.names(pid, number))
    # The signature first: a manifest that is not signed by a trusted key proves nothing else.
    problems = _signature_problems(store, pid, number, where, manifest_bytes, names, trust)
    try:
        manifest = json.loads(manifest_bytes)
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return manifest_sha, "", [*problems, f"{where}/{MANIFEST}: not a readable manifest (altered or truncated)"]
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
    for name, held in store.overwritten(pid, number).items():
        problems.append(f"{where}/{name}: written again after the audit ({held})")
    listed = set(files) | {MANIFEST, SIGNATURE, SIGSTORE_BUNDLE}
    for name in sorted(names):
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
    return manifest_sha, str(manifest.get("created_at") or ""), problems
