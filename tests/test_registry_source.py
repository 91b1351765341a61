"""The registry source and the supply-chain checks against real registries and real cosign signatures.

scripts/testenv's registry part (tests/registry_env.py) runs distribution v3.1.2 (no referrers API:
cosign v2's tags), a go-containerregistry registry with the OCI 1.1 referrers API (cosign v3
bundles), and two TLS registries behind basic auth and the bearer-token flow. The demo images are
signed and attested there with trust/cosign.key. Each negative case is made here with the real
tools: an unsigned image, a signature by an untrusted key, a signature copied from another image,
a tampered payload, an SBOM attested for another digest, an invalid SBOM. A misbehaving registry
(garbage, oversized bodies, 429s) is a small stand-in server: no real registry misbehaves on demand.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import os
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import yaml

from auditor import evidence
from auditor.checkapi import CheckContext
from auditor.models import EvidenceSet, Status
from auditor.sources.oci import Credentials, ImageRef, RegistryClient, RegistryError
from auditor.sources.registry import RegistrySource, image_uses
from auditor.sources.signatures import TrustedKey, load_public_key

from .conftest import AS_OF, FIXTURE_PARAMS, ROOT, check_by_id, collect, run_cli, tagged_gitops_repo
from .kube_env import KubeEnv, kube_env_fixture  # noqa: F401  (the fixture `kube_env`)
from .registry_env import RegistryEnv, offline_tool_env, registry_env_fixture  # noqa: F401  (the fixture `registry_env`)

DEMO = ROOT / "fixtures" / "demo" / "manifests"
REPORT_SCHEMA = json.loads((ROOT / "auditor" / "data" / "report.schema.json").read_text())


# ---------------------------------------------------------------------- helpers


def run_tool(env: RegistryEnv, tmp_path: Path, binary: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(binary), *args],
        env=offline_tool_env(env, tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, f"{binary.name} {' '.join(args)}: {proc.stderr[-2000:]}"
    return proc.stdout.strip()


def push_image(env: RegistryEnv, tmp_path: Path, ref: str, content: str) -> str:
    """A new one-layer image at ``ref`` (crane append on the empty base); returns its digest."""
    layer = tmp_path / f"layer-{hashlib.sha256(content.encode()).hexdigest()[:12]}.tar"
    buf = BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = content.encode()
        info = tarfile.TarInfo("app/VERSION")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, BytesIO(data))
    layer.write_bytes(buf.getvalue())
    run_tool(env, tmp_path, env.crane, "append", "--oci-empty-base", "-f", str(layer), "-t", ref)
    return run_tool(env, tmp_path, env.crane, "digest", ref)


def sign(env: RegistryEnv, tmp_path: Path, ref_at_digest: str, key: str = "cosign.key") -> None:
    run_tool(
        env,
        tmp_path,
        env.cosign,
        "sign",
        "--yes",
        "--tlog-upload=false",
        "--key",
        str(env.trust_dir / key),
        ref_at_digest,
    )


def attest(env: RegistryEnv, tmp_path: Path, ref_at_digest: str, predicate: Mapping[str, Any], kind: str) -> None:
    path = tmp_path / f"predicate-{hashlib.sha256(kind.encode()).hexdigest()[:12]}.json"
    path.write_text(json.dumps(predicate))
    run_tool(
        env,
        tmp_path,
        env.cosign,
        "attest",
        "--yes",
        "--tlog-upload=false",
        "--key",
        str(env.trust_dir / "cosign.key"),
        "--type",
        kind,
        "--predicate",
        str(path),
        ref_at_digest,
    )


def put(url: str, data: bytes, content_type: str) -> None:
    r = requests.put(url, data=data, headers={"Content-Type": content_type}, timeout=30)
    assert r.status_code in (200, 201), (url, r.status_code, r.text[:300])


def push_blob(host: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = requests.post(f"http://{host}/v2/{repo}/blobs/uploads/", timeout=30)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    put(f"{location}{sep}digest={digest}", data, "application/octet-stream")
    return digest


def get_manifest(host: str, repo: str, reference: str) -> dict[str, Any]:
    r = requests.get(
        f"http://{host}/v2/{repo}/manifests/{reference}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=30,
    )
    assert r.status_code == 200, (repo, reference, r.status_code)
    return dict(r.json())


def keys(env: RegistryEnv, *names: str) -> list[TrustedKey]:
    return [load_public_key(env.trust_dir / n) for n in names]


def manifests_for(tmp_path: Path, refs: Sequence[str], namespace: str = "shop") -> Path:
    docs = []
    for i, ref in enumerate(refs):
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"app-{i}", "namespace": namespace},
                "spec": {
                    "selector": {"matchLabels": {"app": f"app-{i}"}},
                    "template": {
                        "metadata": {"labels": {"app": f"app-{i}"}},
                        "spec": {"containers": [{"name": "app", "image": ref}]},
                    },
                },
            }
        )
    path = tmp_path / "deployments.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def registry_evidence(
    tmp_path: Path,
    refs: Sequence[str],
    trusted: Sequence[TrustedKey],
    *,
    client: RegistryClient | None = None,
    insecure: Sequence[str] = (),
    cache: Path | None = None,
) -> tuple[EvidenceSet, RegistrySource]:
    ev = collect(manifests_for(tmp_path, refs))
    source = RegistrySource(
        image_uses(ev.objects),
        client or RegistryClient(insecure=insecure),
        keys=trusted,
        cli_keys=[k.fingerprint for k in trusted],
        cache_dir=cache,
    )
    result = source.collect()
    return evidence.with_registry(ev, result.records, source.trust_json(), result.gaps, result.record), source


def verdicts(ev: EvidenceSet, check_id: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """image -> (status, facets, message) for one check."""
    ctx = CheckContext(ev, {**FIXTURE_PARAMS, **(params or {})}, AS_OF)
    return {str(r.subject.image): (r.status, r.facets, r.message) for r in check_by_id(check_id).run(ctx)}


@pytest.fixture(scope="module")
def negatives(registry_env: RegistryEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Negative cases made once with crane and cosign on the distribution registry: name -> ref@digest."""
    env, tmp = registry_env, tmp_path_factory.mktemp("negatives")
    host = env.registry
    ns = f"neg{os.getpid()}x{int(time.time())}"  # the registry may outlive a test session: fresh repositories each time
    out: dict[str, str] = {}
    for name in (
        "unsigned",
        "untrusted",
        "copied",
        "tampered",
        "ed25519",
        "rsa",
        "sbom-other",
        "sbom-invalid",
        "vex",
        "trivy-raw",
    ):
        ref = f"{host}/{ns}/{name}:1.0"
        out[name] = f"{host}/{ns}/{name}@{push_image(env, tmp, ref, f'{ns}/{name}')}"
    sign(env, tmp, out["untrusted"], "untrusted.key")
    sign(env, tmp, out["ed25519"], "ed25519.key")
    sign(env, tmp, out["rsa"], "rsa.key")
    # A valid signature of the demo kyc image, copied to another image's signature tag.
    kyc = env.digest("acme/kyc").removeprefix("sha256:")
    copied = out["copied"].partition("@")[2].removeprefix("sha256:")
    run_tool(
        env, tmp, env.crane, "copy", f"{host}/acme/kyc:sha256-{kyc}.sig", f"{host}/{ns}/copied:sha256-{copied}.sig"
    )
    # A signed image whose payload is then changed (the signature annotation kept).
    sign(env, tmp, out["tampered"])
    tag = "sha256-" + out["tampered"].partition("@")[2].removeprefix("sha256:") + ".sig"
    manifest = get_manifest(host, f"{ns}/tampered", tag)
    (layer,) = manifest["layers"]
    payload = requests.get(f"http://{host}/v2/{ns}/tampered/blobs/{layer['digest']}", timeout=30).content
    forged = payload.replace(b'"optional":null', b'"optional":{"approved":"yes"}')
    assert forged != payload
    layer["digest"], layer["size"] = push_blob(host, f"{ns}/tampered", forged), len(forged)
    put(f"http://{host}/v2/{ns}/tampered/manifests/{tag}", json.dumps(manifest).encode(), manifest["mediaType"])
    # An SBOM attested for the demo kyc image, presented as another image's attestation.
    run_tool(
        env,
        tmp,
        env.crane,
        "copy",
        f"{host}/acme/kyc:sha256-{kyc}.att",
        f"{host}/{ns}/sbom-other:sha256-{out['sbom-other'].partition('@')[2].removeprefix('sha256:')}.att",
    )
    sign(env, tmp, out["sbom-other"])
    # A CycloneDX "SBOM" that fails its schema, properly attested.
    attest(
        env,
        tmp,
        out["sbom-invalid"],
        {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": "none"},
        "cyclonedx",
    )
    # A critical CVE in an attested scan, closed by an attested OpenVEX not_affected statement.
    attest(env, tmp, out["vex"], cosign_vuln(TRIVY_CRITICAL), "vuln")
    attest(env, tmp, out["vex"], openvex("CVE-2026-0001"), "openvex")
    # The same scan attested as Trivy's own report under a custom predicate type, and no VEX.
    attest(env, tmp, out["trivy-raw"], TRIVY_CRITICAL, "https://trivy.dev/report")
    return out


TRIVY_CRITICAL: dict[str, Any] = {
    "SchemaVersion": 2,
    "ArtifactName": "acme/payments",
    "Results": [
        {
            "Target": "acme/payments (debian 12.7)",
            "Vulnerabilities": [
                {
                    "VulnerabilityID": "CVE-2026-0001",
                    "PkgName": "openssl",
                    "InstalledVersion": "3.0.14",
                    "Severity": "CRITICAL",
                    "PublishedDate": "2026-10-01T00:00:00Z",
                }
            ],
        }
    ],
}


def cosign_vuln(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {"uri": "pkg:github/aquasecurity/trivy@0.58.0", "version": "0.58.0", "result": result},
        "metadata": {"scanStartedOn": "2026-11-26T01:00:00Z", "scanFinishedOn": "2026-11-26T01:02:00Z"},
    }


def openvex(cve: str) -> dict[str, Any]:
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://acme.example/vex/payments-2026-11",
        "author": "security@acme.example",
        "timestamp": "2026-11-26T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": cve},
                "products": [{"@id": "pkg:oci/payments"}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
            }
        ],
    }


