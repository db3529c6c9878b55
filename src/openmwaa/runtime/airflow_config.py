"""The configuration of one environment's Airflow processes, as ``AIRFLOW__SECTION__KEY`` variables.

Pure functions: the same inputs give the same variables, so tests pin every rule down and the
supervisor can tell whether a change needs a restart by comparing two results. Three layers,
later ones winning:

1. defaults the user may override through AirflowConfigurationOptions: ``TUNED_DEFAULTS``, small
   settings for a 2-core machine (Airflow's defaults start dozens of processes), and the task
   concurrency of the environment class (``CLASS_TASK_CONCURRENCY``).
2. the user's AirflowConfigurationOptions.
3. what openmwaa owns (paths, database, secrets, ports, executor, auth): ``RESERVED_CONFIGURATION_KEYS``
   names them, the API rejects them, and they are applied last anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from openmwaa.runtime.inherited_env import DEFAULT_PATH, inherited_environment
from openmwaa.runtime.secrets import EnvironmentSecrets

AIRFLOW3_AUTH_MANAGER: Final = "openmwaa_airflow.auth_manager.OpenMwaaAuthManager"
AIRFLOW2_AUTH_BACKEND: Final = "openmwaa_airflow.auth_backend"
#: Airflow 2's ``webserver_config.py``: signs the web UI in from openmwaa's proxied web sessions.
AIRFLOW2_WEBSERVER_CONFIG: Final = "openmwaa_airflow/web_login.py"
LOOPBACK: Final = "127.0.0.1"

#: ``section.key`` options openmwaa sets itself; AirflowConfigurationOptions may not name them.
RESERVED_CONFIGURATION_KEYS: Final = frozenset(
    {
        "core.executor",
        "core.dags_folder",
        "core.plugins_folder",
        "core.fernet_key",
        "core.sql_alchemy_conn",
        "core.auth_manager",
        "core.execution_api_server_url",
        "core.internal_api_url",
        "core.hostname_callable",
        "database.sql_alchemy_conn",
        "database.sql_alchemy_conn_cmd",
        "database.sql_alchemy_conn_secret",
        "api_auth.jwt_secret",
        "api_auth.jwt_private_key_path",
        "api_auth.jwt_algorithm",
        "api_auth.jwt_audience",
        "api_auth.jwt_issuer",
        "api_auth.trusted_jwks_url",
        "api.secret_key",
        "api.host",
        "api.port",
        "api.auth_backends",
        "api.ssl_cert",
        "api.ssl_key",
        "webserver.secret_key",
        "webserver.web_server_host",
        "webserver.web_server_port",
        "webserver.web_server_ssl_cert",
        "webserver.web_server_ssl_key",
        "webserver.base_url",
        "webserver.auth_backend",
        "webserver.config_file",
        "fab.auth_backends",
        "logging.base_log_folder",
        "logging.worker_log_server_port",
        "logging.trigger_log_server_port",
        "logging.logging_config_class",
        "logging.dag_processor_child_process_log_directory",
        "scheduler.child_process_log_directory",
        "scheduler.scheduler_health_check_server_port",
        "scheduler.scheduler_health_check_server_host",
        # Where Airflow's StatsD metrics go, and the prefix that says whose they are.
        "metrics.statsd_host",
        "metrics.statsd_port",
        "metrics.statsd_prefix",
        # Distributed mode: the broker, the result backend and the environment's own queue.
        "celery.broker_url",
        "celery.broker_url_cmd",
        "celery.broker_url_secret",
        "celery.result_backend",
        "celery.result_backend_cmd",
        "celery.result_backend_secret",
        "operators.default_queue",
        "celery_broker_transport_options.global_keyprefix",
    }
)

#: MWAA's environment classes -> how many tasks one runs at once by default. MWAA's user guide,
#: "Configuring the Amazon MWAA environment class" (environment-class.html), lists "N concurrent
#: tasks (by default)" per class: micro 3, small 5, medium 10, large 20, xlarge 40, 2xlarge 80.
#: On MWAA that is one Celery worker's concurrency (``celery.worker_autoscale``). Here one
#: LocalExecutor on the scheduler runs every task, each in its own process, at most
#: ``core.parallelism`` of them at once, so the class sets ``core.parallelism``: the same number
#: of task slots a single MWAA worker of that class has (the MaxWorkers multiple is not modeled:
#: one machine runs one executor). ``max_active_tasks_per_dag`` keeps Airflow's default of 16;
#: MWAA does not tie it to the class. Airflow 2 on SQLite runs the SequentialExecutor, which
#: runs one task at a time whatever the setting says.
CLASS_TASK_CONCURRENCY: Final[Mapping[str, int]] = {
    "mw1.micro": 3,
    "mw1.small": 5,
    "mw1.medium": 10,
    "mw1.large": 20,
    "mw1.xlarge": 40,
    "mw1.2xlarge": 80,
}
#: MWAA's default EnvironmentClass (CreateEnvironment without one).
DEFAULT_ENVIRONMENT_CLASS: Final = "mw1.small"
#: The Airflow option the class's task concurrency sets.
TASK_CONCURRENCY_OPTION: Final = "core.parallelism"
#: In distributed mode the class's concurrency is each Celery worker's, as on MWAA (where
#: ``celery.worker_autoscale``, if the user sets it, wins over it), and ``core.parallelism``
#: is that times MaxWorkers: every worker MWAA could scale to can be kept busy.
WORKER_CONCURRENCY_OPTION: Final = "celery.worker_concurrency"
#: How every Celery worker openmwaa starts runs (here or on another machine): without Celery's
#: "mingle" (a new worker waits 1 s for its neighbours' revoked-task lists at start, before it takes
#: a task) and "gossip" (each worker follows every other's events); Airflow uses neither.
CELERY_WORKER_FLAGS: Final = ("--without-mingle", "--without-gossip")
#: Airflow's own default for the Redis visibility timeout (the Celery provider warns without one).
_VISIBILITY_TIMEOUT_OPTION: Final = "celery_broker_transport_options.visibility_timeout"
_EXECUTION_API_TIMEOUT_OPTION: Final = "workers.execution_api_timeout"
_CELERY_CONFIG_OPTION: Final = "celery.celery_config_options"
#: Airflow 2's Celery configuration with the fix the Celery provider needs (see the module).
AIRFLOW2_CELERY_CONFIG: Final = "openmwaa_airflow.celery_config.CELERY_CONFIG"
#: Airflow 3's, with the fix the Task SDK's supervisor needs (see the module).
AIRFLOW3_CELERY_CONFIG: Final = "openmwaa_airflow.celery_config.AIRFLOW3_CELERY_CONFIG"


@dataclass(frozen=True)
class CeleryOptions:
    """What an environment's CeleryExecutor needs (distributed mode).

    ``queue`` is the environment's Celery queue; its name also prefixes every Redis key and
    channel the environment's processes use, so environments sharing a broker never share a
    queue, a binding or a broadcast.
    """

    broker_url: str = field(repr=False)
    queue: str
    max_workers: int = 1

    @property
    def key_prefix(self) -> str:
        return f"{self.queue}:"


#: Small settings for a small machine, each overridable by the user.
TUNED_DEFAULTS: Final[Mapping[int, Mapping[str, str]]] = {
    3: {
        "core.load_examples": "False",
        "api.workers": "1",
        # A DAG file written into the folder shows up within seconds, not minutes.
        "dag_processor.refresh_interval": "5",
        "dag_processor.parsing_processes": "1",
        "logging.colored_console_log": "False",
        "usage_data_collection.enabled": "False",
    },
    2: {
        "core.load_examples": "False",
        "webserver.workers": "1",
        "webserver.warn_deployment_exposure": "False",
        "scheduler.dag_dir_list_interval": "5",
        "scheduler.parsing_processes": "1",
        "logging.colored_console_log": "False",
        "usage_data_collection.enabled": "False",
    },
}


@dataclass(frozen=True)
class Ports:
    """The TCP ports one environment's processes listen on (unique per environment on a machine)."""

    api: int
    worker_log: int
    trigger_log: int


