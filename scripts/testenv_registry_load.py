"""Load the test environment's registries: the demo images, signed and attested with cosign.

Run by `scripts/testenv up registry` (with the repo's .venv Python; it needs only the standard library
and the crane and cosign binaries scripts/testenv-build.sh builds):

    testenv_registry_load.py --crane CRANE --cosign COSIGN_V2 --cosign3 COSIGN_V3 --trust DIR
        --registry HOST:PORT --referrers-registry HOST:PORT
        [--basic-registry HOST:PORT --token-registry HOST:PORT --ca CA --username U --password-file F]
        --out images.json [--examples DIR]

1. Keys (kept when already there): cosign.key/.pub (ECDSA P-256, `cosign generate-key-pair`),
   untrusted.key/.pub (another ECDSA pair, trusted by nobody), ed25519.key/.pub and rsa.key/.pub
   (made with openssl, then `cosign import-key-pair`). All with an empty password.
2. Images, built deterministically in a scratch registry (`crane registry serve`, in memory, ended
   afterwards) so that their digests are the same on every run and every machine: one small OCI image
   per demo repository acme/<name>:1.14.2 (a layer tar with fixed names, order, modes, owners and
   mtime, appended to crane's empty OCI base, then platform, entrypoint and labels set with crane
   mutate; the config's created time is the zero time), and for acme/wallet an OCI image index of
   linux/amd64 and linux/arm64. Also acme/promo:2.3.1 (the tag-only image of the uk cluster), never
   signed.
   `crane copy` puts them in every registry; digests are kept.
3. Signatures and attestations with trust/cosign.key, offline (HTTPS_PROXY points at a closed port,
   no Rekor upload, no signing config): on --registry (distribution, no referrers API) with cosign v2,
   which stores the tags sha256-<hex>.sig and sha256-<hex>.att; on --referrers-registry with cosign v3
   (Sigstore bundles pushed as OCI 1.1 referrers); on --basic-registry with cosign v2 and on
   --token-registry with cosign v3, through their authentication. Each image gets a signature, a
   CycloneDX 1.5 SBOM attestation (--type cyclonedx) and a vulnerability attestation (--type vuln;
   one HIGH CVE for payments-api, none for the others).
   To show what the other cosign stores, examples/kyc (the acme/kyc image) is signed on --registry
   with cosign v3 (its bundles go through the referrers tag schema: the tag sha256-<hex> is an index
   of them) and on --referrers-registry with cosign v2 --registry-referrers-mode=oci-1-1 (a
   simple-signing signature as a referrer; signature only, as cosign v2 verify then finds it).
4. --out: images.json (per registry: address, how it was signed, and per image the repository, tag,
   digest, media type, platforms of an index, what is attached and the tags and referrers found);
   --examples: each kind of signature and attestation as stored (manifest, blobs, decoded payloads),
   with a README.txt per registry.
5. A check, offline: `cosign verify` and `cosign verify-attestation --type cyclonedx` with
   trust/cosign.pub pass for one image on every registry.

Progress goes to stderr; the digests are printed on stdout.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Json = dict[str, Any]

TAG = "1.14.2"
# The demo's repositories (fixtures/demo/manifests name them registry.acme-gaming.example/acme/<name>).
REPOSITORIES = ["wallet", "payments-api", "game-gateway", "kyc", "bonus-engine", "promo"]
PLATFORMS = {"wallet": ["linux/amd64", "linux/arm64"]}  # an OCI image index; the others linux/amd64 only
UNSIGNED = [("promo", "2.3.1")]  # the uk cluster's tag-only image: pushed, never signed
# Fixed times: nothing in an image or a predicate depends on when it was made.
EPOCH = 1704067200  # 2024-01-01T00:00:00Z
EPOCH_TEXT = "2024-01-01T00:00:00Z"
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: cosign can never reach the internet
REPO_URL = "https://github.com/acme-gaming/{name}"

# The one vulnerability of the demo images (payments-api), as trivy reports it.
VULNERABILITIES: dict[str, list[Json]] = {
    "payments-api": [
        {
            "VulnerabilityID": "CVE-2023-5363",
            "PkgID": "libssl3@3.0.11-1~deb12u1",
            "PkgName": "libssl3",
            "InstalledVersion": "3.0.11-1~deb12u1",
            "FixedVersion": "3.0.11-1~deb12u2",
            "Status": "fixed",
            "SeveritySource": "nvd",
            "PrimaryURL": "https://avd.aquasec.com/nvd/cve-2023-5363",
            "Title": "openssl: Incorrect cipher key and IV length processing",
            "Severity": "HIGH",
            "CVSS": {"nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "V3Score": 7.5}},
        }
    ]
}


def log(message: str) -> None:
    print(f"testenv_registry_load: {message}", file=sys.stderr, flush=True)


# --- running crane and cosign ----------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    crane: str
    cosign2: str
    cosign3: str
    env: dict[str, str]  # for every crane and cosign run: offline, docker config, CA

    def run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(args),
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
        shown = " ".join(a if len(a) < 120 else a[:117] + "..." for a in args)
        log(f"$ {shown}")
        if result.stderr.strip():
            log("  " + result.stderr.strip().replace("\n", "\n  "))
        if check and result.returncode != 0:
            raise SystemExit(f"testenv_registry_load: failed ({result.returncode}): {shown}\n{result.stderr}")
        return result

    def crane_(self, *args: str) -> str:
        return self.run(self.crane, *args).stdout.strip()


def offline_env(docker_config: Path, ca: Path | None, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    env.update(
        HTTPS_PROXY=DEAD_PROXY,
        HTTP_PROXY=DEAD_PROXY,
        https_proxy=DEAD_PROXY,
        http_proxy=DEAD_PROXY,
        COSIGN_PASSWORD="",
        DOCKER_CONFIG=str(docker_config),
        # cosign keeps a TUF cache under $HOME/.sigstore; it is never needed here, and never shared
        HOME=str(home),
        TUF_ROOT=str(home / ".sigstore" / "root"),
    )
    if ca is not None:
        env["SSL_CERT_FILE"] = str(ca)  # Go reads the trusted roots from this file alone
    return env


def write_docker_config(folder: Path, credentials: dict[str, tuple[str, str]]) -> None:
    auths = {host: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for host, (u, p) in credentials.items()}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"auths": auths}, indent=2))
    (folder / "config.json").chmod(0o600)


# --- keys ------------------------------------------------------------------------------------


def make_keys(tools: Tools, trust: Path) -> dict[str, str]:
    """The key pairs of the trust folder; returns what each import said (key type -> 'ok' or the error)."""
    trust.mkdir(parents=True, exist_ok=True)
    results: dict[str, str] = {}
    for prefix in ("cosign", "untrusted"):
        if not (trust / f"{prefix}.key").exists():
            tools.run(tools.cosign2, "generate-key-pair", "--output-key-prefix", str(trust / prefix))
        results[prefix] = "ok"
    openssl = {
        "ed25519": ["openssl", "genpkey", "-algorithm", "ed25519"],
        "rsa": ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    }
    for prefix, command in openssl.items():
        if (trust / f"{prefix}.key").exists():
            results[prefix] = "ok"
            continue
        with tempfile.TemporaryDirectory() as tmp:
            pem = Path(tmp) / f"{prefix}.pem"
            subprocess.run([*command, "-out", str(pem)], check=True, capture_output=True, timeout=60)
            done = tools.run(
                tools.cosign2,
                "import-key-pair",
                "--key",
                str(pem),
                "--output-key-prefix",
                str(trust / prefix),
                check=False,
            )
            results[prefix] = (
                "ok" if done.returncode == 0 else f"cosign import-key-pair refused it: {done.stderr.strip()}"
            )
    for key in trust.glob("*.key"):
        key.chmod(0o600)
    return results


# --- images ----------------------------------------------------------------------------------


def reproducible_tar(entries: list[tuple[str, bytes | None, int]]) -> bytes:
    """A layer whose bytes depend only on its entries (path, content or None for a folder, mode): fixed order, owners
    and mtime. bench/supply_chain.py builds its images with it too."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, data, mode in entries:
            info = tarfile.TarInfo(path.rstrip("/"))
            info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = mode, EPOCH, 0, 0, "root", "root"
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def layer_tar(name: str, platform: str) -> bytes:
    """A small layer whose bytes depend only on name and platform (fixed order, modes, owners, mtime)."""
    release = json.dumps({"name": name, "version": TAG, "platform": platform}, sort_keys=True).encode() + b"\n"
    entrypoint = f"#!/bin/sh\necho 'acme {name} {TAG} ({platform})'\n".encode()
    entries: list[tuple[str, bytes | None, int]] = [
        ("app/", None, 0o755),
        (f"app/{name}", entrypoint, 0o755),
        ("etc/", None, 0o755),
        ("etc/acme/", None, 0o755),
        ("etc/acme/release.json", release, 0o644),
    ]
    return reproducible_tar(entries)