# ---------------------------------------------------------------------- end to end, both registries


@pytest.mark.parametrize("which", ["registry", "referrers_registry"])
def test_demo_audit_end_to_end(registry_env: RegistryEnv, tmp_path: Path, which: str) -> None:
    """The demo platform, with its registry mirrored to a real one: cosign v2 tags (distribution) or
    cosign v3 bundles (referrers API). Every pinned image is signed by the trusted key, carries an
    attested SBOM and scan; the tag-only promo:2.3.1 is unsigned; payments-api has its one high CVE."""
    host = getattr(registry_env, which)
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "id: demo-supply\nversion: '1'\ntitle: demo supply chain\nextends: ukgc\nparameters:\n"
        f"  trusted_signers: [{{name: acme release key, key: {registry_env.trust_dir / 'cosign.pub'}}}]\n"
        "  required_platforms: [linux/amd64]\n"
        "  vulnerability_budget: {critical: 0, high: 0}\n"
    )
    args = (
        "audit",
        str(DEMO),
        "--profile",
        str(profile),
        "--out",
        str(tmp_path / "out"),
        "--format",
        "json,pdf",
        "--as-of",
        AS_OF,
        "--registry-mirror",
        f"registry.acme-gaming.example={host}",
        "--insecure-registry",
        host,
        "--registry-cache",
        str(tmp_path / "cache"),
    )
    proc = run_cli(*args)
    assert proc.returncode in (1, 3), proc.stderr
    assert "Traceback" not in proc.stderr
    report_bytes = (tmp_path / "out" / "demo-supply" / "report.json").read_bytes()
    report = json.loads(report_bytes)
    jsonschema.validate(report, REPORT_SCHEMA)
    rows = {r["image"].split("/")[-1]: r for r in report["images"]}
    assert "promo:2.3.1" in rows
    for name, row in rows.items():
        if name == "promo:2.3.1":
            assert row["verdicts"]["image.signed"] == {"status": "fail", "facets": ["unsigned"]}
            assert row["digest"] == registry_env.digest("acme/promo", "2.3.1")  # the tag resolved at audit time
            continue
        assert row["verdicts"]["image.signed"]["status"] == "pass", (name, row)
        assert row["signers"][0]["trusted_as"] == "acme release key"
        assert row["verdicts"]["image.sbom"]["status"] == "pass", (name, row)
        assert row["sbom"]["components"] > 0
        assert row["verdicts"]["image.multi-arch"]["status"] == "pass"
        expected_high = 1 if name.startswith("payments-api") else 0
        assert row["vulnerabilities"]["high"] == expected_high, (name, row["vulnerabilities"])
        assert row["verdicts"]["image.vulns-within-budget"]["status"] == ("fail" if expected_high else "pass")
    wallet = next(r for n, r in rows.items() if n.startswith("wallet"))
    assert wallet["platforms"] == ["linux/amd64", "linux/arm64"]
    # Deterministic: the same run again (now from the cache) gives the same bytes.
    again = run_cli(*args[:6], "--out", str(tmp_path / "again"), *args[8:])
    assert again.returncode == proc.returncode
    assert (tmp_path / "again" / "demo-supply" / "report.json").read_bytes() == report_bytes


