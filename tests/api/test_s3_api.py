"""S3 on the openmwaa endpoint, with boto3's s3 client and the AWS CLI, unchanged."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.api.conftest import REGION, ApiServer


def _bucket(api: ApiServer) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    api.client("s3").create_bucket(Bucket=name)
    return name


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _aws(api: ApiServer, *args: str, user: str = "admin") -> subprocess.CompletedProcess[str]:
    key_id, secret = api.keys[user]
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
    return subprocess.run(
        [str(aws), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_buckets_lifecycle(api: ApiServer) -> None:
    s3 = api.client("s3")
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    assert (api.settings.buckets_dir / name).is_dir()
    with pytest.raises(ClientError) as again:
        s3.create_bucket(Bucket=name)
    assert _code(again) == "BucketAlreadyOwnedByYou"
    s3.head_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.put_object(Bucket=name, Key="x", Body=b"1")
    with pytest.raises(ClientError) as not_empty:
        s3.delete_bucket(Bucket=name)
    assert _code(not_empty) == "BucketNotEmpty"
    s3.delete_object(Bucket=name, Key="x")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as gone:
        s3.head_bucket(Bucket=name)
    assert gone.value.response["Error"]["Code"] == "404"
    with pytest.raises(ClientError) as missing:
        s3.list_objects_v2(Bucket=name)
    assert _code(missing) == "NoSuchBucket"
    with pytest.raises(ClientError) as bad:
        s3.create_bucket(Bucket="Bad_Name")
    assert _code(bad) == "InvalidBucketName"


def test_objects_are_files_airflow_reads(api: ApiServer) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api)
    s3.put_object(
        Bucket=bucket,
        Key="dags/a.py",
        Body=b"print('a')\n",
        ContentType="text/x-python",
        Metadata={"team": "data"},
    )
    assert (api.settings.buckets_dir / bucket / "dags" / "a.py").read_bytes() == b"print('a')\n"
    got = s3.get_object(Bucket=bucket, Key="dags/a.py")
    assert got["Body"].read() == b"print('a')\n"
    assert got["ContentType"] == "text/x-python"
    assert got["Metadata"] == {"team": "data"}
    assert got["ETag"] == '"' + hashlib.md5(b"print('a')\n", usedforsecurity=False).hexdigest() + '"'
    ranged = s3.get_object(Bucket=bucket, Key="dags/a.py", Range="bytes=2-4")
    assert ranged["Body"].read() == b"int"
    assert ranged["ContentRange"] == "bytes 2-4/11"
    assert s3.get_object(Bucket=bucket, Key="dags/a.py", Range="bytes=-3")["Body"].read() == b"a')\n"[1:]
    with pytest.raises(ClientError) as unsatisfiable:
        s3.get_object(Bucket=bucket, Key="dags/a.py", Range="bytes=50-")
    assert _code(unsatisfiable) == "InvalidRange"
    head = s3.head_object(Bucket=bucket, Key="dags/a.py")
    assert head["ContentLength"] == 11
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="dags/none.py")
    assert _code(missing) == "NoSuchKey"
    s3.copy_object(Bucket=bucket, Key="dags/b.py", CopySource={"Bucket": bucket, "Key": "dags/a.py"})
    assert (api.settings.buckets_dir / bucket / "dags" / "b.py").read_bytes() == b"print('a')\n"
    # A file dropped by hand is an object too (version "null", its ETag from its content).
    (api.settings.buckets_dir / bucket / "dags" / "by_hand.py").write_bytes(b"hand")
    head = s3.head_object(Bucket=bucket, Key="dags/by_hand.py")
    assert head["ETag"] == '"' + hashlib.md5(b"hand", usedforsecurity=False).hexdigest() + '"'
    s3.delete_object(Bucket=bucket, Key="dags/a.py")
    assert not (api.settings.buckets_dir / bucket / "dags" / "a.py").exists()
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "dags/b.py"}, {"Key": "dags/by_hand.py"}]}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["dags/b.py", "dags/by_hand.py"]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/abs", "a//b", "a/./b", "dir/", "x" * 1100])
def test_keys_that_are_not_relative_paths_are_refused(api: ApiServer, key: str) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api)
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert _code(refused) in ("InvalidArgument", "KeyTooLongError")
    assert not (api.settings.buckets_dir / "escape").exists()
    assert not any(p.is_file() for p in (api.settings.buckets_dir / bucket).rglob("*"))


def test_list_objects_v2_prefix_delimiter_pages(api: ApiServer) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api)
    keys = [f"dags/d{i:02d}.py" for i in range(7)] + [
        "dags/sub/x.py",
        "dags/sub/y.py",
        "plugins.zip",
        "req.txt",
    ]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    listed = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [c["Prefix"] for c in listed["CommonPrefixes"]] == ["dags/"]
    assert [c["Key"] for c in listed["Contents"]] == ["plugins.zip", "req.txt"]
    under = s3.list_objects_v2(Bucket=bucket, Prefix="dags/", Delimiter="/")
    assert [c["Prefix"] for c in under["CommonPrefixes"]] == ["dags/sub/"]
    assert len(under["Contents"]) == 7
    paginator = s3.get_paginator("list_objects_v2")
    pages = list(paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 3}))
    assert len(pages) == 4
    assert [c["Key"] for p in pages for c in p.get("Contents", [])] == sorted(keys)
    with_prefixes = list(
        paginator.paginate(Bucket=bucket, Prefix="dags/", Delimiter="/", PaginationConfig={"PageSize": 2})
    )
    seen = [c["Key"] for p in with_prefixes for c in p.get("Contents", [])]
    prefixes = [c["Prefix"] for p in with_prefixes for c in p.get("CommonPrefixes", [])]
    assert seen == sorted(keys)[:7] and prefixes == ["dags/sub/"]


def test_content_md5_and_checksums_are_verified(api: ApiServer) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api)
    good = base64.b64encode(hashlib.md5(b"data", usedforsecurity=False).digest()).decode()
    s3.put_object(Bucket=bucket, Key="ok", Body=b"data", ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other", usedforsecurity=False).digest()).decode()
    with pytest.raises(ClientError) as digest:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"data", ContentMD5=bad)
    assert _code(digest) == "BadDigest"
    for algorithm in ("CRC32", "SHA1", "SHA256"):  # CRC32C: botocore needs awscrt (unit-tested)
        put = s3.put_object(
            Bucket=bucket, Key=f"sum-{algorithm}", Body=b"payload", ChecksumAlgorithm=algorithm
        )
        assert put[f"Checksum{algorithm}"]
        got = s3.get_object(Bucket=bucket, Key=f"sum-{algorithm}", ChecksumMode="ENABLED")
        assert got["Body"].read() == b"payload"
        assert got[f"Checksum{algorithm}"] == put[f"Checksum{algorithm}"]
    with pytest.raises(ClientError) as crc:
        s3.put_object(Bucket=bucket, Key="bad-crc", Body=b"payload", ChecksumCRC32="AAAAAA==")
    assert _code(crc) == "BadDigest"
    assert not (api.settings.buckets_dir / bucket / "bad-crc").exists()


def test_wrong_secret_is_signature_does_not_match(api: ApiServer) -> None:
    key_id, _ = api.keys["admin"]
    s3 = api.client("s3", aws_access_key_id=key_id, aws_secret_access_key="wrong-secret-0000000000000000")
    with pytest.raises(ClientError) as refused:
        s3.list_buckets()
    assert _code(refused) == "SignatureDoesNotMatch"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_iam_denies_without_s3_put_object(api: ApiServer) -> None:
    bucket = _bucket(api)
    s3 = api.client("s3", user="getter")  # airflow:GetEnvironment only
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=bucket, Key="x", Body=b"1")
    assert _code(denied) == "AccessDenied"
    assert "s3:PutObject" in denied.value.response["Error"]["Message"]
    assert not (api.settings.buckets_dir / bucket / "x").exists()


def test_aws_cli_sync_delete_and_cp(api: ApiServer, tmp_path: Path) -> None:
    bucket = _bucket(api)
    dags = tmp_path / "dags"
    (dags / "sub").mkdir(parents=True)
    for name in ("one.py", "two.py", "sub/three.py"):
        (dags / name).write_text(f"# {name}\n")
    first = _aws(api, "s3", "sync", str(dags), f"s3://{bucket}/dags/", "--delete")
    assert first.returncode == 0, first.stderr
    root = api.settings.buckets_dir / bucket / "dags"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.py")) == [
        "one.py",
        "sub/three.py",
        "two.py",
    ]
    again = _aws(api, "s3", "sync", str(dags), f"s3://{bucket}/dags/", "--delete")
    assert again.returncode == 0 and again.stdout.strip() == "", again.stdout + again.stderr
    (dags / "two.py").unlink()
    (dags / "one.py").write_text("# changed, and longer\n")
    third = _aws(api, "s3", "sync", str(dags), f"s3://{bucket}/dags/", "--delete")
    assert third.returncode == 0, third.stderr
    assert not (root / "two.py").exists()
    assert (root / "one.py").read_text() == "# changed, and longer\n"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("boto3\n")
    cp = _aws(api, "s3", "cp", str(requirements), f"s3://{bucket}/requirements.txt")
    assert cp.returncode == 0, cp.stderr
    back = tmp_path / "back.txt"
    down = _aws(api, "s3", "cp", f"s3://{bucket}/requirements.txt", str(back))
    assert down.returncode == 0 and back.read_text() == "boto3\n", down.stderr
    listed = _aws(api, "s3", "ls", f"s3://{bucket}/dags/", "--recursive")
    assert "sub/three.py" in listed.stdout


def _versioned(api: ApiServer) -> tuple[Any, str]:
    s3 = api.client("s3")
    bucket = _bucket(api)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    return s3, bucket


def test_versions_delete_markers_and_list_versions(api: ApiServer) -> None:
    s3, bucket = _versioned(api)
    v1 = s3.put_object(Bucket=bucket, Key="requirements.txt", Body=b"one\n")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="requirements.txt", Body=b"two\n")["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2)
    path = api.settings.buckets_dir / bucket / "requirements.txt"
    assert path.read_bytes() == b"two\n"
    assert s3.get_object(Bucket=bucket, Key="requirements.txt", VersionId=v1)["Body"].read() == b"one\n"
    assert s3.head_object(Bucket=bucket, Key="requirements.txt")["VersionId"] == v2
    marker = s3.delete_object(Bucket=bucket, Key="requirements.txt")
    assert marker["DeleteMarker"] is True
    assert not path.exists()
    with pytest.raises(ClientError) as gone:
        s3.get_object(Bucket=bucket, Key="requirements.txt")
    assert _code(gone) == "NoSuchKey"
    listing = s3.list_object_versions(Bucket=bucket, Prefix="requirements")
    assert [v["VersionId"] for v in listing["Versions"]] == [v2, v1]
    assert [m["VersionId"] for m in listing["DeleteMarkers"]] == [marker["VersionId"]]
    # Removing the marker brings v2 back as the plain file.
    s3.delete_object(Bucket=bucket, Key="requirements.txt", VersionId=marker["VersionId"])
    assert path.read_bytes() == b"two\n"
    # Removing v2 for good makes v1 current again.
    s3.delete_object(Bucket=bucket, Key="requirements.txt", VersionId=v2)
    assert path.read_bytes() == b"one\n"
    assert s3.head_object(Bucket=bucket, Key="requirements.txt")["VersionId"] == v1
    with pytest.raises(ClientError) as unknown:
        s3.get_object(Bucket=bucket, Key="requirements.txt", VersionId=v2)
    assert _code(unknown) == "NoSuchVersion"


def test_cli_head_object_version_id(api: ApiServer, tmp_path: Path) -> None:
    s3, bucket = _versioned(api)
    source = tmp_path / "requirements.txt"
    source.write_text("apache-airflow-providers-http\n")
    assert _aws(api, "s3", "cp", str(source), f"s3://{bucket}/requirements.txt").returncode == 0
    head = _aws(
        api,
        "s3api",
        "head-object",
        "--bucket",
        bucket,
        "--key",
        "requirements.txt",
        "--query",
        "VersionId",
        "--output",
        "text",
    )
    assert head.returncode == 0, head.stderr
    assert head.stdout.strip() == s3.head_object(Bucket=bucket, Key="requirements.txt")["VersionId"]
    versions = _aws(api, "s3api", "list-object-versions", "--bucket", bucket)
    assert versions.returncode == 0 and head.stdout.strip() in versions.stdout


def test_public_access_block(api: ApiServer) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api)
    with pytest.raises(ClientError) as none:
        s3.get_public_access_block(Bucket=bucket)
    assert _code(none) == "NoSuchPublicAccessBlockConfiguration"
    config = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": False,
    }
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=config)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == config


def test_presigned_get_and_put_urls(api: ApiServer) -> None:
    key_id, secret = api.keys["admin"]
    s3 = boto3.client(
        "s3",
        endpoint_url=api.endpoint_url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4"),  # boto3 pre-signs S3 URLs with SigV2 otherwise
    )
    bucket = _bucket(api)
    target = {"Bucket": bucket, "Key": "up/loaded.txt"}
    put_url = s3.generate_presigned_url("put_object", Params=target, ExpiresIn=300)
    assert requests.put(put_url, data=b"via url", timeout=10).status_code == 200
    assert (api.settings.buckets_dir / bucket / "up" / "loaded.txt").read_bytes() == b"via url"
    get_url = s3.generate_presigned_url("get_object", Params=target, ExpiresIn=300)
    got = requests.get(get_url, timeout=10)
    assert (got.status_code, got.content) == (200, b"via url")
    refused = requests.get(get_url.replace("up/loaded.txt", "up/other.txt"), timeout=10)
    assert refused.status_code == 403 and b"SignatureDoesNotMatch" in refused.content
    short = s3.generate_presigned_url("get_object", Params=target, ExpiresIn=1)
    time.sleep(2.1)
    expired = requests.get(short, timeout=10)
    assert expired.status_code == 403 and b"expired" in expired.content


def test_aws_cli_multipart_above_8_mb(api: ApiServer, tmp_path: Path) -> None:
    s3, bucket = _versioned(api)
    big = tmp_path / "plugins.zip"
    data = os.urandom(9 * 1024 * 1024 + 123)
    big.write_bytes(data)
    up = _aws(api, "s3", "cp", str(big), f"s3://{bucket}/plugins.zip")
    assert up.returncode == 0, up.stderr
    stored = api.settings.buckets_dir / bucket / "plugins.zip"
    assert stored.read_bytes() == data
    head = s3.head_object(Bucket=bucket, Key="plugins.zip")
    assert head["ETag"].endswith('-2"')  # the CLI sent two parts (8 MiB + the rest)
    down = tmp_path / "back.zip"
    assert _aws(api, "s3", "cp", f"s3://{bucket}/plugins.zip", str(down)).returncode == 0
    assert down.read_bytes() == data
    assert not any((api.settings.buckets_dir / ".openmwaa-s3" / "uploads").iterdir())


def test_multipart_rules_list_and_abort(api: ApiServer) -> None:
    s3 = api.client("s3")
    bucket = _bucket(api)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.bin")["UploadId"]
    first = s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=upload, PartNumber=1, Body=b"a" * 100)
    second = s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=upload, PartNumber=2, Body=b"b" * 10)
    parts = s3.list_parts(Bucket=bucket, Key="big.bin", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 100), (2, 10)]
    with pytest.raises(ClientError) as small:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="big.bin",
            UploadId=upload,
            MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": second["ETag"]}]
            },
        )
    assert _code(small) == "EntityTooSmall"
    with pytest.raises(ClientError) as wrong:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="big.bin",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": second["ETag"]}]},
        )
    assert _code(wrong) == "InvalidPart"
    single = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": first["ETag"]}]},
    )
    assert single["ETag"].endswith('-1"')
    assert (api.settings.buckets_dir / bucket / "big.bin").read_bytes() == b"a" * 100
    aborted = s3.create_multipart_upload(Bucket=bucket, Key="gone.bin")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone.bin", UploadId=aborted, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="gone.bin", UploadId=aborted)
    with pytest.raises(ClientError) as gone:
        s3.list_parts(Bucket=bucket, Key="gone.bin", UploadId=aborted)
    assert _code(gone) == "NoSuchUpload"
    assert not (api.settings.buckets_dir / bucket / "gone.bin").exists()


def test_s3_condition_keys_and_key_resources(api: ApiServer, tmp_path: Path) -> None:
    bucket = _bucket(api)
    deployer = api.client("s3", user="dag-deployer")
    deployer.put_object(Bucket=bucket, Key="dags/ok.py", Body=b"x")
    assert [o["Key"] for o in deployer.list_objects_v2(Bucket=bucket, Prefix="dags/")["Contents"]] == [
        "dags/ok.py"
    ]
    with pytest.raises(ClientError) as listing:
        deployer.list_objects_v2(Bucket=bucket)  # s3:prefix "" is not dags/*
    assert _code(listing) == "AccessDenied"
    with pytest.raises(ClientError) as outside:
        deployer.put_object(Bucket=bucket, Key="requirements.txt", Body=b"x")
    assert _code(outside) == "AccessDenied"
    # The CLI's sync lists with the destination prefix: allowed, as a pipeline needs.
    (tmp_path / "d.py").write_text("# d\n")
    synced = _aws(api, "s3", "sync", str(tmp_path), f"s3://{bucket}/dags/", user="dag-deployer")
    assert synced.returncode == 0, synced.stderr
    assert (api.settings.buckets_dir / bucket / "dags" / "d.py").is_file()