def digest_of(ref_with_digest: str) -> str:
    match = re.search(r"@(sha256:[0-9a-f]{64})$", ref_with_digest)
    if not match:
        raise SystemExit(f"testenv_registry_load: no digest in crane's answer {ref_with_digest!r}")
    return match.group(1)


@contextmanager
def scratch_registry(crane: str) -> Iterator[str]:
    """`crane registry serve` on a free loopback port, in memory, ended on exit."""
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [crane, "registry", "serve", "--address", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            port = ""
            for _ in range(100):
                err.seek(0)
                found = re.search(r"serving on port (\d+)", err.read())
                if found:
                    port = found.group(1)
                    break
                if process.poll() is not None:
                    break
                time.sleep(0.1)
            if not port:
                err.seek(0)
                raise SystemExit(f"testenv_registry_load: crane registry serve did not start:\n{err.read()}")
            yield f"127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


@dataclass
class Image:
    repository: str  # acme/<name>
    tag: str
    digest: str
    media_type: str
    platforms: list[Json]  # of an index: [{"platform": "linux/amd64", "digest": ...}]; [] for an image
    signed: bool

    @property
    def name(self) -> str:
        return self.repository.rsplit("/", 1)[-1]


def build_images(tools: Tools, scratch: str, work: Path) -> list[Image]:
    """Build the demo images in the scratch registry; return them with their digests."""
    images: list[Image] = []
    builds = [(name, TAG, True) for name in REPOSITORIES] + [(name, tag, False) for name, tag in UNSIGNED]
    for name, tag, signed in builds:
        repository = f"acme/{name}"
        children: list[Json] = []
        for platform in PLATFORMS.get(name, ["linux/amd64"]):
            arch = platform.split("/")[1]
            tar = work / f"{name}-{tag}-{arch}.tar"
            tar.write_bytes(layer_tar(name, platform))
            base = f"{scratch}/build/{name}:{tag}-{arch}"
            tools.crane_("append", "--oci-empty-base", "-f", str(tar), "-t", base)
            labels = {
                "org.opencontainers.image.title": name,
                "org.opencontainers.image.version": tag,
                "org.opencontainers.image.vendor": "Acme Gaming",
                "org.opencontainers.image.source": REPO_URL.format(name=name),
            }
            mutate = ["mutate", base, "--set-platform", platform, "--entrypoint", f"/app/{name}"]
            for key, value in labels.items():
                mutate += ["--label", f"{key}={value}"]
            built = tools.crane_(*mutate, "-t", f"{scratch}/{repository}:{tag}-{arch}")
            children.append({"platform": platform, "digest": digest_of(built)})
        target = f"{scratch}/{repository}:{tag}"
        if len(children) == 1:
            tools.crane_("tag", f"{scratch}/{repository}:{tag}-{children[0]['platform'].split('/')[1]}", tag)
            digest = children[0]["digest"]
            images.append(Image(repository, tag, digest, "application/vnd.oci.image.manifest.v1+json", [], signed))
        else:
            appended = ["index", "append", "-t", target]
            for child in children:
                appended += ["-m", f"{scratch}/{repository}@{child['digest']}"]
            digest = digest_of(tools.crane_(*appended))
            images.append(Image(repository, tag, digest, "application/vnd.oci.image.index.v1+json", children, signed))
        if tools.crane_("digest", target) != images[-1].digest:
            raise SystemExit(f"testenv_registry_load: {target} is not {images[-1].digest}")
    return images


# --- SBOMs and vulnerability reports -----------------------------------------------------------


def sbom(image: Image) -> Json:
    """A small CycloneDX 1.5 SBOM of the image (deterministic: fixed serial number and timestamp)."""
    ref = f"registry.acme-gaming.example/{image.repository}"
    components: list[Json] = [
        {
            "type": "operating-system",
            "name": "debian",
            "version": "12.2",
            "bom-ref": "os:debian@12.2",
        },
        {
            "type": "library",
            "name": "libc6",
            "version": "2.36-9+deb12u3",
            "purl": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u3?arch=amd64&distro=debian-12.2",
            "licenses": [{"license": {"id": "LGPL-2.1-or-later"}}],
        },
        {
            "type": "library",
            "name": "libssl3",
            "version": "3.0.11-1~deb12u1" if image.name == "payments-api" else "3.0.11-1~deb12u2",
            "purl": "pkg:deb/debian/libssl3@"
            + ("3.0.11-1~deb12u1" if image.name == "payments-api" else "3.0.11-1~deb12u2")
            + "?arch=amd64&distro=debian-12.2",
            "licenses": [{"license": {"id": "Apache-2.0"}}],
        },
        {
            "type": "library",
            "name": "ca-certificates",
            "version": "20230311",
            "purl": "pkg:deb/debian/ca-certificates@20230311?arch=all&distro=debian-12.2",
            "licenses": [{"license": {"id": "MPL-2.0"}}],
        },
        {
            "type": "application",
            "name": image.name,
            "version": image.tag,
            "purl": f"pkg:oci/{image.name}@{image.digest.replace(':', '%3A')}?repository_url={ref}",
        },
    ]
    return cyclonedx(ref, image.digest, components, "auditor-testenv")


def cyclonedx(ref: str, digest: str, components: list[Json], tool: str) -> Json:
    """A CycloneDX 1.5 document of the container ``ref@digest`` (deterministic: the serial number derives from it,
    the timestamp is fixed); components without a bom-ref get their purl or name. bench/supply_chain.py uses it too."""
    for component in components:
        component.setdefault("bom-ref", component.get("purl", component["name"]))
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{ref}@{digest}')}",
        "version": 1,
        "metadata": {
            "timestamp": EPOCH_TEXT,
            "tools": {"components": [{"type": "application", "name": tool, "version": "1"}]},
            "component": {"type": "container", "name": ref, "version": digest, "bom-ref": f"{ref}@{digest}"},
        },
        "components": components,
    }


