"""``openmwaa env ...``: environment commands, sent to the running service through its own API.

They go through the API (signed with the bootstrap admin's key from the data directory, or the
usual AWS_* variables) rather than opening the database, because the running service owns the
Airflow processes: a change made behind its back would not reach them.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from openmwaa.errors import OpenMwaaError
from openmwaa.settings import Settings
from openmwaa.supervisor.pidfiles import running_web_servers, running_workers

TERMINAL = {"AVAILABLE", "CREATE_FAILED", "UPDATE_FAILED", "UNAVAILABLE"}


def register(sub: Any) -> None:
    parser = sub.add_parser("env", help="list, create, describe, delete and follow environments")
    parser.add_argument("--endpoint-url", help="the openmwaa endpoint (default from settings)")
    cmds = parser.add_subparsers(dest="env_command", metavar="ACTION", required=True)

    cmds.add_parser("list", help="list environments").set_defaults(run=_explained(_list))

    create = cmds.add_parser("create", help="create an environment (returns at once; see `watch`)")
    create.add_argument("name")
    create.add_argument("--airflow-version", help="e.g. 3.3.1 or 2.11.2 (default: newest)")
    create.add_argument(
        "--bucket", default="openmwaa-default", help="source bucket (a directory in the buckets root)"
    )
    create.add_argument("--dags-path", default="dags", help="DAG folder inside the bucket")
    create.add_argument("--requirements-path", help="requirements.txt inside the bucket")
    create.add_argument("--watch", action="store_true", help="follow the status until it settles")
    create.set_defaults(run=_explained(_create))

    describe = cmds.add_parser("describe", help="show an environment as GetEnvironment returns it")
    describe.add_argument("name")
    describe.set_defaults(run=_explained(_describe))

    delete = cmds.add_parser("delete", help="delete an environment")
    delete.add_argument("name")
    delete.add_argument("--watch", action="store_true", help="wait until it is gone")
    delete.set_defaults(run=_explained(_delete))

    watch = cmds.add_parser("watch", help="follow an environment's status until it settles")
    watch.add_argument("name")
    watch.set_defaults(run=_explained(_watch))


Command = Callable[[Settings, argparse.Namespace], int]


def _explained(command: Command) -> Command:
    """Client-side failures as one line that says what to do, instead of a traceback."""

    @wraps(command)
    def run(settings: Settings, args: argparse.Namespace) -> int:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        endpoint = getattr(args, "endpoint_url", None) or settings.endpoint_url
        try:
            return command(settings, args)
        except NoCredentialsError as exc:
            raise OpenMwaaError(
                f"no credentials: {settings.data_dir / 'credentials'} is written by `openmwaa up`; "
                "run it once with this data directory, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from exc
        except EndpointConnectionError as exc:
            raise OpenMwaaError(
                f"nothing answers at {endpoint}: is `openmwaa up` running with the same data directory "
                "and port (--endpoint-url or OPENMWAA_PORT)?"
            ) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise OpenMwaaError(f"{error.get('Code')}: {error.get('Message')}") from exc

    return run


def client(settings: Settings, args: argparse.Namespace) -> Any:
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    kwargs: dict[str, Any] = {}
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        kwargs = bootstrap_credentials(settings)
    return session.create_client(
        "mwaa",
        region_name=settings.region,
        endpoint_url=getattr(args, "endpoint_url", None) or settings.endpoint_url,
        config=Config(inject_host_prefix=False, retries={"max_attempts": 2}),
        **kwargs,
    )


def bootstrap_credentials(settings: Settings) -> dict[str, Any]:
    """The admin key ``openmwaa up`` wrote to the data directory, if any."""
    parser = configparser.ConfigParser()
    parser.read(settings.data_dir / "credentials")
    if not parser.has_section("openmwaa"):
        return {}
    section = parser["openmwaa"]
    return {
        "aws_access_key_id": section.get("aws_access_key_id"),
        "aws_secret_access_key": section.get("aws_secret_access_key"),
    }


def _print(data: Any) -> None:
    def default(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else str(value)

    data = {k: v for k, v in data.items() if k != "ResponseMetadata"}
    print(json.dumps(data, indent=2, default=default))


def _list(settings: Settings, args: argparse.Namespace) -> int:
    mwaa = client(settings, args)
    for page in mwaa.get_paginator("list_environments").paginate():
        for name in page["Environments"]:
            status = mwaa.get_environment(Name=name)["Environment"]["Status"]
            print(f"{name}\t{status}")
    return 0


def _create(settings: Settings, args: argparse.Namespace) -> int:
    mwaa = client(settings, args)
    params: dict[str, Any] = {
        "Name": args.name,
        "ExecutionRoleArn": f"arn:aws:iam::{settings.account_id}:role/openmwaa-execution-role",
        "SourceBucketArn": f"arn:aws:s3:::{args.bucket}",
        "DagS3Path": args.dags_path,
        "NetworkConfiguration": {
            "SubnetIds": ["subnet-openmwaa-a", "subnet-openmwaa-b"],
            "SecurityGroupIds": ["sg-openmwaa"],
        },
    }
    if args.airflow_version:
        params["AirflowVersion"] = args.airflow_version
    if args.requirements_path:
        params["RequirementsS3Path"] = args.requirements_path
    print(mwaa.create_environment(**params)["Arn"])
    return _follow(mwaa, args.name) if args.watch else 0


def _describe(settings: Settings, args: argparse.Namespace) -> int:
    env = client(settings, args).get_environment(Name=args.name)["Environment"]
    home = settings.environments_dir / settings.account_id / settings.region / args.name
    if home.is_dir():  # served from this machine: how many web servers and workers the autoscalers run now
        env["RunningWebservers"] = running_web_servers(home)
        env["RunningWorkers"] = running_workers(home)
    _print(env)
    return 0


def _delete(settings: Settings, args: argparse.Namespace) -> int:
    mwaa = client(settings, args)
    mwaa.delete_environment(Name=args.name)
    return _follow(mwaa, args.name) if args.watch else 0


def _watch(settings: Settings, args: argparse.Namespace) -> int:
    return _follow(client(settings, args), args.name)


def _follow(mwaa: Any, name: str) -> int:
    last = ""
    started = time.monotonic()
    while True:
        try:
            env = mwaa.get_environment(Name=name)["Environment"]
        except mwaa.exceptions.ResourceNotFoundException:
            print(f"[{time.monotonic() - started:6.1f}s] {name}: deleted")
            return 0
        if env["Status"] != last:
            last = env["Status"]
            print(f"[{time.monotonic() - started:6.1f}s] {name}: {last}", flush=True)
            if last in TERMINAL:
                error = env.get("LastUpdate", {}).get("Error")
                if error and last != "AVAILABLE":
                    print(f"  {error.get('ErrorCode')}: {error.get('ErrorMessage')}", file=sys.stderr)
                return 0 if last == "AVAILABLE" else 1
        time.sleep(1)
