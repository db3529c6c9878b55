"""The CLI endpoint's command policy: MWAA's allow-list per major version, options as argparse reads
them, shlex parsing, limits, and the service that checks the CLI token before running anything."""

from __future__ import annotations

import threading

import anyio
import pytest

from openmwaa.errors import ServiceUnavailableError, ThrottlingError
from openmwaa.runtime.versions import SUPPORTED_VERSIONS
from openmwaa.services.cli_commands import (
    ALLOWED_COMMANDS,
    REFUSED_OPTIONS,
    CliCommandRefusedError,
    CliService,
    command_options,
    parse_cli_command,
)
from openmwaa.services.cli_option_table import VERSIONS_READ
from openmwaa.services.web_tokens import InvalidWebTokenError, WebTokenService
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord

TOKENS = WebTokenService(b"k" * 32)


def _record(version: str = "3.3.1", name: str = "env", status: str = "AVAILABLE") -> EnvironmentRecord:
    return EnvironmentRecord(
        key=EnvironmentKey("123456789012", "us-east-1", name),
        arn=f"arn:aws:airflow:us-east-1:123456789012:environment/{name}",
        status=status,
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


# The issue's bypasses first: argparse expands prefixes and reads short-flag clusters.
@pytest.mark.parametrize(
    ("text", "major", "match"),
    [
        ("dags show x --sav /tmp/f.dot", 2, "--sav .*--save.*writes a file"),
        ("dags show x --sav /tmp/f.dot", 3, "--sav .*--save.*writes a file"),
        ("dags list --subd /path", 2, "--subd .*--subdir.*parse any Python file"),
        ("dags list -vS/path", 2, "-vS/path .*-S\\|--subdir"),
        # More prefixes, and the = forms.
        ("dags show x --sa=/tmp/f.dot", 2, "--save"),
        ("dags show x --save=/tmp/f.dot", 3, "--save"),
        ("dags show x -s=/tmp/f.dot", 3, "-s\\|--save"),
        ("dags show x --im", 3, "--imgcat.*runs a program"),
        ("dags list --s=/path", 2, "--subdir"),
        ("dags list --subdir=/path", 2, "--subdir"),
        ("dags list -S=/path", 2, "--subdir"),
        ("dags list '-S /path'", 2, "--subdir"),
        ("dags report --sub /path", 2, "--subdir"),
        ("tasks test d t --sub /path", 2, "--subdir"),
        ("dags backfill d -s 2024-01-01 --su /path", 2, "--subdir"),
        ("dags test d --save-d /tmp/run.dot", 3, "--save-dagrun"),
        ("dags test d --sa /tmp/run.dot", 2, "--save-dagrun"),
        ("dags test d --imgcat-d", 2, "--imgcat-dagrun"),
        ("dags test d --dagf /tmp/evil.py", 3, "--dagfile-path.*parse any Python file"),
        ("dags test d -f /tmp/evil.py", 3, "--dagfile-path"),
        ("dags test d -vf/tmp/evil.py", 3, "--dagfile-path"),
        # Clusters: a flag, then the next character is read as the next short option.
        ("dags show x -vs/tmp/f.dot", 3, "-s\\|--save"),
        ("tasks clear d -yuS/path", 2, "-S\\|--subdir"),
        ("dags list -v=S/path", 2, "-S\\|--subdir"),
        ("tasks clear d -yq", 3, "-q .*not an option"),
        ("dags list -v=", 3, "takes no value"),
        ("dags list --verbose=yes", 3, "takes no value"),
        # Ambiguous prefixes: argparse refuses them, and so do we (saying what they could mean).
        ("tasks clear d --only", 3, "ambiguous.*--only-failed, --only-running"),
        ("dags test d --s", 3, "ambiguous.*--save-dagrun, --show-dagrun"),
        ("dags backfill d --re", 2, "ambiguous"),
        # Unknown options, and options of another command or version.
        ("dags list --no-such-option", 3, "--no-such-option is not an option.*allowed.*-o\\|--output"),
        ("dags list --subdir /path", 3, "--subdir is not an option.*Airflow 3"),
        ("dags list -S/path", 3, "not an option"),
        ("variables set k v --conn-uri x", 3, "not an option"),
        # A "--" separator does not hide what follows (how it reaches the subcommand's parser differs
        # between Python versions).
        ("dags list -- --subdir /path", 2, "--subdir"),
        ("dags show x -- -s /tmp/f.dot", 3, "--save"),
    ],
)
def test_options_are_read_as_argparse_reads_them(text: str, major: int, match: str) -> None:
    with pytest.raises(CliCommandRefusedError, match=match):
        parse_cli_command(text, major)


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ("dags list --out json", 3),
        ("dags list --output=json -v", 3),
        ("dags list -ojson", 2),
        ("dags list -vojson", 3),
        ("dags list -o=json", 2),
        ("dags list -B my_bundle --local", 3),
        ("dags show x --verb", 3),
        ("dags trigger d --conf='{\"a\": 1}' --run=r1", 3),
        ("dags trigger d -c '{\"a\": 1}' -e 2024-01-01", 2),
        ("dags test d 2024-01-01 --show-dagrun --use-executor", 3),
        ("tasks clear d -yud -t '^t.*$' -s 2024-01-01", 3),
        ("tasks clear d --only-f", 3),
        ("dags backfill d -s 2024-01-01 -e 2024-01-02 --reset -y", 2),
        ("backfill create --dag-id d --from-date 2024-01-01 --to-date 2024-01-02 --no-run-on", 3),
        ("variables set k -1", 3),
        ("variables set k '-a value with spaces'", 3),
        ("variables set -- k v", 3),
        ("dags trigger d --", 3),
        ("variables get k -d -", 2),
        ("pools set p 3 'a pool'", 3),
        ("version --help", 2),
    ],
)
def test_allowed_options_in_every_spelling_argparse_accepts(text: str, major: int) -> None:
    assert parse_cli_command(text, major)


