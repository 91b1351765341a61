"""A small OCI distribution client: manifests, blobs, referrers and tags, with the registries' auth flows.

Why not a library: oras-py (the maintained Python OCI client) is built for pushing and pulling
artifacts; it has no referrers-API client with a tag fallback, no Docker-config credential lookup
across several registries, and it raises on registry garbage rather than bounding reads. What the
auditor needs is eight GET requests, so this is a small client on ``requests`` (already installed
with the Kubernetes client), whose connection pools, TLS verification (``REQUESTS_CA_BUNDLE``)
and proxies are the well-trodden ones.

Every read is bounded: manifests at 4 MiB (the size the OCI distribution spec says registries
should accept), other blobs at ``max_blob_bytes``; every request has connect and read timeouts;
429 and 503 are retried with backoff (``Retry-After`` honoured, capped). Content is verified: a
manifest fetched by digest must hash to that digest, and so must every blob. TLS stays on; only
hosts given as insecure (loopback tests) are spoken to in plain HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from auditor.errors import short

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_BLOB_BYTES = 32 * 1024 * 1024
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_RETRY_STATUSES = frozenset({429, 502, 503, 504})


class RegistryError(Exception):
    """A registry could not answer usefully; the message names the registry and what was asked."""


class NotFound(RegistryError):
    """The registry answered 404 (or the OCI "unknown" errors) for what was asked."""


@dataclass(frozen=True, order=True)
class ImageRef:
    """An image reference, normalized as Docker does (``nginx`` is ``docker.io/library/nginx:latest``)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        ref = text.strip()
        if not ref or any(c.isspace() for c in ref):
            raise ValueError(f"{text!r} is not an image reference")
        name, _, digest = ref.partition("@")
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, rest
        else:
            registry, path = "docker.io", name
        tag = None
        slash, colon = path.rfind("/"), path.rfind(":")
        if colon > slash:
            path, tag = path[:colon], path[colon + 1 :]
        if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
            registry = "docker.io"
            if "/" not in path:
                path = f"library/{path}"
        if not path or not re.fullmatch(
            r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*", path
        ):
            raise ValueError(f"{text!r}: {path!r} is not a valid repository name")
        if tag is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
            raise ValueError(f"{text!r}: {tag!r} is not a valid tag")
        if digest and not _DIGEST_RE.match(digest):
            raise ValueError(f"{text!r}: {digest!r} is not a sha256 digest")
        if not digest and tag is None:
            tag = "latest"
        return cls(registry=registry, repository=path, tag=tag, digest=digest or None)

    @property
    def reference(self) -> str:
        """What the manifest endpoint is asked for: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_registry(self, registry: str) -> ImageRef:
        return ImageRef(registry=registry, repository=self.repository, tag=self.tag, digest=self.digest)


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes
    data: Mapping[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or (not self.media_type and isinstance(self.data.get("manifests"), list))


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def load_docker_config(path: Path) -> dict[str, Credentials]:
    """Registry host -> credentials from a Docker config file (``auths``: ``auth`` or username/password).

    Credential helpers (``credsStore``) are programs the auditor does not run; their registries fall back
    to anonymous access, and a 401 then names the registry.
    """
    try:
        raw = json.loads(path.read_bytes())
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read registry config: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: not a JSON Docker config ({exc})") from None
    auths = raw.get("auths") if isinstance(raw, dict) else None
    if not isinstance(auths, dict):
        raise RegistryError(f"{path}: no 'auths' object (expected a Docker config.json or .dockerconfigjson)")
    out: dict[str, Credentials] = {}
    for host, entry in auths.items():
        if not isinstance(entry, dict):
            continue
        user, password = entry.get("username"), entry.get("password")
        if isinstance(entry.get("auth"), str) and entry["auth"]:
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                raise RegistryError(f"{path}: auths.{host}.auth is not base64 of user:password") from None
        if isinstance(user, str) and isinstance(password, str):
            out[_config_host(str(host))] = Credentials(user, password)
    return out


def _config_host(key: str) -> str:
    """Docker config keys may be URLs (``https://index.docker.io/v1/``): keep the host."""
    host = re.sub(r"^https?://", "", key).split("/", 1)[0]
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


@dataclass
class _Auth:
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    basic: set[str] = field(default_factory=set)


class RegistryClient:
    """Reads from OCI registries. Thread-safe; one instance serves a whole run."""

    def __init__(
        self,
        *,
        credentials: Mapping[str, Credentials] | None = None,
        insecure: Sequence[str] = (),
        mirrors: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
        retries: int = 4,
        user_agent: str = "auditor",
    ) -> None:
        self.credentials = dict(credentials or {})
        self.insecure = frozenset(insecure)
        self.mirrors = dict(mirrors or {})
        self.timeout = timeout
        self.max_blob_bytes = max_blob_bytes
        self.retries = retries
        self._session = requests.Session()
        # The environment (REQUESTS_CA_BUNDLE, proxies and NO_PROXY) is read once per registry, not on every
        # request: requests re-scans os.environ per request, which cost 5 s of 15 for 9,000 requests.
        self._session.trust_env = False
        self._verify: str | bool = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._proxies: dict[str, dict[str, str]] = {}
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=32)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers["User-Agent"] = user_agent
        self._auth = _Auth()
        self._dead: dict[str, str] = {}
        self.requests = 0

    def host_for(self, registry: str) -> str:
        return self.mirrors.get(registry, registry)

    def _base(self, registry: str) -> str:
        host = self.host_for(registry)
        api = "registry-1.docker.io" if host == "docker.io" else host
        scheme = "http" if host in self.insecure else "https"
        return f"{scheme}://{api}"

    # ------------------------------------------------------------------ requests

    def _request(
        self, registry: str, repository: str, path: str, *, accept: str | None = None, limit: int, method: str = "GET"
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One bounded request with auth, retries and backoff. Returns (status, headers, body)."""
        url = self._base(registry) + path
        host = self.host_for(registry)
        scope = f"repository:{repository}:pull"
        attempt = 0
        authed_once = False
        dead = self._dead.get(host)
        if dead:
            raise RegistryError(dead)
        while True:
            headers = {"Accept": accept} if accept else {}
            auth_header = self._auth_header(host, scope)
            if auth_header:
                headers["Authorization"] = auth_header
            try:
                self.requests += 1
                with self._session.request(
                    method,
                    url,
                    headers=headers,
                    verify=self._verify,
                    proxies=self._proxies_for(url),
                    timeout=(self.timeout, self.timeout),
                    stream=True,
                    allow_redirects=True,
                ) as resp:
                    status = resp.status_code
                    if status == 401 and not authed_once:
                        authed_once = True
                        self._authenticate(host, scope, resp.headers.get("WWW-Authenticate", ""))
                        continue
                    if status in _RETRY_STATUSES and attempt < self.retries:
                        attempt += 1
                        time.sleep(_retry_after(resp.headers.get("Retry-After"), attempt))
                        continue
                    body = _read_bounded(resp, limit, f"{host}{path}") if method == "GET" else b""
                    return status, dict(resp.headers), body
            except requests.exceptions.SSLError as exc:
                raise RegistryError(
                    f"{host}: TLS verification failed ({short(exc)}); the registry's certificate is "
                    "not trusted (set REQUESTS_CA_BUNDLE to its CA, or --insecure-registry "
                    "for a loopback test registry)"
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                why = _connection_problem(exc)
                if attempt < self.retries and why != "its name does not resolve":
                    attempt += 1
                    time.sleep(min(0.2 * 2**attempt, 2.0))
                    continue
                message = f"{host}: unreachable: {why}"
                with self._auth.lock:
                    self._dead[host] = message  # every later image on this registry fails at once, not after retries
                raise RegistryError(message) from None
            except requests.exceptions.RequestException as exc:
                raise RegistryError(f"{host}: request failed ({short(exc)})") from None

    def _proxies_for(self, url: str) -> dict[str, str]:
        base = url.split("/v2/", 1)[0]
        found = self._proxies.get(base)
        if found is None:
            found = dict(requests.utils.get_environ_proxies(base))
            self._proxies[base] = found
        return found

    def _auth_header(self, host: str, scope: str) -> str | None:
        with self._auth.lock:
            token = self._auth.tokens.get((host, scope))
            if token:
                return f"Bearer {token}"
            if host in self._auth.basic and host in self.credentials:
                c = self.credentials[host]
                return "Basic " + base64.b64encode(f"{c.username}:{c.password}".encode()).decode()
        return None

    def _authenticate(self, host: str, scope: str, challenge: str) -> None:
        scheme, params = _parse_challenge(challenge)
        creds = self.credentials.get(host)
        if scheme == "basic":
            if creds is None:
                raise RegistryError(
                    f"{host}: requires a login (Basic auth) and no credentials were given for it "
                    "(--registry-config FILE, a Docker config.json)"
                )
            with self._auth.lock:
                self._auth.basic.add(host)
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"{host}: answered 401 with an unusable challenge {challenge[:120]!r}")
        query: dict[str, str] = {"scope": params.get("scope") or scope}
        if params.get("service"):
            query["service"] = params["service"]
        auth = (creds.username, creds.password) if creds else None
        try:
            resp = self._session.get(
                params["realm"],
                params=query,
                auth=auth,
                timeout=(self.timeout, self.timeout),
                verify=self._verify,
                proxies=self._proxies_for(params["realm"]),
            )
        except requests.exceptions.RequestException as exc:
            raise RegistryError(f"{host}: token service {params['realm']} unreachable ({short(exc)})") from None
        if resp.status_code != 200:
            who = "with the given credentials" if creds else "anonymously (no credentials given for it)"
            raise RegistryError(f"{host}: token service refused {who}: HTTP {resp.status_code}")
        try:
            data = resp.json()
            token = data.get("token") or data.get("access_token")
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{host}: token service answered without a token")
        with self._auth.lock:
            self._auth.tokens[(host, scope)] = token

    # ------------------------------------------------------------------ API

    def manifest(self, ref: ImageRef, reference: str | None = None) -> Manifest:
        """The manifest (or index) a tag or digest names. Fetched by digest, it must hash to that digest."""
        want = reference or ref.reference
        status, headers, body = self._request(
            ref.registry,
            ref.repository,
            f"/v2/{ref.repository}/manifests/{want}",
            accept=MANIFEST_ACCEPT,
            limit=MAX_MANIFEST_BYTES,
        )
        where = (
            f"{ref.registry}/{ref.repository}:{want}"
            if not want.startswith("sha256:")
            else f"{ref.registry}/{ref.repository}@{want}"
        )
        if status == 404:
            raise NotFound(f"{where}: not found in the registry")
        if status != 200:
            raise RegistryError(f"{where}: registry answered HTTP {status}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if want.startswith("sha256:") and digest != want:
            raise RegistryError(f"{where}: the registry sent content that hashes to {digest}, not the digest asked for")
        claimed = headers.get("Docker-Content-Digest")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise RegistryError(f"{where}: Docker-Content-Digest {claimed} does not match the content ({digest})")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(f"{where}: the manifest is not JSON ({len(body)} bytes)") from None
        if not isinstance(data, dict):
            raise RegistryError(f"{where}: the manifest is not a JSON object")
        media = str(data.get("mediaType") or headers.get("Content-Type", "").split(";")[0])
        return Manifest(digest=digest, media_type=media, body=body, data=data)

    def blob(self, ref: ImageRef, digest: str, *, limit: int | None = None) -> bytes:
        if not _DIGEST_RE.match(digest):
            raise RegistryError(f"{ref.registry}/{ref.repository}: blob digest {digest[:80]!r} is not sha256")
        status, _headers, body = self._request(
            ref.registry, ref.repository, f"/v2/{ref.repository}/blobs/{digest}", limit=limit or self.max_blob_bytes
        )
        if status == 404:
            raise NotFound(f"{ref.registry}/{ref.repository}@{digest}: blob not found")
        if status != 200:
            raise RegistryError(f"{ref.registry}/{ref.repository}@{digest}: blob request answered HTTP {status}")
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RegistryError(f"{ref.registry}/{ref.repository}@{digest}: blob content does not match its digest")
        return body

    def referrers(self, ref: ImageRef, digest: str) -> list[Mapping[str, Any]] | None:
        """The OCI 1.1 referrers of a digest (descriptors), or None when the registry has no referrers API."""
        status, _headers, body = self._request(
            ref.registry,
            ref.repository,
            f"/v2/{ref.repository}/referrers/{digest}",
            accept=OCI_INDEX,
            limit=MAX_MANIFEST_BYTES,
        )
        if status in (404, 405, 400):
            return None
        if status != 200:
            raise RegistryError(f"{ref.registry}/{ref.repository}: referrers API answered HTTP {status}")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(f"{ref.registry}/{ref.repository}: referrers answer is not JSON") from None
        manifests = data.get("manifests") if isinstance(data, dict) else None
        if not isinstance(manifests, list):
            raise RegistryError(f"{ref.registry}/{ref.repository}: referrers answer is not an image index")
        return [m for m in manifests if isinstance(m, dict)]

    def optional_manifest(self, ref: ImageRef, reference: str) -> Manifest | None:
        try:
            return self.manifest(ref, reference)
        except NotFound:
            return None


def _read_bounded(resp: requests.Response, limit: int, what: str) -> bytes:
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise RegistryError(f"{what}: {int(length)} bytes is more than the {limit}-byte limit for this read")
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > limit:
            raise RegistryError(f"{what}: more than the {limit}-byte limit for this read; refused")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None, attempt: int) -> float:
    if value and value.strip().isdigit():
        return min(float(value.strip()), 10.0)
    return float(min(0.25 * 2**attempt, 4.0))


def _connection_problem(exc: BaseException) -> str:
    """What a failed connection means, in words (requests' messages nest urllib3's several levels deep)."""
    text = str(exc)
    if "NameResolutionError" in text or "Name or service not known" in text or "Failed to resolve" in text:
        return "its name does not resolve"
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(exc, requests.exceptions.ConnectTimeout) or "ConnectTimeout" in text:
        return "connection timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no answer within the read timeout"
    return short(exc)