@pytest.mark.parametrize("which", ["registry", "referrers_registry"])
def test_the_other_cosign_formats_verify(registry_env: RegistryEnv, tmp_path: Path, which: str) -> None:
    """examples/kyc: cosign v3 bundles behind the referrers tag schema on distribution, and cosign v2's
    OCI 1.1 referrer (simple signing) on the referrers registry."""
    host = getattr(registry_env, which)
    digest = registry_env.digest("acme/kyc")
    ev, _ = registry_evidence(
        tmp_path, [f"{host}/examples/kyc@{digest}"], keys(registry_env, "cosign.pub"), insecure=[host]
    )
    ((status, _facets, message),) = verdicts(ev, "image-signed").values()
    assert status is Status.PASS, message


# ---------------------------------------------------------------------- negative cases


def test_negative_cases_never_pass(registry_env: RegistryEnv, negatives: dict[str, str], tmp_path: Path) -> None:
    trusted = keys(registry_env, "cosign.pub")
    ev, _ = registry_evidence(tmp_path, sorted(negatives.values()), trusted, insecure=[registry_env.registry])
    signed = verdicts(ev, "image-signed")
    by_name = {ref.split("/")[2].split("@")[0]: v for ref, v in signed.items()}
    assert len(by_name) == len(negatives), (signed, [r.get("errors") for r in ev.images])
    assert by_name["unsigned"][:2] == (Status.FAIL, ("unsigned",))
    assert by_name["untrusted"][:2] == (Status.FAIL, ("unverifiable-signature",))
    assert by_name["copied"][:2] == (Status.FAIL, ("copied-signature",))
    assert "copied from another image" in by_name["copied"][2]
    assert by_name["tampered"][:2] == (Status.FAIL, ("unverifiable-signature",))
    sbom = {ref.split("/")[2].split("@")[0]: v for ref, v in verdicts(ev, "image-sbom").items()}
    assert sbom["sbom-other"][0] is Status.FAIL and "sbom-other-digest" in sbom["sbom-other"][1], sbom["sbom-other"]
    assert sbom["sbom-invalid"][:2] == (Status.FAIL, ("invalid-sbom",)), sbom["sbom-invalid"]
    vulns = {ref.split("/")[2].split("@")[0]: v for ref, v in verdicts(ev, "image-vulns-within-budget").items()}
    assert vulns["trivy-raw"][:2] == (Status.FAIL, ("critical-over-budget",)), vulns["trivy-raw"]
    assert "CVE-2026-0001" in vulns["trivy-raw"][2]
    assert vulns["vex"][0] is Status.PASS and "1 closed by VEX" in vulns["vex"][2], vulns["vex"]
    ctx = CheckContext(ev, FIXTURE_PARAMS, AS_OF)
    (vex_result,) = [r for r in check_by_id("image-vulns-within-budget").run(ctx) if "/vex@" in str(r.subject.image)]
    assert any(
        "CVE-2026-0001: not_affected per OpenVEX https://acme.example/vex/payments-2026-11" in e
        for e in vex_result.evidence
    )
    # The signature copied from kyc is valid and by the trusted key: only the digest binding rejects it.
    rec = next(r for r in ev.images if "/copied@" in r["ref"])
    sig = rec["artifacts"][0]["entries"][0]["signature"]
    assert sig["outcome"] == "digest-mismatch" and sig["signer"]["key"] == trusted[0].fingerprint