@pytest.mark.parametrize("major", sorted(ALLOWED_COMMANDS))
def test_every_allowed_option_is_accepted_and_every_refused_one_refused(major: int) -> None:
    """Data-driven over the whole table: no allowed spelling is refused by mistake, no refused one slips."""
    for command in sorted(ALLOWED_COMMANDS[major]):
        options = command_options(command, major)
        assert options.takes_value, f"no options known for {command}"
        for option, takes_value in options.takes_value.items():
            text = " ".join([*command, option] + (["x"] if takes_value else []))
            if option in options.refused:
                with pytest.raises(CliCommandRefusedError, match="not allowed"):
                    parse_cli_command(text, major)
            else:
                assert parse_cli_command(text, major)[len(command) :][0] == option


def test_option_table_was_read_from_every_supported_version() -> None:
    """A version added to SUPPORTED_VERSIONS needs scripts/airflow_cli_options.py run again."""
    assert sorted(VERSIONS_READ) == sorted(SUPPORTED_VERSIONS)


def test_refused_options_name_options_airflow_defines() -> None:
    """A misspelt entry in REFUSED_OPTIONS would refuse nothing: each one is in the option table."""
    for command, refusals in REFUSED_OPTIONS.items():
        commands = [command] if command is not None else sorted(set().union(*ALLOWED_COMMANDS.values()))
        for option in refusals:
            assert any(option in command_options(c, m).refused for c in commands for m in ALLOWED_COMMANDS), (
                f"{option} is not an option of {command}"
            )
    # Both spellings of an option are refused together.
    assert {"-S", "--subdir"} <= set(command_options(("dags", "list"), 2).refused)
    assert {"-s", "--save"} <= set(command_options(("dags", "show"), 3).refused)
    assert {"-f", "--dagfile-path"} <= set(command_options(("dags", "test"), 3).refused)
    assert "-f" not in command_options(("tasks", "clear"), 3).refused  # -f is --only-failed there


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
    service = CliService(runner, TOKENS, timeout=12.5)
    result = anyio.run(service.run, _record("2.11.0"), "dags list-runs -d my_dag")
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out:dags list-runs -d my_dag", b"err")
    assert runner.calls == [("env", ["dags", "list-runs", "-d", "my_dag"], 12.5)]


def test_service_checks_the_token_and_status_before_running() -> None:
    runner = RecordingRunner()
    service = CliService(runner, TOKENS)
    record = _record()
    token = TOKENS.issue_cli_token(environment_arn=record.arn, identity="user/bob")
    result = anyio.run(service.run_with_token, record, token, "version")
    assert result.exit_code == 3
    other = TOKENS.issue_cli_token(environment_arn=_record(name="other").arn, identity="user/bob")
    with pytest.raises(InvalidWebTokenError, match="another environment"):
        anyio.run(service.run_with_token, record, other, "version")
    with pytest.raises(ServiceUnavailableError, match="UPDATING"):
        anyio.run(service.run_with_token, _record(status="UPDATING"), token, "version")
    with pytest.raises(CliCommandRefusedError, match="--save"):
        anyio.run(service.run_with_token, record, token, "dags show x --sav /tmp/f.dot")
    assert [argv for _, argv, _ in runner.calls] == [["version"]]


def test_refused_command_never_reaches_the_runner() -> None:
    runner = RecordingRunner()
    with pytest.raises(CliCommandRefusedError):
        anyio.run(CliService(runner, TOKENS).run, _record(), "config list")
    assert runner.calls == []


def test_concurrency_is_limited_per_environment() -> None:
    runner = RecordingRunner()
    runner.block = True
    service = CliService(runner, TOKENS, max_concurrent=1)

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
