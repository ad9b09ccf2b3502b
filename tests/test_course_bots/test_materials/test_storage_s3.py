"""The S3 file store (boto3) against moto's standalone S3 server on 127.0.0.1, which checks every signature."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from course_bots.materials import operations as svc
from course_bots.materials.jobs import run_pending
from course_bots.materials.models import Material, MaterialChunk
from course_bots.materials.storage import S3Storage, StorageError, _s3_client, current_storage
from course_bots.models import CourseBot
from lti_tool.extensions import db

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "course-files"
NOTES = b"# Cells\n\n" + b"Cells are the basic unit of life; the membrane keeps the cytoplasm inside. " * 20


class S3:
    """Where the moto server listens and the one IAM user's keys that it accepts."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str) -> None:
        self.endpoint, self.access_key, self.secret_key = endpoint, access_key, secret_key

    def storage(self, **overrides: Any) -> S3Storage:
        """A store on the moto server with the valid keys unless overridden."""
        args: dict[str, Any] = dict(endpoint=self.endpoint, bucket=BUCKET, access_key=self.access_key,
                                    secret_key=self.secret_key)
        args.update(overrides)
        return S3Storage(**args)

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket, read with boto3 directly (not through the code under test)."""
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)
        listing = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {item["Key"]: client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listing}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _set_auth(endpoint: str, unauthenticated_requests: str) -> None:
    """moto's switch: after this many requests, every request must be signed by a known IAM key."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=unauthenticated_requests.encode(),
                                     headers={"Content-Type": "text/plain"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (127.0.0.1)
        assert response.status == 200


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    """moto's S3 on 127.0.0.1 with one bucket and one IAM user allowed ``s3:*``; signatures are checked."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    setup = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup",
                 aws_secret_access_key="setup")
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="coursebots")
    iam.put_user_policy(UserName="coursebots", PolicyName="files", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="coursebots")["AccessKey"]
    boto3.client("s3", **setup).create_bucket(Bucket=BUCKET)
    _set_auth(endpoint, "0")
    try:
        yield S3(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        _set_auth(endpoint, "inf")
        server.stop()


def test_upload_read_delete_round_trip(s3: S3) -> None:
    storage = s3.storage()
    storage.put("7/abc", b"original bytes")
    assert s3.objects()["7/abc"] == b"original bytes"
    assert storage.get("7/abc") == b"original bytes"
    storage.put("7/abc", b"same key, new bytes")
    assert storage.get("7/abc") == b"same key, new bytes"
    storage.delete("7/abc")
    storage.delete("7/abc")  # already gone: no error
    assert "7/abc" not in s3.objects()


def test_the_prefix_holds_every_object(s3: S3) -> None:
    storage = s3.storage(prefix="/coursebots/prod/")
    storage.put("3/def", b"prefixed")
    assert s3.objects()["coursebots/prod/3/def"] == b"prefixed"
    assert "3/def" not in s3.objects()
    assert storage.get("3/def") == b"prefixed"
    with pytest.raises(StorageError, match="no stored file"):
        s3.storage().get("3/def")  # without the prefix it is another object
    storage.delete("3/def")
    assert "coursebots/prod/3/def" not in s3.objects()


def test_a_missing_object_is_a_storage_error(s3: S3) -> None:
    with pytest.raises(StorageError, match="no stored file for 9/missing"):
        s3.storage().get("9/missing")


def test_keys_that_escape_the_prefix_are_refused_before_any_request(s3: S3) -> None:
    with pytest.raises(StorageError, match="invalid storage key"):
        s3.storage(prefix="cb").put("../outside", b"x")


@pytest.mark.parametrize("wrong", ["secret", "access"])
def test_wrong_keys_fail_clearly_without_secrets(s3: S3, wrong: str) -> None:
    secret = "wrong-secret-" + "z" * 27
    storage = (s3.storage(secret_key=secret) if wrong == "secret"
               else s3.storage(access_key="AKIAWRONGWRONGWRONG1", secret_key=secret))
    with pytest.raises(StorageError) as caught:
        storage.put("7/abc", b"x")
    message = str(caught.value)
    assert "HTTP 403" in message and ("SignatureDoesNotMatch" in message or "InvalidAccessKeyId" in message)
    shown = "".join(traceback.format_exception(caught.value)) + repr(storage)
    assert secret not in shown and s3.secret_key not in shown
    with pytest.raises(StorageError, match="HTTP 403"):
        storage.get("7/abc")


def test_a_wrong_bucket_is_named(s3: S3) -> None:
    with pytest.raises(StorageError, match="S3 bucket 'no-such-bucket' does not exist"):
        s3.storage(bucket="no-such-bucket").get("1/abc")


def test_an_unreachable_store_fails_after_bounded_tries() -> None:
    storage = S3Storage(f"http://127.0.0.1:{_free_port()}", BUCKET, "AK", "SK-secret", timeout=2, attempts=2)
    with pytest.raises(StorageError, match="unreachable: EndpointConnectionError") as caught:
        storage.get("1/abc")
    assert "SK-secret" not in "".join(traceback.format_exception(caught.value))


def test_the_client_is_path_style_with_timeouts_and_bounded_retries(s3: S3) -> None:
    storage = s3.storage(region="eu-central-1", timeout=7, attempts=4)
    config = _s3_client(*storage._client_args).meta.config
    assert config.s3["addressing_style"] == "path" and config.region_name == "eu-central-1"
    assert (config.connect_timeout, config.read_timeout) == (7, 7)
    assert config.retries == {"total_max_attempts": 4, "mode": "standard"}


def test_a_failing_store_is_tried_a_bounded_number_of_times() -> None:
    tries: list[str] = []

    class Busy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            tries.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        storage = S3Storage(f"http://127.0.0.1:{server.server_port}", BUCKET, "AK", "SK", attempts=3)
        with pytest.raises(StorageError, match="HTTP 503"):
            storage.get("1/abc")
    finally:
        server.shutdown()
        server.server_close()
    assert tries == [f"/{BUCKET}/1/abc"] * 3


def test_configuration_builds_the_s3_store(make_app: Any) -> None:
    app = make_app(storage="s3", s3_endpoint="http://127.0.0.1:9/", s3_bucket="b", s3_prefix="p",
                   s3_region="eu-west-1")
    with app.app_context():
        storage = current_storage()
    assert isinstance(storage, S3Storage)
    expected = ("http://127.0.0.1:9", "b", "p", "eu-west-1")
    assert (storage.endpoint, storage.bucket, storage.prefix, storage.region) == expected
    with make_app(storage="s3", s3_bucket="b").app_context(), pytest.raises(StorageError, match="S3_ENDPOINT"):
        current_storage()


@pytest.fixture
def s3_app(s3: S3, make_app: Any, tmp_path: Path) -> Iterator[Flask]:
    """An app with COURSEBOTS_STORAGE=s3 on the moto server, migrated, the hashing embedder, one bot."""
    from flask_migrate import upgrade

    app = make_app(database_url=f"sqlite:///{tmp_path / 's3.sqlite3'}", storage="s3", s3_endpoint=s3.endpoint,
                   s3_bucket=BUCKET, s3_access_key=s3.access_key, s3_secret_key=s3.secret_key,
                   s3_prefix="app", ingest_threads=0, embedding_model="hashing")
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title="Bio"))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_materials_upload_ingest_and_delete_through_s3(s3_app: Flask, s3: S3) -> None:
    with s3_app.app_context():
        result = svc.upload_material(1, "cells.md", NOTES)
        db.session.commit()
        material_id, key = result.material.id, result.material.storage_key
    assert s3.objects()[f"app/{key}"] == NOTES
    with s3_app.app_context():
        assert run_pending() == 1
        material = db.session.get(Material, material_id)
        assert material is not None and (material.status, material.error_code) == ("ready", None)
        assert (db.session.scalar(select(func.count()).select_from(MaterialChunk)) or 0) >= 1
        svc.delete_material(material)
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(MaterialChunk)) == 0
    assert f"app/{key}" not in s3.objects()


def test_boto3_is_imported_only_when_the_s3_store_is_used() -> None:
    code = ("import sys; from course_bots.materials.storage import S3Storage; "
            "S3Storage('http://127.0.0.1:9', 'b', 'AK', 'SK'); "
            "print('boto3' in sys.modules, 'botocore' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[3], check=True)
    assert result.stdout.split() == ["False", "False"]
