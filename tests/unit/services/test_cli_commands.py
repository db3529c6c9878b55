"""The CLI endpoint's command policy: MWAA's allow-list per major version, shlex parsing, limits."""

from __future__ import annotations

import threading

import anyio
import pytest

from openmwaa.errors import ThrottlingError
from openmwaa.services.cli_commands import (
    ALLOWED_COMMANDS,
    CliCommandRefusedError,
    CliService,
    parse_cli_command,
)
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord


def _record(version: str = "3.3.1", name: str = "env") -> EnvironmentRecord:
    return EnvironmentRecord(
        key=EnvironmentKey("123456789012", "us-east-1", name),
        arn=f"arn:aws:airflow:us-east-1:123456789012:environment/{name}",
        status="AVAILABLE",
        created_at=0.0,
        config={"AirflowVersion": version},
        previous_config=None,
        last_update=None,
        tags={},
        secrets={},
    )


@pytest.mark.parametrize(
    ("text", "major", "argv"),
    [
        ("dags list", 3, ["dags", "list"]),
        ("airflow dags list -o json", 2, ["dags", "list", "-o", "json"]),
        ("version", 2, ["version"]),
        (
            'dags trigger my_dag --conf \'{"a": "b c"}\'',
            3,
            ["dags", "trigger", "my_dag", "--conf", '{"a": "b c"}'],
        ),
        ("variables set k 'v; rm -rf /'", 3, ["variables", "set", "k", "v; rm -rf /"]),
        ("backfill create --dag-id d --from-date 2024-01-01 --to-date 2024-01-02", 3, None),
        ("dags backfill d -s 2024-01-01", 2, None),
        ("tasks clear d -s 2024-01-01", 3, None),
        ("roles list", 2, ["roles", "list"]),
    ],
)
def test_allowed_commands_parse_without_a_shell(text: str, major: int, argv: list[str] | None) -> None:
    parsed = parse_cli_command(text, major)
    if argv is not None:
        assert parsed == argv
    assert tuple(parsed[:2]) in ALLOWED_COMMANDS[major] or tuple(parsed[:1]) in ALLOWED_COMMANDS[major]


@pytest.mark.parametrize(
    ("text", "major", "match"),
    [
        ("config list", 3, "not a supported command"),
        ("config get-value api_auth jwt_secret", 2, "not a supported command"),
        ("variables export /tmp/x", 3, "not a supported command"),
        ("variables import /etc/passwd", 3, "not a supported command"),
        ("dags list; cat /etc/passwd", 3, "not a supported command"),
        ("webserver", 2, "not a supported command"),
        ("db reset -y", 3, "not a supported command"),
        ("backfill create --dag-id d", 2, "not a supported command"),
        ("dags backfill d", 3, "not a supported command"),
        ("roles list", 3, "not a supported command"),
        ("dags list --subdir /tmp/evil.py", 3, "--subdir"),
        ("dags list --subdir=/tmp/evil.py", 3, "--subdir"),
        ("dags list -S/tmp/evil.py", 2, "-S"),
        ("dags show d --save /tmp/x.png", 3, "--save"),
        ("dags show d -s /tmp/x.png", 3, "-s"),
        ("dags test d --save-dagrun /tmp/x", 3, "--save-dagrun"),
        ("dags list 'unterminated", 3, "cannot be parsed"),
        ("", 3, "No command"),
        ("airflow", 3, "No command"),
        ("dags list", 1, "not a supported command"),
    ],
)
def test_refused_commands_say_why(text: str, major: int, match: str) -> None:
    with pytest.raises(CliCommandRefusedError, match=match):
        parse_cli_command(text, major)


def test_long_commands_are_refused() -> None:
    with pytest.raises(CliCommandRefusedError, match="longer"):
        parse_cli_command("variables set k " + "v" * 20_000, 3)
    with pytest.raises(CliCommandRefusedError, match="arguments"):
        parse_cli_command("dags list " + " x" * 300, 3)


class RecordingRunner:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], float]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.block = False

    def run(self, record: EnvironmentRecord, argv: list[str], timeout: float) -> tuple[int, bytes, bytes]:
        self.calls.append((record.name, argv, timeout))
        if self.block:
            self.started.set()
            self.release.wait(5)
        return 3, b"out:" + " ".join(argv).encode(), b"err"


def test_service_runs_through_the_runner_with_timeout() -> None:
    runner = RecordingRunner()
    service = CliService(runner, timeout=12.5)
    result = anyio.run(service.run, _record("2.11.0"), "dags list-runs -d my_dag")
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out:dags list-runs -d my_dag", b"err")
    assert runner.calls == [("env", ["dags", "list-runs", "-d", "my_dag"], 12.5)]


def test_refused_command_never_reaches_the_runner() -> None:
    runner = RecordingRunner()
    with pytest.raises(CliCommandRefusedError):
        anyio.run(CliService(runner).run, _record(), "config list")
    assert runner.calls == []


def test_concurrency_is_limited_per_environment() -> None:
    runner = RecordingRunner()
    runner.block = True
    service = CliService(runner, max_concurrent=1)

    async def scenario() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(service.run, _record(name="a"), "dags list")
            await anyio.to_thread.run_sync(runner.started.wait, 5)
            with pytest.raises(ThrottlingError, match="already running"):
                await service.run(_record(name="a"), "dags list")
            # Another environment has its own slots.
            runner.block = False
            runner.started.clear()
            await service.run(_record(name="b"), "version")
            runner.release.set()
        # Once the first finished, the slot is free again.
        await service.run(_record(name="a"), "version")

    anyio.run(scenario)
    assert [name for name, _, _ in runner.calls] == ["a", "b", "a"]
