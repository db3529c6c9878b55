"""Which Airflow processes make up an environment, per major version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openmwaa.runtime.airflow_config import LOOPBACK
from openmwaa.runtime.installer import Runtime


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    argv: tuple[str, ...]
    #: True for the process that serves HTTP (api-server / webserver).
    serves_api: bool = False


def components_for(runtime: Runtime, api_port: int) -> list[ComponentSpec]:
    """The component commands; log servers are skipped because every task runs on this machine."""
    if runtime.major >= 3:
        return [
            ComponentSpec(
                "api-server",
                tuple(runtime.airflow_command("api-server", "--host", LOOPBACK, "--port", str(api_port))),
                serves_api=True,
            ),
            ComponentSpec("scheduler", tuple(runtime.airflow_command("scheduler", "--skip-serve-logs"))),
            ComponentSpec("dag-processor", tuple(runtime.airflow_command("dag-processor"))),
            ComponentSpec("triggerer", tuple(runtime.airflow_command("triggerer", "--skip-serve-logs"))),
        ]
    return [
        ComponentSpec(
            "webserver",
            tuple(runtime.airflow_command("webserver", "--hostname", LOOPBACK, "--port", str(api_port))),
            serves_api=True,
        ),
        ComponentSpec("scheduler", tuple(runtime.airflow_command("scheduler", "--skip-serve-logs"))),
        ComponentSpec("triggerer", tuple(runtime.airflow_command("triggerer", "--skip-serve-logs"))),
    ]


#: Variables whose change only the HTTP-serving component reads.
_API_ONLY_PREFIXES = ("AIRFLOW__API__", "AIRFLOW__WEBSERVER__", "AIRFLOW__FAB__")


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
    changed = {k for k in old_env.keys() | new_env.keys() if old_env.get(k) != new_env.get(k)}
    if not changed:
        return []
    if all(k.startswith(_API_ONLY_PREFIXES) for k in changed):
        return [c.name for c in components if c.serves_api]
    return names
