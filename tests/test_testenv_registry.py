"""scripts/testenv's registry part: real registries on loopback with the demo images, signed and attested.

What the image signature and SBOM checks rely on: distribution's registry has no referrers API and
keeps cosign v2's sha256-<hex>.sig/.att tags; the referrers registry answers the OCI 1.1 referrers
API with cosign v3's bundles; the TLS registries verify with the test CA and ask for HTTP Basic or
the Docker bearer token flow; the demo images have the same digests on every run and every
registry; cosign verifies them, offline, with the trusted key and not with another.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .kube_env import REPO
from .registry_env import RegistryEnv, offline_tool_env, registry_env_fixture  # noqa: F401  (the fixture `registry_env`)

# The demo images' digests: built deterministically by scripts/testenv_registry_load.py (fixed layer
# tar, no timestamps, pinned crane), so the same on every run, every registry and every machine.
EXPECTED_DIGESTS = {
    ("acme/wallet", "1.14.2"): "sha256:8099b769fa540771ac16882278eb0d89b41a50d5c2295fb239add6c5b14082e8",
    ("acme/payments-api", "1.14.2"): "sha256:68f292490ab51ed9ec2377538a0500501048ee2c2e86c1d099bf06ac854066ac",
    ("acme/game-gateway", "1.14.2"): "sha256:2b6ec2eac7425f14f3718a6096837e5e72cd977347f2c9c241894942f473c578",
    ("acme/kyc", "1.14.2"): "sha256:369bce5e314ba7dfbb01ee642e51934f56da06ef01e2fff1f09cca1ca8506248",
    ("acme/bonus-engine", "1.14.2"): "sha256:c503465f141ef1b1a853df8c4edc6d056116c1aeb8d9cd25d54bcc263b4425bd",
    ("acme/promo", "1.14.2"): "sha256:9f2f3171581c33616aab79a5f131d88a3af170b27694c8a976cb94bdf22fea65",
    ("acme/promo", "2.3.1"): "sha256:921d071c62ae2cc72e26f36d8e8b562e8df90e36bc05e1472e929f19cc549c84",
}
WALLET_PLATFORMS = [
    {"platform": "linux/amd64", "digest": "sha256:1980c1b8ac86305cfa8fe2815f1ebab14f94d6e9a45dde7dddfb90fe5afbc431"},
    {"platform": "linux/arm64", "digest": "sha256:6adaa28ceee64304f7974c047a33a257597f07bc5ad769a2f10ebd463bb2721e"},
]
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = ["application/vnd.oci.image.manifest.v1+json", OCI_INDEX]
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATES = {
    "https://sigstore.dev/cosign/sign/v1",
    "https://cyclonedx.org/bom",
    "https://cosign.sigstore.dev/attestation/vuln/v1",
}
REGISTRY_KEYS = ["registry", "referrers_registry", "basic_registry", "token_registry"]


def http(
    url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET url: status, headers (names in lower case), body (an error status is returned, not raised)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def ca_context(env: RegistryEnv) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(env.ca))


def challenge(headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """WWW-Authenticate as (scheme, parameters)."""
    value = headers["www-authenticate"]
    scheme, _, rest = value.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', rest))


def bearer_token(env: RegistryEnv, scope: str = "") -> str:
    query = urllib.parse.urlencode({"service": "testenv", **({"scope": scope} if scope else {})})
    status, _, body = http(
        f"https://{env.token_registry}/token?{query}", basic(env.username, env.password), ca_context(env)
    )
    assert status == 200, body
    return str(json.loads(body)["token"])


def registry_url(env: RegistryEnv, key: str) -> tuple[str, dict[str, str], ssl.SSLContext | None]:
    """The base URL of a registry, the headers that authenticate to it, its TLS context."""
    address = env.images["registries"][key]["address"]
    if key == "basic_registry":
        return f"https://{address}", basic(env.username, env.password), ca_context(env)
    if key == "token_registry":
        return f"https://{address}", {"Authorization": f"Bearer {bearer_token(env)}"}, ca_context(env)
    return f"http://{address}", {}, None


def get_json(env: RegistryEnv, key: str, path: str, accept: list[str] | None = None) -> dict[str, Any]:
    base, headers, context = registry_url(env, key)
    status, _, body = http(base + path, {**headers, "Accept": ", ".join(accept or ["application/json"])}, context)
    assert status == 200, (key, path, status, body[:300])
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def manifest_digest(env: RegistryEnv, key: str, repository: str, reference: str) -> str:
    base, headers, context = registry_url(env, key)
    status, response_headers, _ = http(
        f"{base}/v2/{repository}/manifests/{reference}", {**headers, "Accept": ", ".join(MANIFEST_TYPES)}, context
    )
    assert status == 200, (key, repository, reference, status)
    return response_headers["docker-content-digest"]


def cosign_env(env: RegistryEnv, tmp_path: Path) -> dict[str, str]:
    """Offline (every HTTPS proxied to a closed port), the TLS registries' CA and credentials."""
    return offline_tool_env(env, tmp_path)


