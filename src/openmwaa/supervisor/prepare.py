"""Getting an environment ready to start: runtime, database, requirements, plugins, startup script.

A new SQLite environment gets a copy of its runtime's migrated template database
(:mod:`openmwaa.supervisor.metadata_template`); every other database is migrated in place.
Each step raises an :class:`~openmwaa.runtime.errors.EnvironmentSetupError` that tells the
user what went wrong; nothing here starts a long-lived process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from openmwaa.logs.groups import DAG_PROCESSOR_LEVEL_VARIABLE, LEVEL_VARIABLE, component_log_levels
from openmwaa.runtime import isolation, plugins, requirements
from openmwaa.runtime.airflow_config import (
    Ports,
    airflow_environment,
    airflow_plugin_dir,
    component_environment,
)
from openmwaa.runtime.beneath import open_log
from openmwaa.runtime.errors import DatabaseSetupError, EnvironmentSetupError
from openmwaa.runtime.inherited_env import inherited_environment
from openmwaa.runtime.installer import Runtime, RuntimeManager
from openmwaa.runtime.isolation import EnvironmentUser
from openmwaa.runtime.packages import mwaa_python
from openmwaa.runtime.secrets import EnvironmentSecrets
from openmwaa.runtime.startup_script import run_startup_script
from openmwaa.supervisor import metadata_template, postgres, postgres_template
from openmwaa.supervisor.components import WORKER_KIND
from openmwaa.supervisor.process import log_tail, tied_to_this_thread
from openmwaa.supervisor.spec import EnvironmentSpec

log = logging.getLogger(__name__)

MIGRATE_TIMEOUT = 600.0
#: Written into the template's throwaway configuration; nothing listens on them during a migrate.
_TEMPLATE_PORTS = Ports(api=8080, worker_log=8793, trigger_log=8794)


#: ``MWAA_AIRFLOW_COMPONENT`` as MWAA sets it, for the startup script and the components. The
#: scheduler, DAG processor and triggerer run as "scheduler". With the LocalExecutor (and the
#: SequentialExecutor) tasks run inside the scheduler's process tree, so the "worker" run's
#: exports reach it too; in distributed mode the Celery workers run as "worker", with the
#: "worker" run's exports only, as on MWAA.
COMPONENT_VARIABLE: Final = "MWAA_AIRFLOW_COMPONENT"
SCRIPT_RUNS: Final = ("scheduler", "worker", "webserver")


@dataclass(frozen=True)
class PreparedEnvironment:
    spec: EnvironmentSpec
    runtime: Runtime
    ports: Ports
    #: The complete environment of the scheduler-side components (and of ``airflow`` commands).
    env: Mapping[str, str] = field(repr=False)
    site_dir: Path | None
    plugins_dir: Path
    #: The complete environment of the component serving the API and UI.
    web_env: Mapping[str, str] = field(repr=False, default_factory=dict)
    #: Who runs the environment's processes (None: openmwaa's own user; see runtime/isolation).
    user: EnvironmentUser | None = None
    #: The complete environment of a Celery worker (distributed mode; else empty).
    worker_env: Mapping[str, str] = field(repr=False, default_factory=dict)

    def env_for(self, serves_api: bool, kind: str = "") -> Mapping[str, str]:
        if serves_api:
            return self.web_env
        return self.worker_env if kind == WORKER_KIND and self.worker_env else self.env

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"


def environment_dirs(home: Path) -> dict[str, Path]:
    return {"logs": home / "logs", "run": home / "run"}


def prepare_environment(
    spec: EnvironmentSpec,
    runtimes: RuntimeManager,
    ports: Ports,
    progress: Callable[[str], None],
    *,
    base_environ: Mapping[str, str] | None = None,
    isolate: bool = False,
) -> PreparedEnvironment:
    """Everything up to starting the components; ``isolate``: as the environment's own user."""
    home = spec.home
    for path in (home, *environment_dirs(home).values()):
        path.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)  # secrets live in the environment of processes and in airflow.db
    base = dict(os.environ if base_environ is None else base_environ)
    user = isolation.ensure_user(spec.key, home) if isolate else None
    if user is not None:
        isolation.hand_over(home, user)
    runtime = runtimes.ensure(spec.airflow_version, progress)
    mwaa = mwaa_python(spec.airflow_version)
    if runtime.python_tag and runtime.python_tag != mwaa:
        log.warning(
            "environment %s: MWAA runs Airflow %s on Python %s; this runtime uses Python %s",
            spec.key,
            spec.airflow_version,
            mwaa,
            runtime.python_tag,
        )
    if user is not None:
        isolation.check_reachable(
            user,
            runtime.python,
            [spec.dags_dir, airflow_plugin_dir()],
            inherited_environment(base, home=home),
            cwd=home,
        )
    if spec.database_url and postgres.is_postgres(spec.database_url):
        postgres.ensure_database(runtime.python, spec.database_url)
    site_dir = None
    if spec.requirements_file is not None:
        site_dir = requirements.install_requirements(
            runtime, spec.requirements_file, home, progress, user=user
        )
    plugins_dir = plugins.install_plugins(home, spec.plugins_zip)
    if user is not None:
        isolation.hand_over(home, user)
    try:
        airflow_env = airflow_environment(
            major=runtime.major,
            home=home,
            dags_dir=spec.dags_dir,
            plugins_dir=plugins_dir,
            database_url=spec.database_url,
            secrets=spec.secrets,
            ports=ports,
            options=spec.airflow_config,
            python_path=(site_dir,) if site_dir else (),
            environment_class=spec.environment_class,
            celery=spec.celery,
        )
    except ValueError as exc:
        raise EnvironmentSetupError(f"AirflowConfigurationOptions: {exc}.") from exc
    airflow_env.update(spec.task_environ)
    exports: dict[str, dict[str, str]] = {kind: {} for kind in SCRIPT_RUNS}
    if spec.startup_script is not None:
        before = component_environment(base, airflow_env, {}, runtime.bin_dir)
        for kind in SCRIPT_RUNS:  # one after the other: they share this machine's files
            progress(f"Running the startup script ({COMPONENT_VARIABLE}={kind})")
            exports[kind] = run_startup_script(
                spec.startup_script,
                {**before, COMPONENT_VARIABLE: kind},
                cwd=home,
                log_path=home / "logs" / ("startup.log" if kind == "scheduler" else f"startup-{kind}.log"),
                user=user,
            )

    def environment(kind: str, startup_exports: Mapping[str, str]) -> dict[str, str]:
        env = component_environment(base, airflow_env, startup_exports, runtime.bin_dir)
        env[COMPONENT_VARIABLE] = kind
        return env

    worker_env: dict[str, str] = {}
    if spec.celery is None:
        env = environment("scheduler", {**exports["scheduler"], **exports["worker"]})
    else:
        env = environment("scheduler", exports["scheduler"])
        worker_env = environment("worker", exports["worker"])
    web_env = environment("webserver", exports["webserver"])
    levels = component_log_levels(spec.logging_configuration, major=runtime.major)
    apply_log_levels(env, web_env, levels)
    if worker_env and "scheduler" in levels:  # WorkerLogs and TaskLogs, with the scheduler's
        worker_env[LEVEL_VARIABLE] = levels["scheduler"]
    return PreparedEnvironment(spec, runtime, ports, env, site_dir, plugins_dir, web_env, user, worker_env)


