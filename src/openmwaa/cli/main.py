"""``openmwaa``: the command-line adapter."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from openmwaa import __version__
from openmwaa.cli import audit, dashboard, environments, iam, up, worker
from openmwaa.errors import OpenMwaaError
from openmwaa.settings import Settings

DESCRIPTION = """\
openmwaa serves Amazon MWAA's API (boto3 "mwaa", `aws mwaa`) on your machine, with real
Apache Airflow environments behind it.

Start here:
  openmwaa up                      start the service and a ready environment (Ctrl-C stops it)
  openmwaa env list                list environments (talks to the running service)
  openmwaa iam simulate ...        ask the policy engine why a call is allowed or denied
  openmwaa audit --follow          watch every API call as it is decided
  openmwaa worker ...              run a Celery worker for an environment (another machine)
  openmwaa dashboard               a sign-in URL for the dashboard of every environment

Every option can also be given as an OPENMWAA_<NAME> environment variable
(e.g. OPENMWAA_DATA_DIR, OPENMWAA_PORT).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openmwaa", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"openmwaa {__version__}")
    data_dir_help = "where openmwaa keeps its state (default ./.openmwaa; OPENMWAA_DATA_DIR)"
    parser.add_argument("--data-dir", help=data_dir_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    up.register(sub)
    environments.register(sub)
    iam.register(sub)
    audit.register(sub)
    worker.register(sub)
    dashboard.register(sub)
    # Also after the command (`openmwaa up --data-dir D`); SUPPRESS keeps a value given before it.
    for command in sub.choices.values():
        command.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        settings = Settings.from_environ(os.environ, **up.overrides(args))
        code: int = args.run(settings, args)
    except OpenMwaaError as exc:
        print(f"openmwaa: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
