"""AssumeRole's cost at the sessions store as the number of live sessions grows.

Run: ``.venv/bin/python benchmarks/bench_sts_sessions.py``. Prints one table; nothing is asserted.
For 1,000, 10,000 and 100,000 live sessions it times ``StsSessionStore.issue`` (one fsynced
journal line, a compaction now and then) and, as the baseline in the same run, what every
AssumeRole cost before the journal: the whole sessions file serialized, written and fsynced.
Bytes are what the process handed to write(2) (``/proc/self/io``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.files import write_private_file
from openmwaa.auth.sts_sessions import StsSessionStore

NOW = 1_000_000.0


def bytes_written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def snapshot(count: int, sealed: str) -> dict[str, Any]:
    return {
        "version": 1,
        "sessions": [
            {
                "access_key_id": f"ASIA{n:016d}",
                "secret_encrypted": sealed,
                "token_sha256": f"{n:064x}",
                "role_name": "Deployer",
                "session_name": f"ci-{n}",
                "source_arn": "arn:aws:iam::111122223333:user/ci",
                "issued_at": NOW - 10,
                "expires_at": NOW + 3600,
            }
            for n in range(count)
        ],
    }


def measure(
    sizes: list[int], calls: int, baseline_calls: int
) -> list[tuple[int, float, float, float, float]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-sts-") as tmp:
        box = SecretBox.open(Path(tmp) / "key")
        sealed = box.encrypt("s" * 40)
        for size in sizes:
            path = Path(tmp) / f"sessions-{size}.json"
            document = snapshot(size, sealed)
            path.write_text(json.dumps(document))
            store = StsSessionStore(path, box)
            written = bytes_written()
            started = time.perf_counter()
            for n in range(calls):
                store.issue(
                    role_name="Deployer", session_name=f"new-{n}", source_arn="arn:x", duration=3600, now=NOW
                )
            journal_ms = (time.perf_counter() - started) / calls * 1000
            journal_bytes = (bytes_written() - written) / calls
            # Before: every call serialized and rewrote (with fsync) the whole file.
            written = bytes_written()
            started = time.perf_counter()
            for _ in range(baseline_calls):
                write_private_file(path, json.dumps(document).encode())
            rewrite_ms = (time.perf_counter() - started) / baseline_calls * 1000
            rewrite_bytes = (bytes_written() - written) / baseline_calls
            rows.append((size, journal_ms, journal_bytes, rewrite_ms, rewrite_bytes))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--calls",
        type=int,
        default=1100,
        help="AssumeRole calls timed per size (1,100: the 1,000 row includes a compaction)",
    )
    parser.add_argument("--baseline-calls", type=int, default=3, help="whole-file rewrites timed per size")
    args = parser.parse_args()
    rows = measure([1_000, 10_000, 100_000], args.calls, args.baseline_calls)
    header = ("live sessions", "journal ms/call", "bytes/call", "rewrite ms/call", "bytes/call", "ratio")
    print(f"{header[0]:>14}{header[1]:>17}{header[2]:>12}{header[3]:>17}{header[4]:>13}{header[5]:>8}")
    for size, journal_ms, journal_bytes, rewrite_ms, rewrite_bytes in rows:
        print(
            f"{size:>14,}{journal_ms:>17.2f}{journal_bytes:>12,.0f}{rewrite_ms:>17.1f}"
            f"{rewrite_bytes:>13,.0f}{rewrite_ms / journal_ms:>7.0f}x"
        )


if __name__ == "__main__":
    main()
