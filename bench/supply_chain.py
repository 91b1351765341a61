#!/usr/bin/env python3
"""Time the auditor's supply-chain verification of N signed images with SBOMs, and `cosign verify` on the same set.

    .venv/bin/python bench/supply_chain.py [--images 1000]     # writes its section of bench/RESULTS.md

Target (the issue): 1,000 distinct images, each with a signature and an SBOM, on a loopback registry, verified
in at most 60 s cold and 5 s warm (from the auditor's registry cache).

It needs the test environment's registry binaries (distribution's registry v3.1.2, cosign v2.6.5; built once
and cached by `scripts/testenv-build.sh registry`) but not its running registries, which it leaves alone: it
starts its own distribution registry on a free loopback port, over its own storage, and stops it at the end.

1. Population, cached in ~/.cache/auditor-bench/supply-chain-<N>/ (registry storage, keys, state.json) so
   that a rerun skips it (--fresh redoes it). A P-256 key pair made here, imported into cosign's format with
   `cosign import-key-pair`. N images acme/img-<i>:1.0 pushed through the registry API from Python: one base
   layer shared by all, a small layer and a config (label bench.index=<i>) of their own. Each gets a
   signature (tag sha256-<hex>.sig) and a CycloneDX 1.5 SBOM attestation (tag sha256-<hex>.att), offline
   (no Rekor upload). By default cosign v2 makes all of them (`cosign sign --key`, `cosign attest --type
   cyclonedx`; about 0.5 s an image here). With --cosign-signed K < N, cosign makes K of them (spread over
   the set) and this script the others, with the same key and in cosign v2's formats: the simple-signing
   payload with its ECDSA-P256-SHA256 signature in the layer annotation, and a DSSE envelope of an in-toto
   statement whose subject is the image digest; cosign verify then runs on both kinds.
2. The auditor: N Deployments naming bench.example/acme/img-<i>@sha256:..., a profile file extending
   baseline that trusts the key, `auditor audit ... --registry-mirror bench.example=<registry>`: cold (an
   empty --registry-cache), then warm (--warm-runs runs on that cache; the median counts). Every report
   must have image.signed and image.sbom passing for all N images. Two runs without the registry lookup
   (the shipped baseline profile, and the benchmark's profile file) show what the rest of the audit costs.
3. cosign v2 on the same images, offline (every proxy variable points at a closed port, an empty HOME):
   `cosign verify --key ... --insecure-ignore-tlog=true` and `cosign verify-attestation --type cyclonedx`,
   one process per image (all N by default; --verify-sample S times S of them and extrapolates), then each
   once with all of them as arguments.
4. The floor: one plain GET of each image's manifest on one connection, and the GETs the auditor makes
   per image (manifest, config, referrers, the four cosign tags, the two signed blobs) on 8 threads, with
   no verification.

Numbers go to bench/RESULTS.md (this benchmark's section, between its markers; bench/run.py keeps it when
it rewrites the rest) and bench/out/supply-chain.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))
from run import _MEASURE, AUDITOR, machine, replace_section  # noqa: E402

from scripts.testenv_registry_load import cyclonedx  # noqa: E402  (the test registry's SBOMs and layers)
from scripts.testenv_registry_load import reproducible_tar as layer_tar  # noqa: E402

Json = dict[str, Any]

CACHE = Path(os.environ.get("AUDITOR_BENCH_CACHE", Path.home() / ".cache/auditor-bench"))
FORMAT = "1"  # of the cached population; a different one is rebuilt
MIRRORED = "bench.example"  # the registry name the manifests use; --registry-mirror maps it to the loopback one
TAG = "1.0"
EPOCH_TEXT = "2024-01-01T00:00:00Z"
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: cosign cannot reach the internet
SECTION_BEGIN = "<!-- bench/supply_chain.py: begin -->"
SECTION_END = "<!-- bench/supply_chain.py: end -->"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
INTOTO = "application/vnd.in-toto+json"
CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"


def log(message: str) -> None:
    print(f"supply_chain: {message}", file=sys.stderr, flush=True)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compact(value: Any, *, sort_keys: bool = False) -> bytes:
    """JSON as Go's encoding/json writes it (no spaces; <, > and & escaped as Go does)."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


# --- tools and the registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    registry: str
    cosign: str


def find_tools() -> Tools:
    """The registry part's binaries (built once and cached by scripts/testenv-build.sh; a cached one is reused)."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/testenv-build.sh"), "registry"], capture_output=True, text=True, check=False
    )
    paths = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    if out.returncode != 0 or "REGISTRY" not in paths or "COSIGN" not in paths:
        sys.exit(f"supply_chain: scripts/testenv-build.sh registry failed:\n{out.stderr[-2000:]}")
    return Tools(registry=paths["REGISTRY"], cosign=paths["COSIGN"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def own_registry(binary: str, storage: Path, work: Path) -> Iterator[str]:
    """distribution's registry on a free loopback port over `storage`, stopped (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        "\n".join(
            [
                "version: 0.1",
                "log:",
                "  level: warn",
                "  accesslog:",
                "    disabled: true",
                "storage:",
                "  filesystem:",
                f"    rootdirectory: {storage}",
                "  maintenance:",
                "    uploadpurging:",
                "      enabled: false",
                "http:",
                f"  addr: 127.0.0.1:{port}",
                f"  secret: {os.urandom(16).hex()}",
                "",
            ]
        )
    )
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    log_file = (work / "registry.log").open("wb")
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env
    )
    address = f"127.0.0.1:{port}"
    try:
        for _ in range(150):
            if process.poll() is not None:
                break
            try:
                if requests.get(f"http://{address}/v2/", timeout=2).status_code == 200:
                    break
            except requests.exceptions.ConnectionError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("supply_chain: the registry did not answer in 15 s")
        if process.poll() is not None:
            raise SystemExit(f"supply_chain: the registry exited:\n{(work / 'registry.log').read_text()[-2000:]}")
        log(f"registry (pid {process.pid}) on {address}, storage {storage}")
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()
        log(f"registry (pid {process.pid}) stopped")


