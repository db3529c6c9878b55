"""Which Airflow processes make up an environment, per major version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openmwaa.runtime.airflow_config import CELERY_WORKER_FLAGS, LOOPBACK
from openmwaa.runtime.installer import Runtime


@dataclass(frozen=True)
class ComponentSpec:
    """One process of an environment: replica ``index`` of a component ``kind``.

    Every replica has its own pid file and log (both named after :attr:`name`) and, if it
    serves HTTP, its own loopback ``port``.
    """

    kind: str
    argv: tuple[str, ...]
    #: True for the process that serves HTTP (api-server / webserver).
    serves_api: bool = False
    index: int = 0
    port: int | None = None

    @property
    def name(self) -> str:
        """Unique within the environment: ``scheduler`` for the first replica, ``scheduler-1`` next."""
        return self.kind if self.index == 0 else f"{self.kind}-{self.index}"


#: How many replicas of each component kind run; a kind not named runs once.
Replicas = Mapping[str, int]


#: The Celery worker component (distributed mode).
WORKER_KIND = "worker"


def components_for(
    runtime: Runtime,
    web_ports: Sequence[int],
    replicas: Replicas | None = None,
    *,
    worker_group: str | None = None,
) -> list[ComponentSpec]:
    """The component processes: one web server per port in ``web_ports``, then the others.

    ``worker_group`` (distributed mode): Celery workers run too, ``replicas["worker"]`` of them,
    named ``worker@<worker_group>``, ``worker-1@<worker_group>``... in Celery. Log servers
    are skipped because every task runs on this machine.
    """
    counts = replicas or {}
    others: dict[str, tuple[str, ...]] = {"scheduler": ("scheduler", "--skip-serve-logs")}
    if runtime.major >= 3:
        others["dag-processor"] = ("dag-processor",)
    others["triggerer"] = ("triggerer", "--skip-serve-logs")
    web = [web_replica(runtime, i, port) for i, port in enumerate(web_ports)]
    specs = web + [
        ComponentSpec(kind, tuple(runtime.airflow_command(*args)), index=i)
        for kind, args in others.items()
        for i in range(counts.get(kind, 1))
    ]
    if worker_group is not None:
        specs += [worker_replica(runtime, i, worker_group) for i in range(counts.get(WORKER_KIND, 1))]
    return specs


def worker_replica(runtime: Runtime, index: int, group: str) -> ComponentSpec:
    """Celery worker ``index``: its own Celery node name and pid file (Airflow refuses a second
    worker while the pid file of another names a live process)."""
    name = WORKER_KIND if index == 0 else f"{WORKER_KIND}-{index}"
    argv = runtime.airflow_command(
        "celery",
        "worker",
        "--skip-serve-logs",
        "--celery-hostname",
        f"{name}@{group}",
        "--pid",
        f"airflow-{name}.pid",
        *CELERY_WORKER_FLAGS,
    )
    return ComponentSpec(WORKER_KIND, tuple(argv), index=index)


def web_kind(major: int) -> str:
    """The component that serves HTTP: Airflow 3's ``api-server``, Airflow 2's ``webserver``."""
    return "api-server" if major >= 3 else "webserver"


def web_replica(runtime: Runtime, index: int, port: int) -> ComponentSpec:
    """Replica ``index`` of the web server, listening on loopback ``port``."""
    kind = web_kind(runtime.major)
    args = [kind, "--host" if runtime.major >= 3 else "--hostname", LOOPBACK, "--port", str(port)]
    if runtime.major < 3 and index > 0:
        # Airflow 2 refuses to start a webserver while the pid file of another (default
        # airflow-webserver.pid in AIRFLOW_HOME, the working directory) names a live process.
        args += ["--pid", f"airflow-webserver-{index}.pid"]
    return ComponentSpec(kind, tuple(runtime.airflow_command(*args)), serves_api=True, index=index, port=port)


#: Variables only Celery workers read ([celery] worker_concurrency, worker_autoscale, ...): their
#: change replaces the workers (as WorkerReplacementStrategy says) and nothing else.
_WORKER_ONLY_PREFIXES = ("AIRFLOW__CELERY__WORKER_",)
#: Variables whose change only the HTTP-serving component reads.
_API_ONLY_PREFIXES = ("AIRFLOW__API__", "AIRFLOW__WEBSERVER__", "AIRFLOW__FAB__")


def web_env_changed(old: Mapping[str, str], new: Mapping[str, str]) -> bool:
    """Whether the web servers' own environment changed in what they read (an option only the
    Celery workers read, which is in it too, does not count)."""
    return any(not k.startswith(_WORKER_ONLY_PREFIXES) for k in _changed_keys(old, new))


def worker_env_changed(old: Mapping[str, str], new: Mapping[str, str]) -> bool:
    """Whether the workers' own environment changed in what they read (an option only the web
    servers read, which is in it too, does not count)."""
    return any(not k.startswith(_API_ONLY_PREFIXES) for k in _changed_keys(old, new))


def _changed_keys(old: Mapping[str, str], new: Mapping[str, str]) -> set[str]:
    return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


def components_to_restart(
    old_env: Mapping[str, str],
    new_env: Mapping[str, str],
    components: Sequence[ComponentSpec],
    *,
    same_runtime: bool,
) -> list[str]:
    """Which components must restart to move from ``old_env`` to ``new_env`` (pure)."""
    names = [c.name for c in components]
    if not same_runtime:
        return names
    changed = _changed_keys(old_env, new_env)
    if not changed:
        return []
    if all(k.startswith(_API_ONLY_PREFIXES) for k in changed):
        return [c.name for c in components if c.serves_api]
    if all(k.startswith(_WORKER_ONLY_PREFIXES) for k in changed):
        return [c.name for c in components if c.kind == WORKER_KIND]
    return names