def vuln_predicate(image: Image) -> Json:
    """cosign's vuln predicate (--type vuln) with a trivy JSON report as the scanner's result."""
    ref = f"registry.acme-gaming.example/{image.repository}@{image.digest}"
    vulnerabilities = VULNERABILITIES.get(image.name, [])
    result: Json = {
        "SchemaVersion": 2,
        "CreatedAt": EPOCH_TEXT,
        "ArtifactName": ref,
        "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": "debian", "Name": "12.2"}, "RepoDigests": [ref]},
        "Results": [
            {
                "Target": f"{ref} (debian 12.2)",
                "Class": "os-pkgs",
                "Type": "debian",
                **({"Vulnerabilities": vulnerabilities} if vulnerabilities else {}),
            }
        ],
    }
    return {
        "invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy@v0.58.1",
            "version": "0.58.1",
            "db": {"uri": "ghcr.io/aquasecurity/trivy-db:2", "version": "2"},
            "result": result,
        },
        "metadata": {"scanStartedOn": EPOCH_TEXT, "scanFinishedOn": EPOCH_TEXT},
    }


# --- signing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """How one cosign signs and attests: its version and its extra flags."""

    cosign: str  # "v2" or "v3"
    description: str
    sign_flags: tuple[str, ...] = ()
    attest_flags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    attest: bool = True


