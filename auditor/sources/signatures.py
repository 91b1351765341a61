"""Signature verification for images: cosign key pairs, DSSE envelopes, in-toto statements, Sigstore bundles.

Verification is cryptographic only and answers "who signed, and for which digest": a key's sha256
fingerprint, or a Fulcio certificate's identity and OIDC issuer after the certificate chain, the
transparency-log inclusion and the signing time were checked against a trusted root. Whether that
signer is *trusted* for an image is policy, decided by the check from the profile; the evidence
keeps the signer so that one snapshot can be judged under several jurisdictions' profiles.

A signature is only counted for an image when what was signed names that image's own digest: the
simple-signing payload's ``critical.image.docker-manifest-digest``, or an in-toto statement's
subject. A valid signature copied from another image is recorded as ``digest-mismatch``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from auditor.errors import short
from auditor.kube import as_mapping
from auditor.sources.ed25519ph import verify_ph

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
INTOTO_PAYLOAD = "application/vnd.in-toto+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_CERT_ANNOTATION = "dev.sigstore.cosign/certificate"
_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


class TrustKeyError(Exception):
    """A trust key file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class TrustedKey:
    name: str
    """Where it came from (the file name as given)."""
    fingerprint: str
    """``sha256:`` of the DER SubjectPublicKeyInfo: how evidence and profiles name the key."""
    key: PublicKey


