"""``openmwaa worker``: join an environment's worker pool from another machine and run its tasks."""

from __future__ import annotations

import argparse
import functools
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openmwaa.errors import ValidationError
from openmwaa.settings import Settings

if TYPE_CHECKING:  # imported when the command runs, so `openmwaa --help` stays quick
    from openmwaa.wire.worker_pool import WorkerPoolGrant

DESCRIPTION = """\
Run a Celery worker for an openmwaa environment on this machine.

The worker signs a JoinWorkerPool request (IAM action openmwaa:JoinWorkerPool on the
environment's ARN) with the AWS credentials of the standard chain (AWS_ACCESS_KEY_ID...,
AWS_PROFILE, the shared files, an instance role), receives the environment's Airflow
configuration over HTTPS, installs the same Airflow runtime, fetches the DAGs, plugins and
requirements through openmwaa's S3 API (s3:ListBucket, s3:GetObject, s3:GetObjectVersion on the
source bucket), and runs `airflow celery worker` on the environment's queue until Ctrl-C or
SIGTERM (running tasks get a minute to finish). The DAGs are synced again every --sync-interval;
every tenth sync it asks for the grant again and, if an UpdateEnvironment changed it, stops the
worker warmly and starts it again with the new configuration.

Example:
  openmwaa worker --environment MyAirflowEnvironment --endpoint https://openmwaa.example:8751 \\
      --ca-bundle ca.pem
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "worker",
        help="run a Celery worker for an environment, on this or another machine",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--environment", required=True, help="the environment's name")
    parser.add_argument(
        "--endpoint",
        required=True,
        help="openmwaa's HTTPS endpoint (OPENMWAA_TLS_PORT), e.g. https://host:8751; "
        "plain http:// only to a loopback address",
    )
    parser.add_argument(
        "--ca-bundle",
        help="CA certificates (PEM) to verify the endpoint with (default: AWS_CA_BUNDLE, else the system's)",
    )
    parser.add_argument("--region", help="SigV4 region (default: the AWS configuration's, else us-east-1)")
    parser.add_argument(
        "--worker-dir",
        default=".openmwaa-worker",
        help="this worker's directory: runtime sources, DAGs, logs (default ./.openmwaa-worker)",
    )
    parser.add_argument(
        "--name", help="the worker's name (Celery's name@host, audit trail); default: this host's name"
    )
    parser.add_argument(
        "--queue",
        action="append",
        default=[],
        dest="extra_queues",
        help="also consume this queue (tasks with queue=...); repeatable",
    )
    parser.add_argument("--sync-interval", type=float, default=30.0, help="seconds between DAG syncs (30)")
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    import botocore.session

    from openmwaa.runtime.installer import RuntimeManager
    from openmwaa.wire.worker_pool import WORKER_NAME
    from openmwaa.worker.agent import (
        RESTART,
        WorkerOptions,
        WorkerProcess,
        install_stop_signals,
        prepare_worker,
    )
    from openmwaa.worker.join import Endpoint, JoinRefusedError, join_pool
    from openmwaa.worker.sources import SourceSync

    logging.basicConfig(level=logging.INFO, format="openmwaa worker: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    session = botocore.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ValidationError(
            "No AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role."
        )
    region = args.region or session.get_config_variable("region") or "us-east-1"
    ca_bundle = args.ca_bundle or session.get_config_variable("ca_bundle")
    endpoint = Endpoint(args.endpoint, ca_bundle)
    name = args.name or socket.gethostname().split(".")[0] or "worker"
    if not WORKER_NAME.fullmatch(name):
        raise ValidationError(f"--name {name!r} must match {WORKER_NAME.pattern}")
    for queue in args.extra_queues:
        if not WORKER_NAME.fullmatch(queue):
            raise ValidationError(f"--queue {queue!r} must match {WORKER_NAME.pattern}")

    def progress(message: str) -> None:
        print(f"openmwaa worker: {message}", file=sys.stderr, flush=True)

    options = WorkerOptions(
        name=name,
        directory=Path(args.worker_dir).expanduser(),
        sync_interval=args.sync_interval,
        extra_queues=tuple(args.extra_queues),
    )
    s3 = session.create_client(
        "s3",
        region_name=region,
        endpoint_url=endpoint.base,
        verify=endpoint.ca_bundle or True,
        config=_s3_config(),
    )

    def join() -> WorkerPoolGrant:
        return join_pool(endpoint, args.environment, credentials=credentials, region=region, worker_name=name)

    while True:
        progress(f"joining the worker pool of {args.environment} at {endpoint.base}")
        try:
            grant = join()
        except JoinRefusedError as exc:
            print(f"openmwaa worker: {exc.message}", file=sys.stderr)
            return 3
        home = options.directory.resolve() / grant.name
        sync = SourceSync(s3, grant.sources, home / "dags", home / "files")
        runtimes = RuntimeManager(settings.runtime_dir)
        prepared = prepare_worker(grant, endpoint, options, sync=sync, runtimes=runtimes, progress=progress)
        process = WorkerProcess(
            prepared,
            sync,
            sync_interval=options.sync_interval,
            still_current=functools.partial(_same_grant, join, grant),
        )
        install_stop_signals(process)
        progress(
            f"running `airflow celery worker` (Airflow {grant.airflow_version}) on queue {grant.queue} "
            f"as {name}; log: {prepared.log_path}"
        )
        code = process.run()
        if code != RESTART:
            return code


def _same_grant(join: Callable[[], WorkerPoolGrant], grant: WorkerPoolGrant) -> bool:
    return join() == grant


def _s3_config() -> Any:
    from botocore.config import Config

    return Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3})
