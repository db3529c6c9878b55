"""S3 on openmwaa's endpoint: object throughput against the file system, aws s3 sync, server memory.

Runs a real openmwaa server (``python -m openmwaa up``) in a temporary data directory and drives
it with boto3 and the AWS CLI, unchanged:

- PutObject and GetObject of 1 MiB objects, one at a time, side by side with writing (with fsync,
  as the server does) and reading the same bytes directly as files;
- ``aws s3 sync`` of 500 small DAG files: the first run, and a rerun with nothing changed;
- the server's peak RSS (VmHWM) before and after one 64 MiB PutObject: request bodies are held
  in memory today, so this grows with the object (bounded at 64 MiB per request); multipart
  parts are bounded the same way.

    .venv/bin/python benchmarks/bench_s3.py [--objects 50]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import OpenMwaaServer, start_server, stop_server  # noqa: E402

MB = 1024 * 1024


def _hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _aws(server: OpenMwaaServer, *args: str) -> float:
    started = time.perf_counter()
    aws = Path(sys.executable).parent / "aws"
    subprocess.run([str(aws), *args], env=server.client_env(), check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            s3 = server.client("s3")
            s3.create_bucket(Bucket="bench")
            payload = os.urandom(MB)
            rows = []

            started = time.perf_counter()
            for i in range(args.objects):
                s3.put_object(Bucket="bench", Key=f"obj/{i}", Body=payload)
            put = time.perf_counter() - started
            started = time.perf_counter()
            for i in range(args.objects):
                s3.get_object(Bucket="bench", Key=f"obj/{i}")["Body"].read()
            get = time.perf_counter() - started
            direct = Path(tmp) / "direct"
            direct.mkdir()
            started = time.perf_counter()
            for i in range(args.objects):
                with open(direct / str(i), "wb") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
            write = time.perf_counter() - started
            started = time.perf_counter()
            for i in range(args.objects):
                (direct / str(i)).read_bytes()
            read = time.perf_counter() - started
            rows.append(("PutObject 1 MiB", put / args.objects, write / args.objects))
            rows.append(("GetObject 1 MiB", get / args.objects, read / args.objects))

            dags = Path(tmp) / "dags"
            dags.mkdir()
            for i in range(500):
                (dags / f"dag_{i:03d}.py").write_text(f"# DAG {i}\n" + "x = 1\n" * 20)
            first = _aws(server, "s3", "sync", str(dags), "s3://bench/dags/", "--delete")
            rerun = _aws(server, "s3", "sync", str(dags), "s3://bench/dags/", "--delete")

            before = _hwm_kb(server.process.pid)
            s3.put_object(Bucket="bench", Key="big.bin", Body=os.urandom(64 * MB))
            after = _hwm_kb(server.process.pid)
        finally:
            stop_server(server)

    print(f"{'operation':<20} {'openmwaa ms':>12} {'direct file ms':>15} {'ratio':>7}")
    for name, ours, theirs in rows:
        print(f"{name:<20} {ours * 1000:>12.2f} {theirs * 1000:>15.2f} {ours / theirs:>7.1f}")
    print()
    print(f"{'aws s3 sync, 500 files':<32} {'seconds':>8}")
    print(f"{'first run':<32} {first:>8.2f}")
    print(f"{'rerun, nothing changed':<32} {rerun:>8.2f}")
    print()
    print(
        f"server peak RSS before a 64 MiB PutObject: {before / 1024:.0f} MiB, after: {after / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