class Pusher:
    """Pushes blobs and manifests through the distribution API (one requests session per thread)."""

    def __init__(self, address: str) -> None:
        self.base = f"http://{address}"
        self.local = threading.local()
        self.requests = 0

    @property
    def session(self) -> requests.Session:
        s: requests.Session | None = getattr(self.local, "session", None)
        if s is None:
            s = self.local.session = requests.Session()
        return s

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.requests += 1
        return self.session.request(method, url, timeout=60, **kwargs)

    def blob(self, repository: str, data: bytes) -> str:
        digest = sha256(data)
        started = self._call("POST", f"{self.base}/v2/{repository}/blobs/uploads/")
        if started.status_code != 202:
            raise SystemExit(f"supply_chain: blob upload to {repository}: HTTP {started.status_code} {started.text}")
        location = started.headers["Location"]
        url = location if location.startswith("http") else self.base + location
        done = self._call(
            "PUT",
            url,
            params={"digest": digest},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if done.status_code != 201:
            raise SystemExit(f"supply_chain: blob {digest} to {repository}: HTTP {done.status_code} {done.text}")
        return digest

    def mount(self, repository: str, digest: str, source: str, data: bytes) -> None:
        """A blob already in `source`, mounted into `repository` (uploaded when the registry will not mount)."""
        r = self._call("POST", f"{self.base}/v2/{repository}/blobs/uploads/", params={"mount": digest, "from": source})
        if r.status_code != 201:  # 202: an upload was started instead (left to expire); upload the blob
            self.blob(repository, data)

    def manifest(self, repository: str, reference: str, body: bytes) -> str:
        r = self._call(
            "PUT",
            f"{self.base}/v2/{repository}/manifests/{reference}",
            data=body,
            headers={"Content-Type": OCI_MANIFEST},
        )
        if r.status_code != 201:
            raise SystemExit(f"supply_chain: manifest {repository}:{reference}: HTTP {r.status_code} {r.text}")
        digest = sha256(body)
        if r.headers.get("Docker-Content-Digest", digest) != digest:
            raise SystemExit(f"supply_chain: {repository}:{reference} stored as {r.headers['Docker-Content-Digest']}")
        return digest


def descriptor(media_type: str, data: bytes, annotations: dict[str, str] | None = None) -> Json:
    out: Json = {"mediaType": media_type, "size": len(data), "digest": sha256(data)}
    if annotations is not None:
        out["annotations"] = annotations
    return out


def manifest_bytes(config: Json, layers: list[Json]) -> bytes:
    return compact({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers})


# --- images --------------------------------------------------------------------------------------------------


BASE_LAYER = layer_tar(
    [
        ("etc/", None, 0o755),
        ("etc/os-release", b'NAME="bench"\nID=bench\nVERSION_ID=1\n', 0o644),
        ("usr/", None, 0o755),
        ("usr/share/", None, 0o755),
        ("usr/share/bench/", None, 0o755),
        ("usr/share/bench/base.txt", b"shared base layer of the supply-chain benchmark\n" * 64, 0o644),
    ]
)


def repository(i: int) -> str:
    return f"acme/img-{i:04d}"


def build_image(pusher: Pusher, i: int) -> str:
    """acme/img-<i>:1.0 (the shared base layer, a layer and a config of its own); its digest."""
    repo = repository(i)
    name = f"img-{i:04d}"
    own = layer_tar(
        [
            ("app/", None, 0o755),
            (f"app/{name}", f"#!/bin/sh\necho 'acme {name} {TAG}'\n".encode(), 0o755),
        ]
    )
    if i == 0:
        pusher.blob(repo, BASE_LAYER)
    else:
        pusher.mount(repo, sha256(BASE_LAYER), repository(0), BASE_LAYER)
    pusher.blob(repo, own)
    config = compact(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": EPOCH_TEXT,
            "config": {
                "Entrypoint": [f"/app/{name}"],
                "Labels": {"bench.index": str(i), "org.opencontainers.image.title": name},
            },
            "rootfs": {"type": "layers", "diff_ids": [sha256(BASE_LAYER), sha256(own)]},
            "history": [{"created": EPOCH_TEXT}, {"created": EPOCH_TEXT}],
        }
    )
    pusher.blob(repo, config)
    body = manifest_bytes(
        descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, BASE_LAYER), descriptor(OCI_LAYER, own)]
    )
    return pusher.manifest(repo, TAG, body)


