"""The archive on S3-compatible object storage with Object Lock in COMPLIANCE mode (boto3).

``--archive s3://BUCKET/PREFIX``; the endpoint comes from the standard ``AWS_ENDPOINT_URL`` and the
credentials from the standard AWS variables or files. The bucket must have Object Lock enabled: the
archive refuses one without it (a bucket anyone with write access can rewrite proves nothing). Every
object is written with ``ObjectLockMode=COMPLIANCE`` and a retain-until date from the profile's
``retention.years``: nobody, the root account included, can delete it or shorten its retention.
An object that already exists is never written again (a second writer of a sequence number fails).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from auditor.errors import InputError, OutputError

MAX_OBJECT_BYTES = 512 * 1024 * 1024


class S3Store:
    def __init__(self, target: str) -> None:
        import boto3
        from botocore.config import Config

        bucket, _, prefix = target.removeprefix("s3://").partition("/")
        if not bucket:
            raise InputError(f"{target}: expected s3://BUCKET/PREFIX")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.label = target.rstrip("/")
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
        )
        self._errors: Any = __import__("botocore.exceptions", fromlist=["ClientError"])

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except self._errors.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise OutputError(f"{self.label}: {what}: {code or exc}") from None
        except self._errors.BotoCoreError as exc:
            raise OutputError(f"{self.label}: {what}: {exc}") from None

    def require_object_lock(self) -> None:
        """Exit 2 (an input error) for a bucket without Object Lock: it could not hold a WORM archive."""
        try:
            conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except self._errors.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise InputError(
                f"{self.label}: the bucket has no Object Lock ({code}); a write-once archive needs a bucket created with "
                "Object Lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket)"
            ) from None
        except self._errors.BotoCoreError as exc:
            raise InputError(f"{self.label}: cannot reach the bucket: {exc}") from None
        if conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise InputError(f"{self.label}: Object Lock is not enabled on the bucket")

    def exists(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return True
        except (self._errors.ClientError, self._errors.BotoCoreError):
            return False

    def _children(self, *parts: str) -> tuple[list[str], list[str]]:
        """(sub-folders, objects) directly under a folder."""
        prefix = self._key(*parts) + "/" if self._key(*parts) else ""
        folders: list[str] = []
        objects: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call("list", self.client.list_objects_v2, Prefix=prefix, Delimiter="/", **token)
            folders += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
            objects += [o["Key"][len(prefix) :] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return folders, objects
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def profiles(self) -> list[str]:
        return sorted(self._children()[0])

    def entries(self, profile: str) -> list[int]:
        return sorted(int(f) for f in self._children(profile)[0] if len(f) == 6 and f.isdigit())

    def strays(self, profile: str) -> list[str]:
        folders, objects = self._children(profile)
        return sorted([f for f in folders if not (len(f) == 6 and f.isdigit())] + objects)

    def names(self, profile: str, sequence: int) -> list[str]:
        return sorted(self._children(profile, f"{sequence:06d}")[1])

    def read(self, profile: str, sequence: int, name: str) -> bytes | None:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(profile, f"{sequence:06d}", name))
        except self._errors.ClientError:
            return None
        if int(obj.get("ContentLength", 0)) > MAX_OBJECT_BYTES:
            raise OutputError(f"{self.label}: {profile}/{sequence:06d}/{name} is larger than {MAX_OBJECT_BYTES} bytes")
        data: bytes = obj["Body"].read()
        return data

    def overwritten(self, profile: str, sequence: int) -> dict[str, str]:
        """Objects of the entry written more than once (Object Lock buckets are versioned: an overwrite adds a
        version and the locked original stays): name -> what the bucket holds."""
        prefix = self._key(profile, f"{sequence:06d}") + "/"
        versions: dict[str, list[tuple[str, str]]] = {}
        markers: set[str] = set()
        token: dict[str, str] = {}
        while True:
            page = self._call("list versions", self.client.list_object_versions, Prefix=prefix, **token)
            for v in page.get("Versions", []):
                modified = v.get("LastModified")
                when = modified.isoformat() if hasattr(modified, "isoformat") else str(modified)
                versions.setdefault(v["Key"][len(prefix) :], []).append((when, str(v.get("VersionId"))))
            markers.update(m["Key"][len(prefix) :] for m in page.get("DeleteMarkers", []))
            if not page.get("IsTruncated"):
                break
            token = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page.get("NextVersionIdMarker", "")}
        out = {}
        for name, held in sorted(versions.items()):
            if len(held) > 1:
                first = min(held)
                out[name] = f"{len(held)} versions; the first ({first[1]}, {first[0]}) is the one written by the audit"
        for name in sorted(markers):
            out[name] = (out.get(name, "") + "; " if name in out else "") + "a delete marker hides it"
        return out

    @contextmanager
    def lock(self, profile: str) -> Iterator[None]:
        # S3 has no lock; a second writer is refused object by object (each key is written once).
        yield

    def create(self, profile: str, sequence: int, files: Mapping[str, bytes], retention_days: int | None) -> str:
        if not retention_days:
            raise InputError(
                f"{self.label}: the profile sets no retention.years; an S3 archive locks every object for it"
            )
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=retention_days)
        entry = self._key(profile, f"{sequence:06d}")
        for name, data in sorted(files.items()):
            key = f"{entry}/{name}"
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except self._errors.ClientError:
                pass  # absent: written below
            else:
                raise FileExistsError(0, "exists", f"{self.label}/{key}")
            try:  # If-None-Match: a concurrent writer of the same key loses at the server, not just at our check
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ObjectLockMode="COMPLIANCE",
                    ObjectLockRetainUntilDate=until,
                    ChecksumAlgorithm="SHA256",
                    IfNoneMatch="*",
                )
            except self._errors.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise FileExistsError(0, "exists", f"{self.label}/{key}") from None
                raise OutputError(f"{self.label}: put {key}: {code or exc}") from None
            except self._errors.BotoCoreError as exc:
                raise OutputError(f"{self.label}: put {key}: {exc}") from None
        return f"s3://{self.bucket}/{entry}"
