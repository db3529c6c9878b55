"""One typed settings object, read once (from ``OPENMWAA_*`` variables and CLI flags) and passed down."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openmwaa.errors import ValidationError

ENV_PREFIX = "OPENMWAA_"
#: The values of ``executor`` (OPENMWAA_EXECUTOR).
EXECUTORS = ("local", "celery")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")


def default_cache_dir() -> Path:
    """Where Airflow runtimes are cached, shared by every data directory on the machine."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "openmwaa" / "runtimes"


@dataclass(frozen=True)
class Settings:
    """Everything openmwaa can be told. Build with :meth:`from_environ`; never read os.environ elsewhere."""

    data_dir: Path = Path(".openmwaa")
    host: str = "127.0.0.1"
    port: int = 8750
    region: str = "us-east-1"
    account_id: str = "123456789012"
    #: Cache of installed Airflow runtimes (one virtual environment per Airflow version).
    runtime_dir: Path = field(default_factory=default_cache_dir)
    #: S3 buckets map to directories below this one: ``arn:aws:s3:::b`` -> ``<buckets_root>/b``.
    buckets_root: Path | None = None
    #: openmwaa's own state; default ``sqlite:///<data_dir>/openmwaa.db``.
    database_url: str | None = None
    #: A PostgreSQL server for the environments' metadata databases; default one SQLite file each
    #: (in distributed mode: a PostgreSQL server openmwaa runs itself).
    airflow_database_url: str | None = field(default=None, repr=False)
    #: ``local``: each environment runs Airflow's LocalExecutor (SequentialExecutor for Airflow 2
    #: on SQLite). ``celery``: distributed mode, MWAA's shape: CeleryExecutor with Celery workers,
    #: PostgreSQL metadata databases and a Redis broker.
    executor: str = "local"
    #: Distributed mode's Redis broker (``redis://:password@host:port/db``); default: a Redis
    #: server openmwaa runs itself.
    celery_broker_url: str | None = field(default=None, repr=False)
    default_environment: bool = True
    default_environment_name: str = "MyAirflowEnvironment"
    #: Seconds an environment may take from CREATING to AVAILABLE before CREATE_FAILED.
    environment_start_timeout: float = 600.0
    #: A component Airflow reports unhealthy (or a web server that does not answer) this long
    #: without a break, while the environment is AVAILABLE, is restarted; 0 turns this off.
    hung_component_timeout: float = 180.0
    #: Seconds before a crashed component is started again, doubled with each crash in a row
    #: (at most 60 s); the fifth crash within two minutes makes a crash loop.
    restart_base_delay: float = 1.0
    #: At most this many web server replicas per environment, whatever MinWebservers and
    #: MaxWebservers say (for a small machine, or tests); 0: no limit.
    web_servers_limit: int = 0
    #: Web server autoscaling: seconds of load that decide to add replicas, and seconds of
    #: sustained low load before one is drained.
    web_scale_up_window: float = 5.0
    web_scale_down_window: float = 90.0
    #: Celery worker autoscaling (distributed mode): the least seconds between a change of the
    #: worker count and the next addition, and seconds without any task before the extra workers go.
    worker_scale_up_window: float = 10.0
    worker_scale_down_window: float = 120.0
    #: The longest a worker being replaced (WorkerReplacementStrategy GRACEFUL) or scaled in may
    #: take to finish its running tasks before it is stopped anyway (MWAA: 12 hours).
    worker_graceful_timeout: float = 43200.0
    #: Allowed clock skew for SigV4, seconds.
    clock_skew: float = 300.0
    #: InvokeRestApi: upstream timeout (s), throttle (requests/s per environment and account; 0 = off).
    rest_api_timeout: float = 10.0
    rest_api_rate: float = 10.0
    #: IAM identities file (YAML or JSON); default ``<data_dir>/iam.yaml``.
    iam_file: Path | None = None
    bootstrap_access_key_id: str | None = None
    bootstrap_secret_access_key: str | None = field(default=None, repr=False)
    #: CIDR -> VPC id map for ``aws:SourceVpc``; loopback is the environments' own VPC by default.
    vpc_cidrs: Mapping[str, str] = field(
        default_factory=lambda: {"127.0.0.0/8": "vpc-openmwaa", "::1/128": "vpc-openmwaa"}
    )
    #: The VPC every environment's web server is in (PRIVATE_ONLY accepts calls only from there).
    environment_vpc_id: str = "vpc-openmwaa"
    #: Environments' web server endpoints (WebServerHostname): one port each from this range.
    web_host: str = "127.0.0.1"
    web_port_first: int = 8760
    web_port_last: int = 8859
    #: HTTPS with a local CA (``<data_dir>/tls/ca.pem``) unless a certificate and key are given.
    web_tls: bool = True
    web_cert_file: Path | None = None
    web_key_file: Path | None = None
    #: The host name WebServerHostname reports (default: web_host).
    web_public_host: str | None = None
    #: Web login sessions last this long (MWAA: 12 hours).
    web_session_ttl: float = 43200.0
    #: /aws_mwaa/cli: concurrent commands per environment and seconds each may run.
    cli_max_concurrent: int = 2
    cli_timeout: float = 60.0
    #: Environments' logs: files older than this many days go, a component log is rotated past
    #: ``log_component_max_bytes`` (3 copies kept), and one environment's logs/ stays under
    #: ``log_max_bytes`` (the oldest files go first).
    log_retention_days: float = 30.0
    log_max_bytes: int = 1024**3
    log_component_max_bytes: int = 64 * 1024**2
    #: Run each environment as a system user of its own (runtime/isolation). Unset: when root.
    isolate_environments: bool | None = None
    #: The API also listens with HTTPS on this port (same host): what workers on other machines
    #: join through (``openmwaa worker``). Unset: plain HTTP only.
    tls_port: int | None = None
    #: The HTTPS listener's certificate and key (PEM); unset: one from openmwaa's local CA
    #: (``<data_dir>/tls/ca.pem``), the web servers' certificate.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = field(default=None, repr=False)
    #: The largest S3 upload openmwaa takes in one PutObject, one part or one CopyObject (S3: 5 GiB);
    #: bodies are streamed to disk, so this bounds disk, not memory.
    s3_max_upload_bytes: int = 5 * 1024**3
    #: External-S3 mode: environments read their sources from this S3 endpoint (AWS S3, MinIO,
    #: SeaweedFS, ...) with these credentials (none: botocore's chain), mirrored below
    #: ``<data_dir>/source-mirror``; DAG folders are polled every ``source_s3_poll_interval``
    #: seconds. openmwaa then serves no S3 API of its own.
    source_s3_endpoint_url: str | None = None
    source_s3_region: str | None = None
    source_s3_access_key_id: str | None = None
    source_s3_secret_access_key: str | None = field(default=None, repr=False)
    source_s3_session_token: str | None = field(default=None, repr=False)
    source_s3_poll_interval: float = 5.0
    #: ``GET /metrics`` (Prometheus) needs ``Authorization: Bearer <token>``; unset: the endpoint is off.
    metrics_token: str | None = field(default=None, repr=False)
    #: Airflow's StatsD metrics arrive on this loopback UDP port (0: any free port, chosen at start).
    statsd_port: int = 0
    #: CloudWatch metrics (AmazonMWAA, AWS/MWAA): where they are kept (default
    #: ``sqlite:///<data_dir>/metrics.db``), for how long, and how often the environments'
    #: processes are sampled for CPU and memory (seconds).
    metrics_database_url: str | None = field(default=None, repr=False)
    metrics_retention_days: float = 15.0
    metrics_sample_interval: float = 60.0
    #: The dashboard (``/dashboard``): each environment's Airflow is read at most once per
    #: ``dashboard_refresh_interval`` seconds, whatever the number of viewers; a sign-in lasts
    #: ``dashboard_session_ttl`` seconds.
    dashboard_refresh_interval: float = 5.0
    dashboard_session_ttl: float = 3600.0

    def __post_init__(self) -> None:
        if not _ACCOUNT_ID.match(self.account_id):
            raise ValidationError(f"account id must be 12 digits, got {self.account_id!r}")
        if not _REGION.match(self.region):
            raise ValidationError(f"region {self.region!r} is not a valid region name")
        if not 0 <= self.port <= 65535:
            raise ValidationError(f"port {self.port} is out of range")
        if not self.hung_component_timeout >= 0:  # also refuses NaN
            raise ValidationError("hung_component_timeout must be 0 (off) or a number of seconds")
        if not 0 < self.restart_base_delay <= 60:  # also refuses NaN
            raise ValidationError("restart_base_delay must be more than 0 and at most 60 seconds")
        if not (self.log_retention_days > 0 and self.log_max_bytes > 0 and self.log_component_max_bytes > 0):
            raise ValidationError(
                "log_retention_days, log_max_bytes and log_component_max_bytes must be positive"
            )
        if self.isolate_environments and os.geteuid() != 0:
            raise ValidationError(
                "isolate_environments needs root (it creates a system user per environment)"
            )
        if self.tls_port is not None and not 0 < self.tls_port <= 65535:
            raise ValidationError(f"tls_port {self.tls_port} is out of range")
        if self.tls_port is not None and self.tls_port == self.port:
            raise ValidationError("tls_port must differ from port (the plain HTTP listener)")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValidationError("tls_cert_file and tls_key_file go together: give both or neither")
        if not (self.metrics_retention_days > 0 and self.metrics_sample_interval > 0):
            raise ValidationError("metrics_retention_days and metrics_sample_interval must be positive")
        if not 0 <= self.statsd_port <= 65535:
            raise ValidationError(f"statsd_port {self.statsd_port} is out of range")
        if self.s3_max_upload_bytes < 1:
            raise ValidationError("s3_max_upload_bytes must be a positive number of bytes")
        self._check_source_s3()
        if self.executor not in EXECUTORS:
            raise ValidationError(
                f"executor must be one of {', '.join(EXECUTORS)} (OPENMWAA_EXECUTOR), got {self.executor!r}"
            )
        if self.celery_broker_url and not self.celery_broker_url.startswith(("redis://", "rediss://")):
            raise ValidationError("celery_broker_url must be a redis:// or rediss:// URL")
        if self.web_servers_limit < 0:
            raise ValidationError("web_servers_limit must be 0 (no limit) or a number of web servers")
        if not (self.dashboard_refresh_interval > 0 and 0 < self.dashboard_session_ttl <= 12 * 3600):
            raise ValidationError(
                "dashboard_refresh_interval must be positive and dashboard_session_ttl 1 s to 12 h"
            )
        if not (self.web_scale_up_window > 0 and self.web_scale_down_window > 0):
            raise ValidationError("web_scale_up_window and web_scale_down_window must be positive seconds")
        if not (self.worker_scale_up_window > 0 and self.worker_scale_down_window > 0):
            raise ValidationError(
                "worker_scale_up_window and worker_scale_down_window must be positive seconds"
            )
        if not self.worker_graceful_timeout >= 0:
            raise ValidationError("worker_graceful_timeout must be 0 or more seconds")

    def _check_source_s3(self) -> None:
        url = self.source_s3_endpoint_url
        if url and not url.startswith(("http://", "https://")):
            raise ValidationError("source_s3_endpoint_url must be an http:// or https:// URL")
        if bool(self.source_s3_access_key_id) != bool(self.source_s3_secret_access_key):
            raise ValidationError(
                "source_s3_access_key_id and source_s3_secret_access_key are given together (or neither)"
            )
        if not self.source_s3_poll_interval > 0:
            raise ValidationError("source_s3_poll_interval must be a positive number of seconds")

    @property
    def distributed(self) -> bool:
        """Distributed mode: environments run CeleryExecutor (see ``executor``)."""
        return self.executor == "celery"

    @property
    def isolates_environments(self) -> bool:
        if self.isolate_environments is None:
            return os.geteuid() == 0
        return self.isolate_environments

    # Derived locations -------------------------------------------------------------------

    @property
    def state_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'openmwaa.db'}"

    @property
    def metrics_url(self) -> str:
        return self.metrics_database_url or f"sqlite:///{self.data_dir.resolve() / 'metrics.db'}"

    @property
    def buckets_dir(self) -> Path:
        return (self.buckets_root or self.data_dir / "buckets").resolve()

    @property
    def source_mirror_dir(self) -> Path:
        """External-S3 mode: the local copy of the sources Airflow reads."""
        return (self.data_dir / "source-mirror").resolve()

    @property
    def environments_dir(self) -> Path:
        return (self.data_dir / "environments").resolve()

    @property
    def iam_path(self) -> Path:
        return (self.iam_file or self.data_dir / "iam.yaml").resolve()

    @property
    def endpoint_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def tls_endpoint_url(self) -> str | None:
        """The HTTPS listener's URL (None when there is none)."""
        if self.tls_port is None:
            return None
        host = self.web_public_host or self.host
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
            host = "127.0.0.1"
        return f"https://{f'[{host}]' if ':' in host else host}:{self.tls_port}"

    @property
    def loopback_api_url(self) -> str:
        """The API as an environment's processes reach it: over loopback, which botocore's
        container credentials provider requires of a plain-HTTP endpoint."""
        wildcard = self.host in ("", "0.0.0.0", "::", "localhost")  # noqa: S104 - comparing, not binding
        host = "127.0.0.1" if wildcard else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    # Construction ------------------------------------------------------------------------

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Settings from ``OPENMWAA_<FIELD>`` variables, then explicit overrides (CLI flags) on top."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse_field(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse_field(name: str, type_name: str, raw: str) -> Any:
    try:
        if "Path" in type_name:
            return Path(raw).expanduser()
        if type_name.startswith("bool"):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        if type_name.startswith("Mapping"):
            return _parse_mapping(raw)
    except ValueError as exc:
        raise ValidationError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid value") from exc
    return raw


def _parse_mapping(raw: str) -> dict[str, str]:
    """``a=b,c=d`` -> ``{"a": "b", "c": "d"}``."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(item)
        out[key.strip()] = value.strip()
    return out