def test_untrusted_key_and_signer_scope(registry_env: RegistryEnv, negatives: dict[str, str], tmp_path: Path) -> None:
    """Signed by a key the auditor knows but the profile does not trust for this namespace: untrusted-signer."""
    env = registry_env
    ref = negatives["untrusted"]
    known = keys(env, "untrusted.pub")
    ev = collect(manifests_for(tmp_path, [ref]))
    source = RegistrySource(image_uses(ev.objects), RegistryClient(insecure=[env.registry]), keys=known)
    result = source.collect()
    ev = evidence.with_registry(ev, result.records, source.trust_json(), result.gaps, result.record)
    scoped = {"trusted_signers": [{"name": "payments team", "key": known[0].fingerprint, "namespaces": ["payments-*"]}]}
    ((status, facets, _),) = verdicts(ev, "image-signed", scoped).values()
    assert (status, facets) == (Status.FAIL, ("untrusted-signer",))
    in_scope = {"trusted_signers": [{"name": "shop team", "key": known[0].fingerprint, "namespaces": ["shop"]}]}
    ((status, _, message),) = verdicts(ev, "image-signed", in_scope).values()
    assert status is Status.PASS and "shop team" in message


@pytest.mark.parametrize("key", ["ed25519", "rsa"])
def test_ed25519_and_rsa_keys(registry_env: RegistryEnv, negatives: dict[str, str], tmp_path: Path, key: str) -> None:
    ev, _ = registry_evidence(
        tmp_path, [negatives[key]], keys(registry_env, f"{key}.pub"), insecure=[registry_env.registry]
    )
    ((status, _, message),) = verdicts(ev, "image-signed").values()
    assert status is Status.PASS, message