COSIGN2_TAGS = Signer("v2", "cosign v2: signature and attestations in the tags sha256-<hex>.sig and .att")
COSIGN3_BUNDLES = Signer(
    "v3",
    "cosign v3: Sigstore bundles (DSSE) as OCI 1.1 referrers "
    "(pushed through the referrers tag schema, tag sha256-<hex>, where there is no referrers API)",
)
COSIGN2_OCI11 = Signer(
    "v2",
    "cosign v2 --registry-referrers-mode=oci-1-1 (COSIGN_EXPERIMENTAL=1): a simple-signing signature as an OCI 1.1 "
    "referrer, artifactType application/vnd.dev.cosign.artifact.sig.v1+json (signature only)",
    sign_flags=("--registry-referrers-mode=oci-1-1",),
    env=(("COSIGN_EXPERIMENTAL", "1"),),
    attest=False,
)


@dataclass(frozen=True)
class Target:
    key: str  # in images.json
    address: str
    description: str
    signer: Signer
    other: Signer | None = None  # signs examples/<image> there too, to show what the other cosign stores


def common_flags(version: str) -> list[str]:
    """Offline signing: no Rekor upload; v3 also no signing config (which it would fetch from the TUF root)."""
    flags = ["--tlog-upload=false", "--yes"]
    if version == "v3":
        flags.append("--use-signing-config=false")
    return flags


