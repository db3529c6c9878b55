from __future__ import annotations

import socket
from pathlib import Path

from openmwaa.backing import BackingServices, BackingUrls
from openmwaa.backing.postgres_server import PostgresProgram
from openmwaa.backing.redis_server import RedisProgram
from openmwaa.backing.state import kept_port, read_or_create_secret


def test_the_password_is_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "services" / "redis.password"
    first = read_or_create_secret(path)
    assert len(first) == 48 and first == read_or_create_secret(path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_port_is_kept_while_it_is_free(tmp_path: Path) -> None:
    path = tmp_path / "redis.port"
    port = kept_port(path)
    assert kept_port(path) == port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        other = kept_port(path)
    assert other != port and int(path.read_text()) == other


def test_passwords_stay_out_of_reprs_and_command_lines(tmp_path: Path) -> None:
    postgres = PostgresProgram(tmp_path, port=5999, password="s3cret-pg", user=None)
    redis = RedisProgram(tmp_path, port=6999, password="s3cret-redis", user=None)
    assert "s3cret" not in repr(postgres) + repr(redis)
    assert not any("s3cret" in arg for arg in [*postgres.argv(), *redis.argv()])
    assert postgres.url == "postgresql://openmwaa:s3cret-pg@127.0.0.1:5999/postgres"
    assert redis.url == "redis://:s3cret-redis@127.0.0.1:6999/0"
    redis.prepare()
    config = redis.config_path.read_text()
    assert "requirepass s3cret-redis" in config and "bind 127.0.0.1" in config
    assert redis.config_path.stat().st_mode & 0o777 == 0o600


def test_servers_given_by_url_are_checked_by_connecting_at_most_every_two_seconds() -> None:
    now = [100.0]
    answering = {"db": True, "redis": True}
    asked: list[tuple[str, int]] = []

    def connect(host: str, port: int) -> bool:
        asked.append((host, port))
        return answering[host]

    backing = BackingServices(
        BackingUrls(database="postgresql://u:p@db/postgres", broker="redis://:p@redis:6380/0"),
        clock=lambda: now[0],
        connect=connect,
    )
    assert backing.problems() == {}
    assert asked == [("db", 5432), ("redis", 6380)]
    answering["redis"] = False
    now[0] += 1
    assert backing.problems() == {} and len(asked) == 2  # cached
    now[0] += 1
    assert backing.problems() == {"broker": "redis:6380 does not accept connections"}
