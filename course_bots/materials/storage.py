"""One storage interface for original uploaded files: the instance folder, the database, or S3-compatible.

``COURSEBOTS_STORAGE`` picks the backend. ``instance`` (default) suits one machine; ``database`` keeps the bytes
in the ``material_blob`` table so every web and job worker sees them without a shared folder; ``s3`` talks to an
S3-compatible store (AWS, MinIO, Ceph) through boto3, with path-style addressing, timeouts and bounded retries.
"""
from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import Any, Protocol

from course_bots.materials.models import MaterialBlob
from lti_tool.config import Config
from lti_tool.extensions import current_config, db

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
_MISSING = {"NoSuchKey", "NotFound", "404"}


class StorageError(RuntimeError):
    """The file store could not complete an operation (missing file, unreachable store)."""


class Storage(Protocol):
    """Stores original files by key (keys are ours: ``<bot id>/<sha256>``, never user input)."""

    name: str

    def put(self, key: str, data: bytes) -> None:
        """Store bytes under a key (overwriting is allowed: same key, same content)."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under a key; raises :class:`StorageError` when missing."""
        ...

    def delete(self, key: str) -> None:
        """Remove a key (no error when it is already gone)."""
        ...


def _check_key(key: str) -> str:
    """Refuse keys that could escape a folder or a bucket prefix."""
    if not _KEY.match(key) or ".." in key.split("/"):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class InstanceStorage:
    """Files under ``<instance>/materials/`` (the default; one machine or a shared folder)."""

    name = "instance"

    def __init__(self, root: str | Path) -> None:
        """Use ``root`` as the folder (created on first write)."""
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes) -> None:
        """Write atomically (temp file + rename), so a crash never leaves half a file under the key."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        """Read the file."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"no stored file for {key}") from exc

    def delete(self, key: str) -> None:
        """Remove the file if present."""
        self._path(key).unlink(missing_ok=True)


class DatabaseStorage:
    """Bytes in the ``material_blob`` table; writes join the caller's transaction (the view commits)."""

    name = "database"

    def put(self, key: str, data: bytes) -> None:
        """Insert or replace the blob."""
        blob = db.session.get(MaterialBlob, _check_key(key))
        if blob is None:
            db.session.add(MaterialBlob(key=key, data=data))
        else:
            blob.data = data
        db.session.flush()

    def get(self, key: str) -> bytes:
        """Read the blob."""
        blob = db.session.get(MaterialBlob, _check_key(key))
        if blob is None:
            raise StorageError(f"no stored file for {key}")
        return bytes(blob.data)

    def delete(self, key: str) -> None:
        """Delete the blob row if present."""
        blob = db.session.get(MaterialBlob, _check_key(key))
        if blob is not None:
            db.session.delete(blob)
            db.session.flush()


@functools.lru_cache(maxsize=8)
def _s3_client(endpoint: str, region: str, access_key: str, secret_key: str, timeout: float, attempts: int) -> Any:
    """One boto3 client per configuration (clients are thread-safe; building one loads its service model)."""
    # Imported here, not at module top: boto3 and botocore are heavy (service models, ~0.3 s and tens of MB) and
    # only a deployment with COURSEBOTS_STORAGE=s3 needs them.
    import boto3
    from botocore.config import Config as BotoConfig

    settings = BotoConfig(
        region_name=region,
        signature_version="s3v4",
        connect_timeout=timeout,
        read_timeout=timeout,
        # total tries of one operation (botocore's "max_attempts" would count the retries only)
        retries={"total_max_attempts": attempts, "mode": "standard"},
        # MinIO and Ceph serve buckets under the endpoint's path, not as sub-domains
        s3={"addressing_style": "path"},
        # checksums only where S3 demands them: several S3-compatible stores refuse boto3's default
        # streamed CRC trailers on uploads
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    credentials = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key} if access_key else {}
    return boto3.session.Session().client("s3", endpoint_url=endpoint or None, config=settings, **credentials)


class S3Storage:
    """An S3-compatible bucket through boto3 (path-style addressing, SigV4, timeouts, bounded retries)."""

    name = "s3"

    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 prefix: str = "", timeout: float = 30.0, attempts: int = 3) -> None:
        """Remember where and how to connect; nothing is contacted until the first call.

        Empty keys leave the credentials to boto3's usual sources (``AWS_*`` variables, an instance role).
        ``attempts`` bounds the tries of one operation (1 = no retry); ``timeout`` is per connect and per read.
        """
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.region = region or "us-east-1"
        self.prefix = prefix.strip("/")
        self._client_args = (self.endpoint, self.region, access_key, secret_key, float(timeout), max(1, attempts))

    def __repr__(self) -> str:
        """Where the files go, never the keys."""
        return f"S3Storage(endpoint={self.endpoint!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    def object_key(self, key: str) -> str:
        """The object's key inside the bucket (the prefix, then our key)."""
        return f"{self.prefix}/{_check_key(key)}" if self.prefix else _check_key(key)

    def _call(self, operation: str, key: str, **params: Any) -> Any:
        """Run one client operation, turning boto3's errors into :class:`StorageError` without credentials."""
        # botocore is importable here: building the client below (or an earlier call) has imported it
        client = _s3_client(*self._client_args)
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            response = getattr(client, operation)(Bucket=self.bucket, Key=self.object_key(key), **params)
            if operation == "get_object":
                with response["Body"] as body:
                    return bytes(body.read())
            return response
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "unknown"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            if code in _MISSING:
                raise StorageError(f"no stored file for {key}") from None
            if code == "NoSuchBucket":
                raise StorageError(f"S3 bucket {self.bucket!r} does not exist at {self.endpoint}") from None
            raise StorageError(f"S3 store refused {operation} of {key}: HTTP {status} {code}") from None
        except NoCredentialsError:
            raise StorageError("no S3 credentials: set COURSEBOTS_S3_ACCESS_KEY and COURSEBOTS_S3_SECRET_KEY") \
                from None
        except BotoCoreError as exc:
            raise StorageError(f"S3 store at {self.endpoint} unreachable: {type(exc).__name__}") from None

    def put(self, key: str, data: bytes) -> None:
        """Upload the object."""
        self._call("put_object", key, Body=data)

    def get(self, key: str) -> bytes:
        """Download the object."""
        data: bytes = self._call("get_object", key)
        return data

    def delete(self, key: str) -> None:
        """Delete the object (S3 answers 204 also when it was missing)."""
        try:
            self._call("delete_object", key)
        except StorageError as exc:
            if not str(exc).startswith("no stored file"):
                raise


def storage_for(config: Config) -> Storage:
    """The storage backend the configuration names."""
    kind = (config.storage or "instance").lower()
    if kind == "instance":
        return InstanceStorage(Path(config.instance_path) / "materials")
    if kind == "database":
        return DatabaseStorage()
    if kind == "s3":
        if not (config.s3_endpoint and config.s3_bucket):
            raise StorageError("COURSEBOTS_STORAGE=s3 needs COURSEBOTS_S3_ENDPOINT and COURSEBOTS_S3_BUCKET")
        return S3Storage(config.s3_endpoint, config.s3_bucket, config.s3_access_key, config.s3_secret_key,
                         config.s3_region, config.s3_prefix)
    raise StorageError(f"unknown COURSEBOTS_STORAGE {kind!r}: use instance, database or s3")


def current_storage() -> Storage:
    """The storage of the running app."""
    return storage_for(current_config())
