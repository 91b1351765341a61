"""The archive on a real S3 server with Object Lock (versitygw on loopback, scripts/testenv up s3)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from auditor import archive

from .conftest import FIXTURES
from .s3_env import S3Env, s3_env_fixture  # noqa: F401  (the fixture `s3_env`)

DEMO = FIXTURES / "demo" / "manifests"


def _cli(s3: S3Env, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **s3.env, "AWS_ENDPOINT_URL": s3.endpoint, "AUDITOR_LOG_FORMAT": "text"}
    return subprocess.run(
        [sys.executable, "-m", "auditor", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture
def signing(tmp_path: Path) -> tuple[Path, Path]:
    return archive.keygen(tmp_path / "keys")


def test_nightly_runs_archive_to_s3_with_compliance_retention_and_verify(
    s3_env: S3Env, tmp_path: Path, signing: tuple[Path, Path]
) -> None:
    key, pub = signing
    prefix = f"s3://{s3_env.bucket}/nightly-{uuid.uuid4().hex[:8]}"
    for day in ("2026-11-26", "2026-11-27"):
        proc = _cli(
            s3_env,
            "audit",
            str(DEMO),
            "--profile",
            "ukgc",
            "--out",
            str(tmp_path / day),
            "--format",
            "json",
            "--archive",
            prefix,
            "--sign-key",
            str(key),
            "--as-of",
            f"{day}T02:00:00Z",
        )
        assert proc.returncode == 1, proc.stderr
        assert f"{prefix}/ukgc/" in proc.stdout
    ok = _cli(s3_env, "verify", prefix, "--public-key", str(pub))
    assert ok.returncode == 0 and "OK - 2 entries" in ok.stdout, ok.stdout + ok.stderr
    # Every object is locked in COMPLIANCE mode for the profile's retention (ukgc: 5 years).
    client = s3_env.client()
    key_name = prefix.removeprefix(f"s3://{s3_env.bucket}/") + "/ukgc/000001/report.json"
    retention = client.get_object_retention(Bucket=s3_env.bucket, Key=key_name)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    years = (retention["RetainUntilDate"] - dt.datetime.now(dt.UTC)).days / 365.25
    assert 4.9 < years < 5.1
    # Deleting the locked object is refused; a new version written over it is caught by verify.
    version = client.head_object(Bucket=s3_env.bucket, Key=key_name)["VersionId"]
    with pytest.raises(Exception, match="AccessDenied"):
        client.delete_object(Bucket=s3_env.bucket, Key=key_name, VersionId=version)
    client.put_object(Bucket=s3_env.bucket, Key=key_name, Body=b'{"verdict":"pass"}')
    bad = _cli(s3_env, "verify", prefix, "--public-key", str(pub))
    assert bad.returncode == 1 and "ukgc/000001/report.json: altered" in bad.stdout, bad.stdout
    assert f"ukgc/000001/report.json: written again after the audit (2 versions; the first ({version}," in bad.stdout


def test_two_writers_of_one_sequence_number_race_and_the_server_refuses_the_second(
    s3_env: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both writers saw the number free (the head check raced); If-None-Match makes the server refuse the second."""
    for name, value in {**s3_env.env, "AWS_ENDPOINT_URL": s3_env.endpoint}.items():
        monkeypatch.setenv(name, value)
    store = archive.open_store(f"s3://{s3_env.bucket}/race-{uuid.uuid4().hex[:8]}")
    store.create("ukgc", 1, {"report.json": b"{}"}, 30)

    def absent(**_: object) -> None:
        raise store._errors.ClientError({"Error": {"Code": "404"}}, "HeadObject")

    monkeypatch.setattr(store.client, "head_object", absent)
    with pytest.raises(FileExistsError):
        store.create("ukgc", 1, {"report.json": b'{"second": true}'}, 30)
    assert store.read("ukgc", 1, "report.json") == b"{}"


def test_a_bucket_without_object_lock_is_refused(s3_env: S3Env, tmp_path: Path, signing: tuple[Path, Path]) -> None:
    key, _pub = signing
    proc = _cli(
        s3_env,
        "audit",
        str(DEMO),
        "--profile",
        "ukgc",
        "--out",
        str(tmp_path / "o"),
        "--format",
        "json",
        "--archive",
        f"s3://{s3_env.unlocked_bucket}/x",
        "--sign-key",
        str(key),
    )
    assert proc.returncode == 2
    assert "has no Object Lock" in proc.stderr and "Traceback" not in proc.stderr
