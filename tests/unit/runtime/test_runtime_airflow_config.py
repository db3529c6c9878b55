from __future__ import annotations

from pathlib import Path

import pytest

from openmwaa.runtime.airflow_config import (
    AIRFLOW2_AUTH_BACKEND,
    AIRFLOW3_AUTH_MANAGER,
    CLASS_TASK_CONCURRENCY,
    RESERVED_CONFIGURATION_KEYS,
    CeleryOptions,
    Ports,
    airflow_environment,
    airflow_plugin_dir,
    component_environment,
    default_options,
    env_name,
    startup_overrides,
)
from openmwaa.runtime.secrets import EnvironmentSecrets

SECRETS = EnvironmentSecrets(
    jwt_secret="j" * 86, fernet_key="f" * 44, webserver_secret_key="w" * 43, token_secret="t" * 64
)
PORTS = Ports(api=18080, worker_log=18793, trigger_log=18794)


def build(major: int, tmp_path: Path, **overrides: object) -> dict[str, str]:
    kwargs: dict[str, object] = {
        "major": major,
        "home": tmp_path / "home",
        "dags_dir": tmp_path / "dags",
        "plugins_dir": tmp_path / "home" / "plugins" / "empty",
        "database_url": None,
        "secrets": SECRETS,
        "ports": PORTS,
        "options": {},
    }
    kwargs.update(overrides)
    return airflow_environment(**kwargs)  # type: ignore[arg-type]


def option_of(variable: str) -> str:
    _, section, key = variable.split("__", 2)
    return f"{section.lower()}.{key.lower()}"


@pytest.mark.parametrize("major", [2, 3])
def test_paths_database_and_secrets(major: int, tmp_path: Path) -> None:
    env = build(major, tmp_path)
    home = (tmp_path / "home").resolve()
    assert env["AIRFLOW_HOME"] == str(home)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str((tmp_path / "dags").resolve())
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(home / "plugins" / "empty")
    # An absolute path (four slashes), and a busy timeout longer than sqlite3's 5 s default.
    conn = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert conn == f"sqlite:////{str(home / 'airflow.db').lstrip('/')}?timeout=30"
    assert env["AIRFLOW__CORE__FERNET_KEY"] == SECRETS.fernet_key
    assert env["AIRFLOW__WEBSERVER__SECRET_KEY"] == SECRETS.webserver_secret_key
    assert env["OPENMWAA_TOKEN_SECRET"] == SECRETS.token_secret
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "18793"
    assert env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "18794"


