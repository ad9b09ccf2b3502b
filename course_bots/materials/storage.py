"""One storage interface for original uploaded files: the instance folder, the database, or S3-compatible.

``COURSEBOTS_STORAGE`` picks the backend. ``instance`` (default) suits one machine; ``database`` keeps the bytes
in the ``material_blob`` table so every web and job worker sees them without a shared folder; ``s3`` talks to an
S3-compatible store (AWS, MinIO, Ceph) with plain SigV4-signed requests (no boto3 needed).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

from lti_tool.config import Config

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")


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
        from course_bots.materials.models import MaterialBlob
        from lti_tool.extensions import db

        blob = db.session.get(MaterialBlob, _check_key(key))
        if blob is None:
            db.session.add(MaterialBlob(key=key, data=data))
        else:
            blob.data = data
        db.session.flush()

    def get(self, key: str) -> bytes:
        """Read the blob."""
        from course_bots.materials.models import MaterialBlob
        from lti_tool.extensions import db

        blob = db.session.get(MaterialBlob, _check_key(key))
        if blob is None:
            raise StorageError(f"no stored file for {key}")
        return bytes(blob.data)

    def delete(self, key: str) -> None:
        """Delete the blob row if present."""
        from course_bots.materials.models import MaterialBlob
        from lti_tool.extensions import db

        blob = db.session.get(MaterialBlob, _check_key(key))
        if blob is not None:
            db.session.delete(blob)
            db.session.flush()


class S3Storage:
    """An S3-compatible bucket via path-style URLs and AWS Signature Version 4 (stdlib only)."""

    name = "s3"

    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 prefix: str = "", timeout: float = 30.0) -> None:
        """Remember where and how to sign; nothing is contacted until the first call."""
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.prefix = prefix.strip("/")
        self.timeout = timeout

    def _url_path(self, key: str) -> str:
        full = f"{self.prefix}/{_check_key(key)}" if self.prefix else _check_key(key)
        return "/" + quote(self.bucket) + "/" + quote(full, safe="/")

    def _signed_request(self, method: str, key: str, body: bytes = b"",
                        now: dt.datetime | None = None) -> urllib.request.Request:
        """Build a SigV4-signed request (exposed for tests: the signature is deterministic given ``now``)."""
        now = now or dt.datetime.now(dt.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = now.strftime("%Y%m%d")
        host = urlsplit(self.endpoint).netloc
        path = self._url_path(key)
        payload_hash = hashlib.sha256(body).hexdigest()
        headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join([method, path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", signed,
                               payload_hash])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key_bytes = ("AWS4" + self.secret_key).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.endpoint + path, data=body if method == "PUT" else None,
                                         method=method)
        for name, value in headers.items():
            if name != "host":
                request.add_header(name, value)
        request.add_header("Authorization", f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                            f"SignedHeaders={signed}, Signature={signature}")
        return request

    def _send(self, request: urllib.request.Request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (our endpoint)
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise StorageError("no stored file") from exc
            raise StorageError(f"S3 store answered HTTP {exc.code}") from exc
        except OSError as exc:
            raise StorageError(f"S3 store unreachable: {type(exc).__name__}") from exc

    def put(self, key: str, data: bytes) -> None:
        """Upload the object."""
        self._send(self._signed_request("PUT", key, data))

    def get(self, key: str) -> bytes:
        """Download the object."""
        return self._send(self._signed_request("GET", key))

    def delete(self, key: str) -> None:
        """Delete the object (S3 answers 204 also when it was missing)."""
        try:
            self._send(self._signed_request("DELETE", key))
        except StorageError as exc:
            if "no stored file" not in str(exc):
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
    from lti_tool.extensions import current_config

    return storage_for(current_config())
