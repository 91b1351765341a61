"""scripts/testenv's s3 part: an S3 gateway (versitygw) on loopback with Object Lock, as the archive needs.

What the S3 archive store relies on: auditor-archive has Object Lock (and so versioning) enabled; an
object put there with COMPLIANCE retention keeps that retention, and until it expires its version
can neither be deleted nor have its retention shortened; no-lock has no Object Lock configuration
(ObjectLockConfigurationNotFoundError), so a store can tell the two apart.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .kube_env import REPO, run_testenv
from .s3_env import S3Env, s3_env_fixture  # noqa: F401  (the fixture `s3_env`)


def error_of(call: Callable[[], object]) -> tuple[str, int]:
    """The S3 error code and HTTP status a call fails with (botocore's ClientError); fails the test if it succeeds."""
    try:
        call()
    except Exception as e:  # botocore.exceptions.ClientError; botocore is imported only through the fixture
        response: dict[str, Any] = getattr(e, "response", None) or {}
        if "Error" not in response:
            raise
        return str(response["Error"].get("Code")), int(response["ResponseMetadata"]["HTTPStatusCode"])
    pytest.fail("the call succeeded")


def retain_until(minutes: int = 120) -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(microsecond=0)


def put_locked(s3: Any, env: S3Env, until: datetime) -> tuple[str, str]:
    """A new object in the archive bucket under COMPLIANCE retention until `until`: (key, version id)."""
    key = f"test/{uuid.uuid4().hex}.json"
    put = s3.put_object(
        Bucket=env.bucket, Key=key, Body=b"{}", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until
    )
    version = put.get("VersionId")
    assert version, f"no version id for a put into a versioned bucket: {put}"
    return key, str(version)


def test_env_is_sourceable_and_up_is_idempotent(s3_env: S3Env) -> None:
    assert s3_env.endpoint.startswith("http://127.0.0.1:")
    assert (s3_env.bucket, s3_env.unlocked_bucket, s3_env.region) == ("auditor-archive", "no-lock", "us-east-1")
    script = (
        f'set -e; eval "$({REPO}/scripts/testenv env)"; '
        'echo "$AUDITOR_TEST_S3_ENDPOINT $AUDITOR_TEST_S3_BUCKET $AWS_ACCESS_KEY_ID $AWS_DEFAULT_REGION"'
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == [s3_env.endpoint, s3_env.bucket, s3_env.access_key, s3_env.region]

    started = time.monotonic()
    again = run_testenv("up", "s3", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stderr
    assert time.monotonic() - started < 30
    status = run_testenv("status", timeout=60).stdout.splitlines()
    assert any(line.startswith(f"s3: up {s3_env.endpoint} ") for line in status), status


def test_credentials_are_checked(s3_env: S3Env) -> None:
    buckets = {b["Name"] for b in s3_env.client().list_buckets()["Buckets"]}
    assert {s3_env.bucket, s3_env.unlocked_bucket} <= buckets
    wrong = dataclasses.replace(s3_env, secret_key="not-the-secret").client()
    code, status = error_of(wrong.list_buckets)
    assert status == 403, code


def test_archive_bucket_has_object_lock_and_versioning(s3_env: S3Env) -> None:
    s3 = s3_env.client()
    lock = s3.get_object_lock_configuration(Bucket=s3_env.bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert s3.get_bucket_versioning(Bucket=s3_env.bucket)["Status"] == "Enabled"


def test_compliance_retention_is_set_and_read_back(s3_env: S3Env) -> None:
    s3 = s3_env.client()
    until = retain_until()
    key, version = put_locked(s3, s3_env, until)
    retention = s3.get_object_retention(Bucket=s3_env.bucket, Key=key, VersionId=version)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    assert retention["RetainUntilDate"] == until
    head = s3.head_object(Bucket=s3_env.bucket, Key=key, VersionId=version)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == until


def test_locked_version_cannot_be_deleted(s3_env: S3Env) -> None:
    s3 = s3_env.client()
    key, version = put_locked(s3, s3_env, retain_until())
    code, status = error_of(lambda: s3.delete_object(Bucket=s3_env.bucket, Key=key, VersionId=version))
    assert (code, status) == ("AccessDenied", 403)
    # COMPLIANCE: not even with the governance bypass
    code, status = error_of(
        lambda: s3.delete_object(Bucket=s3_env.bucket, Key=key, VersionId=version, BypassGovernanceRetention=True)
    )
    assert (code, status) == ("AccessDenied", 403)
    assert s3.get_object(Bucket=s3_env.bucket, Key=key, VersionId=version)["Body"].read() == b"{}"


def test_retention_cannot_be_shortened(s3_env: S3Env) -> None:
    s3 = s3_env.client()
    until = retain_until()
    key, version = put_locked(s3, s3_env, until)
    for retention in (
        {"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(minutes=30)},
        {"Mode": "GOVERNANCE", "RetainUntilDate": until},  # a weaker mode is shortening too
    ):
        put_retention = functools.partial(
            s3.put_object_retention, Bucket=s3_env.bucket, Key=key, VersionId=version, Retention=retention
        )
        code, status = error_of(put_retention)
        assert (code, status) == ("AccessDenied", 403), retention
    kept = s3.get_object_retention(Bucket=s3_env.bucket, Key=key, VersionId=version)["Retention"]
    assert (kept["Mode"], kept["RetainUntilDate"]) == ("COMPLIANCE", until)


def test_unlocked_bucket_has_no_lock_configuration(s3_env: S3Env) -> None:
    s3 = s3_env.client()
    code, status = error_of(lambda: s3.get_object_lock_configuration(Bucket=s3_env.unlocked_bucket))
    assert (code, status) == ("ObjectLockConfigurationNotFoundError", 404)
    code, status = error_of(
        lambda: s3.put_object(
            Bucket=s3_env.unlocked_bucket,
            Key=f"test/{uuid.uuid4().hex}.json",
            Body=b"{}",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=retain_until(),
        )
    )
    assert status == 400, code