def test_airflow3_specifics(tmp_path: Path) -> None:
    env = build(3, tmp_path)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == AIRFLOW3_AUTH_MANAGER
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == SECRETS.jwt_secret
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "18080"
    assert env["AIRFLOW__API__WORKERS"] == "1"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert int(env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"]) <= 10
    assert env["AIRFLOW__CORE__PARALLELISM"] == "5"  # mw1.small, MWAA's default class
    assert not any(k.startswith("AIRFLOW__WEBSERVER__WEB_SERVER") for k in env)
    assert "AIRFLOW__API__AUTH_BACKENDS" not in env


def test_airflow2_specifics(tmp_path: Path) -> None:
    env = build(2, tmp_path)
    assert env["AIRFLOW__API__AUTH_BACKENDS"] == AIRFLOW2_AUTH_BACKEND
    assert env["AIRFLOW__WEBSERVER__WEB_SERVER_HOST"] == "127.0.0.1"
    assert env["AIRFLOW__WEBSERVER__WEB_SERVER_PORT"] == "18080"
    assert env["AIRFLOW__WEBSERVER__WORKERS"] == "1"
    assert int(env["AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL"]) <= 10
    assert "AIRFLOW__CORE__AUTH_MANAGER" not in env
    assert "AIRFLOW__API_AUTH__JWT_SECRET" not in env
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" not in env


def test_airflow2_on_sqlite_uses_the_sequential_executor(tmp_path: Path) -> None:
    # Airflow 2 refuses LocalExecutor with SQLite; with PostgreSQL it runs tasks in parallel.
    assert build(2, tmp_path)["AIRFLOW__CORE__EXECUTOR"] == "SequentialExecutor"
    pg = build(2, tmp_path, database_url="postgresql://u:p@127.0.0.1:5432/openmwaa_x")
    assert pg["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert pg["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql://u:p@127.0.0.1:5432/openmwaa_x"


@pytest.mark.parametrize("major", [2, 3])
def test_plugin_dir_comes_first_on_pythonpath_and_the_plugins_folder_last(major: int, tmp_path: Path) -> None:
    site = tmp_path / "home" / "site" / "abc"
    env = build(major, tmp_path, python_path=(site,))
    plugins = (tmp_path / "home" / "plugins" / "empty").resolve()
    assert env["PYTHONPATH"].split(":") == [str(airflow_plugin_dir()), str(site), str(plugins)]
    assert (airflow_plugin_dir() / "openmwaa_airflow").is_dir()


def test_user_options_become_variables_and_override_tuned_defaults(tmp_path: Path) -> None:
    env = build(3, tmp_path, options={"core.default_task_retries": "1", "core.parallelism": "16"})
    assert env["AIRFLOW__CORE__DEFAULT_TASK_RETRIES"] == "1"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "16"


#: MWAA's user guide (environment-class.html): "N concurrent tasks (by default)" per class.
GUIDE_CONCURRENCY = {
    "mw1.micro": 3,
    "mw1.small": 5,
    "mw1.medium": 10,
    "mw1.large": 20,
    "mw1.xlarge": 40,
    "mw1.2xlarge": 80,
}


def test_the_class_table_is_mwaas() -> None:
    assert dict(CLASS_TASK_CONCURRENCY) == GUIDE_CONCURRENCY


@pytest.mark.parametrize("major", [2, 3])
@pytest.mark.parametrize(("environment_class", "tasks"), sorted(GUIDE_CONCURRENCY.items()))
def test_the_class_sets_core_parallelism(
    major: int, environment_class: str, tasks: int, tmp_path: Path
) -> None:
    env = build(major, tmp_path, environment_class=environment_class)
    assert env["AIRFLOW__CORE__PARALLELISM"] == str(tasks)
    assert "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG" not in env  # Airflow's default: MWAA keeps it too


@pytest.mark.parametrize("option", ["core.parallelism", "CORE.PARALLELISM"])
def test_airflow_configuration_options_override_the_class(option: str, tmp_path: Path) -> None:
    env = build(3, tmp_path, environment_class="mw1.2xlarge", options={option: "7"})
    assert env["AIRFLOW__CORE__PARALLELISM"] == "7"


def test_an_unknown_class_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"mw1\.huge"):
        build(3, tmp_path, environment_class="mw1.huge")


@pytest.mark.parametrize(
    "option", ["core.executor", "database.sql_alchemy_conn", "Core.Fernet_Key", "api.port"]
)
def test_reserved_options_are_refused(option: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="managed by openmwaa"):
        build(3, tmp_path, options={option: "x"})


@pytest.mark.parametrize("major", [2, 3])
def test_every_variable_is_either_owned_or_a_tuned_default(major: int, tmp_path: Path) -> None:
    env = build(major, tmp_path)
    tunable = set(default_options(major))
    for variable in env:
        if variable.startswith("AIRFLOW__"):
            option = option_of(variable)
            assert option in RESERVED_CONFIGURATION_KEYS or option in tunable, option
    # and nothing openmwaa needs to own is left tunable
    assert not tunable & RESERVED_CONFIGURATION_KEYS


def test_reserved_keys_cover_what_the_brief_names() -> None:
    for key in (
        "core.executor",
        "database.sql_alchemy_conn",
        "core.sql_alchemy_conn",
        "core.fernet_key",
        "api_auth.jwt_secret",
        "webserver.secret_key",
        "api.secret_key",
        "core.dags_folder",
        "core.plugins_folder",
        "core.auth_manager",
        "api.auth_backends",
        "api.host",
        "api.port",
        "webserver.web_server_port",
        "webserver.web_server_host",
        "core.execution_api_server_url",
        "logging.worker_log_server_port",
        "logging.base_log_folder",
        "metrics.statsd_host",
        "metrics.statsd_port",
        "metrics.statsd_prefix",
    ):
        assert key in RESERVED_CONFIGURATION_KEYS


def test_configuration_is_deterministic(tmp_path: Path) -> None:
    assert build(3, tmp_path) == build(3, tmp_path)


def test_unsupported_major(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not supported"):
        build(1, tmp_path)


@pytest.mark.parametrize("bad", ["core", ".x", "x.", ""])
def test_env_name_needs_section_and_key(bad: str) -> None:
    with pytest.raises(ValueError):
        env_name(bad)


def test_env_name() -> None:
    assert env_name("core.default_task_retries") == "AIRFLOW__CORE__DEFAULT_TASK_RETRIES"


def test_startup_exports_cannot_touch_owned_variables() -> None:
    owned = {"AIRFLOW__CORE__DAGS_FOLDER": "/d", "PYTHONPATH": "/p", "AIRFLOW_HOME": "/h"}
    exports = {
        "AIRFLOW__CORE__DAGS_FOLDER": "/evil",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////evil",
        "AIRFLOW__CORE__FERNET_KEY": "k",
        "PYTHONPATH": "/evil",
        "AIRFLOW_HOME": "/evil",
        "OPENMWAA_TOKEN_SECRET": "s",
        "MWAA__AIRFLOW__COMPONENT": "x",
        "SHLVL": "2",
        "MY_VAR": "ok",
        "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "3",
        "JAVA_HOME": "/jdk",
    }
    assert startup_overrides(exports, owned) == {
        "MY_VAR": "ok",
        "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "3",
        "JAVA_HOME": "/jdk",
    }


def test_startup_exports_may_change_tuned_defaults_but_not_the_users_options(tmp_path: Path) -> None:
    airflow_env = build(3, tmp_path, options={"core.default_task_retries": "2"})
    exports = {"AIRFLOW__CORE__PARALLELISM": "8", "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "5"}
    env = component_environment({}, airflow_env, exports, Path("/rt/bin"))
    assert airflow_env["AIRFLOW__CORE__PARALLELISM"] == "5"  # mw1.small's
    assert env["AIRFLOW__CORE__PARALLELISM"] == "8"  # a default, not the user's option: the script's call
    assert env["AIRFLOW__CORE__DEFAULT_TASK_RETRIES"] == "2"  # the user's AirflowConfigurationOptions win


@pytest.mark.parametrize("environment_class", sorted(GUIDE_CONCURRENCY))
def test_startup_exports_may_change_the_class_concurrency_but_not_the_users(
    environment_class: str, tmp_path: Path
) -> None:
    exports = {"AIRFLOW__CORE__PARALLELISM": "2"}
    by_class = build(3, tmp_path, environment_class=environment_class)
    assert component_environment({}, by_class, exports, Path("/rt/bin"))["AIRFLOW__CORE__PARALLELISM"] == "2"
    by_user = build(3, tmp_path, environment_class=environment_class, options={"core.parallelism": "6"})
    assert component_environment({}, by_user, exports, Path("/rt/bin"))["AIRFLOW__CORE__PARALLELISM"] == "6"


def test_component_environment_layers(tmp_path: Path) -> None:
    airflow_env = build(3, tmp_path)
    base = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW_HOME": "/elsewhere",
        "OPENMWAA_BOOTSTRAP_SECRET_ACCESS_KEY": "secret",
        "VIRTUAL_ENV": "/work/main/.venv",
        "PYTHONPATH": "/somewhere",
        "LANG": "C.UTF-8",
        "LC_TIME": "de_DE.UTF-8",
        "TZ": "Europe/Paris",
    }
    env = component_environment(base, airflow_env, {"MY_VAR": "1", "AIRFLOW_HOME": "/x"}, Path("/rt/bin"))
    assert env["HOME"] == airflow_env["AIRFLOW_HOME"]  # the environment's home, not the operator's
    assert (env["LANG"], env["LC_TIME"], env["TZ"]) == ("C.UTF-8", "de_DE.UTF-8", "Europe/Paris")
    assert env["MY_VAR"] == "1"
    assert env["PATH"] == "/rt/bin:/usr/bin"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW_HOME"] == airflow_env["AIRFLOW_HOME"]
    assert env["PYTHONPATH"] == airflow_env["PYTHONPATH"]
    assert "OPENMWAA_BOOTSTRAP_SECRET_ACCESS_KEY" not in env
    assert "VIRTUAL_ENV" not in env


def test_component_environment_keeps_only_the_allow_list(tmp_path: Path) -> None:
    airflow_env = build(3, tmp_path)
    secrets = {
        "AWS_SECRET_ACCESS_KEY": "s1",
        "AWS_SESSION_TOKEN": "s2",
        "AWS_PROFILE": "prod",
        "PGPASSWORD": "s3",
        "PGSERVICEFILE": "/root/.pg_service.conf",
        "SOME_TOKEN": "s4",
        "GITHUB_TOKEN": "s5",
        "DATABASE_URL": "postgresql://u:p@h/d",
        "SSH_AUTH_SOCK": "/tmp/agent",
        "LD_PRELOAD": "/tmp/x.so",
        "PYTHONSTARTUP": "/root/startup.py",
        "USER": "root",
    }
    env = component_environment({"PATH": "/usr/bin", **secrets}, airflow_env, {}, Path("/rt/bin"))
    assert not secrets.keys() & env.keys()
    assert set(env) - set(airflow_env) == {"PATH", "HOME"}


def test_secrets_are_strong_and_hidden() -> None:
    secrets = EnvironmentSecrets.generate()
    assert len(secrets.jwt_secret.encode()) >= 64
    assert secrets != EnvironmentSecrets.generate()
    text = repr(secrets)
    for value in (secrets.jwt_secret, secrets.fernet_key, secrets.webserver_secret_key, secrets.token_secret):
        assert value not in text
    from cryptography.fernet import Fernet

    Fernet(secrets.fernet_key.encode())  # a valid Fernet key


@pytest.mark.parametrize("major", [2, 3])
def test_a_secrets_backend_is_the_users_to_choose(major: int, tmp_path: Path) -> None:
    # MWAA documents SecretsManagerBackend through these two options.
    backend = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    kwargs = '{"connections_prefix": "airflow/connections"}'
    env = build(major, tmp_path, options={"secrets.backend": backend, "secrets.backend_kwargs": kwargs})
    assert env["AIRFLOW__SECRETS__BACKEND"] == backend
    assert env["AIRFLOW__SECRETS__BACKEND_KWARGS"] == kwargs
    assert "secrets.backend" not in RESERVED_CONFIGURATION_KEYS


CELERY = CeleryOptions(
    broker_url="redis://:pw@127.0.0.1:6390/0",
    queue="airflow-celery-00000000-0000-0000-0000-000000000001",
    max_workers=4,
)
PG = "postgresql+psycopg2://u:p@127.0.0.1:5432/openmwaa_env_1"


@pytest.mark.parametrize("major", [2, 3])
def test_distributed_mode_runs_celery_on_the_environments_queue(major: int, tmp_path: Path) -> None:
    env = build(major, tmp_path, database_url=PG, celery=CELERY, environment_class="mw1.medium")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == CELERY.broker_url
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{PG}"
    # The environment's own queue, and every Redis key and channel under its name.
    assert env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == CELERY.queue
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] == f"{CELERY.queue}:"
    # The class's concurrency is each worker's; parallelism covers MaxWorkers of them.
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "10"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "40"


def test_distributed_mode_options_the_user_may_and_may_not_set(tmp_path: Path) -> None:
    env = build(
        3,
        tmp_path,
        database_url=PG,
        celery=CELERY,
        options={"celery.worker_autoscale": "8,2", "celery.worker_concurrency": "7"},
    )
    assert env["AIRFLOW__CELERY__WORKER_AUTOSCALE"] == "8,2"
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "7"
    for reserved in ("celery.broker_url", "celery.result_backend", "operators.default_queue"):
        assert reserved in RESERVED_CONFIGURATION_KEYS
        with pytest.raises(ValueError, match="managed by openmwaa"):
            build(3, tmp_path, database_url=PG, celery=CELERY, options={reserved: "x"})


def test_distributed_mode_needs_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        build(3, tmp_path, celery=CELERY)


def test_the_broker_password_stays_out_of_reprs() -> None:
    assert "pw@" not in repr(CELERY)


def test_airflow2_workers_get_celerys_configuration_with_the_task_name_fix(tmp_path: Path) -> None:
    env = build(2, tmp_path, database_url=PG, celery=CELERY)
    assert env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == "openmwaa_airflow.celery_config.CELERY_CONFIG"
    assert (airflow_plugin_dir() / "openmwaa_airflow" / "celery_tasks.py").is_file()


def test_airflow3_workers_get_celerys_configuration_with_the_task_exit_fix(tmp_path: Path) -> None:
    env = build(3, tmp_path, database_url=PG, celery=CELERY)
    assert (
        env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"]
        == "openmwaa_airflow.celery_config.AIRFLOW3_CELERY_CONFIG"
    )
    assert (airflow_plugin_dir() / "openmwaa_airflow" / "celery_task_exit.py").is_file()
    assert "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS" not in build(3, tmp_path)  # local mode: no Celery