def sbom(i: int, digest: str) -> Json:
    """A small CycloneDX 1.5 SBOM of image i (its container component names the digest)."""
    name = f"img-{i:04d}"
    ref = f"{MIRRORED}/{repository(i)}"
    components: list[Json] = [
        {"type": "operating-system", "name": "bench", "version": "1", "bom-ref": "os:bench@1"},
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
            "version": "3.0.11-1~deb12u2",
            "purl": "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12.2",
            "licenses": [{"license": {"id": "Apache-2.0"}}],
        },
        {
            "type": "application",
            "name": name,
            "version": TAG,
            "purl": f"pkg:oci/{name}@{digest.replace(':', '%3A')}?repository_url={ref}",
        },
    ]
    return cyclonedx(ref, digest, components, "auditor-bench")


# --- signing as cosign v2 does ---------------------------------------------------------------------------------


def sign_bytes(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    """cosign's signature with an ECDSA P-256 key: ASN.1 DER over SHA-256, base64."""
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def cosign_config(layers: list[bytes]) -> bytes:
    """The config cosign v2 gives its .sig and .att manifests (an empty image with one history entry per layer)."""
    return compact(
        {
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in layers]},
            "config": {},
        }
    )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the envelope's signature is made over."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def python_sign(pusher: Pusher, key: ec.EllipticCurvePrivateKey, address: str, i: int, digest: str) -> None:
    """What `cosign sign --key` and `cosign attest --key --type cyclonedx` (v2, --tlog-upload=false) push."""
    repo = repository(i)
    hexd = digest.removeprefix("sha256:")
    # .sig: the simple-signing payload, its signature in the layer's annotation
    payload = compact(
        {
            "critical": {
                "identity": {"docker-reference": f"{address}/{repo}"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )
    config = cosign_config([payload])
    pusher.blob(repo, payload)
    pusher.blob(repo, config)
    layer = descriptor(SIMPLESIGNING, payload, {SIGNATURE_ANNOTATION: sign_bytes(key, payload)})
    pusher.manifest(repo, f"sha256-{hexd}.sig", manifest_bytes(descriptor(OCI_CONFIG, config), [layer]))
    # .att: a DSSE envelope of an in-toto statement about the digest, with the SBOM as predicate. The fields
    # in cosign's order; the predicate's keys sorted (cosign decodes it into a Go map and writes it back).
    statement = b"".join(
        [
            b'{"_type":"https://in-toto.io/Statement/v0.1","predicateType":',
            compact(CYCLONEDX_PREDICATE),
            b',"subject":',
            compact([{"name": f"{address}/{repo}", "digest": {"sha256": hexd}}]),
            b',"predicate":',
            compact(sbom(i, digest), sort_keys=True),
            b"}",
        ]
    )
    envelope = compact(
        {
            "payloadType": INTOTO,
            "payload": base64.b64encode(statement).decode(),
            "signatures": [{"keyid": "", "sig": sign_bytes(key, pae(INTOTO, statement))}],
        }
    )
    config = cosign_config([envelope])
    pusher.blob(repo, envelope)
    pusher.blob(repo, config)
    layer = descriptor(DSSE_ENVELOPE, envelope, {SIGNATURE_ANNOTATION: "", "predicateType": CYCLONEDX_PREDICATE})
    pusher.manifest(repo, f"sha256-{hexd}.att", manifest_bytes(descriptor(OCI_CONFIG, config), [layer]))


def cosign_env(home: Path) -> dict[str, str]:
    """Offline: every proxy variable points at a closed port; an empty HOME (no TUF cache), empty password."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    (home / "docker").mkdir(parents=True, exist_ok=True)
    env.update(
        HTTPS_PROXY=DEAD_PROXY,
        HTTP_PROXY=DEAD_PROXY,
        https_proxy=DEAD_PROXY,
        http_proxy=DEAD_PROXY,
        COSIGN_PASSWORD="",
        HOME=str(home),
        DOCKER_CONFIG=str(home / "docker"),
        TUF_ROOT=str(home / ".sigstore" / "root"),
    )
    return env


def run(cmd: list[str], env: dict[str, str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    if check and result.returncode != 0:
        raise SystemExit(f"supply_chain: failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-3000:]}")
    return result


def make_keys(folder: Path, cosign: str, env: dict[str, str]) -> ec.EllipticCurvePrivateKey:
    """A P-256 key pair: bench.pem (PKCS#8, for this script), bench.key/bench.pub (cosign import-key-pair)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = folder / "bench.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pem.chmod(0o600)
    run([cosign, "import-key-pair", "--key", str(pem), "--output-key-prefix", str(folder / "bench")], env)
    imported = serialization.load_pem_public_key((folder / "bench.pub").read_bytes())
    mine = key.public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if imported.public_bytes(serialization.Encoding.DER, spki) != mine.public_bytes(serialization.Encoding.DER, spki):
        raise SystemExit("supply_chain: cosign import-key-pair wrote another public key")
    return key


# --- population --------------------------------------------------------------------------------------------------


@dataclass
class Population:
    folder: Path
    images: list[Json]  # index, repository, digest, signed_by
    seconds: Json  # per phase
    created: str
    cached: bool = False

    @property
    def storage(self) -> Path:
        return self.folder / "storage"

    @property
    def keys(self) -> Path:
        return self.folder / "keys"


def cosign_sample(n: int, k: int) -> list[int]:
    """Which images cosign signs: k of them spread evenly over the n (image 0 always)."""
    if k <= 0:
        return []
    if k >= n:
        return list(range(n))
    step = n / k
    return sorted({int(j * step) for j in range(k)})


def cached_population(folder: Path, n: int, k: int) -> Population | None:
    try:
        state = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return None
    if state.get("format") != FORMAT or len(state.get("images", ())) != n or state.get("cosign_signed") != k:
        return None
    return Population(folder, state["images"], state["seconds"], state["created"], cached=True)


def populate(tools: Tools, folder: Path, n: int, k: int, work: Path, workers: int) -> Population:
    """Fill a fresh registry storage under folder: N images, signed and attested (see the module's docstring)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = cosign_env(work / "cosign-home")
    seconds: Json = {}
    key = make_keys(folder / "keys", tools.cosign, env)
    with own_registry(tools.registry, folder / "storage", work) as address:
        pusher = Pusher(address)
        started = time.perf_counter()
        first = build_image(pusher, 0)  # the base layer is in acme/img-0000 before the others mount it
        with ThreadPoolExecutor(max_workers=workers) as pool:
            digests = [first, *pool.map(lambda i: build_image(pusher, i), range(1, n))]
        seconds["push_images"] = time.perf_counter() - started
        seconds["push_requests"] = pusher.requests
        log(f"pushed {n} images in {seconds['push_images']:.1f} s ({pusher.requests} requests)")

        by_cosign = set(cosign_sample(n, k))
        python_signed = [i for i in range(n) if i not in by_cosign]
        started = time.perf_counter()
        before = pusher.requests
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda i: python_sign(pusher, key, address, i, digests[i]), python_signed))
        seconds["python_sign"] = time.perf_counter() - started
        if python_signed:
            log(
                f"signed and attested {len(python_signed)} images in Python in {seconds['python_sign']:.1f} s "
                f"({pusher.requests - before} requests)"
            )

        started = time.perf_counter()
        sboms = work / "sboms"
        sboms.mkdir(exist_ok=True)
        flags = ["--tlog-upload=false", "--yes"]
        cosign_key = str(folder / "keys/bench.key")
        for done, i in enumerate(sorted(by_cosign), 1):
            ref = f"{address}/{repository(i)}@{digests[i]}"
            run([tools.cosign, "sign", "--key", cosign_key, *flags, ref], env)
            predicate = sboms / f"{i}.cdx.json"
            predicate.write_text(json.dumps(sbom(i, digests[i]), indent=2) + "\n")
            attest = [tools.cosign, "attest", "--key", cosign_key, "--type", "cyclonedx", "--predicate", str(predicate)]
            run([*attest, *flags, ref], env)
            if done % 10 == 0 or done == len(by_cosign):
                log(f"cosign signed and attested {done}/{len(by_cosign)} images")
        seconds["cosign_sign"] = time.perf_counter() - started
        seconds["cosign_sign_per_image"] = seconds["cosign_sign"] / len(by_cosign) if by_cosign else None

    images = [
        {
            "index": i,
            "repository": repository(i),
            "digest": digests[i],
            "signed_by": "cosign v2.6.5" if i in by_cosign else "python",
        }
        for i in range(n)
    ]
    created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    state = {"format": FORMAT, "cosign_signed": k, "created": created, "seconds": seconds, "images": images}
    (folder / "state.json").write_text(json.dumps(state, indent=1) + "\n")
    return Population(folder, images, seconds, created)


# --- measuring -----------------------------------------------------------------------------------------------------


@dataclass
class Timed:
    label: str
    seconds: float
    peak_mib: float
    exit_code: int
    stderr: str


def timed(label: str, cmd: list[str], env: dict[str, str] | None = None) -> Timed:
    """Wall time and peak RSS of the process tree (bench/run.py's wrapper), and the end of its stderr."""
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env)
    code, wall, rss = proc.stdout.split()
    t = Timed(label, float(wall), int(rss) / 1024, int(code), proc.stderr)
    log(f"{label:<44} {t.seconds:8.2f} s  {t.peak_mib:7.0f} MiB  exit {t.exit_code}")
    return t


def write_inputs(work: Path, population: Population) -> tuple[Path, Path]:
    """N Deployments (100 a file) naming the images by digest under bench.example, and a profile trusting the key."""
    manifests = work / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    images = population.images
    for start in range(0, len(images), 100):
        docs = []
        for img in images[start : start + 100]:
            name = f"img-{img['index']:04d}"
            labels = {"app": name}
            docs.append(
                f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: bench, labels: {json.dumps(labels)}}}
spec:
  replicas: 2
  selector: {{matchLabels: {json.dumps(labels)}}}
  template:
    metadata: {{labels: {json.dumps(labels)}}}
    spec:
      automountServiceAccountToken: false
      securityContext: {{runAsNonRoot: true, seccompProfile: {{type: RuntimeDefault}}}}
      containers:
        - name: app
          image: {MIRRORED}/{img["repository"]}@{img["digest"]}
          resources:
            requests: {{cpu: 100m, memory: 64Mi}}
            limits: {{memory: 64Mi}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
"""
            )
        (manifests / f"deployments-{start // 100:03d}.yaml").write_text("---\n".join(docs))
    profile = work / "profile.yaml"
    profile.write_text(
        "\n".join(
            [
                "extends: baseline",
                "id: supply-chain-bench",
                "version: '1'",
                "title: Supply-chain benchmark (baseline, trusting the benchmark's key)",
                "parameters:",
                "  trusted_signers:",
                f"    - {{name: bench key, key: {population.keys / 'bench.pub'}}}",
                "",
            ]
        )
    )
    return manifests, profile


def audit_cmd(manifests: Path, profile: Path, out: Path, address: str, cache: Path | None) -> list[str]:
    cmd = [*AUDITOR, "-v", "audit", "--manifests", str(manifests), "--profile", str(profile), "--out", str(out)]
    cmd += ["--format", "json", "--registry-mirror", f"{MIRRORED}={address}", "--insecure-registry", address]
    return cmd + (["--registry-cache", str(cache)] if cache else ["--no-registry-cache"])


def check_report(out: Path, population: Population) -> Json:
    """Every image has image.signed and image.sbom passing (raises otherwise); the verdict counts."""
    report = json.loads((out / "supply-chain-bench" / "report.json").read_text())
    want = {f"{MIRRORED}/{img['repository']}@{img['digest']}" for img in population.images}
    rows = {str(row.get("image")): row for row in report.get("images") or ()}
    missing = want - set(rows)
    counts: Json = {}
    bad: list[str] = []
    for ref in sorted(want & set(rows)):
        verdicts = rows[ref].get("verdicts") or {}
        for item in ("image.signed", "image.sbom"):
            verdict = verdicts.get(item)
            status = str(verdict.get("status") if isinstance(verdict, dict) else verdict)
            counts[f"{item} {status}"] = counts.get(f"{item} {status}", 0) + 1
            if status != "pass":
                bad.append(f"{ref}: {item} {status}")
    if missing or bad:
        raise SystemExit(
            f"supply_chain: {out}: {len(missing)} images missing from report.json, {len(bad)} verdicts not pass: "
            + "; ".join([*sorted(missing)[:3], *bad[:5]])
        )
    return counts


def registry_requests(stderr: str) -> tuple[int, int] | None:
    """The auditor's `-v` line: registry: N requests, M cache hits."""
    found = re.search(r"registry: (\d+) requests, (\d+) cache hits", stderr)
    return (int(found.group(1)), int(found.group(2))) if found else None


def cosign_verify(cosign: str, env: dict[str, str], pub: Path, address: str, images: list[Json]) -> Json:
    """`cosign verify` and `cosign verify-attestation --type cyclonedx`: one process per image (as a loop over
    images runs them), then each once with all the images as arguments. Timed; failures kept."""
    common = ["--key", str(pub), "--insecure-ignore-tlog=true"]
    kinds = {"verify": ["verify", *common], "attest": ["verify-attestation", *common, "--type", "cyclonedx"]}
    per_image: dict[str, list[float]] = {kind: [] for kind in kinds}
    failures: list[str] = []
    stderr_sample = ""
    by_signer: dict[str, int] = {}
    tried: dict[str, int] = {}
    refs = [f"{address}/{img['repository']}@{img['digest']}" for img in images]
    for done, (img, ref) in enumerate(zip(images, refs, strict=True), 1):
        ok = True
        tried[img["signed_by"]] = tried.get(img["signed_by"], 0) + 1
        for kind, args in kinds.items():
            started = time.perf_counter()
            result = run([cosign, *args, ref], env, check=False)
            per_image[kind].append(time.perf_counter() - started)
            if result.returncode != 0:
                ok = False
                failures.append(f"{args[0]} {ref} ({img['signed_by']}): {result.stderr.strip()[-300:]}")
            if not stderr_sample and kind == "verify":
                stderr_sample = result.stderr.strip()
        if ok:
            by_signer[img["signed_by"]] = by_signer.get(img["signed_by"], 0) + 1
        if done % 100 == 0:
            log(f"cosign: {done}/{len(images)} images")
    batch: Json = {}
    for kind, args in kinds.items():
        started = time.perf_counter()
        result = run([cosign, *args, *refs], env, check=False)
        batch[kind] = time.perf_counter() - started
        printed = sum(1 for line in result.stdout.splitlines() if line.strip())  # one JSON line per image verified
        if result.returncode != 0 or printed != len(refs):
            failures.append(
                f"{args[0]} of all {len(refs)} images in one process: exit {result.returncode}, {printed} verified: "
                + result.stderr.strip()[-300:]
            )
    return {
        "images": len(images),
        "per_image": per_image,
        "per_image_total": {kind: sum(times) for kind, times in per_image.items()},
        "per_image_median": {kind: statistics.median(times) for kind, times in per_image.items()},
        "one_process": batch,
        "passed_by_signer": by_signer,
        "verified_by_signer": tried,
        "failures": failures,
        "stderr": stderr_sample,
    }


def floors(address: str, images: list[Json]) -> Json:
    """The network floor: GET each manifest (one session, sequential), and the auditor's GETs without verifying."""
    accept = {"Accept": f"{OCI_MANIFEST}, application/vnd.oci.image.index.v1+json"}
    base = f"http://{address}/v2"
    session = requests.Session()
    started = time.perf_counter()
    for img in images:
        r = session.get(f"{base}/{img['repository']}/manifests/{img['digest']}", headers=accept, timeout=30)
        if r.status_code != 200:
            raise SystemExit(f"supply_chain: floor: {img['repository']}: HTTP {r.status_code}")
    manifest_get = time.perf_counter() - started

    local = threading.local()

    def same_gets(img: Json) -> int:
        s: requests.Session | None = getattr(local, "session", None)
        if s is None:
            s = local.session = requests.Session()
        repo, digest = img["repository"], img["digest"]
        hexd = digest.removeprefix("sha256:")
        count = 0

        def get(path: str) -> requests.Response:
            nonlocal count
            count += 1
            return s.get(f"{base}/{repo}/{path}", headers=accept, timeout=30)

        manifest = get(f"manifests/{digest}").json()
        get(f"blobs/{manifest['config']['digest']}")
        get(f"referrers/{digest}")
        get(f"manifests/sha256-{hexd}")
        for suffix in (".sig", ".att"):
            tagged = get(f"manifests/sha256-{hexd}{suffix}").json()
            get(f"blobs/{tagged['layers'][0]['digest']}")
        get(f"manifests/sha256-{hexd}.sbom")
        return count

    out: Json = {"manifest_get": manifest_get}
    for threads in (1, 8):  # the auditor's --registry-concurrency is 8 by default
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            out["auditor_gets_requests"] = sum(pool.map(same_gets, images))
        out[f"auditor_gets_{threads}"] = time.perf_counter() - started
    return out


# --- main ------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="distinct images (default 1000)")
    parser.add_argument(
        "--cosign-signed",
        type=int,
        help="images signed and attested by cosign itself, spread over the set; the others by this script in "
        "cosign's formats (default: all; cosign takes about 0.5 s an image here)",
    )
    parser.add_argument(
        "--verify-sample", type=int, help="images `cosign verify` is timed on, extrapolated to all (default: all)"
    )
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="threads pushing the images and Python signatures")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached registry population")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="its section is replaced or appended")
    args = parser.parse_args()
    n = args.images
    k = n if args.cosign_signed is None else min(args.cosign_signed, n)
    sample_size = n if args.verify_sample is None else min(args.verify_sample, n)
    tools = find_tools()
    folder = CACHE / f"supply-chain-{n}"
    with tempfile.TemporaryDirectory(prefix="auditor-bench-supply-chain.") as tmp:
        work = Path(tmp)
        population = None if args.fresh else cached_population(folder, n, k)
        if population is None:
            log(f"populating {folder} ({n} images, {k} signed by cosign)")
            population = populate(tools, folder, n, k, work, args.workers)
        else:
            log(f"reusing the population of {population.created} in {folder} (--fresh rebuilds it)")
        manifests, profile = write_inputs(work, population)
        env = cosign_env(work / "cosign-verify-home")
        results: Json = {"images": n, "cosign_signed": k, "population": population.seconds}
        results.update(population_created=population.created, population_cached=population.cached)
        with own_registry(tools.registry, population.storage, work) as address:
            # the same manifests without the registry lookup: with the shipped baseline profile, and with the
            # benchmark's profile file (a profile file is schema-checked at run time; shipped ones are not)
            plain = [*AUDITOR, "audit", "--manifests", str(manifests), "--format", "json"]
            for key, label, name in (
                ("no_registry_shipped", "auditor, no registry, --profile baseline", "baseline"),
                ("no_registry", "auditor, no registry, the profile file", str(profile)),
            ):
                t = timed(label, [*plain, "--profile", name, "--out", str(work / f"out-{key}")])
                results[key] = {k: v for k, v in t.__dict__.items() if k != "stderr"}
            cache = work / "registry-cache"
            runs = []
            for label in ["cold", *(f"warm {j + 1}" for j in range(args.warm_runs))]:
                out = work / f"out-{label.replace(' ', '')}"
                t = timed(f"auditor {label}", audit_cmd(manifests, profile, out, address, cache))
                if t.exit_code not in (0, 1):
                    raise SystemExit(f"supply_chain: auditor {label} exited {t.exit_code}:\n{t.stderr[-2000:]}")
                entry: Json = {k: v for k, v in t.__dict__.items() if k != "stderr"}
                entry.update(label=label, verdicts=check_report(out, population), requests=registry_requests(t.stderr))
                runs.append(entry)
            results["auditor"] = runs
            sample = [population.images[i] for i in cosign_sample(n, sample_size)]
            log(f"timing cosign verify and verify-attestation on {len(sample)} images")
            results["cosign"] = cosign_verify(tools.cosign, env, population.keys / "bench.pub", address, sample)
            results["floor"] = floors(address, population.images)
    results["machine"] = machine()
    results["cpu"] = cpu_line()
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["versions"] = {
        "auditor": subprocess.run([*AUDITOR, "--version"], capture_output=True, text=True).stdout.strip(),
        "cosign": "v2.6.5 (" + Path(tools.cosign).name + ")",
        "registry": Path(tools.registry).name,
        "commit": git_commit(),
    }
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "supply-chain.json").write_text(json.dumps(results, indent=1) + "\n")
    write_section(args.out, results)
    log(f"wrote {args.out} and {HERE / 'out' / 'supply-chain.json'}")
    if results["cosign"]["failures"]:
        raise SystemExit("supply_chain: cosign failed:\n" + "\n".join(results["cosign"]["failures"][:10]))


def git_commit() -> str:
    """The checkout's commit, and whether the auditor's code differs from it."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "auditor", "checks"], capture_output=True, text=True)
    return (head or "unknown") + (" with uncommitted changes in auditor/ or checks/" if dirty.stdout.strip() else "")


def cpu_line() -> str:
    """The CPU model and the number of processors as /proc/cpuinfo names them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{len(models)} x {models[0]}" if models else "unknown"


def indices(items: list[int]) -> str:
    """0-999 or 0, 20, 40, ... (at most 8 shown)."""
    if not items:
        return "none"
    if items == list(range(items[0], items[-1] + 1)):
        return f"img-{items[0]:04d} to img-{items[-1]:04d}"
    shown = ", ".join(f"{i:04d}" for i in items[:8])
    return f"img-{{{shown}{', ...' if len(items) > 8 else ''}}} ({len(items)})"


def wrap(*parts: str, indent: str = "") -> list[str]:
    """One paragraph of RESULTS.md, wrapped at 110 columns as the file is."""
    return textwrap.wrap(" ".join(parts), 110, subsequent_indent=indent, break_on_hyphens=False)


def write_section(path: Path, r: Json) -> None:
    """This benchmark's section of RESULTS.md, between its markers: replaced when there, else appended."""
    n = r["images"]
    pop = r["population"]
    runs = r["auditor"]
    cold = runs[0]
    warm = runs[1:]
    warm_median = statistics.median(w["seconds"] for w in warm) if warm else float("nan")
    cos = r["cosign"]
    sampled = cos["images"] < n
    scale = n / cos["images"]
    verify_total = cos["per_image_total"]["verify"] * scale
    attest_total = cos["per_image_total"]["attest"] * scale
    floor = r["floor"]
    by_cosign = r["cosign_signed"]
    signers = (
        "all signed and attested by cosign v2.6.5 itself (`cosign sign` and `cosign attest --type cyclonedx`)"
        if by_cosign == n
        else f"{by_cosign} signed and attested by cosign v2.6.5 itself (spread evenly over the set: every "
        f"{n // max(by_cosign, 1)}th image), the other {n - by_cosign} by bench/supply_chain.py in cosign v2's "
        "exact formats with the same key (the `cryptography` library)"
    )
    parts = [f"pushing the images {pop['push_images']:.1f} s ({pop['push_requests']:,} requests, 4 threads)"]
    if pop.get("cosign_sign_per_image"):
        parts.append(
            f"cosign signing and attesting {pop['cosign_sign']:.0f} s ({pop['cosign_sign_per_image']:.2f} s an image)"
        )
    if by_cosign < n:
        parts.append(f"Python signing and attesting {pop['python_sign']:.1f} s")
    total = pop["push_images"] + pop.get("cosign_sign", 0) + pop.get("python_sign", 0)
    population = f"Population: {total:.0f} s: {'; '.join(parts)}"
    population += (
        f"; made {r['population_created']} and reused from the cache in this run." if r["population_cached"] else "."
    )
    fidelity = (
        [
            f"- The signatures and attestations of {n - by_cosign:,} images were made by this script, not by cosign:",
            f"cosign verify and verify-attestation passed on {cos['passed_by_signer'].get('python', 0):,} of the",
            f"{cos['verified_by_signer'].get('python', 0):,} such images verified here.",
        ]
        if by_cosign < n
        else []
    )
    one = cos["one_process"]["verify"] + cos["one_process"]["attest"]
    one_all = one * scale

    def row(label: str, t: Json) -> str:
        req = t.get("requests")
        requests_text = f"{req[0]:,} ({req[0] / n:.1f} per image)" if req else "-"
        hits = f"{req[1]:,}" if req else "-"
        return f"| {label} | {t['seconds']:.2f} | {t['peak_mib']:.0f} | {requests_text} | {hits} |"

    per = cos["per_image_median"]
    what = f"extrapolated from {cos['images']} images" if sampled else f"measured on all {n:,}"
    cold_ok = "met" if cold["seconds"] <= 60 else "NOT met"
    warm_ok = "met" if warm_median <= 5 else "NOT met"
    both = verify_total + attest_total
    ext = " (extrapolated)" if sampled else ""
    batch_note = f" (for {cos['images']})" if sampled else ""
    warm_list = ", ".join(f"{w['seconds']:.1f}" for w in warm)
    version = str(r["versions"]["auditor"]).split()[-1] if r["versions"]["auditor"] else "?"
    lines = [
        SECTION_BEGIN,
        f"## Supply chain: {n:,} signed images with SBOMs",
        "",
        *wrap(
            f"Run {r['date']} by `bench/supply_chain.py --images {n}` on: {r['machine']}; /proc/cpuinfo: {r['cpu']}.",
            f"Versions: auditor {version} (commit {r['versions'].get('commit', 'not recorded')}), cosign v2.6.5,",
            "distribution's registry v3.1.2.",
        ),
        "",
        *wrap(
            "Registry: distribution's registry v3.1.2, started by the benchmark on a free loopback port with its own",
            "storage (plain HTTP; no referrers API, so cosign v2 keeps the signature and the attestation in the tags",
            f"`sha256-<hex>.sig` and `.att`). {n:,} distinct images `acme/img-<i>:1.0` (a base layer shared by all,",
            "a layer and a config label of their own), each with a signature and a CycloneDX 1.5 SBOM attestation,",
            f"made offline (no Rekor upload) with one ECDSA P-256 key: {signers}.",
            population,
        ),
        "",
        *wrap(
            f"The auditor audits {n:,} Deployments naming `bench.example/acme/img-<i>@sha256:...` with",
            "`--registry-mirror bench.example=127.0.0.1:<port> --insecure-registry 127.0.0.1:<port>` and a profile",
            "that `extends: baseline` and names the public key in `trusted_signers`. Cold: an empty",
            f"`--registry-cache` directory; warm: {len(warm)} more runs on that cache (the median counts). Every",
            f"run's report.json has `image.signed` and `image.sbom` passing for all {n:,} images (the benchmark",
            "fails otherwise).",
        ),
        "",
        "| run | seconds | peak MiB | registry requests | cache hits |",
        "|---|---:|---:|---:|---:|",
        row("auditor, no registry lookup, `--profile baseline` (shipped)", r["no_registry_shipped"]),
        row("auditor, no registry lookup, the benchmark's profile file", r["no_registry"]),
        *(row(f"auditor {t['label']}", t) for t in runs),
        "",
        f"cosign on the same images, offline, with `--key cosign.pub --insecure-ignore-tlog=true` ({what}):",
        "",
        "| cosign v2.6.5 | seconds per image (median) | seconds for all images |",
        "|---|---:|---:|",
        f"| `verify`, one process per image | {per['verify']:.3f} | {verify_total:.1f}{ext} |",
        f"| `verify-attestation --type cyclonedx`, one process per image | {per['attest']:.3f} | {attest_total:.1f}{ext} |",
        f"| both (what the auditor's two checks cover) | {per['verify'] + per['attest']:.3f} | {both:.1f}{ext} |",
        f"| `verify`, all {cos['images']:,} images as arguments of one process | {cos['one_process']['verify'] / cos['images']:.3f} | {cos['one_process']['verify']:.1f}{batch_note} |",
        f"| `verify-attestation`, all in one process | {cos['one_process']['attest'] / cos['images']:.3f} | {cos['one_process']['attest']:.1f}{batch_note} |",
        "",
        *wrap(
            "Floor (Python `requests`, no verification): one GET of each image's manifest on one connection,",
            f"{floor['manifest_get']:.2f} s; the auditor's GETs for each image (manifest, config, referrers, the",
            f"four cosign tags, the two signed blobs: {floor['auditor_gets_requests']:,} requests),",
            f"{floor['auditor_gets_1']:.2f} s on one thread and {floor['auditor_gets_8']:.2f} s on 8 (the registry",
            "runs on the same 2 cores).",
        ),
        "",
        "### Against the targets",
        "",
        *wrap(
            f"- Cold, {n:,} images verified (signature and SBOM attestation each): {cold['seconds']:.1f} s",
            f"(target <= 60 s): {cold_ok}.",
            indent="  ",
        ),
        *wrap(
            f"- Warm, from the cache: median {warm_median:.1f} s of {warm_list} (target <= 5 s): {warm_ok}.",
            indent="  ",
        ),
        *wrap(
            f"- cosign v2.6.5, one process per image, signature and attestation: {both:.0f} s for {n:,} images{ext};",
            f"the cold audit took {cold['seconds'] / both:.2f}x of that, the warm one {warm_median / both:.2f}x.",
            f"With all the images as arguments of one `cosign verify` and one `cosign verify-attestation`: {one_all:.1f}",
            f"s{ext}; the cold audit took {cold['seconds'] / one_all:.1f}x of that (it also reads each image's",
            "config, probes the referrers API and the `.sbom` tag, validates each SBOM against the CycloneDX schema",
            "and writes its cache), the warm one",
            f"{warm_median / one_all:.2f}x.",
            indent="  ",
        ),
        "",
        "### Notes",
        "",
        *wrap(
            "- cosign v2.6.5 offline: `--insecure-ignore-tlog=true` skips Rekor, but every `cosign verify` still",
            "asks the Sigstore TUF mirror for its trusted root first; with the proxy on a closed port that fails at",
            "once, cosign warns (`Could not fetch trusted_root.json from the TUF repository. Continuing with",
            "individual targets.`) and verifies with the key. On a network that drops packets instead of refusing",
            "them, that attempt would wait for its connection timeout on every run (not measured here).",
            indent="  ",
        ),
        *wrap(
            "- The machine is shared with other work (see the notes above): the same benchmark's cold and warm times",
            "vary between runs by some seconds; cosign and the auditor are compared within one run.",
            indent="  ",
        ),
        *wrap(
            "- Cold means the auditor's registry cache is empty; the registry's files may be in the OS page cache.",
            "The warm runs send no request to the registry: each image's listing is cached for",
            "`--registry-cache-ttl` (default 3600 s) and each artifact's verification for good.",
            indent="  ",
        ),
        *wrap(*fidelity, indent="  "),
        *wrap(
            "- A profile file is schema-checked at run time (shipped profiles are not): the difference between the",
            f"two runs without registry lookup, {r['no_registry']['seconds'] - r['no_registry_shipped']['seconds']:.1f} s,",
            "is in every run that names a profile file, warm ones included. Most of it is importing `jsonschema`,",
            "whose format checker imports `rfc3987-syntax` (installed with cyclonedx-python-lib's validation extra),",
            "which compiles its grammars with lark at import.",
            indent="  ",
        ),
        "",
        SECTION_END,
    ]
    replace_section(path, SECTION_BEGIN, SECTION_END, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