def cosign(
    env: RegistryEnv, tmp_path: Path, version: str, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    binary = env.cosign if version == "v2" else env.cosign3
    return subprocess.run(
        [str(binary), *args],
        env={**cosign_env(env, tmp_path), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


# --- the registries ----------------------------------------------------------------------------


def test_v2_answers_on_every_registry(registry_env: RegistryEnv) -> None:
    for key in REGISTRY_KEYS:
        base, headers, context = registry_url(registry_env, key)
        status, response_headers, _ = http(f"{base}/v2/", headers, context)
        assert status == 200, key
        assert response_headers.get("docker-distribution-api-version") == "registry/2.0", key


def test_referrers_api_on_the_referrers_registry_only(registry_env: RegistryEnv) -> None:
    digest = registry_env.digest("acme/kyc")
    path = f"/v2/acme/kyc/referrers/{digest}"
    status, headers, body = http(f"http://{registry_env.referrers_registry}{path}", {"Accept": OCI_INDEX})
    assert status == 200
    assert headers["content-type"] == OCI_INDEX
    index = json.loads(body)
    assert index["mediaType"] == OCI_INDEX
    # cosign v3's bundles, listed with the manifest's own artifactType (not the empty config's media type)
    assert {d["artifactType"] for d in index["manifests"]} == {BUNDLE}
    assert {d["annotations"]["dev.sigstore.bundle.predicateType"] for d in index["manifests"]} == PREDICATES

    status, headers, body = http(
        f"http://{registry_env.referrers_registry}{path}?artifactType={urllib.parse.quote(BUNDLE)}"
    )
    assert status == 200 and headers["oci-filters-applied"] == "artifactType"
    assert len(json.loads(body)["manifests"]) == 3
    status, _, body = http(f"http://{registry_env.referrers_registry}{path}?artifactType=application/x-none")
    assert status == 200 and json.loads(body)["manifests"] == []

    status, _, _ = http(f"http://{registry_env.registry}{path}", {"Accept": OCI_INDEX})
    assert status == 404


def test_cosign_v2_tags_on_distribution_and_none_on_the_referrers_registry(registry_env: RegistryEnv) -> None:
    digest = registry_env.digest("acme/kyc")
    prefix = digest.replace(":", "-")
    tags = get_json(registry_env, "registry", "/v2/acme/kyc/tags/list")["tags"]
    assert sorted(tags) == ["1.14.2", f"{prefix}.att", f"{prefix}.sig"]
    assert get_json(registry_env, "referrers_registry", "/v2/acme/kyc/tags/list")["tags"] == ["1.14.2"]
    att = get_json(registry_env, "registry", f"/v2/acme/kyc/manifests/{prefix}.att", MANIFEST_TYPES)
    assert {layer["annotations"]["predicateType"] for layer in att["layers"]} == PREDICATES - {
        "https://sigstore.dev/cosign/sign/v1"
    }


def test_basic_registry_asks_for_credentials(registry_env: RegistryEnv) -> None:
    url = f"https://{registry_env.basic_registry}/v2/"
    context = ca_context(registry_env)
    status, headers, _ = http(url, context=context)
    assert status == 401
    scheme, params = challenge(headers)
    assert scheme == "Basic" and params["realm"]
    assert http(url, basic(registry_env.username, "wrong"), context)[0] == 401
    assert http(url, basic(registry_env.username, registry_env.password), context)[0] == 200
    kyc = EXPECTED_DIGESTS[("acme/kyc", "1.14.2")]
    assert manifest_digest(registry_env, "basic_registry", "acme/kyc", "1.14.2") == kyc


def test_token_registry_runs_the_bearer_token_flow(registry_env: RegistryEnv) -> None:
    base = f"https://{registry_env.token_registry}"
    context = ca_context(registry_env)
    status, headers, _ = http(f"{base}/v2/", context=context)
    assert status == 401
    scheme, params = challenge(headers)
    assert (scheme, params["realm"], params["service"]) == ("Bearer", f"{base}/token", "testenv")

    status, headers, _ = http(f"{base}/v2/acme/kyc/manifests/1.14.2", context=context)
    assert status == 401
    assert challenge(headers)[1]["scope"] == "repository:acme/kyc:pull"

    token_url = f"{base}/token?service=testenv&scope=repository:acme/kyc:pull"
    assert http(token_url, context=context)[0] == 401
    assert http(token_url, basic(registry_env.username, "wrong"), context)[0] == 401
    status, _, body = http(token_url, basic(registry_env.username, registry_env.password), context)
    assert status == 200
    issued = json.loads(body)
    assert issued["token"] == issued["access_token"] and issued["expires_in"] > 0

    bearer = {"Authorization": f"Bearer {issued['token']}"}
    assert http(f"{base}/v2/", bearer, context)[0] == 200
    assert http(f"{base}/v2/", {"Authorization": "Bearer not-a-token"}, context)[0] == 401
    kyc = EXPECTED_DIGESTS[("acme/kyc", "1.14.2")]
    assert manifest_digest(registry_env, "token_registry", "acme/kyc", "1.14.2") == kyc


def test_tls_verifies_with_the_test_ca_only(registry_env: RegistryEnv) -> None:
    for address in (registry_env.basic_registry, registry_env.token_registry):
        port = address.rsplit(":", 1)[1]
        with pytest.raises(urllib.error.URLError) as raised:
            urllib.request.urlopen(f"https://{address}/v2/", context=ssl.create_default_context(), timeout=30)
        assert isinstance(raised.value.reason, ssl.SSLCertVerificationError)
        for host in ("127.0.0.1", "localhost"):  # the certificate's subjectAltNames
            assert http(f"https://{host}:{port}/v2/", context=ca_context(registry_env))[0] == 401


# --- the demo images ---------------------------------------------------------------------------


def test_demo_images_have_the_expected_digests_everywhere(registry_env: RegistryEnv) -> None:
    demo_refs = set(
        re.findall(
            r"registry\.acme-gaming\.example/(acme/[a-z-]+):([0-9.]+)",
            "".join(p.read_text() for p in sorted((REPO / "fixtures/demo/manifests").glob("*.yaml"))),
        )
    )
    assert demo_refs == set(EXPECTED_DIGESTS)  # every image the demo names, at every tag it names
    assert set(registry_env.images["registries"]) == set(REGISTRY_KEYS)
    for key, record in registry_env.images["registries"].items():
        found = {(e["repository"], e["tag"]): e["digest"] for e in record["images"]}
        assert found == EXPECTED_DIGESTS, key
        for (repository, tag), digest in EXPECTED_DIGESTS.items():
            assert manifest_digest(registry_env, key, repository, tag) == digest, (key, repository, tag)
    assert registry_env.digest("acme/wallet") == EXPECTED_DIGESTS[("acme/wallet", "1.14.2")]


def test_wallet_is_a_multi_arch_index(registry_env: RegistryEnv) -> None:
    for key in ("registry", "referrers_registry"):
        wallet = registry_env.image("acme/wallet", registry=key)
        assert wallet["mediaType"] == OCI_INDEX and wallet["platforms"] == WALLET_PLATFORMS
        index = get_json(registry_env, key, "/v2/acme/wallet/manifests/1.14.2", MANIFEST_TYPES)
        found = [
            {"platform": f"{m['platform']['os']}/{m['platform']['architecture']}", "digest": m["digest"]}
            for m in index["manifests"]
        ]
        assert found == WALLET_PLATFORMS
        for child in WALLET_PLATFORMS:
            config = get_json(registry_env, key, f"/v2/acme/wallet/manifests/{child['digest']}", MANIFEST_TYPES)
            assert config["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_what_is_attached(registry_env: RegistryEnv) -> None:
    for key in REGISTRY_KEYS:
        for entry in registry_env.images["registries"][key]["images"]:
            unsigned = (entry["repository"], entry["tag"]) == ("acme/promo", "2.3.1")
            assert entry["attached"] == ([] if unsigned else ["signature", "cyclonedx", "vuln"]), (key, entry)
            expected = ["CVE-2023-5363 HIGH"] if entry["repository"] == "acme/payments-api" else []
            assert entry["vulnerabilities"] == expected
    assert registry_env.images["keys"] == {"cosign": "ok", "untrusted": "ok", "ed25519": "ok", "rsa": "ok"}
    for name in ("cosign", "untrusted", "ed25519", "rsa"):
        assert (registry_env.trust_dir / f"{name}.key").is_file() and (registry_env.trust_dir / f"{name}.pub").is_file()


def test_the_other_cosigns_examples(registry_env: RegistryEnv) -> None:
    """examples/kyc: cosign v3 on distribution (referrers tag schema), cosign v2 OCI 1.1 mode on the other."""
    digest = registry_env.digest("acme/kyc")
    on_distribution = registry_env.images["registries"]["registry"]["other_cosign"]
    assert (on_distribution["repository"], on_distribution["cosign"]) == ("examples/kyc", "v3")
    fallback_tag = digest.replace(":", "-")
    assert on_distribution["tags"] == [fallback_tag]
    index = get_json(registry_env, "registry", f"/v2/examples/kyc/manifests/{fallback_tag}", MANIFEST_TYPES)
    assert index["mediaType"] == OCI_INDEX and {m["artifactType"] for m in index["manifests"]} == {BUNDLE}

    on_referrers = registry_env.images["registries"]["referrers_registry"]["other_cosign"]
    assert (on_referrers["repository"], on_referrers["cosign"], on_referrers["tags"]) == ("examples/kyc", "v2", [])
    referrers = get_json(registry_env, "referrers_registry", f"/v2/examples/kyc/referrers/{digest}", [OCI_INDEX])
    assert [m["artifactType"] for m in referrers["manifests"]] == ["application/vnd.dev.cosign.artifact.sig.v1+json"]


# --- cosign ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "version"),
    [("registry", "v2"), ("referrers_registry", "v3"), ("basic_registry", "v2"), ("token_registry", "v3")],
)
def test_cosign_verifies_with_the_trusted_key_only(
    registry_env: RegistryEnv, tmp_path: Path, key: str, version: str
) -> None:
    address = registry_env.images["registries"][key]["address"]
    ref = f"{address}/acme/payments-api@{registry_env.digest('acme/payments-api')}"
    trusted, untrusted = str(registry_env.trust_dir / "cosign.pub"), str(registry_env.trust_dir / "untrusted.pub")
    verified = cosign(registry_env, tmp_path, version, "verify", "--key", trusted, "--insecure-ignore-tlog=true", ref)
    assert verified.returncode == 0, verified.stderr
    payloads = next(json.loads(line) for line in verified.stdout.splitlines() if line.startswith("["))
    assert {p["critical"]["image"]["docker-manifest-digest"] for p in payloads} == {
        registry_env.digest("acme/payments-api")
    }
    refused = cosign(registry_env, tmp_path, version, "verify", "--key", untrusted, "--insecure-ignore-tlog=true", ref)
    assert refused.returncode != 0
    assert "no matching signatures" in refused.stderr or "verif" in refused.stderr.lower()

    for predicate in ("cyclonedx", "vuln"):
        attested = cosign(
            registry_env,
            tmp_path,
            version,
            "verify-attestation",
            "--key",
            trusted,
            "--insecure-ignore-tlog=true",
            "--type",
            predicate,
            ref,
        )
        assert attested.returncode == 0, attested.stderr
        statement = json.loads(base64.b64decode(json.loads(attested.stdout.splitlines()[0])["payload"]))
        if predicate == "vuln":
            result = statement["predicate"]["scanner"]["result"]
            assert [v["Severity"] for r in result["Results"] for v in r.get("Vulnerabilities", [])] == ["HIGH"]
        else:
            assert statement["predicate"]["bomFormat"] == "CycloneDX" and statement["predicate"]["specVersion"] == "1.5"
