"""Watching a running environment between commands: crashes, crash loops, recovery and hangs.

The runner calls :meth:`Watcher.reconcile` whenever no command is waiting. Crashed components
are restarted with exponential backoff (:class:`~openmwaa.supervisor.group.ComponentGroup`);
a crash loop makes the environment UNAVAILABLE until every component runs again and Airflow
says it is healthy; a component Airflow has reported failing for the hang timeout without a
break is stopped, and its exit is then handled as a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from openmwaa.supervisor.group import ComponentGroup, Crash
from openmwaa.supervisor.health import WEB_COMPONENT, HealthReport
from openmwaa.supervisor.launcher import ProcessLauncher
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.process import log_tail
from openmwaa.supervisor.reporter import Reporter
from openmwaa.supervisor.spec import EventKind
from openmwaa.supervisor.timings import Timings
from openmwaa.supervisor.watchdog import HangWatch

log = logging.getLogger(__name__)

Probe = Callable[[str, int], HealthReport]
#: What is wrong with the servers Airflow depends on right now, by kind ("database", "broker");
#: empty when all is well (see ``openmwaa.backing``).
BackendCheck = Callable[[], Mapping[str, str]]
#: LastUpdate.Error's code while the environment's database or broker is down.
BACKEND_UNAVAILABLE = "DATABASE_OR_BROKER_UNAVAILABLE"


class Watcher:
    def __init__(
        self,
        reporter: Reporter,
        *,
        group: ComponentGroup,
        launcher: ProcessLauncher,
        probe: Probe,
        clock: Callable[[], float],
        timings: Timings,
        hang_timeout: float,
        backends: BackendCheck | None = None,
    ) -> None:
        self._reporter = reporter
        self._backends = backends
        self._group = group
        self._launcher = launcher
        self._probe = probe
        self._clock = clock
        self._timings = timings
        self._unavailable = False
        self._next_recovery_check = 0.0
        self._hangs = HangWatch(hang_timeout)
        self._next_liveness_check = 0.0

    @property
    def unavailable(self) -> bool:
        return self._unavailable

    def became_available(self, kind: EventKind, message: str, error_code: str | None = None) -> None:
        """A lifecycle step brought the environment up healthy: report ``kind``, and start watching.

        ``kind`` is "available", or "update_failed" once a failed update's previous configuration
        serves again.
        """
        self._unavailable = False
        self._hangs.reset()
        self._next_liveness_check = self._clock() + self._timings.liveness_check_interval
        self._reporter.emit(kind, message, error_code)

    def mark_unavailable(self, code: str, message: str) -> None:
        self._unavailable = True
        self._hangs.reset()
        self._next_recovery_check = self._clock() + self._timings.recovery_check_interval
        self._reporter.emit("unavailable", message, code)

    def reconcile(self, prepared: PreparedEnvironment, web_urls: Sequence[str] = ()) -> None:
        """``web_urls``: the web server replicas in rotation, the first asked for Airflow's health."""
        now = self._clock()
        base_url = web_urls[0] if web_urls else prepared.base_url
        for crash in self._group.reconcile(now):
            self._on_crash(crash)
        down = self._backends_down(prepared)
        if down and not self._unavailable:
            self.mark_unavailable(BACKEND_UNAVAILABLE, down)
            return
        if down:
            return  # no recovery while they are down, whatever Airflow's health says
        if self._unavailable and now >= self._next_recovery_check and self._group.all_running():
            self._next_recovery_check = now + self._timings.recovery_check_interval
            if self._probe(base_url, prepared.runtime.major).healthy:
                self._unavailable = False
                self._reporter.emit("available", "Airflow is healthy again")
        elif not self._unavailable and self._hangs.enabled and now >= self._next_liveness_check:
            self._next_liveness_check = now + self._timings.liveness_check_interval
            self._check_liveness(prepared, base_url, now)

    def _backends_down(self, prepared: PreparedEnvironment) -> str:
        """Why the metadata database or the broker this environment uses is down ("" if neither is)."""
        if self._backends is None:
            return ""
        problems = self._backends()
        used = []
        if prepared.spec.database_url is not None:
            used.append(("database", "The metadata database"))
        if prepared.spec.celery is not None:
            used.append(("broker", "The Celery broker"))
        return " ".join(
            f"{label} is unavailable: {problems[kind]}." for kind, label in used if kind in problems
        )

    def _check_liveness(self, prepared: PreparedEnvironment, base_url: str, now: float) -> None:
        """Stop every replica of a kind Airflow has reported failing for the hang timeout.

        Web servers are watched one replica at a time by ``WebReplicas``, not here.
        """
        if not self._group.all_running():
            self._hangs.reset()  # a restart is under way: its start-up is not a hang
            return
        report = self._probe(base_url, prepared.runtime.major)
        running = self._group.running
        failing = [k for k in report.failing if k != WEB_COMPONENT[prepared.runtime.major]]
        for kind in self._hangs.observe(failing, now):
            hung = [running[s.name] for s in self._group.specs() if s.kind == kind and s.name in running]
            if not hung:
                continue
            log.warning(
                "environment %s: Airflow %s is running but has not been healthy for %.0f s (%s); "
                "restarting it",
                self._reporter.key,
                kind,
                self._hangs.timeout,
                report.detail,
            )
            # Its exit is then handled as a crash: restarted with backoff, counted towards a
            # crash loop (UNAVAILABLE) if it keeps happening.
            self._launcher.stop(hung, grace=self._timings.hung_stop_grace)

    def _on_crash(self, crash: Crash) -> None:
        verdict = crash.verdict
        log.warning(
            "environment %s: %s exited with code %s; restarting in %.0f s",
            self._reporter.key,
            crash.component,
            crash.exit_code,
            verdict.delay,
        )
        if verdict.crash_loop and not self._unavailable:
            self.mark_unavailable(
                "COMPONENT_CRASHED",
                f"Airflow {crash.component} keeps crashing ({verdict.recent} times within "
                f"{self._group.policy.window:.0f} s, last exit code {crash.exit_code}). "
                f"End of {crash.log_path}:\n{log_tail(crash.log_path)}",
            )