def sign_and_attest(tools: Tools, signer: Signer, ref: str, image: Image, trust: Path, work: Path) -> list[str]:
    """Sign ref with trust/cosign.key; attest a CycloneDX SBOM and a vulnerability report. What was attached."""
    cosign = tools.cosign2 if signer.cosign == "v2" else tools.cosign3
    key = str(trust / "cosign.key")
    env = dict(signer.env)
    flags = common_flags(signer.cosign)
    tools.run(cosign, "sign", "--key", key, *signer.sign_flags, *flags, ref, env=env)
    if not signer.attest:
        return ["signature"]
    sbom_file = work / f"{image.name}.cdx.json"
    sbom_file.write_text(json.dumps(sbom(image), indent=2) + "\n")
    vuln_file = work / f"{image.name}.vuln.json"
    vuln_file.write_text(json.dumps(vuln_predicate(image), indent=2) + "\n")
    for kind, predicate in (("cyclonedx", sbom_file), ("vuln", vuln_file)):
        attest = [cosign, "attest", "--key", key, "--type", kind, "--predicate", str(predicate)]
        tools.run(*attest, *signer.attest_flags, *flags, ref, env=env)
    return ["signature", "cyclonedx", "vuln"]


# --- reading back what is stored -----------------------------------------------------------------


class Registry:
    """A tiny OCI distribution client (GET only) for reading back tags, referrers and blobs."""

    def __init__(self, address: str, scheme: str, context: ssl.SSLContext | None, credentials: tuple[str, str] | None):
        self.base = f"{scheme}://{address}"
        self.context = context
        self.credentials = credentials
        self.token: str | None = None

    def get(self, path: str, accept: Sequence[str] = ()) -> tuple[int, dict[str, str], bytes]:
        """GET path: status, headers (names in lower case), body; a bearer challenge is answered once."""
        for _ in range(2):
            headers = {"Accept": ", ".join(accept)} if accept else {}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            elif self.credentials:
                headers["Authorization"] = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            request = urllib.request.Request(self.base + path, headers=headers)
            try:
                with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
                    return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
            except urllib.error.HTTPError as e:
                challenge = e.headers.get("WWW-Authenticate", "")
                if e.code == 401 and challenge.startswith("Bearer ") and self.credentials and not self.token:
                    self.token = self._fetch_token(challenge)
                    continue
                return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
        raise AssertionError("unreachable")

    def _fetch_token(self, challenge: str) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        query = urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
        assert self.credentials is not None
        auth = base64.b64encode(":".join(self.credentials).encode()).decode()
        request = urllib.request.Request(f"{params['realm']}?{query}", headers={"Authorization": f"Basic {auth}"})
        with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
            body: Json = json.loads(response.read())
        return str(body["token"])

    def json(self, path: str, accept: Sequence[str] = ()) -> Json:
        status, _, body = self.get(path, accept)
        if status != 200:
            raise SystemExit(f"testenv_registry_load: GET {self.base}{path}: {status} {body[:300]!r}")
        parsed: Json = json.loads(body)
        return parsed


