"""Virtual-host addressing on ``localhost`` names, ListObjects (v1, marker pages) and UploadPartCopy,
with boto3 and the AWS CLI unchanged."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.api.conftest import REGION, ApiServer

MIB = 1024 * 1024


def _bucket(api: ApiServer) -> str:
    name = f"v-{uuid.uuid4().hex[:12]}"
    api.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def localhost_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """``*.localhost`` resolves to the loopback address (as curl, browsers and systemd-resolved do;
    this machine's resolver does not)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _virtual_client(api: ApiServer, urls: list[str]) -> Any:
    key_id, secret = api.keys["admin"]
    client = boto3.client(
        "s3",
        endpoint_url=f"http://localhost:{api.port}",
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(
            s3={"addressing_style": "virtual"}, signature_version="s3v4", retries={"max_attempts": 1}
        ),
    )
    client.meta.events.register("before-send.s3", lambda request, **_: urls.append(request.url))
    return client


@pytest.mark.usefixtures("localhost_names")
def test_virtual_host_addressing_on_localhost_names(api: ApiServer) -> None:
    bucket = _bucket(api)
    urls: list[str] = []
    s3 = _virtual_client(api, urls)
    s3.put_object(Bucket=bucket, Key="dags/v.py", Body=b"virtual")
    assert urls[-1] == f"http://{bucket}.localhost:{api.port}/dags/v.py"
    assert (api.settings.buckets_dir / bucket / "dags" / "v.py").read_bytes() == b"virtual"
    assert s3.get_object(Bucket=bucket, Key="dags/v.py")["Body"].read() == b"virtual"
    s3.head_bucket(Bucket=bucket)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["dags/v.py"]
    assert urls[-1].startswith(f"http://{bucket}.localhost:{api.port}/?list-type=2")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dags/v.py"})
    assert url.startswith(f"http://{bucket}.localhost:{api.port}/dags/v.py?")
    assert requests.get(url, timeout=10).content == b"virtual"
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="no-such-bucket-here", Key="x")
    assert missing.value.response["Error"]["Code"] == "NoSuchBucket"
    s3.delete_object(Bucket=bucket, Key="dags/v.py")
    assert not (api.settings.buckets_dir / bucket / "dags" / "v.py").exists()


def _keys(api: ApiServer, bucket: str, keys: list[str]) -> None:
    s3 = api.client("s3")
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())


def test_list_objects_v1_pages_by_marker(api: ApiServer) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api)
    keys = ["a.txt", "dags/a.py", "dags/b.py", "dags/sub/c.py", "plugins.zip", "z/1", "z/2"]
    _keys(api, bucket, keys)
    first = s3.list_objects(Bucket=bucket, MaxKeys=3)
    assert [o["Key"] for o in first["Contents"]] == keys[:3]
    assert first["IsTruncated"] is True and "NextMarker" not in first  # no delimiter: the last key
    second = s3.list_objects(Bucket=bucket, MaxKeys=3, Marker=first["Contents"][-1]["Key"])
    assert [o["Key"] for o in second["Contents"]] == keys[3:6]
    assert second["Marker"] == "dags/b.py"
    everything = [
        o["Key"]
        for page in s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2})
        for o in page["Contents"]
    ]
    assert everything == keys
    rolled = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert [o["Key"] for o in rolled["Contents"]] == ["a.txt"]
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["dags/"]
    assert rolled["NextMarker"] == "dags/"
    rest = s3.list_objects(Bucket=bucket, Delimiter="/", Marker="dags/")
    assert [o["Key"] for o in rest["Contents"]] == ["plugins.zip"]
    assert [p["Prefix"] for p in rest["CommonPrefixes"]] == ["z/"]
    assert rest["IsTruncated"] is False
    under = s3.list_objects(Bucket=bucket, Prefix="dags/", Delimiter="/")
    assert [o["Key"] for o in under["Contents"]] == ["dags/a.py", "dags/b.py"]
    assert [p["Prefix"] for p in under["CommonPrefixes"]] == ["dags/sub/"]


