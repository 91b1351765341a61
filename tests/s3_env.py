"""The `s3_env` fixture: an S3 gateway with Object Lock on loopback (scripts/testenv up s3: versitygw).

Brought up once per test session and shared with the other test sessions running at the same time;
the last of them takes it down, when a test session started it (a developer's own
`scripts/testenv up s3` is left running). Use it from a test module with

    from tests.s3_env import S3Env, s3_env_fixture  # noqa: F401  (the fixture `s3_env`)

and read `s3_env.endpoint` (http://127.0.0.1:PORT), `.bucket` (auditor-archive: Object Lock and
versioning enabled), `.unlocked_bucket` (no-lock: no Object Lock), `.access_key`, `.secret_key`,
`.region` and `.env` (the variables `scripts/testenv env` prints for s3); `.client()` is a boto3 S3
client for the gateway.

Never skipped in CI (CI=true): scripts/setup.sh builds versitygw there. Elsewhere it skips, with the
reason, only when there is no Go toolchain to build it with and no cached binary.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .kube_env import shared_part

ENV_KEYS = (
    "AUDITOR_TEST_S3_ENDPOINT",
    "AUDITOR_TEST_S3_BUCKET",
    "AUDITOR_TEST_S3_UNLOCKED_BUCKET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
)


@dataclass(frozen=True)
class S3Env:
    endpoint: str  # http://127.0.0.1:PORT
    bucket: str  # Object Lock (and versioning) enabled
    unlocked_bucket: str  # no Object Lock
    access_key: str
    secret_key: str
    region: str
    env: dict[str, str]

    def client(self) -> Any:
        """A boto3 S3 client for the gateway (path-style addressing: the buckets are not DNS names here)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )


@pytest.fixture(scope="session", name="s3_env")
def s3_env_fixture() -> Iterator[S3Env]:
    """The s3 part, shared by every test session on this machine that runs at the same time.

    A session takes a lease; the last session to leave takes the part down, when a test session
    started it (a part a developer started with `scripts/testenv up s3` stays up).
    """
    with shared_part("s3", up_timeout=1800, builds="versitygw", cached=("versitygw-v*",), keys=ENV_KEYS) as env:
        yield S3Env(
            endpoint=env["AUDITOR_TEST_S3_ENDPOINT"],
            bucket=env["AUDITOR_TEST_S3_BUCKET"],
            unlocked_bucket=env["AUDITOR_TEST_S3_UNLOCKED_BUCKET"],
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
            region=env["AWS_DEFAULT_REGION"],
            env={key: env[key] for key in ENV_KEYS},
        )
