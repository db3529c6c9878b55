"""One remote worker: join, install, sync, then run ``airflow celery worker`` and keep the DAGs fresh.

The worker lives in its own directory (``<worker dir>/<environment>/``: ``dags/``, ``plugins/``,
``site/`` for requirements, ``logs/``) and installs the environment's Airflow version with
openmwaa's runtime installer (same constraints, same cache layout). Its Airflow configuration is
the environment's (from the grant) with this machine's paths put back, the execution API at
openmwaa's forwarded path (Airflow 3), and ``MWAA_AIRFLOW_COMPONENT=worker`` as on MWAA; the
startup script, if the environment has one, runs once with that component first.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from openmwaa.runtime import plugins, requirements
from openmwaa.runtime.airflow_config import CELERY_WORKER_FLAGS, airflow_plugin_dir, component_environment
from openmwaa.runtime.installer import Runtime, RuntimeManager
from openmwaa.runtime.startup_script import run_startup_script
from openmwaa.supervisor.process import spawn, stop_all
from openmwaa.wire.worker_pool import WorkerPoolGrant
from openmwaa.worker.join import Endpoint
from openmwaa.worker.sources import SourceSync, check_sources

log = logging.getLogger(__name__)

COMPONENT: Final = "worker"
#: Set for the worker's processes (and so its tasks): which remote worker runs them.
WORKER_VARIABLE: Final = "OPENMWAA_WORKER"
STOP_GRACE_SECONDS: Final = 60.0
EXECUTION_API_TIMEOUT_VARIABLE: Final = "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"
REMOTE_EXECUTION_API_TIMEOUT: Final = "30"


@dataclass(frozen=True)
class WorkerOptions:
    name: str
    #: The worker's own directory (nothing of openmwaa's data directory is needed).
    directory: Path
    #: Seconds between two DAG syncs.
    sync_interval: float = 30.0
    #: Queues consumed besides the environment's own (tasks with ``queue=...``).
    extra_queues: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedWorker:
    runtime: Runtime
    home: Path
    argv: tuple[str, ...]
    env: Mapping[str, str]
    log_path: Path


def prepare_worker(
    grant: WorkerPoolGrant,
    endpoint: Endpoint,
    options: WorkerOptions,
    *,
    sync: SourceSync,
    runtimes: RuntimeManager,
    progress: Callable[[str], None],
    base_environ: Mapping[str, str] | None = None,
) -> PreparedWorker:
    """Install the runtime, fetch the sources, build the worker's command line and environment."""
    check_sources(grant.sources)
    home = worker_home(options.directory, grant.name)
    for folder in ("logs", "files"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)  # the environment's secrets end up in its processes' environment
    runtime = runtimes.ensure(grant.airflow_version, progress)
    progress(f"Syncing DAGs from s3://{grant.sources.bucket}/{grant.sources.dags_prefix}")
    sync.sync_dags()
    archive = sync.fetch(grant.sources.plugins, "plugins.zip") if grant.sources.plugins else None
    plugins_dir = plugins.install_plugins(home, archive)
    site_dir = None
    if grant.sources.requirements is not None:
        site_dir = requirements.install_requirements(
            runtime, sync.fetch(grant.sources.requirements, "requirements.txt"), home, progress
        )
    airflow_env = worker_variables(grant, endpoint, home=home, plugins_dir=plugins_dir, site_dir=site_dir)
    airflow_env[WORKER_VARIABLE] = options.name
    base = dict(os.environ if base_environ is None else base_environ)
    exports: dict[str, str] = {}
    if grant.sources.startup_script is not None:
        script = sync.fetch(grant.sources.startup_script, "startup.sh")
        progress("Running the startup script (MWAA_AIRFLOW_COMPONENT=worker)")
        before = component_environment(base, airflow_env, {}, runtime.bin_dir)
        exports = run_startup_script(
            script,
            {**before, "MWAA_AIRFLOW_COMPONENT": COMPONENT},
            cwd=home,
            log_path=home / "logs" / "startup-worker.log",
        )
    env = component_environment(base, airflow_env, exports, runtime.bin_dir)
    env["MWAA_AIRFLOW_COMPONENT"] = COMPONENT
    queues = ",".join(dict.fromkeys((grant.queue, *options.extra_queues)))
    argv = runtime.airflow_command(
        "celery",
        "worker",
        "--queues",
        queues,
        "--celery-hostname",
        f"{options.name}@%h",
        "--skip-serve-logs",
        *CELERY_WORKER_FLAGS,
    )
    return PreparedWorker(runtime, home, tuple(argv), env, home / "logs" / "worker.log")