MANIFEST_TYPES = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
]


def attached(registry: Registry, image: Image) -> Json:
    """The tags beside the image's (sha256-<hex>.sig, .att, ...) and its referrers, as stored."""
    tags = registry.json(f"/v2/{image.repository}/tags/list").get("tags") or []
    prefix = image.digest.replace(":", "-")
    status, _, body = registry.get(
        f"/v2/{image.repository}/referrers/{image.digest}", ["application/vnd.oci.image.index.v1+json"]
    )
    referrers = json.loads(body).get("manifests", []) if status == 200 else None
    return {
        "tags": sorted(t for t in tags if t.startswith(prefix)),
        "referrers_api": status,
        "referrers": [
            {k: d[k] for k in ("mediaType", "artifactType", "digest", "size", "annotations") if k in d}
            for d in sorted(referrers or [], key=lambda d: str(d.get("artifactType", "")) + d["digest"])
        ],
    }


def save_example(registry: Registry, repository: str, reference: str, folder: Path) -> None:
    """The manifest at reference and its config and layers, as stored, into folder (payloads decoded)."""
    folder.mkdir(parents=True, exist_ok=True)
    status, headers, body = registry.get(f"/v2/{repository}/manifests/{reference}", MANIFEST_TYPES)
    if status != 200:
        raise SystemExit(f"testenv_registry_load: manifest {repository}:{reference}: {status}")
    (folder / "manifest.json").write_bytes(body)
    manifest: Json = json.loads(body)
    (folder / "manifest.digest").write_text(
        headers.get("docker-content-digest", "sha256:" + hashlib.sha256(body).hexdigest()) + "\n"
    )
    blobs = [("config", manifest["config"])] if "config" in manifest else []
    blobs += [(f"layer{i}", layer) for i, layer in enumerate(manifest.get("layers", []))]
    for label, descriptor in blobs:
        status, _, blob = registry.get(f"/v2/{repository}/blobs/{descriptor['digest']}")
        if status != 200:
            raise SystemExit(f"testenv_registry_load: blob {descriptor['digest']}: {status}")
        (folder / f"{label}.bin").write_bytes(blob)
        decoded = decode_payload(blob)
        if decoded is not None:
            (folder / f"{label}.decoded.json").write_text(json.dumps(decoded, indent=2) + "\n")
    # an index (the referrers tag schema's sha256-<hex>): each manifest it lists, in a folder named by its kind
    for child in manifest.get("manifests", []):
        child_manifest = registry.json(f"/v2/{repository}/manifests/{child['digest']}", MANIFEST_TYPES)
        kind = kind_of({**child, "annotations": child_manifest.get("annotations") or {}})
        save_example(registry, repository, child["digest"], folder / kind)


def decode_payload(blob: bytes) -> Json | None:
    """A DSSE envelope's or a Sigstore bundle's in-toto statement, or a simple signing payload, as JSON."""
    try:
        document: Json = json.loads(blob)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    envelope = document.get("dsseEnvelope") or (document if "payloadType" in document else None)
    if isinstance(envelope, dict) and "payload" in envelope:
        statement: Json = json.loads(base64.b64decode(envelope["payload"]))
        return {"payloadType": envelope.get("payloadType"), "statement": statement}
    return document


# --- main ------------------------------------------------------------------------------------

# What a referrer or an attached tag is, by its predicate type (Sigstore bundles) or artifact type.
KINDS = {
    "https://sigstore.dev/cosign/sign/v1": "signature",
    "https://cyclonedx.org/bom": "cyclonedx",
    "https://cosign.sigstore.dev/attestation/vuln/v1": "vuln",
    "application/vnd.dev.cosign.artifact.sig.v1+json": "signature",
}


