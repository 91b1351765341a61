"""The supply-chain readers against real third-party data with known outcomes (../shared/corpus).

- CycloneDX: every case of cyclonedx-python-lib's schema test data, the official examples and Trivy's
  outputs, validated as the corpus's expected.json says (valid or invalid).
- Sigstore: a real cosign attestation bundle (keyless, public-good instance) verifies offline against
  the production trusted root, names its Fulcio identity, is refused for another digest, under the
  staging root, and when a byte of its signature is changed.
- Keys: cosign's test keys load (PEM, PKCS#1 RSA, DER) and garbage is refused with the file named.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from auditor.sources.sbom import read_document
from auditor.sources.signatures import SigstoreTrust, TrustKeyError, load_public_key, verify_bundle

from .conftest import CORPUS, require_corpus

ATTESTED = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"


def _corpus() -> Path:
    return require_corpus()


def test_cyclonedx_validity_agrees_with_the_corpus() -> None:
    root = _corpus() / "cyclonedx"
    cases = json.loads((root / "expected.json").read_text())["cases"]
    disagree = []
    judged = 0
    for case in cases:
        if case["expected"] == "skip":
            continue
        doc = read_document((root / case["file"]).read_bytes())
        judged += 1
        if doc.valid != case["expected"].startswith("valid"):
            disagree.append((case["file"], case["expected"], doc.problems[:1]))
    assert judged >= 440
    assert not disagree, disagree[:5]


def test_cosign_sboms_in_both_formats_parse() -> None:
    root = _corpus() / "sigstore" / "cosign"
    cdx = read_document((root / "bom-go-mod.cyclonedx.json").read_bytes())
    spdx = read_document((root / "bom-go-mod.spdx.json").read_bytes())
    assert (cdx.format, cdx.valid) == ("cyclonedx", True)
    assert spdx.format == "spdx" and spdx.valid, spdx.problems
    assert spdx.components == len(json.loads((root / "bom-go-mod.spdx.json").read_text()).get("packages", []))


def test_keyless_attestation_bundle_verifies_offline_and_names_its_signer() -> None:
    root = _corpus() / "sigstore"
    bundle = (root / "cosign" / "oci-attestation.sigstore.json").read_bytes()
    production = SigstoreTrust(root / "trusted_roots" / "production.trusted_root.json")
    v = verify_bundle(bundle, ATTESTED, [], production)
    assert v.outcome == "verified", v.detail
    assert v.signer == {"identity": "cody@soyland.com", "issuer": "https://github.com/login/oauth"}
    assert v.tlog == "verified"
    # The same bundle presented for another image: a copied signature.
    other = verify_bundle(bundle, "sha256:" + "0" * 64, [], production)
    assert other.outcome == "digest-mismatch"
    # Under a trust root that did not issue its certificate: refused.
    staging = verify_bundle(bundle, ATTESTED, [], SigstoreTrust(root / "trusted_roots" / "staging.trusted_root.json"))
    assert staging.outcome == "invalid"
    # One changed byte in the DSSE signature: refused.
    raw = json.loads(bundle)
    sig = bytearray(base64.b64decode(raw["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 1
    raw["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    tampered = verify_bundle(json.dumps(raw).encode(), ATTESTED, [], production)
    assert tampered.outcome == "invalid"


def _artifact_cases() -> list[dict[str, Any]]:
    path = CORPUS / "sigstore" / "expected.json"
    if not path.is_file():
        return []
    cases = json.loads(path.read_text())["cases"]
    return [c for c in cases if c["verify_mode"] == "artifact" and c["suite"] == "sigstore-python"]


def _trust_for(case: Mapping[str, Any]) -> Path:
    root = CORPUS / "sigstore"
    if case["bundle"].startswith("sigstore-python/tsa/"):
        return root / "sigstore-python" / "tsa" / "trust_config.json"
    return root / str(case["trusted_root"])


@pytest.mark.parametrize("case", _artifact_cases(), ids=lambda c: f"{c['bundle']}-{c['expected']}")
def test_sigstore_python_artifact_bundles_agree(case: Mapping[str, Any]) -> None:
    """sigstore-python's own bundles (message signatures; RFC 3161 timestamps; a timestamp after the signing
    certificate expired) through the same path as an image's message-signature bundle: what the oracle refuses is
    refused; what it accepts passes Sigstore verification (and then is not a cosign image signature)."""
    root = CORPUS / "sigstore"
    if case["condition"] and "VERIFIED_TIME_THRESHOLD" in case["condition"]:
        pytest.skip("the oracle's test lowers sigstore-python's VERIFIED_TIME_THRESHOLD; the product keeps the default")
    if case["condition"] and "@online" in case["condition"]:
        pytest.skip("the oracle marks this case online; the copied staging root may lack the Rekor v2 key")
    bundle = (root / case["bundle"]).read_bytes()
    artifact = (root / case["artifact"]).read_bytes()
    v = verify_bundle(bundle, "sha256:" + "0" * 64, [], SigstoreTrust(_trust_for(case)), signed_artifact=artifact)
    if case["expected"] == "fail":
        assert v.outcome == "invalid", (v, case["reason"])
    else:
        assert (v.outcome, v.detail) == ("invalid", "the signed payload is not a cosign simple-signing document"), v


def test_default_trusted_root_is_the_production_root_offline() -> None:
    root = _corpus() / "sigstore"
    bundle = (root / "cosign" / "oci-attestation.sigstore.json").read_bytes()
    v = verify_bundle(bundle, ATTESTED, [], SigstoreTrust(None))
    assert v.outcome == "verified", v.detail


def test_bad_trusted_root_is_named() -> None:
    root = _corpus() / "sigstore" / "sigstore-python" / "trusted_root"
    trust = SigstoreTrust(root / "trustedroot.badtype.json")
    bundle = (_corpus() / "sigstore" / "cosign" / "oci-attestation.sigstore.json").read_bytes()
    v = verify_bundle(bundle, ATTESTED, [], trust)
    assert v.outcome == "unverifiable"
    assert "trustedroot.badtype.json" in v.detail


@pytest.mark.parametrize("name", ["google.pub.pem", "rsa.pkcs1.pub.pem", "letsencrypt-testflume-2021.pub.der"])
def test_cosign_test_keys_load(name: str) -> None:
    key = load_public_key(_corpus() / "sigstore" / "cosign" / "keys" / name)
    assert key.fingerprint.startswith("sha256:") and len(key.fingerprint) == 71


def test_garbage_key_is_refused_with_its_name() -> None:
    path = _corpus() / "sigstore" / "cosign" / "keys" / "garbage-there-are-limits"
    with pytest.raises(TrustKeyError, match="garbage-there-are-limits: not a public key"):
        load_public_key(path)


def test_ed25519ph_matches_rfc8032_test_vector() -> None:
    """cosign signs with Ed25519 keys prehashed (Ed25519ph); RFC 8032 section 7.3's vector, and a changed message."""
    from auditor.sources.ed25519ph import verify_ph

    public = bytes.fromhex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf")
    signature = bytes.fromhex(
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
        "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
    )
    assert verify_ph(public, signature, b"abc")
    assert not verify_ph(public, signature, b"abd")
    assert not verify_ph(public, signature[:63] + b"\x00", b"abc")
