"""The `registry_env` fixture: real OCI registries on loopback with the demo images (scripts/testenv up registry).

Brought up once per test session and shared with the other test sessions running at the same time;
the last of them takes it down, when a test session started it (a developer's own
`scripts/testenv up registry` is left running). Use it from a test module with

    from tests.registry_env import RegistryEnv, registry_env_fixture  # noqa: F401  (the fixture `registry_env`)

and read the registries' host:port (`registry_env.registry`: distribution, no referrers API;
`.referrers_registry`: referrers API; `.basic_registry` and `.token_registry`: TLS with `.ca`, and
basic authentication or the bearer token flow with `.username`/`.password`), the trust folder
(`.trust_dir`: cosign.key/.pub, untrusted.*, ed25519.*, rsa.*), the tools (`.cosign`: v2, `.cosign3`,
`.crane`) and `.images`, the parsed images.json (`.digest("acme/kyc")` for one image's digest).

Never skipped in CI (CI=true): scripts/setup.sh builds the binaries there. Elsewhere it skips, with
the reason, only when there is no Go toolchain to build them with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .kube_env import shared_part

ENV_KEYS = (
    "AUDITOR_TEST_REGISTRY",
    "AUDITOR_TEST_REFERRERS_REGISTRY",
    "AUDITOR_TEST_BASIC_REGISTRY",
    "AUDITOR_TEST_TOKEN_REGISTRY",
    "AUDITOR_TEST_REGISTRY_CA",
    "AUDITOR_TEST_REGISTRY_USERNAME",
    "AUDITOR_TEST_REGISTRY_PASSWORD",
    "AUDITOR_TEST_REGISTRY_IMAGES",
    "AUDITOR_TEST_TRUST_DIR",
    "AUDITOR_TEST_COSIGN",
    "AUDITOR_TEST_COSIGN3",
    "AUDITOR_TEST_CRANE",
)


@dataclass(frozen=True)
class RegistryEnv:
    registry: str  # host:port of distribution's registry (no referrers API: cosign v2 tags)
    referrers_registry: str  # host:port, OCI 1.1 referrers API (cosign v3 bundles)
    basic_registry: str  # host:port, TLS, HTTP Basic
    token_registry: str  # host:port, TLS, the Docker bearer token flow
    ca: Path  # the CA of the TLS registries
    username: str
    password: str
    trust_dir: Path
    cosign: Path  # v2
    cosign3: Path
    crane: Path
    images: dict[str, Any]  # images.json
    env: dict[str, str]

    def image(self, repository: str, tag: str = "1.14.2", registry: str = "registry") -> dict[str, Any]:
        """images.json's entry for repository:tag on one registry (its key: registry, referrers_registry, ...)."""
        for entry in self.images["registries"][registry]["images"]:
            if entry["repository"] == repository and entry["tag"] == tag:
                return dict(entry)
        raise KeyError(f"{repository}:{tag} not in images.json ({registry})")

    def digest(self, repository: str, tag: str = "1.14.2") -> str:
        return str(self.image(repository, tag)["digest"])


DEAD_PROXY = "http://127.0.0.1:9"
"""Every proxied request of cosign and crane goes here (a closed port): the tools run offline."""


def offline_tool_env(env: RegistryEnv, home: Path) -> dict[str, str]:
    """The environment cosign and crane run in: offline (every proxy a closed port), with the TLS registries'
    CA, and their credentials in a Docker config under ``home``."""
    import base64

    docker = home / "docker"
    docker.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{env.username}:{env.password}".encode()).decode()
    auths = {env.basic_registry: {"auth": auth}, env.token_registry: {"auth": auth}}
    (docker / "config.json").write_text(json.dumps({"auths": auths}))
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "HTTPS_PROXY": DEAD_PROXY,
        "HTTP_PROXY": DEAD_PROXY,
        "DOCKER_CONFIG": str(docker),
        "SSL_CERT_FILE": str(env.ca),
        "COSIGN_PASSWORD": "",
    }


@pytest.fixture(scope="session", name="registry_env")
def registry_env_fixture() -> Iterator[RegistryEnv]:
    """The registry part, shared by every test session on this machine that runs at the same time.

    A session takes a lease; the last session to leave takes the part down, when a test session
    started it (a part a developer started with `scripts/testenv up registry` stays up).
    """
    with shared_part(
        "registry",
        up_timeout=3600,
        builds="the registries, crane and cosign",
        cached=("registry-v*", "testenv-registry-*", "crane-*", "cosign-v*"),
        keys=ENV_KEYS,
    ) as env:
        yield RegistryEnv(
            registry=env["AUDITOR_TEST_REGISTRY"],
            referrers_registry=env["AUDITOR_TEST_REFERRERS_REGISTRY"],
            basic_registry=env["AUDITOR_TEST_BASIC_REGISTRY"],
            token_registry=env["AUDITOR_TEST_TOKEN_REGISTRY"],
            ca=Path(env["AUDITOR_TEST_REGISTRY_CA"]),
            username=env["AUDITOR_TEST_REGISTRY_USERNAME"],
            password=env["AUDITOR_TEST_REGISTRY_PASSWORD"],
            trust_dir=Path(env["AUDITOR_TEST_TRUST_DIR"]),
            cosign=Path(env["AUDITOR_TEST_COSIGN"]),
            cosign3=Path(env["AUDITOR_TEST_COSIGN3"]),
            crane=Path(env["AUDITOR_TEST_CRANE"]),
            images=json.loads(Path(env["AUDITOR_TEST_REGISTRY_IMAGES"]).read_text()),
            env={key: env[key] for key in ENV_KEYS},
        )
