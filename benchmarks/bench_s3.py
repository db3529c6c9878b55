"""S3 on openmwaa's endpoint: object throughput against the file system, aws s3 sync, server memory.

Runs a real openmwaa server (``python -m openmwaa up``) in a temporary data directory and drives
it with boto3 and the AWS CLI, unchanged:

- PutObject and GetObject of 1 MiB objects, one at a time, side by side with writing (with fsync,
  as the server does) and reading the same bytes directly as files;
- ``aws s3 sync`` of 500 small DAG files: the first run, and a rerun with nothing changed;
- the server's peak RSS (VmHWM) at rest, then after a 64 MiB PutObject, a 1 GiB object uploaded
  by the AWS CLI (multipart, 8 MiB parts, 10 at a time) and the same 1 GiB in one PutObject
  (boto3, from the file): bodies are streamed to disk, so the peak must not grow with the object.

    .venv/bin/python benchmarks/bench_s3.py [--objects 50] [--big-mib 1024]
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


def _throughput(server: OpenMwaaServer, tmp: Path, objects: int) -> list[tuple[str, float, float]]:
    """Seconds per 1 MiB PutObject / GetObject, and per direct file write (fsync) / read."""
    s3 = server.client("s3")
    payload = os.urandom(MB)
    started = time.perf_counter()
    for i in range(objects):
        s3.put_object(Bucket="bench", Key=f"obj/{i}", Body=payload)
    put = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(objects):
        s3.get_object(Bucket="bench", Key=f"obj/{i}")["Body"].read()
    get = time.perf_counter() - started
    direct = tmp / "direct"
    direct.mkdir()
    started = time.perf_counter()
    for i in range(objects):
        with open(direct / str(i), "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    write = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(objects):
        (direct / str(i)).read_bytes()
    read = time.perf_counter() - started
    return [
        ("PutObject 1 MiB", put / objects, write / objects),
        ("GetObject 1 MiB", get / objects, read / objects),
    ]


def _sync(server: OpenMwaaServer, tmp: Path) -> tuple[float, float]:
    dags = tmp / "dags"
    dags.mkdir()
    for i in range(500):
        (dags / f"dag_{i:03d}.py").write_text(f"# DAG {i}\n" + "x = 1\n" * 20)
    first = _aws(server, "s3", "sync", str(dags), "s3://bench/dags/", "--delete")
    rerun = _aws(server, "s3", "sync", str(dags), "s3://bench/dags/", "--delete")
    return first, rerun


def _memory(server: OpenMwaaServer, tmp: Path, big_mib: int) -> tuple[list[tuple[str, int]], str, str]:
    """The server's peak RSS after each upload, the large object's size and upload times."""
    s3 = server.client("s3")
    memory = [("at rest (after the runs above)", _hwm_kb(server.process.pid))]
    s3.put_object(Bucket="bench", Key="mid.bin", Body=os.urandom(64 * MB))
    memory.append(("after a 64 MiB PutObject", _hwm_kb(server.process.pid)))
    big = tmp / "big.bin"
    block = os.urandom(MB)
    with open(big, "wb") as handle:
        for _ in range(big_mib):
            handle.write(block)
    size = f"{big_mib / 1024:g} GiB" if big_mib >= 1024 else f"{big_mib} MiB"
    multipart = _aws(server, "s3", "cp", str(big), "s3://bench/big-multipart.bin")
    memory.append((f"after {size} by aws s3 cp (multipart)", _hwm_kb(server.process.pid)))
    started = time.perf_counter()
    with open(big, "rb") as handle:
        s3.put_object(Bucket="bench", Key="big-single.bin", Body=handle)
    single = time.perf_counter() - started
    memory.append((f"after {size} in one PutObject", _hwm_kb(server.process.pid)))
    big.unlink()
    times = f"{size} upload time: aws s3 cp {multipart:.1f} s, one PutObject {single:.1f} s"
    return memory, size, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the large object (MiB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            server.client("s3").create_bucket(Bucket="bench")
            rows = _throughput(server, Path(tmp), args.objects)
            first, rerun = _sync(server, Path(tmp))
            memory, _, times = _memory(server, Path(tmp), args.big_mib)
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
    print(f"{'server peak RSS (VmHWM)':<44} {'MiB':>6}")
    for label, kb in memory:
        print(f"{label:<44} {kb / 1024:>6.0f}")
    print(f"growth over the 64 MiB PutObject: {(memory[-1][1] - memory[1][1]) / 1024:.0f} MiB")
    print(times)


if __name__ == "__main__":
    main()