def airflow_plugin_dir() -> Path:
    """``src/openmwaa/airflow_plugin``: holds the ``openmwaa_airflow`` package Airflow imports."""
    return Path(__file__).resolve().parent.parent / "airflow_plugin"


def env_name(option: str) -> str:
    """``"core.default_task_retries"`` -> ``"AIRFLOW__CORE__DEFAULT_TASK_RETRIES"``."""
    section, sep, key = option.partition(".")
    if not sep or not section or not key:
        raise ValueError(f"configuration option {option!r} is not of the form section.key")
    return f"AIRFLOW__{section.upper()}__{key.upper()}"


#: Seconds an environment's connection to its SQLite file waits for another process's write lock
#: before it fails (Python's ``sqlite3`` default is 5 s). The scheduler, the DAG processor, the
#: triggerer and every web server write to one file; on a loaded machine a writer can hold the lock
#: longer than 5 s, and Airflow's API then answers 500 "Database error" (Airflow passes no timeout).
SQLITE_BUSY_TIMEOUT: Final = 30


def sqlite_url(home: Path) -> str:
    # Four slashes: an absolute path, which Airflow 3 insists on. SQLAlchemy's pysqlite and
    # aiosqlite dialects (Airflow 3 derives its async URL from this one) pass ``timeout`` on to
    # ``sqlite3.connect``.
    return f"sqlite:///{(home / 'airflow.db').resolve()}?timeout={SQLITE_BUSY_TIMEOUT}"