def apply_log_levels(env: dict[str, str], web_env: dict[str, str], levels: Mapping[str, str]) -> None:
    """LoggingConfiguration's levels win over AirflowConfigurationOptions and startup scripts."""
    if "scheduler" in levels:
        env[LEVEL_VARIABLE] = levels["scheduler"]
    if "dag-processor" in levels:
        env[DAG_PROCESSOR_LEVEL_VARIABLE] = levels["dag-processor"]
    if "webserver" in levels:
        web_env[LEVEL_VARIABLE] = levels["webserver"]


def initialize_database(
    prepared: PreparedEnvironment,
    *,
    timeout: float = MIGRATE_TIMEOUT,
    base_environ: Mapping[str, str] | None = None,
) -> None:
    """A new environment's metadata database: a copy of the runtime's template when one fits.

    Otherwise (PostgreSQL, a database already there, configuration that changes what migrate
    writes) ``airflow db migrate`` runs on the environment's own database.
    """
    spec = prepared.spec
    code_dirs = [d for d in (prepared.site_dir, prepared.plugins_dir) if d is not None]
    on_postgres = postgres.is_postgres(spec.database_url)
    reason = metadata_template.template_unusable_reason(
        prepared.env,
        major=prepared.runtime.major,
        home=spec.home,
        database_url=None if on_postgres else spec.database_url,
        code_dirs=code_dirs,
    )
    if reason is None and on_postgres:
        base = dict(os.environ if base_environ is None else base_environ)
        log_path = spec.home / "logs" / "db-migrate.log"

        def build_postgres(staging: Path, url: str, left: float) -> None:
            _migrate_template(
                prepared.runtime, staging, base, log_path, left, log_base=spec.home, database_url=url
            )

        reason = postgres_template.copy_template(
            prepared.runtime,
            str(spec.database_url),
            build_postgres,
            home=spec.home,
            slots=metadata_template.pool_slots(prepared.env),
            timeout=timeout,
        )
    if reason is not None:
        log.info("environment %s: migrating its own metadata database (%s)", spec.key, reason)
        migrate_database(prepared, timeout=timeout)
        return
    log_path = spec.home / "logs" / "db-migrate.log"
    base = dict(os.environ if base_environ is None else base_environ)

    def build(staging: Path, left: float) -> Path:
        return _migrate_template(prepared.runtime, staging, base, log_path, left, log_base=spec.home)

    try:
        template = metadata_template.ensure_template(
            metadata_template.template_path(prepared.runtime.root), build, timeout=timeout
        )
    except OSError as exc:  # e.g. a read-only runtime cache: do without a template
        log.warning("environment %s: no metadata database template (%s); migrating", spec.key, exc)
        migrate_database(prepared, timeout=timeout)
        return
    metadata_template.copy_template(
        template, spec.home / "airflow.db", slots=metadata_template.pool_slots(prepared.env)
    )
    isolation.give(_sqlite_files(spec.home), prepared.user)


