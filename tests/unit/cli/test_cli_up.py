"""``openmwaa up``'s status report: AVAILABLE is said only once the environment's Airflow answers."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from openmwaa.app import Services
from openmwaa.cli.up import create_default_environment
from openmwaa.services.environments import EnvironmentService
from openmwaa.settings import Settings
from openmwaa.store.db import open_engine
from openmwaa.store.environments import EnvironmentRepository
from openmwaa.supervisor import EnvironmentEvent, EnvironmentSpec


class NullSupervisor:
    """Starts nothing: the test plays the supervisor by sending its events."""

    def create(self, spec: EnvironmentSpec) -> None:
        pass

    def update(self, spec: EnvironmentSpec, previous: EnvironmentSpec, **_: str) -> None:
        pass

    def resume(self, spec: EnvironmentSpec) -> None:
        pass

    def delete(self, key: str, home: Any, database_url: str | None) -> None:
        pass


class Output(io.StringIO):
    """What ``up`` prints, readable while it runs on another thread."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def text(self) -> str:
        with self.lock:
            return self.getvalue()

    def wait_for(self, needle: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert time.monotonic() < deadline, f"{needle!r} never printed:\n{self.text()}"
            time.sleep(0.05)


def start_openmwaa(settings: Settings) -> EnvironmentService:
    """What ``up`` builds at each start, minus processes: the store and the environment service."""
    repository = EnvironmentRepository(open_engine(settings.state_database_url))
    service = EnvironmentService(settings=settings, repository=repository, supervisor=NullSupervisor())
    service.resume_all()
    return service


def follow_default_environment(
    settings: Settings, service: EnvironmentService, out: Output
) -> threading.Thread:
    services = cast(Services, SimpleNamespace(environments=service))
    thread = threading.Thread(
        target=create_default_environment,
        args=(settings, services, None, out),
        kwargs={"should_stop": lambda: False},
        daemon=True,
    )
    thread.start()
    return thread


def test_up_says_available_only_when_airflow_answers_again_after_a_restart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    name = settings.default_environment_name
    service = start_openmwaa(settings)
    out = Output()
    thread = follow_default_environment(settings, service, out)
    out.wait_for(f"{name}: CREATING")
    service.on_event(EnvironmentEvent(str(service.key(name)), "available"))
    thread.join(timeout=10)
    assert out.text().endswith(f"Environment {name} is AVAILABLE. Press Ctrl-C to stop openmwaa.\n")

    # openmwaa restarts: the record said AVAILABLE, but nothing listens until Airflow is up again.
    service = start_openmwaa(settings)
    out = Output()
    thread = follow_default_environment(settings, service, out)
    out.wait_for(f"{name}: MAINTENANCE (Airflow is starting again after openmwaa restarted)")
    assert "is AVAILABLE" not in out.text()
    assert thread.is_alive()
    service.on_event(EnvironmentEvent(str(service.key(name)), "available"))
    thread.join(timeout=10)
    assert not thread.is_alive()
    lines = out.text().splitlines()
    assert lines[0] == f"Environment {name} exists (MAINTENANCE)."
    assert lines[-2].endswith(f"{name}: AVAILABLE")
    assert lines[-1] == f"Environment {name} is AVAILABLE. Press Ctrl-C to stop openmwaa."