def default_options(
    major: int, environment_class: str = DEFAULT_ENVIRONMENT_CLASS, celery: CeleryOptions | None = None
) -> dict[str, str]:
    """The options the user may override: the tuned defaults and the class's task concurrency.

    Raises ValueError for an Airflow major version or an environment class openmwaa does not know.
    """
    if major not in TUNED_DEFAULTS:
        raise ValueError(f"Airflow {major} is not supported")
    if environment_class not in CLASS_TASK_CONCURRENCY:
        raise ValueError(f"environment class {environment_class!r} is not one of MWAA's")
    concurrency = CLASS_TASK_CONCURRENCY[environment_class]
    if celery is None:
        return {**TUNED_DEFAULTS[major], TASK_CONCURRENCY_OPTION: str(concurrency)}
    options = {
        **TUNED_DEFAULTS[major],
        WORKER_CONCURRENCY_OPTION: str(concurrency),
        TASK_CONCURRENCY_OPTION: str(concurrency * max(1, celery.max_workers)),
        _VISIBILITY_TIMEOUT_OPTION: "21600",
    }
    options[_CELERY_CONFIG_OPTION] = AIRFLOW2_CELERY_CONFIG if major == 2 else AIRFLOW3_CELERY_CONFIG
    if major >= 3:
        # A scheduler keeps the task instance's row locked until its loop commits (it writes the
        # Celery task id there), and the worker's first call to the execution API waits for that
        # lock: on a busy small machine a loop takes longer than Airflow's 5 s client timeout,
        # and four timed-out retries fail the task before it starts.
        options[_EXECUTION_API_TIMEOUT_OPTION] = "60"
    return options


