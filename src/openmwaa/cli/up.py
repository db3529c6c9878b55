"""``openmwaa up``: the service, in the foreground, with a ready environment."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from openmwaa.errors import ResourceNotFoundError, ValidationError
from openmwaa.settings import Settings

if TYPE_CHECKING:  # the app is imported when `up` runs, so `openmwaa --help` stays quick
    from openmwaa.app import Services

DEFAULT_BUCKET = "openmwaa-default"
TERMINAL_STATUSES = ("AVAILABLE", "CREATE_FAILED", "UPDATE_FAILED", "UNAVAILABLE")
_STATUS_NOTES = {"MAINTENANCE": " (Airflow is starting again after openmwaa restarted)"}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "up",
        help="start openmwaa and a ready environment in the foreground",
        description=(
            "Start the MWAA API endpoint on HOST:PORT with its state in the data directory, create the "
            "environment MyAirflowEnvironment from the bundled example DAGs (unless it exists or "
            "--no-default-environment), and run until Ctrl-C or SIGTERM, which stop every Airflow process."
        ),
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; OPENMWAA_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8750; OPENMWAA_PORT)")
    parser.add_argument(
        "--no-default-environment",
        dest="default_environment",
        action="store_false",
        default=None,
        help="do not create MyAirflowEnvironment (OPENMWAA_DEFAULT_ENVIRONMENT=false)",
    )
    parser.add_argument(
        "--airflow-version", help="AirflowVersion of the default environment (default: newest)"
    )
    parser.set_defaults(run=run)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        out["data_dir"] = Path(args.data_dir).expanduser()
    for name in ("host", "port", "default_environment"):
        value = getattr(args, name, None)
        if value is not None:
            out[name] = value
    return out


def run(settings: Settings, args: argparse.Namespace) -> int:
    from openmwaa.app import build_services
    from openmwaa.auth.bootstrap import ensure_bootstrap_admin
    from openmwaa.backing.managed import BackingServiceError
    from openmwaa.runtime.isolation import NOT_ISOLATED
    from openmwaa.server import Server

    logging.basicConfig(level=logging.INFO, format="openmwaa: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "uvicorn", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not settings.isolates_environments:
        logging.getLogger(__name__).warning("%s", NOT_ISOLATED)
    # The admin key first: the identity store loads the file once at construction and then only
    # re-reads it a second later, so a client right after start-up would be refused.
    access_key_id, _secret = ensure_bootstrap_admin(settings)
    version = getattr(args, "airflow_version", None)
    try:
        services = build_services(settings)
        server = Server(settings, services)

        def on_ready() -> None:
            print_banner(settings, access_key_id, sys.stdout)
            if settings.default_environment:
                create_default_environment(settings, services, version, sys.stdout, should_stop=lambda: False)

        return server.run(on_ready=on_ready)
    except BackingServiceError as exc:
        logging.getLogger(__name__).error("distributed mode cannot start: %s", exc.message)
        return 1


def print_banner(settings: Settings, access_key_id: str, out: TextIO) -> None:
    data = settings.data_dir.resolve()
    out.write(
        f"""
openmwaa is listening on {settings.endpoint_url}  (data: {data})

Point boto3 and the AWS CLI at it:
  export AWS_ENDPOINT_URL={settings.endpoint_url}
  export AWS_DISABLE_HOST_PREFIX_INJECTION=true
  export AWS_DEFAULT_REGION={settings.region}
  export AWS_SHARED_CREDENTIALS_FILE={data / "credentials"} AWS_PROFILE=openmwaa
(the bootstrap admin's key {access_key_id}; its secret is in that file. {data / "config"} holds
the same settings as an AWS config file: export AWS_CONFIG_FILE={data / "config"} to use it.)

Environments' web servers (WebServerHostname) use HTTPS from openmwaa's local CA; trust it with
  export REQUESTS_CA_BUNDLE={data / "tls" / "ca-bundle.pem"}

"""
    )
    if settings.tls_endpoint_url:
        out.write(
            f"The same API over HTTPS on {settings.tls_endpoint_url} ({_certificate_note(settings)}):\n"
            f"  openmwaa worker --endpoint {settings.tls_endpoint_url} --environment NAME\n"
            "joins an environment's worker pool from another machine.\n\n"
        )
    out.flush()


def _certificate_note(settings: Settings) -> str:
    if settings.tls_cert_file is not None:
        return f"certificate {settings.tls_cert_file}"
    ca = settings.data_dir.resolve() / "tls" / "ca.pem"
    return f"a certificate of the local CA: give workers --ca-bundle {ca}"


def create_default_environment(
    settings: Settings,
    services: Services,
    airflow_version: str | None,
    out: TextIO,
    *,
    should_stop: Any,
) -> str:
    """Create (or find) MyAirflowEnvironment and report its status until it settles."""
    name = settings.default_environment_name
    bucket = settings.buckets_dir / DEFAULT_BUCKET
    dags = bucket / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    examples = resources.files("openmwaa.examples").joinpath("dags")
    for item in examples.iterdir():
        target = dags / item.name
        if item.name.endswith(".py") and not target.exists():
            with resources.as_file(item) as source:
                shutil.copyfile(source, target)
    service = services.environments
    try:
        record = service.get(name)
        out.write(f"Environment {name} exists ({record.status}).\n")
        if record.status == "CREATE_FAILED":
            out.write("It failed to create last time; deleting it and creating it again.\n")
            service.delete(name)
            _wait_gone(services, name)
            raise ResourceNotFoundError(name)
    except ResourceNotFoundError:
        params: dict[str, Any] = {
            "Name": name,
            "ExecutionRoleArn": f"arn:aws:iam::{settings.account_id}:role/openmwaa-execution-role",
            "SourceBucketArn": f"arn:aws:s3:::{DEFAULT_BUCKET}",
            "DagS3Path": "dags",
            "NetworkConfiguration": {
                "SubnetIds": ["subnet-openmwaa-a", "subnet-openmwaa-b"],
                "SecurityGroupIds": ["sg-openmwaa"],
            },
        }
        if airflow_version:
            params["AirflowVersion"] = airflow_version
        try:
            service.create(params)
        except ValidationError as exc:
            out.write(f"Could not create {name}: {exc.message}\n")
            return "CREATE_FAILED"
        out.write(f"Creating environment {name} (DAGs in {dags}) ...\n")
    out.flush()
    return follow_status(services, name, out, should_stop=should_stop)


def _wait_gone(services: Services, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            services.environments.get(name)
        except ResourceNotFoundError:
            return
        time.sleep(0.5)


def follow_status(services: Services, name: str, out: TextIO, *, should_stop: Any) -> str:
    started = time.monotonic()
    last = ""
    while not should_stop():
        try:
            record = services.environments.get(name)
        except ResourceNotFoundError:
            out.write(f"Environment {name} no longer exists.\n")
            return "DELETED"
        if record.status != last:
            elapsed = time.monotonic() - started
            note = _STATUS_NOTES.get(record.status, "")
            out.write(f"  [{elapsed:5.1f}s] {name}: {record.status}{note}\n")
            last = record.status
            if record.status in TERMINAL_STATUSES:
                error = (record.last_update or {}).get("Error")
                if error and record.status != "AVAILABLE":
                    out.write(f"  {error.get('ErrorCode')}: {error.get('ErrorMessage')}\n")
                if record.status == "AVAILABLE":
                    out.write(f"Environment {name} is AVAILABLE. Press Ctrl-C to stop openmwaa.\n")
                out.flush()
                return record.status
            out.flush()
        time.sleep(0.5)
    return last