# ---------------------------------------------------------------------- authentication and TLS


@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_authenticated_tls_registries(
    registry_env: RegistryEnv, tmp_path: Path, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = registry_env
    host = getattr(env, which)
    ref = ImageRef.parse(f"{host}/acme/kyc:1.14.2")
    # Without the CA: TLS stays on and the message says what to do.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    with pytest.raises(RegistryError, match="TLS verification failed"):
        RegistryClient(retries=0).manifest(ref)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(env.ca))
    # Without credentials: refused, naming the registry.
    with pytest.raises(RegistryError, match=host):
        RegistryClient(retries=0).manifest(ref)
    # With the credentials of a Docker config: resolved.
    client = RegistryClient(credentials={host: Credentials(env.username, env.password)})
    assert client.manifest(ref).digest == env.digest("acme/kyc")
    # The whole path, through --registry-config, on the command line.
    config = tmp_path / "config.json"
    auth = base64.b64encode(f"{env.username}:{env.password}".encode()).decode()
    config.write_text(json.dumps({"auths": {f"https://{host}": {"auth": auth}}}))
    manifests = manifests_for(tmp_path, [f"{host}/acme/kyc@{env.digest('acme/kyc')}"])
    proc = run_cli(
        "collect",
        str(manifests),
        "--out",
        str(tmp_path / "ev.json"),
        "--registry-config",
        str(config),
        "--trust-key",
        str(env.trust_dir / "cosign.pub"),
        "--no-registry-cache",
    )
    assert proc.returncode == 0, proc.stderr
    snapshot = json.loads((tmp_path / "ev.json").read_text())
    (record,) = snapshot["registry"]["images"]
    assert record["digest"] == env.digest("acme/kyc") and not record.get("errors")
    outcomes = [e["signature"]["outcome"] for a in record["artifacts"] for e in a["entries"] if e.get("signature")]
    assert "verified" in outcomes


# ---------------------------------------------------------------------- cache


def test_warm_cache_reads_nothing_again_and_gives_the_same_records(registry_env: RegistryEnv, tmp_path: Path) -> None:
    env = registry_env
    refs = [f"{env.registry}/acme/{n}@{env.digest('acme/' + n)}" for n in ("wallet", "kyc", "payments-api")]
    trusted = keys(env, "cosign.pub")
    cold, cold_source = registry_evidence(tmp_path, refs, trusted, insecure=[env.registry], cache=tmp_path / "c")
    warm, warm_source = registry_evidence(tmp_path, refs, trusted, insecure=[env.registry], cache=tmp_path / "c")
    assert cold_source.client.requests > 20
    assert warm_source.client.requests == 0
    assert cold.images == warm.images
    # Other trust inputs, other cache entries: a key added is a fresh verification.
    more = keys(env, "cosign.pub", "untrusted.pub")
    _, other = registry_evidence(tmp_path, refs, more, insecure=[env.registry], cache=tmp_path / "c")
    assert other.client.requests > 0


