"""Which PostgreSQL and Redis an openmwaa instance uses, and the ones it runs itself."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

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


@dataclass(frozen=True)
class BackingUrls:
    """Where environments' metadata databases and Celery queues go (None: not used)."""

    #: A PostgreSQL server (its superuser's URL); each environment gets a database of its own there.
    database: str | None = field(default=None, repr=False)
    #: A Redis broker (distributed mode only).
    broker: str | None = field(default=None, repr=False)


class BackingServices:
    def __init__(self, urls: BackingUrls, servers: Sequence[ManagedServer] = ()) -> None:
        self.urls = urls
        self.servers = list(servers)

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

    def problems(self) -> list[str]:
        """What is wrong with openmwaa's own servers right now (empty: nothing)."""
        return [p for server in self.servers if (p := server.problem()) is not None]


def _service_user(root: Path) -> EnvironmentUser:
    root.mkdir(parents=True, exist_ok=True, mode=0o711)
    os.chmod(root, 0o711)  # noqa: S103 (enter only: the servers' user reaches its own folder)
    return ensure_system_user(SERVICE_USER, root, "openmwaa's PostgreSQL and Redis")