def airflow_environment(
    *,
    major: int,
    home: Path,
    dags_dir: Path,
    plugins_dir: Path,
    database_url: str | None,
    secrets: EnvironmentSecrets,
    ports: Ports,
    options: Mapping[str, str],
    python_path: tuple[Path, ...] = (),
    environment_class: str = DEFAULT_ENVIRONMENT_CLASS,
    celery: CeleryOptions | None = None,
) -> dict[str, str]:
    """Every variable openmwaa sets for the environment's Airflow processes.

    ``celery``: distributed mode (CeleryExecutor), which needs a PostgreSQL ``database_url``.

    ``python_path`` comes after the openmwaa plugin directory on PYTHONPATH (e.g. the
    environment's requirements), and the plugins folder last: Airflow puts it on ``sys.path``
    only once it has read its configuration, which is too late for a class the configuration
    names (a secrets backend shipped in plugins.zip). Raises ValueError for a reserved or
    malformed option.
    """
    defaults = default_options(major, environment_class, celery)
    if celery is not None and not (database_url or "").startswith("postgresql"):
        raise ValueError("the CeleryExecutor needs a PostgreSQL metadata database")
    for option in options:
        if option.lower() in RESERVED_CONFIGURATION_KEYS:
            raise ValueError(f"configuration option {option} is managed by openmwaa")
    home = home.resolve()
    env = {env_name(k): v for k, v in defaults.items()}
    env.update({env_name(k.lower()): str(v) for k, v in options.items()})
    env.update(
        _owned(
            major=major,
            home=home,
            dags_dir=dags_dir.resolve(),
            plugins_dir=plugins_dir.resolve(),
            database_url=database_url,
            secrets=secrets,
            ports=ports,
        )
    )
    if celery is not None:
        env.update(_celery_owned(celery, env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
    env["PYTHONPATH"] = ":".join(str(p) for p in (airflow_plugin_dir(), *python_path, plugins_dir.resolve()))
    env["OPENMWAA_TOKEN_SECRET"] = secrets.token_secret
    return env


def _owned(
    *,
    major: int,
    home: Path,
    dags_dir: Path,
    plugins_dir: Path,
    database_url: str | None,
    secrets: EnvironmentSecrets,
    ports: Ports,
) -> dict[str, str]:
    conn = database_url or sqlite_url(home)
    # Airflow 2 refuses LocalExecutor on SQLite; Airflow 3 has no SequentialExecutor any more.
    executor = "SequentialExecutor" if major == 2 and conn.startswith("sqlite") else "LocalExecutor"
    owned = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_dir),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_dir),
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__FERNET_KEY": secrets.fernet_key,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
        "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.webserver_secret_key,
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs" / "airflow"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports.worker_log),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports.trigger_log),
        # Airflow phones home to Scarf on start-up unless told not to; there is no network here.
        "SCARF_ANALYTICS": "false",
    }
    if major == 3:
        owned.update(
            {
                "AIRFLOW__CORE__AUTH_MANAGER": AIRFLOW3_AUTH_MANAGER,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{LOOPBACK}:{ports.api}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.jwt_secret,
                "AIRFLOW__API__SECRET_KEY": secrets.webserver_secret_key,
                "AIRFLOW__API__HOST": LOOPBACK,
                "AIRFLOW__API__PORT": str(ports.api),
                "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY": str(
                    home / "logs" / "airflow" / "dag_processor"
                ),
            }
        )
    else:
        owned.update(
            {
                "AIRFLOW__API__AUTH_BACKENDS": AIRFLOW2_AUTH_BACKEND,
                "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": LOOPBACK,
                "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(ports.api),
                "AIRFLOW__WEBSERVER__BASE_URL": f"http://{LOOPBACK}:{ports.api}",
                "AIRFLOW__WEBSERVER__CONFIG_FILE": str(airflow_plugin_dir() / AIRFLOW2_WEBSERVER_CONFIG),
                "AIRFLOW__SCHEDULER__CHILD_PROCESS_LOG_DIRECTORY": str(
                    home / "logs" / "airflow" / "scheduler"
                ),
            }
        )
    return owned