# ---------------------------------------------------------------------- a misbehaving registry (stand-in)


class _Misbehaving(http.server.BaseHTTPRequestHandler):
    """Answers like a broken registry: garbage, a body larger than any manifest, a digest that lies, and
    429 twice before a good answer."""

    good = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:" + "4" * 64, "size": 2},
            "layers": [],
        }
    ).encode()
    throttled = 0

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        path = self.path
        if "/garbage/manifests/" in path:
            self._send(200, b"\x00\xffnot json at all" * 10, "application/vnd.oci.image.manifest.v1+json")
        elif "/huge/manifests/" in path:
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", str(64 * 1024 * 1024))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(b"{" * 65536)
        elif "/liar/manifests/" in path:
            self._send(200, self.good, "application/vnd.oci.image.manifest.v1+json", digest="sha256:" + "9" * 64)
        elif "/busy/manifests/" in path and "sha256-" not in path:
            if _Misbehaving.throttled < 2:
                _Misbehaving.throttled += 1
                self.send_response(429)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send(200, self.good, "application/vnd.oci.image.manifest.v1+json")
        else:
            self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', "application/json")

    def _send(self, status: int, body: bytes, content_type: str, digest: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if digest:
            self.send_header("Docker-Content-Digest", digest)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def misbehaving() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Misbehaving)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Misbehaving.throttled = 0
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_misbehaving_registry_is_named_and_never_passes(misbehaving: str, tmp_path: Path) -> None:
    refs = [f"{misbehaving}/{n}:1.0" for n in ("garbage", "huge", "liar", "busy")]
    ev, _source = registry_evidence(tmp_path, refs, [], insecure=[misbehaving])
    records = {r["ref"].split("/")[1]: r for r in ev.images}
    assert "not JSON" in records["garbage:1.0"]["errors"][0]
    assert "limit" in records["huge:1.0"]["errors"][0] and misbehaving in records["huge:1.0"]["errors"][0]
    assert "does not match the content" in records["liar:1.0"]["errors"][0]
    assert records["busy:1.0"]["digest"].startswith("sha256:") and not records["busy:1.0"].get("errors")
    assert _Misbehaving.throttled == 2
    gaps = {g.target for g in ev.gaps if g.source == "registry"}
    assert {f"{misbehaving}/{n}:1.0" for n in ("garbage", "huge", "liar")} <= gaps
    signed = verdicts(ev, "image-signed", {"trusted_signers": [{"key": "sha256:" + "ab" * 32}]})
    for name in ("garbage", "huge", "liar"):
        status, _, message = signed[f"{misbehaving}/{name}:1.0"]
        assert status is Status.NOT_ASSESSED and "could not be read" in message
    assert signed[f"{misbehaving}/busy:1.0"][0] is Status.FAIL  # reachable, and unsigned


def test_cli_without_trust_names_why_signatures_are_not_assessed(registry_env: RegistryEnv, tmp_path: Path) -> None:
    """No trusted signer anywhere: image.signed is not assessed, with the reason; never a pass."""
    env = registry_env
    manifests = manifests_for(tmp_path, [f"{env.registry}/acme/kyc@{env.digest('acme/kyc')}"])
    proc = run_cli(
        "audit",
        str(manifests),
        "--profile",
        "baseline",
        "--out",
        str(tmp_path / "o"),
        "--format",
        "json",
        "--insecure-registry",
        env.registry,
        "--no-registry-cache",
        "--as-of",
        AS_OF,
    )
    assert proc.returncode in (1, 3), proc.stderr
    report = json.loads((tmp_path / "o" / "baseline" / "report.json").read_text())
    item = next(i for i in report["items"] if i["key"] == "image.signed")
    assert item["status"] == "not_assessed"
    assert "no trusted signers" in item["reason"], item


def test_trust_key_file_errors_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    manifests = manifests_for(tmp_path, ["registry.example.com/acme/x@sha256:" + "a" * 64])
    proc = run_cli("collect", str(manifests), "--out", str(tmp_path / "e.json"), "--trust-key", str(bad))
    assert proc.returncode == 2
    assert "bad.pub: not a public key" in proc.stderr and "Traceback" not in proc.stderr


def test_trusted_root_file_errors_are_named(tmp_path: Path) -> None:
    manifests = manifests_for(tmp_path, ["registry.example.com/acme/x@sha256:" + "a" * 64])
    proc = run_cli(
        "collect", str(manifests), "--out", str(tmp_path / "e.json"), "--trusted-root", str(tmp_path / "missing.json")
    )
    assert proc.returncode == 2
    assert "missing.json: cannot read the trusted root" in proc.stderr


# ---------------------------------------------------------------------- a live cluster's running images


def test_every_image_a_live_cluster_runs_is_verified(
    kube_env: KubeEnv, registry_env: RegistryEnv, tmp_path: Path
) -> None:
    """The test API server runs the demo platform (pods report the declared digests as running); the
    auditor's read-only ServiceAccount reads it, and every running image is verified in the registry."""
    host = registry_env.registry
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "id: cluster-supply\nversion: '1'\ntitle: cluster supply chain\nextends: baseline\nparameters:\n"
        f"  trusted_signers: [{{name: acme release key, key: {registry_env.trust_dir / 'cosign.pub'}}}]\n"
    )
    proc = run_cli(
        "audit",
        "--kubeconfig",
        str(kube_env.auditor_kubeconfig),
        "--profile",
        str(profile),
        "--out",
        str(tmp_path / "out"),
        "--format",
        "json",
        "--as-of",
        AS_OF,
        "--registry-mirror",
        f"registry.acme-gaming.example={host}",
        "--insecure-registry",
        host,
        "--no-registry-cache",
    )
    assert proc.returncode in (1, 3), proc.stderr
    report = json.loads((tmp_path / "out" / "cluster-supply" / "report.json").read_text())
    demo_rows = {
        r["image"].removeprefix("registry.acme-gaming.example/acme/"): r
        for r in report["images"]
        if r["image"].startswith("registry.acme-gaming.example/")
    }
    assert all(r["cluster"] for r in demo_rows.values())
    for name, row in demo_rows.items():
        if name == "promo:2.3.1":
            assert row["verdicts"]["image.signed"] == {"status": "fail", "facets": ["unsigned"]}
        elif name.startswith("promo@"):
            # The uk promo pods run a digest that the tag-only declaration does not name (the test cluster's
            # pods say they run it); the registry has no such manifest: not assessed, never passed.
            assert all("running in pod" in u for u in row["runs_in"])
            assert row["verdicts"]["image.signed"]["status"] == "not_assessed"
            assert "not found" in row["error"]
        else:
            assert row["verdicts"]["image.signed"]["status"] == "pass", row
    assert {n.split(":")[0].split("@")[0] for n in demo_rows} == {
        "bonus-engine",
        "game-gateway",
        "kyc",
        "payments-api",
        "promo",
        "wallet",
    }


def test_tags_in_gitops_manifests_are_resolved_in_the_registry(registry_env: RegistryEnv, tmp_path: Path) -> None:
    """release.gitops-pinned with registry evidence: a tag in Git is named with the digest it resolves to today."""
    host = registry_env.registry
    repo = tmp_path / "gitops"
    (repo / "deploy").mkdir(parents=True)
    (repo / "deploy" / "kyc.yaml").write_text(f"spec:\n  containers:\n  - image: {host}/acme/kyc:1.14.2\n")
    profile = tagged_gitops_repo(repo, "v1.0.0", "x", "deploy", tmp_path / "p.yaml")
    proc = run_cli(
        "audit",
        "--git",
        str(repo),
        "--tag",
        "v1.0.0",
        "--profile",
        str(profile),
        "--out",
        str(tmp_path / "o"),
        "--format",
        "json",
        "--insecure-registry",
        host,
        "--no-registry-cache",
        "--as-of",
        AS_OF,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads((tmp_path / "o" / "go" / "report.json").read_text())
    (finding,) = [f for f in report["findings"] if f["check"] == "release-gitops-pinned"]
    assert f"resolves it to {registry_env.digest('acme/kyc')}" in finding["message"]