def key_fingerprint(key: PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_public_key(path: Path, *, max_bytes: int = 64 * 1024) -> TrustedKey:
    """A public key from a PEM (``PUBLIC KEY``, ``RSA PUBLIC KEY``, or a certificate) or DER file."""
    try:
        data = path.read_bytes()[: max_bytes + 1]
    except OSError as exc:
        raise TrustKeyError(f"{path}: cannot read the key: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise TrustKeyError(f"{path}: larger than {max_bytes} bytes; not a public key file")
    key = parse_public_key(data)
    if key is None:
        raise TrustKeyError(
            f"{path}: not a public key (expected PEM 'PUBLIC KEY', 'RSA PUBLIC KEY' or a certificate, or DER; "
            "ECDSA, Ed25519 or RSA)"
        )
    return TrustedKey(name=path.name, fingerprint=key_fingerprint(key), key=key)


def parse_public_key(data: bytes) -> PublicKey | None:
    loaders = (
        serialization.load_pem_public_key,
        serialization.load_der_public_key,
        lambda d: x509.load_pem_x509_certificate(d).public_key(),
        lambda d: x509.load_der_x509_certificate(d).public_key(),
    )
    for loader in loaders:
        try:
            key = loader(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
            return key
        return None
    return None


def verify_raw(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` over ``data`` verifies with ``key`` (as cosign signs with each key type)."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            try:
                key.verify(signature, data)
                return True
            except InvalidSignature:  # cosign signs with Ed25519 keys in the prehashed variant (Ed25519ph)
                raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                return verify_ph(raw, signature, data)
        if isinstance(key, ec.EllipticCurvePublicKey):
            algo: hashes.HashAlgorithm = {384: hashes.SHA384(), 521: hashes.SHA512()}.get(
                key.curve.key_size, hashes.SHA256()
            )
            key.verify(signature, data, ec.ECDSA(algo))
            return True
        try:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
        except InvalidSignature:
            key.verify(
                signature,
                data,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                hashes.SHA256(),
            )
            return True
    except (InvalidSignature, ValueError):
        return False


def _b64(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=False)
    except ValueError:
        return None


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature is made over."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Verified:
    """One signature or attestation, as verification found it."""

    format: str
    """``cosign-simplesigning``, ``dsse``, ``sigstore-bundle``."""
    outcome: str
    """``verified``; or why not: ``no-trusted-key``, ``digest-mismatch``, ``invalid``, ``unsupported``."""
    signer: Mapping[str, str]
    """``{"key": fingerprint, "key_name": ...}`` or ``{"identity": ..., "issuer": ...}``; empty when unknown."""
    detail: str = ""
    statement: Mapping[str, Any] | None = None
    """For attestations: the in-toto statement (subject, predicateType, predicate) when it parsed."""
    tlog: str = ""
    """Transparency log: ``verified`` (inclusion checked against the trusted root), ``absent``."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "outcome": self.outcome, "signer": dict(self.signer)}
        if self.detail:
            out["detail"] = self.detail
        if self.tlog:
            out["tlog"] = self.tlog
        return out


def _match_key(keys: Sequence[TrustedKey], signature: bytes, data: bytes) -> TrustedKey | None:
    for k in keys:
        if verify_raw(k.key, signature, data):
            return k
    return None


def verify_simplesigning(
    payload: bytes, signature_b64: str | None, digest: str, keys: Sequence[TrustedKey]
) -> Verified:
    """A cosign ``.sig`` layer: the simple-signing payload and its base64 signature annotation."""
    sig = _b64(signature_b64)
    if not sig:
        return Verified("cosign-simplesigning", "invalid", {}, "the signature layer has no signature annotation")
    key = _match_key(keys, sig, payload)
    if key is None:
        return Verified(
            "cosign-simplesigning",
            "no-trusted-key",
            {},
            f"the signature does not verify with any of the {len(keys)} key(s) given"
            if keys
            else "no keys were given to verify it with",
        )
    signer = {"key": key.fingerprint, "key_name": key.name}
    try:
        claims = json.loads(payload)
        signed_digest = claims["critical"]["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return Verified(
            "cosign-simplesigning", "invalid", signer, "the signed payload is not a cosign simple-signing document"
        )
    if signed_digest != digest:
        return Verified(
            "cosign-simplesigning",
            "digest-mismatch",
            signer,
            f"a valid signature, but made for {str(signed_digest)[:71]}, not this image's digest: copied from another image",
        )
    return Verified("cosign-simplesigning", "verified", signer, tlog="absent")


def parse_statement(payload_type: str, payload: bytes) -> Mapping[str, Any] | None:
    if payload_type != INTOTO_PAYLOAD:
        return None
    try:
        st = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return st if isinstance(st, dict) else None


def statement_names(statement: Mapping[str, Any], digest: str) -> bool:
    """Whether an in-toto statement's subject is the image digest."""
    hexd = digest.removeprefix("sha256:")
    for s in statement.get("subject") or ():
        if isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"].get("sha256") == hexd:
            return True
    return False


def verify_dsse(envelope: Mapping[str, Any], digest: str, keys: Sequence[TrustedKey]) -> Verified:
    """A DSSE envelope (cosign ``.att`` layers) signed with a key pair; its in-toto subject must be the digest."""
    payload_type = envelope.get("payloadType")
    payload = _b64(envelope.get("payload"))
    sigs = envelope.get("signatures")
    if not isinstance(payload_type, str) or payload is None or not isinstance(sigs, list):
        return Verified("dsse", "invalid", {}, "not a DSSE envelope (payloadType, payload, signatures)")
    message = pae(payload_type, payload)
    key = None
    for s in sigs:
        raw = _b64(s.get("sig")) if isinstance(s, dict) else None
        if raw:
            key = _match_key(keys, raw, message)
            if key:
                break
    statement = parse_statement(payload_type, payload)
    if key is None:
        return Verified(
            "dsse",
            "no-trusted-key",
            {},
            f"no signature verifies with any of the {len(keys)} key(s) given"
            if keys
            else "no keys were given to verify it with",
            statement=statement,
        )
    signer = {"key": key.fingerprint, "key_name": key.name}
    return _with_subject("dsse", signer, statement, digest, tlog="absent")


def _with_subject(
    fmt: str, signer: Mapping[str, str], statement: Mapping[str, Any] | None, digest: str, tlog: str
) -> Verified:
    if statement is None:
        return Verified(fmt, "invalid", signer, "the signed payload is not an in-toto statement")
    if not statement_names(statement, digest):
        names = [
            s.get("digest", {}).get("sha256", "?")[:12] for s in statement.get("subject") or () if isinstance(s, dict)
        ]
        return Verified(
            fmt,
            "digest-mismatch",
            signer,
            f"a valid signature over a statement about {', '.join(names) or 'no subject'}, not this image's digest",
            statement=statement,
        )
    return Verified(fmt, "verified", signer, statement=statement, tlog=tlog)


# ---------------------------------------------------------------------- Sigstore bundles


class SigstoreTrust:
    """A Sigstore trusted root (Fulcio CAs, Rekor and CT log keys, timestamp authorities), loaded once."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._verifier: Any = None
        self.error: str | None = None
        self.digest = ""
        try:
            if path is None:
                import sigstore

                default = (
                    Path(sigstore.__file__).parent
                    / "_store"
                    / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
                    / "trusted_root.json"
                )
                self.path = default
                data = default.read_bytes()
                self.name = "the Sigstore production trusted root (sigstore-python's embedded copy)"
            else:
                data = path.read_bytes()
                self.name = str(path)
            self.digest = "sha256:" + hashlib.sha256(data).hexdigest()
            self._data = data
        except OSError as exc:
            self.error = f"{path}: cannot read the trusted root: {exc.strerror or exc}"
            self._data = b""
            self.name = str(path)

    def verifier(self) -> Any:
        if self._verifier is None and self.error is None:
            logging.getLogger("sigstore").setLevel(logging.ERROR)
            from sigstore.models import TrustedRoot
            from sigstore.verify import Verifier

            try:
                assert self.path is not None
                if b'"trustedRoot"' in self._data:  # a ClientTrustConfig: trusted root plus signing config
                    from sigstore.models import ClientTrustConfig

                    root = ClientTrustConfig.from_json(self._data.decode("utf-8")).trusted_root
                else:
                    root = TrustedRoot.from_file(str(self.path))
                self._verifier = Verifier(trusted_root=root)
            except Exception as exc:  # sigstore raises several types for a bad root; all mean "unusable"
                self.error = f"{self.name}: not a usable Sigstore trusted root ({type(exc).__name__}: {short(exc)})"
        return self._verifier


class RecordIdentity:
    """A sigstore-python verification policy that accepts every identity: trust in the identity is the
    profile's decision (made by the check), after the certificate chain, SCT and log inclusion verified."""

    def verify(self, cert: x509.Certificate) -> None:
        return None


def cert_identity(cert: x509.Certificate) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.RFC822Name), *san.get_values_for_type(x509.UniformResourceIdentifier)]
        if names:
            out["identity"] = names[0]
    except x509.ExtensionNotFound:
        pass
    for oid in (_ISSUER_V2, _ISSUER_V1):
        try:
            raw = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        value = getattr(raw, "value", b"")
        if oid == _ISSUER_V2 and len(value) > 2 and value[0] == 0x0C:  # DER UTF8String with a short length
            value = value[2:]
        out["issuer"] = value.decode("utf-8", "replace")
        break
    return out


def verify_bundle(
    bundle_bytes: bytes,
    digest: str,
    keys: Sequence[TrustedKey],
    trust: SigstoreTrust,
    *,
    signed_artifact: bytes | None = None,
) -> Verified:
    """A Sigstore bundle (cosign v3 and keyless signing). Keyless: chain, SCT, Rekor inclusion and the signing
    time against the trusted root, then the identity is recorded. Key-signed: the DSSE or message signature
    with the given keys (a bundle made with ``--tlog-upload=false`` has no log entry to check)."""
    try:
        raw = json.loads(bundle_bytes)
    except (ValueError, UnicodeDecodeError):
        return Verified("sigstore-bundle", "invalid", {}, "not a JSON Sigstore bundle")
    if not isinstance(raw, dict) or not str(raw.get("mediaType", "")).startswith(SIGSTORE_BUNDLE_PREFIX):
        return Verified("sigstore-bundle", "invalid", {}, "not a Sigstore bundle (mediaType)")
    material = as_mapping(raw.get("verificationMaterial"))
    if "publicKey" in material:
        return _verify_key_bundle(raw, digest, keys, signed_artifact)
    verifier = trust.verifier()
    if verifier is None:
        return Verified("sigstore-bundle", "unverifiable", {}, trust.error or "no trusted root")
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    try:
        bundle = Bundle.from_json(bundle_bytes)
    except Exception as exc:  # InvalidBundle and the model's validation errors
        return Verified("sigstore-bundle", "invalid", {}, f"the bundle does not parse ({short(exc)})")
    signer = cert_identity(bundle.signing_certificate)
    try:
        if "dsseEnvelope" in raw:
            payload_type, payload = verifier.verify_dsse(bundle, RecordIdentity())
            statement = parse_statement(payload_type, payload)
            return _with_subject("sigstore-bundle", signer, statement, digest, tlog="verified")
        if signed_artifact is None:
            return Verified(
                "sigstore-bundle", "unsupported", signer, "a message-signature bundle with no signed payload beside it"
            )
        verifier.verify_artifact(signed_artifact, bundle, RecordIdentity())
    except SigstoreError as exc:
        return Verified("sigstore-bundle", "invalid", signer, f"Sigstore verification failed: {short(exc)}")
    except Exception as exc:  # cryptography errors surface unwrapped from some paths
        return Verified(
            "sigstore-bundle", "invalid", signer, f"Sigstore verification failed: {type(exc).__name__}: {short(exc)}"
        )
    return _simplesigning_subject(signed_artifact, signer, digest, "verified")


def _simplesigning_subject(payload: bytes, signer: Mapping[str, str], digest: str, tlog: str) -> Verified:
    try:
        signed_digest = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return Verified(
            "sigstore-bundle", "invalid", signer, "the signed payload is not a cosign simple-signing document"
        )
    if signed_digest != digest:
        return Verified(
            "sigstore-bundle",
            "digest-mismatch",
            signer,
            f"signed for {str(signed_digest)[:71]}, not this image's digest",
        )
    return Verified("sigstore-bundle", "verified", signer, tlog=tlog)


def _verify_key_bundle(
    raw: Mapping[str, Any], digest: str, keys: Sequence[TrustedKey], signed_artifact: bytes | None
) -> Verified:
    tlog = "present-unchecked" if raw.get("verificationMaterial", {}).get("tlogEntries") else "absent"
    env = raw.get("dsseEnvelope")
    if isinstance(env, dict):
        v = verify_dsse(env, digest, keys)
        return Verified(
            "sigstore-bundle", v.outcome, v.signer, v.detail, v.statement, tlog if v.outcome == "verified" else ""
        )
    ms = raw.get("messageSignature")
    if not isinstance(ms, dict) or signed_artifact is None:
        return Verified(
            "sigstore-bundle",
            "unsupported",
            {},
            "a key-signed bundle with neither a DSSE envelope nor a signed payload beside it",
        )
    sig = _b64(ms.get("signature"))
    key = _match_key(keys, sig, signed_artifact) if sig else None
    if key is None:
        return Verified(
            "sigstore-bundle",
            "no-trusted-key",
            {},
            f"the signature does not verify with any of the {len(keys)} key(s) given",
        )
    return _simplesigning_subject(signed_artifact, {"key": key.fingerprint, "key_name": key.name}, digest, tlog)
