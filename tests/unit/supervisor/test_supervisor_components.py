from __future__ import annotations

from pathlib import Path

from openmwaa.runtime.installer import Runtime
from openmwaa.supervisor.components import (
    components_for,
    components_to_restart,
    web_env_changed,
    worker_env_changed,
)


def runtime(major: int) -> Runtime:
    root = Path(f"/rt/{major}")
    return Runtime(f"{major}.0.0", major, root, root / "bin" / "python", root / "bin")


def test_airflow3_components() -> None:
    specs = components_for(runtime(3), [18080])
    assert [s.name for s in specs] == ["api-server", "scheduler", "dag-processor", "triggerer"]
    api = specs[0]
    assert api.serves_api
    assert api.argv == (
        "/rt/3/bin/python",
        "-m",
        "airflow",
        "api-server",
        "--host",
        "127.0.0.1",
        "--port",
        "18080",
    )


def test_airflow2_components() -> None:
    specs = components_for(runtime(2), [18080])
    assert [s.name for s in specs] == ["webserver", "scheduler", "triggerer"]
    assert "--hostname" in specs[0].argv and "127.0.0.1" in specs[0].argv


def test_nothing_changed_restarts_nothing() -> None:
    env = {"AIRFLOW__CORE__PARALLELISM": "4"}
    assert components_to_restart(env, dict(env), components_for(runtime(3), [1]), same_runtime=True) == []


def test_web_only_change_restarts_the_web_server_only() -> None:
    specs = components_for(runtime(3), [1])
    old = {"AIRFLOW__API__WORKERS": "1", "AIRFLOW__CORE__PARALLELISM": "4"}
    new = {"AIRFLOW__API__WORKERS": "2", "AIRFLOW__CORE__PARALLELISM": "4"}
    assert components_to_restart(old, new, specs, same_runtime=True) == ["api-server"]


def test_other_changes_restart_everything() -> None:
    specs = components_for(runtime(2), [1])
    old = {"AIRFLOW__CORE__PARALLELISM": "4"}
    new = {"AIRFLOW__CORE__PARALLELISM": "8", "AIRFLOW__WEBSERVER__WORKERS": "2"}
    assert components_to_restart(old, new, specs, same_runtime=True) == [
        "webserver",
        "scheduler",
        "triggerer",
    ]
    assert components_to_restart(old, {**old, "MY_VAR": "1"}, specs, same_runtime=True) == [
        "webserver",
        "scheduler",
        "triggerer",
    ]


def test_new_runtime_restarts_everything() -> None:
    specs = components_for(runtime(3), [1])
    assert len(components_to_restart({}, {}, specs, same_runtime=False)) == 4


def test_replicas_of_a_kind_each_get_a_name_and_the_web_servers_a_port() -> None:
    specs = components_for(runtime(3), [18080, 18081], {"scheduler": 2})
    assert [s.name for s in specs] == [
        "api-server",
        "api-server-1",
        "scheduler",
        "scheduler-1",
        "dag-processor",
        "triggerer",
    ]
    assert [(s.kind, s.index, s.port) for s in specs[:2]] == [
        ("api-server", 0, 18080),
        ("api-server", 1, 18081),
    ]
    assert specs[1].argv[-1] == "18081" and specs[1].serves_api
    assert specs[2].argv == specs[3].argv and specs[3].kind == "scheduler"


def test_distributed_mode_adds_schedulers_and_celery_workers() -> None:
    specs = components_for(runtime(3), [18080], {"scheduler": 2, "worker": 2}, worker_group="q-1")
    assert [s.name for s in specs] == [
        "api-server",
        "scheduler",
        "scheduler-1",
        "dag-processor",
        "triggerer",
        "worker",
        "worker-1",
    ]
    workers = [s for s in specs if s.kind == "worker"]
    assert workers[1].argv[3:] == (
        "celery",
        "worker",
        "--skip-serve-logs",
        "--celery-hostname",
        "worker-1@q-1",
        "--pid",
        "airflow-worker-1.pid",
        "--without-mingle",
        "--without-gossip",
    )
    assert not any(s.serves_api for s in workers)


def test_no_workers_outside_distributed_mode() -> None:
    assert all(s.kind != "worker" for s in components_for(runtime(2), [1], {"worker": 3}))


def test_a_worker_only_option_replaces_the_workers_only() -> None:
    specs = components_for(runtime(3), [1], {"worker": 2}, worker_group="q")
    old = {"AIRFLOW__CORE__PARALLELISM": "10"}
    new = {**old, "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1"}
    assert components_to_restart(old, new, specs, same_runtime=True) == ["worker", "worker-1"]
    new["AIRFLOW__CELERY__BROKER_URL"] = "redis://elsewhere"  # the scheduler sends tasks there too
    assert len(components_to_restart(old, new, specs, same_runtime=True)) == len(specs)


def test_the_web_servers_and_workers_own_environments_ignore_the_others_options() -> None:
    """Each kind's environment holds every option: a worker-only one changes the web servers'
    too, yet they need no restart for it (and the other way round)."""
    base = {"AIRFLOW__CORE__PARALLELISM": "10", "AIRFLOW__API__WORKERS": "1"}
    worker_only = {**base, "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1"}
    api_only = {**base, "AIRFLOW__API__WORKERS": "2"}
    both = {**base, "AIRFLOW__CORE__PARALLELISM": "20"}
    assert not web_env_changed(base, worker_only) and worker_env_changed(base, worker_only)
    assert web_env_changed(base, api_only) and not worker_env_changed(base, api_only)
    assert web_env_changed(base, both) and worker_env_changed(base, both)
    assert not web_env_changed(base, dict(base)) and not worker_env_changed(base, dict(base))