def statsd_variables(port: int, prefix: str, options: Mapping[str, str]) -> dict[str, str]:
    """Airflow's StatsD client aimed at openmwaa's receiver (MWAA, too, turns metrics on for
    every environment). ``metrics.statsd_on`` stays the user's to turn off; the rest is reserved."""
    variables = {
        "AIRFLOW__METRICS__STATSD_HOST": LOOPBACK,
        "AIRFLOW__METRICS__STATSD_PORT": str(port),
        "AIRFLOW__METRICS__STATSD_PREFIX": prefix,
    }
    if "metrics.statsd_on" not in {k.lower() for k in options}:
        variables["AIRFLOW__METRICS__STATSD_ON"] = "True"
    return variables


def _celery_owned(celery: CeleryOptions, database_url: str) -> dict[str, str]:
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": celery.broker_url,
        # Task states go to the metadata database (Celery's SQLAlchemy backend), not to Redis.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database_url}",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": celery.queue,
        env_name("celery_broker_transport_options.global_keyprefix"): celery.key_prefix,
    }


#: Variables a startup script may not change: openmwaa's own, and what makes Python find Airflow.
PROTECTED_VARIABLES: Final = frozenset(
    {"AIRFLOW_HOME", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "OPENMWAA_TOKEN_SECRET"}
)
#: Shell bookkeeping a startup script's ``env`` always shows; never worth passing on.
_SHELL_NOISE: Final = frozenset({"_", "SHLVL", "PWD", "OLDPWD", "BASH_ENV", "ENV"})


def startup_overrides(exports: Mapping[str, str], owned: Mapping[str, str]) -> dict[str, str]:
    """The startup script's exports that may reach the components.

    MWAA: the script cannot touch what the service sets. Here that is everything in ``owned``
    (openmwaa's variables and the user's AirflowConfigurationOptions), except the defaults the
    user did not set (the tuned small-machine ones and the class's task concurrency): the
    script may change those. A default is recognised by its value, so an option the user set
    to exactly a default's value counts as a default too.
    """
    allowed = {}
    for name, value in exports.items():
        upper = name.upper()
        if name in owned and not _is_tuned_default(name, owned[name]):
            continue
        if upper in PROTECTED_VARIABLES or name in _SHELL_NOISE:
            continue
        if upper.startswith(("OPENMWAA_", "MWAA__")):
            continue
        if upper.startswith("AIRFLOW__") and _option_of(upper) in RESERVED_CONFIGURATION_KEYS:
            continue
        allowed[name] = value
    return allowed


def component_environment(
    base: Mapping[str, str],
    airflow_env: Mapping[str, str],
    startup_exports: Mapping[str, str],
    runtime_bin: Path,
) -> dict[str, str]:
    """The full environment of a component process.

    ``base`` is openmwaa's own environment, of which only the allow-listed part is kept
    (:mod:`openmwaa.runtime.inherited_env`: never the operator's credentials), with ``HOME``
    the environment's home; the startup script's allowed exports come next, ours last.
    """
    env = inherited_environment(base, home=airflow_env["AIRFLOW_HOME"])
    env.update(airflow_env)
    env.update(startup_overrides(startup_exports, airflow_env))
    env["PATH"] = f"{runtime_bin}:{env.get('PATH') or DEFAULT_PATH}"
    return env


def _is_tuned_default(variable: str, value: str) -> bool:
    option = _option_of(variable)
    if option in (TASK_CONCURRENCY_OPTION, WORKER_CONCURRENCY_OPTION):
        return value in {str(n) for n in CLASS_TASK_CONCURRENCY.values()}
    return any(defaults.get(option) == value for defaults in TUNED_DEFAULTS.values())


def _option_of(variable: str) -> str:
    """``AIRFLOW__CORE__EXECUTOR`` -> ``core.executor``."""
    _, section, key = ([*variable.split("__", 2), "", ""])[:3]
    return f"{section.lower()}.{key.lower()}"
