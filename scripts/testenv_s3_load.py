"""Load the test environment's S3 gateway (versitygw): the archive bucket, with Object Lock, and one without.

Run by `scripts/testenv up s3` with the repo's .venv Python, which needs boto3 (`.venv/bin/pip install
boto3` when it is missing); the credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (never
on the command line):

    testenv_s3_load.py --endpoint http://127.0.0.1:PORT --region us-east-1
        --bucket auditor-archive --unlocked-bucket no-lock

1. --bucket is created with ObjectLockEnabledForBucket=True (which also turns versioning on), and
   --unlocked-bucket without Object Lock. Both are kept when already there.
2. A check: --bucket's Object Lock configuration says Enabled and its versioning Enabled;
   --unlocked-bucket has no Object Lock configuration (ObjectLockConfigurationNotFoundError).

Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def say(message: str) -> None:
    print(f"testenv_s3_load: {message}", file=sys.stderr)


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def create(s3: Any, bucket: str, *, object_lock: bool) -> None:
    try:
        if object_lock:
            s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        else:
            s3.create_bucket(Bucket=bucket)
        say(f"created {bucket} ({'Object Lock' if object_lock else 'no Object Lock'})")
    except Exception as e:  # botocore.exceptions.ClientError
        if error_code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
        say(f"{bucket} is already there")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--bucket", required=True, help="created with Object Lock")
    parser.add_argument("--unlocked-bucket", required=True, help="created without Object Lock")
    args = parser.parse_args()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if not os.environ.get(key):
            parser.error(f"{key} is not set")
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        say(f"boto3 is not installed in {sys.executable}'s environment (.venv/bin/pip install boto3)")
        return 3

    s3 = boto3.client(
        "s3",
        endpoint_url=args.endpoint,
        region_name=args.region,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )
    create(s3, args.bucket, object_lock=True)
    create(s3, args.unlocked_bucket, object_lock=False)

    lock = s3.get_object_lock_configuration(Bucket=args.bucket)["ObjectLockConfiguration"]
    if lock.get("ObjectLockEnabled") != "Enabled":
        say(f"{args.bucket}: Object Lock is not enabled: {lock}")
        return 1
    versioning = s3.get_bucket_versioning(Bucket=args.bucket).get("Status")
    if versioning != "Enabled":
        say(f"{args.bucket}: versioning is {versioning!r}, not Enabled")
        return 1
    try:
        lock = s3.get_object_lock_configuration(Bucket=args.unlocked_bucket)
    except Exception as e:  # botocore.exceptions.ClientError
        if error_code(e) != "ObjectLockConfigurationNotFoundError":
            raise
    else:
        say(f"{args.unlocked_bucket}: has an Object Lock configuration: {lock.get('ObjectLockConfiguration')}")
        return 1
    say(f"{args.bucket} (Object Lock, versioning) and {args.unlocked_bucket} (no Object Lock) are ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
