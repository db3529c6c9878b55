"""A private PostgreSQL server for tests: initdb in a temporary directory, on a free loopback port.

PostgreSQL refuses to run as root; as root the cluster is run as the ``postgres`` system user
(Debian's ``postgresql`` package creates it; scripts/test installs the package when missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.conftest import free_port

PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin"), Path("/usr/local/bin")]


def pg_bin(name: str) -> str | None:
    for directory in PG_BIN_DIRS:
        candidate = directory / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a URL of a superuser on a fresh cluster; the cluster is removed afterwards.

    The cluster lives in its own temporary directory: pytest's are private to root, and the
    ``postgres`` user must be able to reach its data directory.
    """
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("PostgreSQL is not installed (scripts/test installs Debian's postgresql)")
    base = Path(tempfile.mkdtemp(prefix="openmwaa-pg-"))
    data = base / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-U", "openmwaa", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    log = base / "postgres.log"
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        time.sleep(0.5)
        yield f"postgresql://openmwaa@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
