"""S3 uploads are streamed to disk: no size cap but S3's own, and nothing left by a failed upload."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
import uuid
from pathlib import Path

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.api.conftest import REGION, ApiServer


def _bucket(api: ApiServer, *, versioned: bool = False) -> str:
    s3 = api.client("s3")
    name = f"up-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _tmp_files(api: ApiServer) -> list[Path]:
    return list((api.settings.buckets_dir / ".openmwaa-s3" / "tmp").iterdir())


def _signed_head(api: ApiServer, path: str, *, signed_body: bytes, headers: dict[str, str]) -> bytes:
    """A PUT's request line and headers, SigV4-signed by botocore for ``signed_body``."""
    key_id, secret = api.keys["admin"]
    request = AWSRequest("PUT", f"{api.endpoint_url}{path}", data=signed_body, headers=headers)
    S3SigV4Auth(Credentials(key_id, secret), "s3", REGION).add_auth(request)
    lines = [f"PUT {path} HTTP/1.1", f"Host: 127.0.0.1:{api.port}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items() if name.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(sock: socket.socket) -> bytes:
    sock.settimeout(30)
    data = b""
    while b"</Error>" not in data:
        block = sock.recv(65536)
        if not block:
            break
        data += block
    return data


def test_put_object_beyond_the_old_in_memory_cap(api: ApiServer, tmp_path: Path) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api)
    data = os.urandom(1024 * 1024) * 70  # 70 MiB: bodies were held in memory and capped at 64 MiB
    reply = s3.put_object(Bucket=bucket, Key="big.bin", Body=data)
    assert reply["ETag"] == f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
    assert (api.settings.buckets_dir / bucket / "big.bin").read_bytes() == data
    assert not _tmp_files(api)


def test_bad_digests_leave_the_object_as_it_was(api: ApiServer) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api, versioned=True)
    first = s3.put_object(Bucket=bucket, Key="dags/a.py", Body=b"v1")
    wrong_md5 = base64.b64encode(hashlib.md5(b"other", usedforsecurity=False).digest()).decode()
    with pytest.raises(ClientError) as md5:
        s3.put_object(Bucket=bucket, Key="dags/a.py", Body=b"v2", ContentMD5=wrong_md5)
    assert md5.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(ClientError) as crc:
        s3.put_object(Bucket=bucket, Key="dags/a.py", Body=b"v2", ChecksumCRC32="AAAAAA==")
    assert crc.value.response["Error"]["Code"] == "BadDigest"
    # A body other than the one the signature covers (same length, signed hash of another).
    head = _signed_head(api, f"/{bucket}/dags/a.py", signed_body=b"good", headers={"Content-Length": "4"})
    with socket.create_connection(("127.0.0.1", api.port)) as sock:
        sock.sendall(head + b"evil")
        answer = _response(sock)
    assert b" 400 " in answer.split(b"\r\n")[0] and b"XAmzContentSHA256Mismatch" in answer
    assert s3.get_object(Bucket=bucket, Key="dags/a.py")["Body"].read() == b"v1"
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [v["VersionId"] for v in versions] == [first["VersionId"]]
    assert not _tmp_files(api)


def test_a_client_gone_mid_upload_leaves_no_object(api: ApiServer) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api)
    data = os.urandom(8 * 1024 * 1024)
    head = _signed_head(
        api, f"/{bucket}/half.bin", signed_body=data, headers={"Content-Length": str(len(data))}
    )
    with socket.create_connection(("127.0.0.1", api.port)) as sock:
        sock.sendall(head + data[: 3 * 1024 * 1024])
        time.sleep(0.5)  # the server has started writing the temporary file
    deadline = time.monotonic() + 20
    while _tmp_files(api):
        assert time.monotonic() < deadline, "the interrupted upload's temporary file was not removed"
        time.sleep(0.1)
    assert not (api.settings.buckets_dir / bucket / "half.bin").exists()
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="half.bin")
    assert missing.value.response["Error"]["Code"] == "404"


def test_an_upload_larger_than_s3_allows_is_entity_too_large(api: ApiServer) -> None:
    bucket = _bucket(api)
    six_gib = str(6 * 1024**3)
    head = _signed_head(api, f"/{bucket}/huge.bin", signed_body=b"", headers={"Content-Length": six_gib})
    with socket.create_connection(("127.0.0.1", api.port)) as sock:
        sock.sendall(head + b"x" * 1024)
        answer = _response(sock)
    assert b" 400 " in answer.split(b"\r\n")[0] and b"<Code>EntityTooLarge</Code>" in answer
    assert not (api.settings.buckets_dir / bucket / "huge.bin").exists()


def test_a_part_with_a_bad_digest_is_not_kept(api: ApiServer) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="p.bin")["UploadId"]
    wrong_md5 = base64.b64encode(hashlib.md5(b"other", usedforsecurity=False).digest()).decode()
    with pytest.raises(ClientError) as bad:
        s3.upload_part(
            Bucket=bucket, Key="p.bin", UploadId=upload, PartNumber=1, Body=b"x" * 100, ContentMD5=wrong_md5
        )
    assert bad.value.response["Error"]["Code"] == "BadDigest"
    assert s3.list_parts(Bucket=bucket, Key="p.bin", UploadId=upload).get("Parts", []) == []
    good = s3.upload_part(Bucket=bucket, Key="p.bin", UploadId=upload, PartNumber=1, Body=b"y" * 100)
    assert good["ETag"] == f'"{hashlib.md5(b"y" * 100, usedforsecurity=False).hexdigest()}"'
    with pytest.raises(ClientError) as unknown:
        s3.upload_part(Bucket=bucket, Key="p.bin", UploadId="nope", PartNumber=1, Body=b"z")
    assert unknown.value.response["Error"]["Code"] == "NoSuchUpload"
    s3.abort_multipart_upload(Bucket=bucket, Key="p.bin", UploadId=upload)
    assert not _tmp_files(api)
