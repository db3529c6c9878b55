"""Which PostgreSQL and Redis an openmwaa instance uses, and the ones it runs itself."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from openmwaa.backing.managed import BackingServiceError, ManagedServer
from openmwaa.backing.postgres_server import PostgresProgram
from openmwaa.backing.redis_server import RedisProgram
from openmwaa.backing.state import kept_port, read_or_create_secret
from openmwaa.runtime.isolation import EnvironmentUser, ensure_system_user
from openmwaa.settings import Settings

log = logging.getLogger(__name__)

#: The system user openmwaa's own PostgreSQL and Redis run as when openmwaa runs as root
#: (PostgreSQL refuses root; Redis need not have it).
SERVICE_USER: Final = "omw-services"
#: Seconds between two checks of the servers' health.
CHECK_EVERY: Final = 2.0
DEFAULT_PORTS: Final = {"database": 5432, "broker": 6379}


@dataclass(frozen=True)
class BackingUrls:
    """Where environments' metadata databases and Celery queues go (None: not used)."""

    #: A PostgreSQL server (its superuser's URL); each environment gets a database of its own there.
    database: str | None = field(default=None, repr=False)
    #: A Redis broker (distributed mode only).
    broker: str | None = field(default=None, repr=False)


class BackingServices:
    def __init__(
        self,
        urls: BackingUrls,
        servers: Sequence[ManagedServer] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        connect: Callable[[str, int], bool] | None = None,
    ) -> None:
        """``servers``: openmwaa's own, by kind ("database", "broker" in that order of ``urls``);
        ``connect``: whether a server given by URL accepts a TCP connection now."""
        self.urls = urls
        self.servers = list(servers)
        self._clock = clock
        self._connect = connect or _accepts_connections
        self._lock = threading.Lock()
        self._checked_at = -CHECK_EVERY
        self._problems: dict[str, str] = {}

    @classmethod
    def for_settings(cls, settings: Settings) -> BackingServices:
        """The URLs from the settings; in distributed mode, openmwaa's own servers for those not given."""
        if not settings.distributed:
            return cls(BackingUrls(database=settings.airflow_database_url))
        root = settings.data_dir.resolve() / "services"
        user = _service_user(root) if os.geteuid() == 0 else None
        database, broker = settings.airflow_database_url, settings.celery_broker_url
        servers = []
        if database is None:
            postgres = PostgresProgram(
                root,
                port=kept_port(root / "postgresql.port"),
                password=read_or_create_secret(root / "postgresql.password"),
                user=user,
            )
            database = postgres.url
            servers.append(ManagedServer(postgres))
        if broker is None:
            redis = RedisProgram(
                root,
                port=kept_port(root / "redis.port"),
                password=read_or_create_secret(root / "redis.password"),
                user=user,
            )
            broker = redis.url
            servers.append(ManagedServer(redis))
        return cls(BackingUrls(database=database, broker=broker), servers)

    def start(self, timeout: float = 120.0) -> None:
        """Start openmwaa's own servers (each answers before this returns; BackingServiceError if not)."""
        started: list[ManagedServer] = []
        try:
            for server in self.servers:
                server.start(timeout)
                started.append(server)
                log.info("%s is running (%s)", server.name, server.program)
        except BackingServiceError:
            for server in reversed(started):
                server.stop()
            raise

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()

    def problems(self) -> dict[str, str]:
        """What is wrong right now with the database and broker servers, by kind ("database",
        "broker"); empty when both are well. Checked at most every CHECK_EVERY seconds: every
        environment's supervisor asks on every turn of its loop."""
        with self._lock:
            now = self._clock()
            if now - self._checked_at >= CHECK_EVERY:
                self._checked_at = now
                self._problems = self._check()
            return dict(self._problems)

    def _check(self) -> dict[str, str]:
        found: dict[str, str] = {}
        managed = {_kind(server): server for server in self.servers}
        for kind, url in (("database", self.urls.database), ("broker", self.urls.broker)):
            server = managed.get(kind)
            if server is not None:
                if (problem := server.problem()) is not None:
                    found[kind] = problem
            elif url:
                parts = urlsplit(url)
                host, port = parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS[kind]
                if not self._connect(host, port):
                    found[kind] = f"{host}:{port} does not accept connections"
        return found


def _kind(server: ManagedServer) -> str:
    return "database" if isinstance(server.program, PostgresProgram) else "broker"


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


def _service_user(root: Path) -> EnvironmentUser:
    root.mkdir(parents=True, exist_ok=True, mode=0o711)
    os.chmod(root, 0o711)  # noqa: S103 (enter only: the servers' user reaches its own folder)
    return ensure_system_user(SERVICE_USER, root, "openmwaa's PostgreSQL and Redis")