def worker_home(directory: Path, environment: str) -> Path:
    return directory.resolve() / environment


def worker_variables(
    grant: WorkerPoolGrant,
    endpoint: Endpoint,
    *,
    home: Path,
    plugins_dir: Path,
    site_dir: Path | None,
) -> dict[str, str]:
    """The grant's variables with this machine's paths, and the forwarded execution API (Airflow 3)."""
    env = dict(grant.airflow_variables)
    python_path = [airflow_plugin_dir(), *([site_dir] if site_dir else []), plugins_dir]
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_dir),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs" / "airflow"),
            "PYTHONPATH": ":".join(str(p) for p in python_path),
            "SCARF_ANALYTICS": "false",
        }
    )
    if grant.execution_api_path is not None:
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = endpoint.base + grant.execution_api_path
        # Airflow's 5 s is for an api-server next door; this one is a network, TLS and openmwaa's
        # forwarding away (AirflowConfigurationOptions workers.execution_api_timeout still wins).
        env.setdefault(EXECUTION_API_TIMEOUT_VARIABLE, REMOTE_EXECUTION_API_TIMEOUT)
        if endpoint.ca_bundle:
            # The Task SDK verifies the execution API with this file (and certifi's roots).
            env["AIRFLOW__API__SSL_CERT"] = str(Path(endpoint.ca_bundle).resolve())
    return env


#: What :meth:`WorkerProcess.run` returns when the environment changed: prepare and start again.
RESTART: Final = -1
#: Every this many DAG syncs the worker asks for its grant again, to notice an UpdateEnvironment.
REJOIN_EVERY: Final = 10


class WorkerProcess:
    """``airflow celery worker`` in a session of its own, and the DAG sync beside it.

    ``still_current`` (called every :data:`REJOIN_EVERY` syncs) tells whether the environment's
    grant is still the one the worker was prepared with; when it is not (an UpdateEnvironment:
    another Airflow version, configuration, plugins or requirements), the worker stops warmly
    and :meth:`run` returns :data:`RESTART`. An error asking is no change: the worker keeps going.
    """

    def __init__(
        self,
        prepared: PreparedWorker,
        sync: SourceSync,
        *,
        sync_interval: float,
        still_current: Callable[[], bool] = lambda: True,
        rejoin_every: int = REJOIN_EVERY,
    ) -> None:
        self._prepared = prepared
        self._sync = sync
        self._interval = sync_interval
        self._still_current = still_current
        self._rejoin_every = rejoin_every
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Until the worker exits, :meth:`stop` or a change; the worker's exit code (0 after a
        stop, :data:`RESTART` after a change)."""
        prepared = self._prepared
        child = spawn(
            "celery-worker",
            prepared.argv,
            env=prepared.env,
            cwd=prepared.home,
            log_path=prepared.log_path,
            started_at=time.time(),
            shim_python=str(prepared.runtime.python),
        )
        popen = child.popen
        rounds = 0
        try:
            while popen.poll() is None:
                if self._stop.wait(self._interval):
                    break
                self._resync()
                rounds += 1
                if rounds % self._rejoin_every == 0 and not self._current():
                    log.info("the environment changed: restarting the worker with its new configuration")
                    return RESTART
            if popen.poll() is not None:
                return int(popen.returncode)
            log.info("stopping the worker (running tasks have %.0f s to finish)", STOP_GRACE_SECONDS)
            return 0
        finally:
            stop_all([child], grace=STOP_GRACE_SECONDS)

    def _current(self) -> bool:
        try:
            return self._still_current()
        except Exception as exc:  # openmwaa briefly unreachable: ask again next time
            log.warning("could not check the environment's configuration (%s)", exc)
            return True

    def _resync(self) -> None:
        try:
            changed = self._sync.sync_dags()
        except Exception as exc:  # the bucket is briefly unreachable: try again at the next round
            log.warning("DAG sync failed (%s); retrying in %.0f s", exc, self._interval)
            return
        if changed:
            log.info("DAG sync: %d file(s) changed", changed)


def install_stop_signals(process: WorkerProcess) -> None:
    def handler(signum: int, _frame: Any) -> None:
        process.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
