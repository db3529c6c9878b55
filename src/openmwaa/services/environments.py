"""Environment lifecycle: what CreateEnvironment, UpdateEnvironment, DeleteEnvironment and friends mean.

The service owns the record in the store and tells the supervisor what should run. The
supervisor reports back through :meth:`EnvironmentService.on_event`, whose effect on each status
is the table in ``transitions.py``; every status change is a compare-and-set on the record, so a
late event can never resurrect a deleted environment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from openmwaa.backing import BackingUrls
from openmwaa.errors import ResourceNotFoundError, ValidationError
from openmwaa.metrics.statsd import statsd_prefix
from openmwaa.runtime.airflow_config import (
    CLASS_TASK_CONCURRENCY,
    DEFAULT_ENVIRONMENT_CLASS,
    RESERVED_CONFIGURATION_KEYS,
    CeleryOptions,
    statsd_variables,
)
from openmwaa.runtime.versions import DEFAULT_VERSION, SUPPORTED_VERSIONS, major
from openmwaa.s3.store import BucketStore
from openmwaa.services import celery_queue, environment_class, sources
from openmwaa.services.execution_role import task_environment
from openmwaa.services.status_watch import StatusWatch
from openmwaa.services.transitions import Trigger, next_state
from openmwaa.settings import Settings
from openmwaa.store.environments import (
    EnvironmentExistsError,
    EnvironmentKey,
    EnvironmentRecord,
    EnvironmentRepository,
)
from openmwaa.supervisor import EnvironmentEvent, EnvironmentSecrets, EnvironmentSpec

log = logging.getLogger(__name__)

#: What CreateEnvironment fills in when the caller leaves a member out (MWAA's defaults); the
#: class and the counts that depend on it come from ``environment_class.with_defaults``.
CREATE_DEFAULTS: Mapping[str, Any] = {
    "AirflowVersion": DEFAULT_VERSION,
    "WebserverAccessMode": "PRIVATE_ONLY",
    "EndpointManagement": "SERVICE",
    "WeeklyMaintenanceWindowStart": "SUN:03:30",
    "AirflowConfigurationOptions": {},
}
#: Input members that are not configuration (WorkerReplacementStrategy: how this one update
#: replaces the workers, shown in its LastUpdate; it is not kept for the next one).
_NOT_CONFIG = frozenset({"Name", "Tags", "WorkerReplacementStrategy"})
#: UpdateEnvironment's WorkerReplacementStrategy (the model's enum) and the one used when the
#: caller leaves it out: workers are stopped at once, as MWAA did before the option existed.
WORKER_REPLACEMENT_STRATEGIES = ("FORCED", "GRACEFUL")
DEFAULT_WORKER_REPLACEMENT = "FORCED"
UPDATABLE_FROM = frozenset({"AVAILABLE", "UPDATE_FAILED", "UNAVAILABLE"})
#: Statuses in which Airflow serves requests (UPDATE_FAILED: rolled back, the previous configuration runs).
SERVING_STATUSES = frozenset({"AVAILABLE", "UPDATE_FAILED"})
#: Statuses on the way to serving (MAINTENANCE: Airflow starting again after openmwaa restarted);
#: InvokeRestApi waits for them to end, within its timeout, instead of failing at once.
STARTING_STATUSES = frozenset({"CREATING", "UPDATING", "MAINTENANCE"})
MAX_TAGS = 50


class EnvironmentSupervisor(Protocol):
    """What the service needs of the supervisor (see ``openmwaa.supervisor.Supervisor``)."""

    def create(self, spec: EnvironmentSpec) -> None: ...
    def update(
        self, spec: EnvironmentSpec, previous: EnvironmentSpec, *, worker_replacement: str = ...
    ) -> None: ...
    def resume(self, spec: EnvironmentSpec) -> None: ...
    def delete(self, key: str, home: Any, database_url: str | None) -> None: ...


class EnvironmentService:
    def __init__(
        self,
        *,
        settings: Settings,
        repository: EnvironmentRepository,
        supervisor: EnvironmentSupervisor,
        clock: Callable[[], float] = time.time,
        buckets: BucketStore | None = None,
        statsd_port: Callable[[], int | None] | None = None,
        source_buckets: sources.SourceBuckets | None = None,
        backing: BackingUrls | None = None,
    ) -> None:
        """``statsd_port``: where Airflow sends its StatsD metrics (None: metrics stay off).
        ``backing``: the PostgreSQL server and Redis broker environments use (default: the
        settings' URLs; in distributed mode openmwaa's own servers fill in the missing ones)."""
        self._settings = settings
        self._statsd_port = statsd_port
        #: Where sources are read from: openmwaa's own buckets (S3's view of them gives a pinned
        #: object version's bytes) unless an external S3 is given.
        self._sources = source_buckets or sources.LocalBuckets(
            settings.buckets_dir, buckets or BucketStore(settings.buckets_dir)
        )
        self._backing = backing or BackingUrls(settings.airflow_database_url, settings.celery_broker_url)
        self._repo = repository
        self._supervisor = supervisor
        self._clock = clock
        #: Woken at every status change this service makes (InvokeRestApi waits on it).
        self.status_changes = StatusWatch()

    # Identifiers ---------------------------------------------------------------------------

    def key(self, name: str) -> EnvironmentKey:
        return EnvironmentKey(self._settings.account_id, self._settings.region, name)

    def arn(self, name: str) -> str:
        s = self._settings
        return f"arn:aws:airflow:{s.region}:{s.account_id}:environment/{name}"

    # Reads ---------------------------------------------------------------------------------

    def get(self, name: str) -> EnvironmentRecord:
        record = self._repo.get(self.key(name))
        if record is None:
            raise ResourceNotFoundError(f"Environment {name} does not exist.")
        return record

    def get_by_arn(self, arn: str) -> EnvironmentRecord:
        record = self._repo.get_by_arn(arn)
        if record is None or record.key.account_id != self._settings.account_id:
            raise ResourceNotFoundError(f"Resource {arn} does not exist.")
        return record

    def list_names(self, *, max_results: int | None, next_token: str | None) -> tuple[list[str], str | None]:
        limit = max_results or 25
        after = _decode_token(next_token) if next_token else None
        s = self._settings
        page = self._repo.list_page(s.account_id, s.region, after=after, limit=limit + 1)
        names = [r.name for r in page[:limit]]
        token = _encode_token(names[-1]) if len(page) > limit else None
        return names, token

    # Lifecycle -----------------------------------------------------------------------------

    def create(self, params: Mapping[str, Any]) -> str:
        name = str(params["Name"])
        given = {k: v for k, v in params.items() if k not in _NOT_CONFIG}
        config = environment_class.with_defaults({**CREATE_DEFAULTS, **given})
        self._check_config(config, previous=None, given=given)
        now = self._clock()
        record = EnvironmentRecord(
            key=self.key(name),
            arn=self.arn(name),
            status="CREATING",
            created_at=now,
            config=config,
            previous_config=None,
            last_update={"Status": "PENDING", "CreatedAt": now, "Source": "CREATE"},
            tags=dict(params.get("Tags") or {}),
            secrets=_secrets_to_mapping(EnvironmentSecrets.generate()),
        )
        self._check_tag_count(record.tags)
        try:
            self._repo.insert(record)
        except EnvironmentExistsError as exc:
            raise ValidationError(f"Environment {name} already exists.") from exc
        self._supervisor.create(self.spec(record))
        return record.arn

    def update(self, params: Mapping[str, Any]) -> str:
        name = str(params["Name"])
        record = self.get(name)
        if record.status not in UPDATABLE_FROM:
            raise ValidationError(
                f"Environment {name} is {record.status}; it can be updated when it is "
                f"{', '.join(sorted(UPDATABLE_FROM))}."
            )
        changes = {k: v for k, v in params.items() if k not in _NOT_CONFIG}
        if "NetworkConfiguration" in changes:
            # UpdateNetworkConfigurationInput carries only SecurityGroupIds; keep the subnets.
            network = dict(record.config.get("NetworkConfiguration") or {})
            network.update(changes["NetworkConfiguration"])
            changes["NetworkConfiguration"] = network
        config = {**record.config, **changes}
        self._check_config(config, previous=record.config, given=changes)
        strategy = _worker_replacement(params)
        now = self._clock()
        updated = self._change(
            record.key,
            expect={record.status},
            status="UPDATING",
            config=config,
            previous_config=record.config,
            last_update={
                "Status": "PENDING",
                "CreatedAt": now,
                "Source": "UPDATE",
                "WorkerReplacementStrategy": strategy,
            },
            resume_status=None,
            failed_update_error=None,
        )
        if updated is None:
            raise ValidationError(f"Environment {name} changed status while updating; try again.")
        previous = _replace_config(updated, record.config)
        self._supervisor.update(self.spec(updated), self.spec(previous), worker_replacement=strategy)
        return updated.arn

    def delete(self, name: str) -> None:
        record = self.get(name)
        if record.status == "DELETING":
            return
        updated = self._change(record.key, expect={record.status}, status="DELETING")
        if updated is None:
            raise ValidationError(f"Environment {name} changed status while deleting; try again.")
        spec = self.spec(updated)
        self._supervisor.delete(str(record.key), spec.home, spec.database_url)

    def resume_all(self) -> None:
        """After a restart: bring every environment back to where it was.

        One that served before is MAINTENANCE until its Airflow answers again (its status then
        comes back), so nobody is told AVAILABLE while nothing listens.
        """
        for record in self._repo.list_all():
            if record.key.account_id != self._settings.account_id:
                continue
            spec = self.spec(record)
            if record.status == "CREATING":
                self._supervisor.create(spec)
            elif record.status == "UPDATING" and record.previous_config is not None:
                previous = self.spec(_replace_config(record, record.previous_config))
                strategy = (record.last_update or {}).get("WorkerReplacementStrategy")
                self._supervisor.update(
                    spec, previous, worker_replacement=str(strategy or DEFAULT_WORKER_REPLACEMENT)
                )
            elif record.status in ("AVAILABLE", "UPDATE_FAILED", "MAINTENANCE", "UNAVAILABLE", "UPDATING"):
                self._advance(record.key, "resume")
                self._supervisor.resume(spec)
            elif record.status == "DELETING":
                self._supervisor.delete(str(record.key), spec.home, spec.database_url)

    # Tags ----------------------------------------------------------------------------------

    def tag(self, arn: str, tags: Mapping[str, str]) -> None:
        record = self.get_by_arn(arn)
        merged = {**record.tags, **tags}
        self._check_tag_count(merged)
        self._repo.change(record.key, tags=merged)

    def untag(self, arn: str, keys: list[str]) -> None:
        record = self.get_by_arn(arn)
        self._repo.change(record.key, tags={k: v for k, v in record.tags.items() if k not in set(keys)})

    # Supervisor events ---------------------------------------------------------------------

    def on_event(self, event: EnvironmentEvent) -> None:
        key = EnvironmentKey.parse(event.key)
        if event.kind == "progress":
            log.info("environment %s: %s", key.name, event.message)
            return
        log.info("environment %s: %s %s", key.name, event.kind, event.message)
        if event.kind == "deleted":
            self._repo.delete(key)
            self.status_changes.changed(str(key))
        elif event.kind == "delete_failed":
            log.error("environment %s could not be deleted: %s", key.name, event.message)
        else:
            if event.kind == "unavailable":
                # The reason goes where the API can show it (LastUpdate.Error) and to the log.
                log.warning("environment %s is UNAVAILABLE: %s", key.name, event.message)
            error = {"ErrorCode": event.error_code or "INTERNAL_ERROR", "ErrorMessage": event.message[:2000]}
            self._advance(key, event.kind, error)

    def _advance(
        self, key: EnvironmentKey, trigger: Trigger, error: Mapping[str, str] | None = None
    ) -> EnvironmentRecord | None:
        """Apply the transition table's row for ``trigger`` and the current status; the new record."""
        record = self._repo.get(key)
        if record is None:
            return None
        changes = next_state(record, trigger, error)
        if changes is None:
            return record
        return self._change(key, expect={record.status}, **changes)

    def _change(
        self, key: EnvironmentKey, *, expect: set[str] | None = None, **changes: Any
    ) -> EnvironmentRecord | None:
        updated = self._repo.change(key, expect=expect, **changes)
        if updated is not None and "status" in changes:
            self.status_changes.changed(str(key))
        return updated

    # Specs ---------------------------------------------------------------------------------

    def home(self, record: EnvironmentRecord) -> Path:
        """The environment's private directory (its logs are in ``logs/``)."""
        return self._settings.environments_dir / record.key.account_id / record.key.region / record.name

    def spec(self, record: EnvironmentRecord) -> EnvironmentSpec:
        """What the supervisor must run for ``record``'s configuration."""
        config = record.config
        arn = str(config["SourceBucketArn"])

        def optional(member: str) -> Any:
            key = config.get(member)
            if not key:
                return None
            return self._source_path(arn, config, member, refresh=False)

        home = self.home(record)
        secrets = EnvironmentSecrets(**record.secrets)
        options = dict(config.get("AirflowConfigurationOptions") or {})
        environ = task_environment(
            secrets, name=record.name, api_url=self._settings.loopback_api_url, region=record.key.region
        )
        port = self._statsd_port() if self._statsd_port else None
        if port:
            environ.update(statsd_variables(port, statsd_prefix(secrets.token_secret), options))
        distributed = self._settings.distributed
        return EnvironmentSpec(
            key=str(record.key),
            name=record.name,
            airflow_version=str(config["AirflowVersion"]),
            home=home,
            dags_dir=self._sources.dags_dir(arn, str(config["DagS3Path"]), refresh=False),
            plugins_zip=optional("PluginsS3Path"),
            requirements_file=optional("RequirementsS3Path"),
            startup_script=optional("StartupScriptS3Path"),
            airflow_config=options,
            secrets=secrets,
            database_url=self._airflow_database_url(record.key),
            environment_class=_environment_class(config),
            logging_configuration=dict(config.get("LoggingConfiguration") or {}),
            web_servers=self._web_servers(config),
            task_environ=environ,
            celery=self._celery(record) if distributed else None,
            # Airflow's HA scheduling needs row locks SQLite does not have: one scheduler there.
            schedulers=int(config.get("Schedulers") or 1) if distributed else 1,
            workers=_workers(config),
        )

    def _celery(self, record: EnvironmentRecord) -> CeleryOptions:
        broker = self._backing.broker
        if not broker:
            raise ValidationError("Distributed mode has no Celery broker (OPENMWAA_CELERY_BROKER_URL).")
        return CeleryOptions(
            broker_url=broker, queue=celery_queue.queue_name(record), max_workers=_workers(record.config)[1]
        )

    def _web_servers(self, config: Mapping[str, Any]) -> tuple[int, int]:
        """(MinWebservers, MaxWebservers), within ``web_servers_limit`` if one is set."""
        low = int(config.get("MinWebservers") or 1)
        high = max(low, int(config.get("MaxWebservers") or low))
        limit = self._settings.web_servers_limit
        return (min(low, limit), min(high, limit)) if limit else (low, high)

    def _airflow_database_url(self, key: EnvironmentKey) -> str | None:
        """The environment's own database on the configured PostgreSQL server (psycopg2 driver).

        The runtime ships psycopg2; SQLAlchemy 2.1 would pick psycopg 3 for a bare
        ``postgresql://``, so the driver is named explicitly.
        """
        server = self._backing.database
        if not server:
            return None
        parts = urlsplit(server)
        if parts.scheme.split("+")[0] not in ("postgresql", "postgres"):
            raise ValidationError("OPENMWAA_AIRFLOW_DATABASE_URL must be a postgresql:// URL")
        digest = hashlib.sha256(str(key).encode()).hexdigest()[:10]
        database = f"openmwaa_{key.name.lower().replace('-', '_')[:40]}_{digest}"
        return urlunsplit(("postgresql+psycopg2", parts.netloc, f"/{database}", parts.query, ""))

    # Checks the model cannot express -------------------------------------------------------

    def _check_config(
        self, config: Mapping[str, Any], *, previous: Mapping[str, Any] | None, given: Mapping[str, Any]
    ) -> None:
        version = str(config["AirflowVersion"])
        if version not in SUPPORTED_VERSIONS:
            raise ValidationError(
                f"AirflowVersion {version} is not supported. "
                f"Supported versions: {', '.join(SUPPORTED_VERSIONS)}"
            )
        if previous is not None and previous.get("AirflowVersion") != version:
            old = str(previous["AirflowVersion"])
            if major(old) != major(version) or _version_tuple(version) < _version_tuple(old):
                raise ValidationError(
                    f"AirflowVersion cannot change from {old} to {version}: only upgrades within "
                    f"Airflow {major(old)} are supported."
                )
        options = config.get("AirflowConfigurationOptions") or {}
        reserved = sorted(k for k in options if k.lower() in RESERVED_CONFIGURATION_KEYS)
        if reserved:
            raise ValidationError(
                f"AirflowConfigurationOptions {', '.join(reserved)}: these options are managed by "
                "openmwaa and cannot be set."
            )
        environment_class.check(
            config, given=given, fallback="the default" if previous is None else "the current value"
        )
        arn = str(config["SourceBucketArn"])
        self._sources.require_bucket(arn)
        self._sources.dags_dir(arn, str(config["DagS3Path"]), refresh=True)
        for member in ("PluginsS3Path", "RequirementsS3Path", "StartupScriptS3Path"):
            key = config.get(member)
            pinned = config.get(sources.version_member(member))
            if pinned and not key:
                raise ValidationError(f"{sources.version_member(member)} is given without {member}.")
            if key:
                self._source_path(arn, config, member, refresh=True)

    def _source_path(self, arn: str, config: Mapping[str, Any], member: str, *, refresh: bool) -> Path:
        """The file of source ``member``: the version it pins (``*S3ObjectVersion``), else the current one."""
        version = config.get(sources.version_member(member))
        return self._sources.source_file(
            arn, str(config[member]), str(version) if version else None, member=member, refresh=refresh
        )

    @staticmethod
    def _check_tag_count(tags: Mapping[str, str]) -> None:
        if len(tags) > MAX_TAGS:
            raise ValidationError(f"Tags: an environment can have at most {MAX_TAGS} tags (got {len(tags)}).")