def kind_of(referrer: Json) -> str:
    annotations = referrer.get("annotations") or {}
    kind = annotations.get("dev.sigstore.bundle.predicateType") or referrer.get("artifactType", "")
    return KINDS.get(kind, re.sub(r"[^A-Za-z0-9.]+", "_", str(kind)).strip("_") or "unknown")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--crane", required=True)
    parser.add_argument("--cosign", required=True, help="cosign v2")
    parser.add_argument("--cosign3", required=True, help="cosign v3")
    parser.add_argument("--trust", required=True, type=Path)
    parser.add_argument("--registry", required=True, help="host:port of the registry without the referrers API")
    parser.add_argument("--referrers-registry", required=True, help="host:port of the registry with the referrers API")
    parser.add_argument("--basic-registry", help="host:port, TLS and basic authentication")
    parser.add_argument("--token-registry", help="host:port, TLS and the bearer token flow")
    parser.add_argument("--ca", type=Path, help="the CA of the TLS registries")
    parser.add_argument("--username")
    parser.add_argument("--password-file", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--examples", type=Path)
    args = parser.parse_args(argv)

    targets = [
        Target("registry", args.registry, "distribution v3.1.2: no referrers API", COSIGN2_TAGS, COSIGN3_BUNDLES),
        Target("referrers_registry", args.referrers_registry, "referrers API", COSIGN3_BUNDLES, COSIGN2_OCI11),
    ]
    credentials: dict[str, tuple[str, str]] = {}
    if args.basic_registry or args.token_registry:
        if not (args.ca and args.username and args.password_file):
            parser.error("--basic-registry and --token-registry need --ca, --username and --password-file")
        password = args.password_file.read_text().strip()
        if args.basic_registry:
            targets.append(Target("basic_registry", args.basic_registry, "TLS, basic authentication", COSIGN2_TAGS))
            credentials[args.basic_registry] = (args.username, password)
        if args.token_registry:
            targets.append(Target("token_registry", args.token_registry, "TLS, bearer tokens", COSIGN3_BUNDLES))
            credentials[args.token_registry] = (args.username, password)

    with tempfile.TemporaryDirectory(prefix="auditor-testenv-load.") as tmp:
        work = Path(tmp)
        write_docker_config(work / "docker", credentials)
        tools = Tools(args.crane, args.cosign, args.cosign3, offline_env(work / "docker", args.ca, work / "home"))
        key_results = make_keys(tools, args.trust)

        example = "kyc"  # the image examples/<example> holds, signed by a target's other cosign
        with scratch_registry(args.crane) as scratch:
            images = build_images(tools, scratch, work)
            for target in targets:
                for image in images:
                    copy = [
                        f"{scratch}/{image.repository}:{image.tag}",
                        f"{target.address}/{image.repository}:{image.tag}",
                    ]
                    tools.crane_("copy", *copy)
                if target.other:
                    tools.crane_(
                        "copy", f"{scratch}/acme/{example}:{TAG}", f"{target.address}/examples/{example}:{TAG}"
                    )

        context = ssl.create_default_context(cafile=str(args.ca)) if args.ca else None
        out: Json = {"tag": TAG, "keys": key_results, "registries": {}}
        for target in targets:
            tls = target.address in credentials
            registry = Registry(
                target.address, "https" if tls else "http", context if tls else None, credentials.get(target.address)
            )
            entries = []
            for image in images:
                ref = f"{target.address}/{image.repository}@{image.digest}"
                attachments = (
                    sign_and_attest(tools, target.signer, ref, image, args.trust, work) if image.signed else []
                )
                entries.append(describe(registry, target, image, attachments))
            record: Json = {
                "address": target.address,
                "tls": tls,
                "description": target.description,
                "cosign": target.signer.cosign,
                "signed_with": target.signer.description,
                "images": entries,
            }
            if target.other:
                image = next(i for i in images if i.name == example)
                other = Image(f"examples/{example}", image.tag, image.digest, image.media_type, [], True)
                ref = f"{target.address}/{other.repository}@{other.digest}"
                attachments = sign_and_attest(tools, target.other, ref, other, args.trust, work)
                record["other_cosign"] = {
                    **describe(registry, target, other, attachments),
                    "cosign": target.other.cosign,
                    "signed_with": target.other.description,
                }
            out["registries"][target.key] = record
            if args.examples:
                save_examples(registry, record, args.examples / target.key)

        for target in targets:
            verify(tools, target, images[0], args.trust)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for image in images:
        platforms = ", ".join(p["platform"] for p in image.platforms)
        print(f"{image.repository}:{image.tag} {image.digest}" + (f" (index: {platforms})" if platforms else ""))
    return 0


def describe(registry: Registry, target: Target, image: Image, attachments: list[str]) -> Json:
    """images.json's entry for an image on a registry (checking that the registry has its digest)."""
    _, headers, _ = registry.get(f"/v2/{image.repository}/manifests/{image.tag}", MANIFEST_TYPES)
    if headers.get("docker-content-digest") != image.digest:
        raise SystemExit(
            f"testenv_registry_load: {target.address}/{image.repository}:{image.tag} is "
            f"{headers.get('docker-content-digest')}, not {image.digest}"
        )
    vulnerabilities = VULNERABILITIES.get(image.name, []) if "vuln" in attachments else []
    entry: Json = {
        "repository": image.repository,
        "tag": image.tag,
        "digest": image.digest,
        "mediaType": image.media_type,
        "signed": bool(attachments),
        "attached": attachments,
        "vulnerabilities": [f"{v['VulnerabilityID']} {v['Severity']}" for v in vulnerabilities],
        **attached(registry, image),
    }
    if image.platforms:
        entry["platforms"] = image.platforms
    return entry


def save_examples(registry: Registry, record: Json, folder: Path) -> None:
    """Each kind of thing cosign attached on this registry, as stored (the first signed image's, and examples/)."""
    entries = [next(e for e in record["images"] if e["signed"])]
    if "other_cosign" in record:
        entries.append(record["other_cosign"])
    lines = [f"{record['description']} ({record['address']})", ""]
    for entry in entries:
        label = "other-cosign-" if entry is record.get("other_cosign") else ""
        signed_with = entry.get("signed_with", record["signed_with"])
        lines += [f"{entry['repository']}:{entry['tag']}@{entry['digest']}", f"  signed with {signed_with}"]
        for tag in entry["tags"]:
            name = label + (tag.rsplit(".", 1)[1] if "." in tag else "referrers-tag")  # sig, att, referrers-tag
            save_example(registry, entry["repository"], tag, folder / name)
            lines.append(f"  tag {tag} -> {name}/")
        for referrer in entry["referrers"]:
            name = f"{label}referrer-{kind_of(referrer)}"
            save_example(registry, entry["repository"], referrer["digest"], folder / name)
            lines.append(f"  referrer {referrer['digest']} artifactType {referrer.get('artifactType')} -> {name}/")
        lines.append(f"  referrers API: {entry['referrers_api']}")
    lines += [
        "",
        "Each folder: manifest.json (and its digest), config.bin and layer<N>.bin as stored, and",
        "<blob>.decoded.json where the blob is JSON (a DSSE envelope's or bundle's in-toto statement decoded).",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.txt").write_text("\n".join(lines) + "\n")


def verify(tools: Tools, target: Target, image: Image, trust: Path) -> None:
    """cosign verify and verify-attestation (CycloneDX) with trust/cosign.pub pass, offline."""
    ref = f"{target.address}/{image.repository}@{image.digest}"
    cosign = tools.cosign2 if target.signer.cosign == "v2" else tools.cosign3
    key = str(trust / "cosign.pub")
    tools.run(cosign, "verify", "--key", key, "--insecure-ignore-tlog=true", ref)
    tools.run(cosign, "verify-attestation", "--key", key, "--insecure-ignore-tlog=true", "--type", "cyclonedx", ref)
    log(f"verified {ref} (signature and CycloneDX attestation, cosign {target.signer.cosign})")


if __name__ == "__main__":
    sys.exit(main())