def migrate_database(prepared: PreparedEnvironment, *, timeout: float = MIGRATE_TIMEOUT) -> None:
    """``airflow db migrate``: create or upgrade the metadata database."""
    if prepared.spec.database_url is None:
        use_wal(prepared.spec.home / "airflow.db")
        isolation.give(_sqlite_files(prepared.spec.home), prepared.user)
    _run_migrate(
        prepared.runtime,
        prepared.env,
        cwd=prepared.spec.home,
        log_path=prepared.spec.home / "logs" / "db-migrate.log",
        timeout=timeout,
        user=prepared.user,
    )


def _sqlite_files(home: Path) -> list[Path]:
    return [home / name for name in ("airflow.db", "airflow.db-wal", "airflow.db-shm")]


def _migrate_template(
    runtime: Runtime,
    staging: Path,
    base: Mapping[str, str],
    log_path: Path,
    timeout: float,
    *,
    log_base: Path,
    database_url: str | None = None,
) -> Path:
    """Migrate a new database (SQLite in ``staging``, or ``database_url``) with a configuration
    no environment's data is in."""
    for folder in ("dags", "plugins"):
        (staging / folder).mkdir()
    airflow_env = airflow_environment(
        major=runtime.major,
        home=staging,
        dags_dir=staging / "dags",
        plugins_dir=staging / "plugins",
        database_url=database_url,
        secrets=EnvironmentSecrets.generate(),  # throwaway: nothing migrate writes is encrypted
        ports=_TEMPLATE_PORTS,
        options={"core.load_examples": "False"},
    )
    env = component_environment(base, airflow_env, {}, runtime.bin_dir)
    with os.fdopen(open_log(log_path, log_base), "ab") as log_file:
        log_file.write(f"--- openmwaa: migrating the metadata database template in {staging}\n".encode())
    _run_migrate(runtime, env, cwd=staging, log_path=log_path, log_base=log_base, timeout=timeout)
    return staging / "airflow.db"


def _run_migrate(
    runtime: Runtime,
    env: Mapping[str, str],
    *,
    cwd: Path,
    log_path: Path,
    timeout: float,
    user: EnvironmentUser | None = None,
    log_base: Path | None = None,
) -> None:
    with os.fdopen(open_log(log_path, log_base or cwd), "ab") as log_file:
        try:
            # Tied to openmwaa: a migration must never run on after it (a restarted openmwaa
            # puts the database back and migrates again, see supervisor.upgrade).
            done = subprocess.run(
                tied_to_this_thread(str(runtime.python), runtime.airflow_command("db", "migrate")),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                **isolation.popen_args(user),
            )
        except subprocess.TimeoutExpired as exc:
            raise DatabaseSetupError(f"airflow db migrate took longer than {timeout:.0f} s.") from exc
    if done.returncode != 0:
        raise DatabaseSetupError(
            f"airflow db migrate failed (exit code {done.returncode}):\n{log_tail(log_path)}"
        )


def use_wal(db: Path) -> None:
    """Switch a SQLite metadata database to write-ahead logging (a setting stored in the file).

    Several Airflow processes share the file: with WAL, readers no longer block the writer,
    and a commit costs one fsync instead of several, which makes Airflow 2's first start
    (hundreds of small permission commits) several times faster.
    """
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise DatabaseSetupError(f"Cannot configure the SQLite database {db}: {exc}.") from exc