def _worker_replacement(params: Mapping[str, Any]) -> str:
    """The update's WorkerReplacementStrategy (the wire checked it already; other callers too)."""
    strategy = params.get("WorkerReplacementStrategy") or DEFAULT_WORKER_REPLACEMENT
    if strategy not in WORKER_REPLACEMENT_STRATEGIES:
        raise ValidationError(
            f"1 validation error detected: Value '{str(strategy)[:64]}' at 'workerReplacementStrategy' "
            f"failed to satisfy constraint: Member must satisfy enum value set: "
            f"[{', '.join(WORKER_REPLACEMENT_STRATEGIES)}]"
        )
    return str(strategy)


def _environment_class(config: Mapping[str, Any]) -> str:
    """The class Airflow is configured for. Records from before classes were checked may hold any
    string: they run as the default class until an update sets a valid one."""
    value = str(config.get("EnvironmentClass") or DEFAULT_ENVIRONMENT_CLASS)
    return value if value in CLASS_TASK_CONCURRENCY else DEFAULT_ENVIRONMENT_CLASS


def _workers(config: Mapping[str, Any]) -> tuple[int, int]:
    """(MinWorkers, MaxWorkers)."""
    low = int(config.get("MinWorkers") or 1)
    return low, max(low, int(config.get("MaxWorkers") or low))


def _replace_config(record: EnvironmentRecord, config: Mapping[str, Any]) -> EnvironmentRecord:
    return replace(record, config=config)


def _secrets_to_mapping(secrets: EnvironmentSecrets) -> dict[str, str]:
    return {k: str(v) for k, v in asdict(secrets).items()}


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def _decode_token(token: str) -> str:
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = value["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError) as exc:
        # RecursionError: a token that decodes to deeply nested JSON (found by the shape fuzz).
        raise ValidationError("NextToken is not a token this service issued.") from exc
    if not isinstance(after, str):
        raise ValidationError("NextToken is not a token this service issued.")
    return after
