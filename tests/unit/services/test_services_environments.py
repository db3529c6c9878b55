"""The environment lifecycle rules, with a recording supervisor (no Airflow: the e2e tests run it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from openmwaa.api.environments import describe
from openmwaa.backing import BackingUrls
from openmwaa.errors import ResourceNotFoundError, ValidationError
from openmwaa.metrics.statsd import statsd_prefix
from openmwaa.services.environments import EnvironmentService
from openmwaa.settings import Settings
from openmwaa.store.db import open_engine
from openmwaa.store.environments import EnvironmentRepository
from openmwaa.supervisor import EnvironmentEvent, EnvironmentSpec


class RecordingSupervisor:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def create(self, spec: EnvironmentSpec) -> None:
        self.calls.append(("create", spec))

    def update(
        self, spec: EnvironmentSpec, previous: EnvironmentSpec, *, worker_replacement: str = "FORCED"
    ) -> None:
        self.calls.append(("update", (spec, previous)))
        self.worker_replacement = worker_replacement

    def resume(self, spec: EnvironmentSpec) -> None:
        self.calls.append(("resume", spec))

    def delete(self, key: str, home: Any, database_url: str | None) -> None:
        self.calls.append(("delete", key))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "buckets" / "my-bucket").mkdir(parents=True)
    return Settings(data_dir=tmp_path)


@pytest.fixture
def supervisor() -> RecordingSupervisor:
    return RecordingSupervisor()


@pytest.fixture
def service(settings: Settings, supervisor: RecordingSupervisor) -> EnvironmentService:
    repo = EnvironmentRepository(open_engine(settings.state_database_url))
    return EnvironmentService(settings=settings, repository=repo, supervisor=supervisor, clock=lambda: 1000.0)


def params(name: str = "env", **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/x",
        "SourceBucketArn": "arn:aws:s3:::my-bucket",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["a", "b"], "SecurityGroupIds": ["sg"]},
        **extra,
    }


def test_create_fills_mwaa_defaults_and_starts_the_environment(
    service: EnvironmentService, supervisor: RecordingSupervisor, settings: Settings
) -> None:
    arn = service.create(params())
    assert arn == "arn:aws:airflow:us-east-1:123456789012:environment/env"
    record = service.get("env")
    assert record.status == "CREATING"
    assert record.config["AirflowVersion"] == "3.3.1"
    assert record.config["Schedulers"] == 2
    assert record.config["WebserverAccessMode"] == "PRIVATE_ONLY"
    kind, spec = supervisor.calls[0]
    assert kind == "create"
    assert spec.dags_dir == settings.buckets_dir / "my-bucket" / "dags"
    assert spec.dags_dir.is_dir()
    assert spec.database_url is None
    assert len(record.secrets["jwt_secret"]) >= 64


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"AirflowVersion": "1.10.12"}, "not supported"),
        ({"AirflowConfigurationOptions": {"core.fernet_key": "x"}}, "managed by openmwaa"),
        ({"AirflowConfigurationOptions": {"database.sql_alchemy_conn": "sqlite://"}}, "managed by openmwaa"),
        ({"MinWorkers": 5, "MaxWorkers": 2}, "minWorkers"),
        ({"MinWebservers": 3, "MaxWebservers": 2}, "minWebservers"),
        ({"EnvironmentClass": "foo"}, "environmentClass"),
        ({"EnvironmentClass": "mw1.micro", "Schedulers": 2}, "schedulers"),
        ({"SourceBucketArn": "arn:aws:s3:::no-such-bucket"}, "create"),
        ({"DagS3Path": "../escape"}, "DagS3Path"),
        ({"RequirementsS3Path": "requirements.txt"}, "RequirementsS3Path"),
        ({"PluginsS3Path": "plugins.zip"}, "PluginsS3Path"),
        ({"Tags": {f"k{i}": "v" for i in range(51)}}, "at most 50 tags"),
    ],
)
def test_invalid_configurations_are_refused_before_anything_is_stored(
    service: EnvironmentService, supervisor: RecordingSupervisor, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        service.create(params(**extra))
    assert supervisor.calls == []
    with pytest.raises(ResourceNotFoundError):
        service.get("env")


def test_duplicate_name_is_a_validation_error(service: EnvironmentService) -> None:
    service.create(params())
    with pytest.raises(ValidationError, match="already exists"):
        service.create(params())


def test_available_event_then_update_then_failure_rolls_back(
    service: EnvironmentService, supervisor: RecordingSupervisor
) -> None:
    service.create(params())
    key = str(service.key("env"))
    service.on_event(EnvironmentEvent(key, "available"))
    assert service.get("env").status == "AVAILABLE"
    assert service.get("env").last_update == {"Status": "SUCCESS", "CreatedAt": 1000.0, "Source": "CREATE"}

    service.update({"Name": "env", "AirflowConfigurationOptions": {"core.default_task_retries": "3"}})
    record = service.get("env")
    assert record.status == "UPDATING"
    kind, (new, old) = supervisor.calls[-1]
    assert kind == "update"
    assert new.airflow_config == {"core.default_task_retries": "3"}
    assert old.airflow_config == {}
    with pytest.raises(ValidationError, match="UPDATING"):
        service.update({"Name": "env", "MaxWorkers": 3})

    service.on_event(EnvironmentEvent(key, "update_failed", "pip said no", "REQUIREMENTS_INSTALL_FAILED"))
    record = service.get("env")
    assert record.status == "UPDATE_FAILED"
    assert record.config["AirflowConfigurationOptions"] == {}, "the previous configuration is back in force"
    assert record.last_update is not None
    assert record.last_update["Error"] == {
        "ErrorCode": "REQUIREMENTS_INSTALL_FAILED",
        "ErrorMessage": "pip said no",
    }


def test_unavailable_says_why_and_recovery_clears_it(
    service: EnvironmentService, caplog: pytest.LogCaptureFixture
) -> None:
    service.create(params())
    key = str(service.key("env"))
    service.on_event(EnvironmentEvent(key, "available"))
    before = service.get("env").last_update
    crashed = EnvironmentEvent(key, "unavailable", "Airflow scheduler keeps crashing", "COMPONENT_CRASHED")
    service.on_event(crashed)
    record = service.get("env")
    assert record.status == "UNAVAILABLE"
    assert record.last_update == {
        **(before or {}),
        "Error": {"ErrorCode": "COMPONENT_CRASHED", "ErrorMessage": "Airflow scheduler keeps crashing"},
    }
    assert "scheduler keeps crashing" in caplog.text
    service.on_event(EnvironmentEvent(key, "available"))
    assert service.get("env").status == "AVAILABLE"
    assert service.get("env").last_update == before


def test_a_crash_loop_after_a_failed_update_returns_to_update_failed(service: EnvironmentService) -> None:
    service.create(params())
    key = str(service.key("env"))
    service.on_event(EnvironmentEvent(key, "available"))
    service.update({"Name": "env", "MaxWorkers": 3})
    service.on_event(EnvironmentEvent(key, "update_failed", "pip said no", "REQUIREMENTS_INSTALL_FAILED"))
    failed = service.get("env").last_update
    assert failed is not None
    service.on_event(EnvironmentEvent(key, "unavailable", "scheduler keeps crashing", "COMPONENT_CRASHED"))
    record = service.get("env")
    assert record.status == "UNAVAILABLE"
    assert record.last_update is not None
    assert record.last_update["Error"]["ErrorCode"] == "COMPONENT_CRASHED"
    assert record.last_update == {**failed, "Error": record.last_update["Error"]}, "nothing else rides in it"
    assert record.failed_update_error == failed["Error"]
    shown = describe(record, account_id="123456789012", webserver_url=None)["LastUpdate"]
    assert shown == record.last_update
    service.on_event(EnvironmentEvent(key, "available"))
    record = service.get("env")
    assert record.status == "UPDATE_FAILED"
    assert record.last_update == failed


def test_after_a_restart_an_environment_is_maintenance_until_airflow_answers(
    service: EnvironmentService, supervisor: RecordingSupervisor
) -> None:
    service.create(params())
    key = str(service.key("env"))
    service.on_event(EnvironmentEvent(key, "available"))
    created = service.get("env").last_update
    supervisor.calls.clear()

    service.resume_all()  # openmwaa started again
    record = service.get("env")
    assert record.status == "MAINTENANCE"
    assert record.last_update == created
    assert [kind for kind, _ in supervisor.calls] == ["resume"]
    service.on_event(EnvironmentEvent(key, "available"))
    record = service.get("env")
    assert (record.status, record.last_update, record.resume_status) == ("AVAILABLE", created, None)


def test_a_crash_while_maintenance_comes_back_to_the_status_before(
    service: EnvironmentService, settings: Settings
) -> None:
    """The first restart's MAINTENANCE is persisted with the status to return to; a second
    restart before Airflow answered resumes it again and still returns there."""
    service.create(params())
    key = str(service.key("env"))
    service.on_event(EnvironmentEvent(key, "available"))
    service.update({"Name": "env", "MaxWorkers": 3})
    service.on_event(EnvironmentEvent(key, "update_failed", "pip said no", "REQUIREMENTS_INSTALL_FAILED"))
    failed = service.get("env").last_update
    service.resume_all()
    assert service.get("env").status == "MAINTENANCE"

    # openmwaa dies here; a new one opens the same store.
    again_supervisor = RecordingSupervisor()
    again = EnvironmentService(
        settings=settings,
        repository=EnvironmentRepository(open_engine(settings.state_database_url)),
        supervisor=again_supervisor,
        clock=lambda: 2000.0,
    )
    again.resume_all()
    assert [kind for kind, _ in again_supervisor.calls] == ["resume"]
    assert again.get("env").status == "MAINTENANCE"
    again.on_event(EnvironmentEvent(key, "available"))
    record = again.get("env")
    assert (record.status, record.last_update) == ("UPDATE_FAILED", failed)


def test_an_environment_that_does_not_start_again_is_unavailable_then_recovers(
    service: EnvironmentService,
) -> None:
    service.create(params())
    key = str(service.key("env"))
    service.on_event(EnvironmentEvent(key, "available"))
    service.update({"Name": "env", "MaxWorkers": 3})
    service.on_event(EnvironmentEvent(key, "update_failed", "pip said no", "REQUIREMENTS_INSTALL_FAILED"))
    failed = service.get("env").last_update
    assert failed is not None
    service.resume_all()
    service.on_event(EnvironmentEvent(key, "unavailable", "Airflow did not start", "STARTUP_TIMEOUT"))
    record = service.get("env")
    assert record.status == "UNAVAILABLE"
    assert record.last_update == {
        **failed,
        "Error": {"ErrorCode": "STARTUP_TIMEOUT", "ErrorMessage": "Airflow did not start"},
    }
    service.on_event(EnvironmentEvent(key, "available"))
    record = service.get("env")
    assert (record.status, record.last_update) == ("UPDATE_FAILED", failed)


def test_status_changes_wake_the_watch(service: EnvironmentService) -> None:
    service.create(params())
    key = str(service.key("env"))
    watch = service.status_changes
    seen = watch.generation(key)
    service.on_event(EnvironmentEvent(key, "progress", "installing"))
    assert watch.generation(key) == seen, "no status change, no wake-up"
    service.on_event(EnvironmentEvent(key, "available"))
    assert watch.generation(key) == seen + 1
    service.delete("env")
    service.on_event(EnvironmentEvent(key, "deleted"))
    assert watch.generation(key) == seen + 3


def test_create_failed_keeps_the_reason(service: EnvironmentService) -> None:
    service.create(params())
    service.on_event(EnvironmentEvent(str(service.key("env")), "create_failed", "boom", "STARTUP_TIMEOUT"))
    record = service.get("env")
    assert record.status == "CREATE_FAILED"
    assert record.last_update is not None
    assert record.last_update["Error"]["ErrorCode"] == "STARTUP_TIMEOUT"


def test_a_late_event_never_resurrects_a_deleted_environment(
    service: EnvironmentService, supervisor: RecordingSupervisor
) -> None:
    service.create(params())
    key = str(service.key("env"))
    service.delete("env")
    assert service.get("env").status == "DELETING"
    service.delete("env")  # idempotent while deleting
    assert [c[0] for c in supervisor.calls] == ["create", "delete"]
    service.on_event(EnvironmentEvent(key, "deleted"))
    service.on_event(EnvironmentEvent(key, "available"))
    with pytest.raises(ResourceNotFoundError):
        service.get("env")


def test_versions_only_upgrade_within_a_major(service: EnvironmentService) -> None:
    service.create(params(AirflowVersion="2.10.3"))
    service.on_event(EnvironmentEvent(str(service.key("env")), "available"))
    with pytest.raises(ValidationError, match="only upgrades"):
        service.update({"Name": "env", "AirflowVersion": "3.3.1"})
    with pytest.raises(ValidationError, match="only upgrades"):
        service.update({"Name": "env", "AirflowVersion": "2.9.2"})
    service.update({"Name": "env", "AirflowVersion": "2.11.2"})


def test_list_pages_with_opaque_tokens(service: EnvironmentService) -> None:
    for name in ("c", "a", "b"):
        service.create(params(name))
    names, token = service.list_names(max_results=2, next_token=None)
    assert names == ["a", "b"]
    assert token is not None
    rest, end = service.list_names(max_results=2, next_token=token)
    assert rest == ["c"]
    assert end is None
    with pytest.raises(ValidationError, match="NextToken"):
        service.list_names(max_results=2, next_token="garbage!!")


def test_tags(service: EnvironmentService) -> None:
    arn = service.create(params(Tags={"a": "1"}))
    service.tag(arn, {"b": "2"})
    service.untag(arn, ["a"])
    assert service.get_by_arn(arn).tags == {"b": "2"}
    with pytest.raises(ResourceNotFoundError):
        service.tag("arn:aws:airflow:us-east-1:123456789012:environment/nope", {"x": "y"})


def test_postgresql_database_per_environment(tmp_path: Path, supervisor: RecordingSupervisor) -> None:
    (tmp_path / "buckets" / "my-bucket").mkdir(parents=True)
    settings = Settings(data_dir=tmp_path, airflow_database_url="postgresql://u:p%40ss@db:5432/postgres")
    repo = EnvironmentRepository(open_engine(settings.state_database_url))
    service = EnvironmentService(settings=settings, repository=repo, supervisor=supervisor)
    service.create(params("My-Env"))
    url = supervisor.calls[0][1].database_url
    assert url.startswith("postgresql+psycopg2://u:p%40ss@db:5432/openmwaa_my_env_")


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ({}, ("mw1.small", 2, 2, 2, 1, 10)),
        ({"EnvironmentClass": "mw1.micro"}, ("mw1.micro", 1, 1, 1, 1, 1)),
        ({"EnvironmentClass": "mw1.2xlarge", "MaxWebservers": 5}, ("mw1.2xlarge", 2, 5, 2, 1, 10)),
    ],
)
def test_create_fills_the_class_and_its_counts_and_get_shows_them(
    service: EnvironmentService,
    supervisor: RecordingSupervisor,
    given: dict[str, Any],
    shown: tuple[Any, ...],
) -> None:
    service.create(params(**given))
    env = describe(service.get("env"), account_id="123456789012", webserver_url=None)
    members = ("EnvironmentClass", "MinWebservers", "MaxWebservers", "Schedulers", "MinWorkers", "MaxWorkers")
    assert tuple(env[m] for m in members) == shown
    assert supervisor.calls[0][1].environment_class == shown[0]


def test_update_checks_the_class_against_the_counts_in_force(
    service: EnvironmentService, supervisor: RecordingSupervisor
) -> None:
    service.create(params())
    service.on_event(EnvironmentEvent(str(service.key("env")), "available"))
    # mw1.micro with the two schedulers and web servers the environment has: refused, nothing changes.
    with pytest.raises(ValidationError) as exc:
        service.update({"Name": "env", "EnvironmentClass": "mw1.micro"})
    assert "Value '2' at 'schedulers' (the current value) failed to satisfy constraint" in str(exc.value)
    assert service.get("env").status == "AVAILABLE"
    assert service.get("env").config["EnvironmentClass"] == "mw1.small"
    with pytest.raises(ValidationError, match="at 'environmentClass' failed"):
        service.update({"Name": "env", "EnvironmentClass": "mw1.huge"})
    with pytest.raises(ValidationError, match="at 'minWorkers' failed"):
        service.update({"Name": "env", "MinWorkers": 11})  # above the MaxWorkers in force (10)
    # With the counts micro allows, in the same request: accepted, and the supervisor runs it.
    counts = dict.fromkeys(("Schedulers", "MinWebservers", "MaxWebservers", "MaxWorkers"), 1)
    service.update({"Name": "env", "EnvironmentClass": "mw1.micro", **counts})
    kind, (new, old) = supervisor.calls[-1]
    assert kind == "update"
    assert (new.environment_class, old.environment_class) == ("mw1.micro", "mw1.small")


def test_a_record_from_before_classes_were_checked_runs_as_the_default_class(
    service: EnvironmentService,
) -> None:
    service.create(params())
    record = service.get("env")
    legacy = replace(record, config={**record.config, "EnvironmentClass": "foo"})
    assert service.spec(legacy).environment_class == "mw1.small"


def test_every_environment_sends_statsd_to_the_receiver_under_its_own_prefix(
    settings: Settings, supervisor: RecordingSupervisor
) -> None:
    repo = EnvironmentRepository(open_engine(settings.state_database_url))
    service = EnvironmentService(
        settings=settings, repository=repo, supervisor=supervisor, statsd_port=lambda: 9125
    )
    service.create(params("one", AirflowVersion="2.11.2"))
    service.create(
        params("two", AirflowVersion="2.11.2", AirflowConfigurationOptions={"metrics.statsd_on": "False"})
    )
    service.create(params("three"))  # Airflow 3 as well
    service.create(params("four", AirflowConfigurationOptions={"metrics.statsd_on": "False"}))
    (_, one), (_, two), (_, three), (_, four) = supervisor.calls
    assert one.task_environ["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert one.task_environ["AIRFLOW__METRICS__STATSD_HOST"] == "127.0.0.1"
    assert one.task_environ["AIRFLOW__METRICS__STATSD_PORT"] == "9125"
    assert one.task_environ["AIRFLOW__METRICS__STATSD_PREFIX"] == statsd_prefix(one.secrets.token_secret)
    assert (
        two.task_environ["AIRFLOW__METRICS__STATSD_PREFIX"]
        != one.task_environ["AIRFLOW__METRICS__STATSD_PREFIX"]
    )
    # metrics.statsd_on stays the user's to turn off; where metrics go is not theirs to choose.
    assert "AIRFLOW__METRICS__STATSD_ON" not in two.task_environ
    assert three.task_environ["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert three.task_environ["AIRFLOW__METRICS__STATSD_PREFIX"] == statsd_prefix(three.secrets.token_secret)
    assert "AIRFLOW__METRICS__STATSD_ON" not in four.task_environ
    with pytest.raises(ValidationError, match="managed by openmwaa"):
        service.create(params("five", AirflowConfigurationOptions={"metrics.statsd_host": "10.0.0.1"}))


@pytest.mark.parametrize(
    ("given", "used"), [({"WorkerReplacementStrategy": "GRACEFUL"}, "GRACEFUL"), ({}, "FORCED")]
)
def test_the_worker_replacement_strategy_is_the_updates_own(
    service: EnvironmentService, supervisor: RecordingSupervisor, given: dict[str, str], used: str
) -> None:
    service.create(params())
    key = str(service.key("env"))
    service.on_event(EnvironmentEvent(key, "available"))
    service.update({"Name": "env", "MaxWorkers": 3, **given})
    record = service.get("env")
    assert record.last_update == {
        "Status": "PENDING",
        "CreatedAt": 1000.0,
        "Source": "UPDATE",
        "WorkerReplacementStrategy": used,
    }
    assert supervisor.worker_replacement == used
    # Not configuration: the next update has its own.
    assert "WorkerReplacementStrategy" not in record.config
    service.on_event(EnvironmentEvent(key, "available"))
    assert service.get("env").last_update["WorkerReplacementStrategy"] == used  # type: ignore[index]
    shown = describe(service.get("env"), account_id="123456789012", webserver_url=None)
    assert shown["LastUpdate"]["WorkerReplacementStrategy"] == used


def test_an_unknown_worker_replacement_strategy_is_refused_before_anything_changes(
    service: EnvironmentService, supervisor: RecordingSupervisor
) -> None:
    service.create(params())
    service.on_event(EnvironmentEvent(str(service.key("env")), "available"))
    before = service.get("env")
    with pytest.raises(ValidationError, match="workerReplacementStrategy"):
        service.update({"Name": "env", "MaxWorkers": 3, "WorkerReplacementStrategy": "graceful"})
    assert service.get("env") == before
    assert [kind for kind, _ in supervisor.calls] == ["create"]


def test_an_interrupted_update_resumes_with_its_strategy(
    settings: Settings, service: EnvironmentService, supervisor: RecordingSupervisor
) -> None:
    service.create(params())
    service.on_event(EnvironmentEvent(str(service.key("env")), "available"))
    service.update({"Name": "env", "MaxWorkers": 3, "WorkerReplacementStrategy": "GRACEFUL"})
    supervisor.worker_replacement = "none yet"
    service.resume_all()  # openmwaa restarted while the update was under way
    assert supervisor.calls[-1][0] == "update"
    assert supervisor.worker_replacement == "GRACEFUL"


def distributed_service(tmp_path: Path, supervisor: RecordingSupervisor) -> EnvironmentService:
    (tmp_path / "buckets" / "my-bucket").mkdir(parents=True)
    settings = Settings(data_dir=tmp_path, executor="celery")
    repo = EnvironmentRepository(open_engine(settings.state_database_url))
    backing = BackingUrls(
        database="postgresql://openmwaa:pw@127.0.0.1:5999/postgres", broker="redis://:pw@h:1/0"
    )
    return EnvironmentService(
        settings=settings, repository=repo, supervisor=supervisor, clock=lambda: 1000.0, backing=backing
    )


def test_distributed_mode_runs_celery_with_the_counts_of_the_configuration(
    tmp_path: Path, supervisor: RecordingSupervisor
) -> None:
    service = distributed_service(tmp_path, supervisor)
    service.create(params("a", Schedulers=3, MinWorkers=2, MaxWorkers=6))
    spec = supervisor.calls[0][1]
    assert spec.database_url.startswith("postgresql+psycopg2://openmwaa:pw@127.0.0.1:5999/openmwaa_a_")
    assert spec.celery is not None and spec.celery.broker_url == "redis://:pw@h:1/0"
    assert (spec.schedulers, spec.workers, spec.celery.max_workers) == (3, (2, 6), 6)
    # The queue is GetEnvironment's CeleryExecutorQueue, the same every time it is asked for.
    shown = describe(service.get("a"), account_id="123456789012", webserver_url=None)["CeleryExecutorQueue"]
    assert shown == f"arn:aws:sqs:us-east-1:123456789012:{spec.celery.queue}"
    assert service.spec(service.get("a")).celery == spec.celery
    service.create(params("b"))
    assert supervisor.calls[1][1].celery.queue != spec.celery.queue


def test_local_mode_runs_one_scheduler_and_no_celery(
    service: EnvironmentService, supervisor: RecordingSupervisor
) -> None:
    service.create(params(Schedulers=3))
    spec = supervisor.calls[0][1]
    assert (spec.celery, spec.schedulers) == (None, 1)