def test_aws_cli_list_objects_v1(api: ApiServer) -> None:
    bucket = _bucket(api)
    keys = [f"dags/{i:02d}.py" for i in range(5)]
    _keys(api, bucket, keys)
    key_id, secret = api.keys["admin"]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": api.endpoint_url,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    aws = Path(sys.executable).parent / "aws"
    done = subprocess.run(
        [
            str(aws),
            "s3api",
            "list-objects",
            "--bucket",
            bucket,
            "--page-size",
            "2",
            "--query",
            "Contents[].Key",
            "--output",
            "text",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == keys


@pytest.fixture
def source(api: ApiServer) -> Iterator[tuple[str, bytes]]:
    bucket = _bucket(api)
    data = os.urandom(12 * MIB + 7)
    api.client("s3").put_object(Bucket=bucket, Key="big.bin", Body=data)
    yield bucket, data


def test_upload_part_copy_with_ranges(api: ApiServer, source: tuple[str, bytes]) -> None:
    s3 = api.client("s3")
    bucket, data = source
    upload = s3.create_multipart_upload(Bucket=bucket, Key="copy.bin")["UploadId"]
    copy_from = {"Bucket": bucket, "Key": "big.bin"}
    parts = []
    for number, (first, last) in enumerate(
        [(0, 5 * MIB - 1), (5 * MIB, 10 * MIB - 1), (10 * MIB, len(data) - 1)], 1
    ):
        reply = s3.upload_part_copy(
            Bucket=bucket,
            Key="copy.bin",
            UploadId=upload,
            PartNumber=number,
            CopySource=copy_from,
            CopySourceRange=f"bytes={first}-{last}",
        )
        parts.append({"PartNumber": number, "ETag": reply["CopyPartResult"]["ETag"]})
    listed = s3.list_parts(Bucket=bucket, Key="copy.bin", UploadId=upload)["Parts"]
    assert [p["Size"] for p in listed] == [5 * MIB, 5 * MIB, 2 * MIB + 7]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="copy.bin", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert (api.settings.buckets_dir / bucket / "copy.bin").read_bytes() == data
    assert s3.head_object(Bucket=bucket, Key="copy.bin")["ETag"].endswith('-3"')


def test_upload_part_copy_refusals(api: ApiServer, source: tuple[str, bytes]) -> None:
    s3 = api.client("s3")
    bucket, data = source
    upload = s3.create_multipart_upload(Bucket=bucket, Key="copy.bin")["UploadId"]
    copy_from = {"Bucket": bucket, "Key": "big.bin"}
    whole = s3.upload_part_copy(
        Bucket=bucket, Key="copy.bin", UploadId=upload, PartNumber=1, CopySource=copy_from
    )
    assert s3.list_parts(Bucket=bucket, Key="copy.bin", UploadId=upload)["Parts"][0]["Size"] == len(data)
    assert whole["CopyPartResult"]["ETag"].strip('"')
    for bad in (f"bytes=0-{len(data)}", "bytes=5-1", "bytes=0-", "items=0-1"):
        with pytest.raises(ClientError) as refused:
            s3.upload_part_copy(
                Bucket=bucket,
                Key="copy.bin",
                UploadId=upload,
                PartNumber=2,
                CopySource=copy_from,
                CopySourceRange=bad,
            )
        assert refused.value.response["Error"]["Code"] == "InvalidArgument", bad
    with pytest.raises(ClientError) as no_source:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="copy.bin",
            UploadId=upload,
            PartNumber=2,
            CopySource={"Bucket": bucket, "Key": "none"},
        )
    assert no_source.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(ClientError) as no_upload:
        s3.upload_part_copy(
            Bucket=bucket, Key="copy.bin", UploadId="nope", PartNumber=2, CopySource=copy_from
        )
    assert no_upload.value.response["Error"]["Code"] == "NoSuchUpload"
    # The deploy user may read and write below dags/ only: a copy from elsewhere is denied.
    deployer = api.client("s3", user="dag-deployer")
    dags_upload = s3.create_multipart_upload(Bucket=bucket, Key="dags/copy.bin")["UploadId"]
    with pytest.raises(ClientError) as denied:
        deployer.upload_part_copy(
            Bucket=bucket, Key="dags/copy.bin", UploadId=dags_upload, PartNumber=1, CopySource=copy_from
        )
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.list_parts(Bucket=bucket, Key="dags/copy.bin", UploadId=dags_upload).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="dags/copy.bin", UploadId=dags_upload)
    s3.abort_multipart_upload(Bucket=bucket, Key="copy.bin", UploadId=upload)
