"""The lifecycle steps of one environment: create, resume, update (with rollback) and delete.

Each step prepares through a :class:`~openmwaa.supervisor.provision.Provisioner`, starts
components through the :class:`~openmwaa.supervisor.group.ComponentGroup` and waits until
Airflow reports every one healthy; the outcome is reported as an event. What happens between
steps (crashes, hangs, recovery) is the :class:`~openmwaa.supervisor.watch.Watcher`'s.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence

from openmwaa.runtime.airflow_config import Ports
from openmwaa.runtime.errors import EnvironmentSetupError
from openmwaa.supervisor.commands import Create, Delete, Interrupted, Resume, StartFailure, Update
from openmwaa.supervisor.components import (
    WORKER_KIND,
    ComponentSpec,
    components_for,
    components_to_restart,
    web_env_changed,
    web_kind,
    worker_env_changed,
)
from openmwaa.supervisor.group import ComponentGroup, ProcessHandle
from openmwaa.supervisor.launcher import ProcessLauncher
from openmwaa.supervisor.loopback_ports import allocate_ports, release_ports
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.process import log_tail
from openmwaa.supervisor.provision import Provisioner
from openmwaa.supervisor.reporter import Reporter
from openmwaa.supervisor.spec import EnvironmentSpec, EventKind
from openmwaa.supervisor.timings import Timings
from openmwaa.supervisor.watch import Probe, Watcher
from openmwaa.supervisor.web_replicas import WebReplicas
from openmwaa.supervisor.worker_replicas import WorkerReplicas

log = logging.getLogger(__name__)


class Lifecycle:
    def __init__(
        self,
        reporter: Reporter,
        *,
        provisioner: Provisioner,
        launcher: ProcessLauncher,
        group: ComponentGroup,
        watcher: Watcher,
        probe: Probe,
        clock: Callable[[], float],
        start_timeout: float,
        interrupt: threading.Event,
        timings: Timings,
        replicas: WebReplicas,
        workers: WorkerReplicas,
    ) -> None:
        self._reporter = reporter
        self._provisioner = provisioner
        self._launcher = launcher
        self._group = group
        self._watcher = watcher
        self._probe = probe
        self._clock = clock
        self._start_timeout = start_timeout
        self._interrupt = interrupt
        self._timings = timings
        self._replicas = replicas
        self._workers = workers
        #: Read from other threads: each is replaced whole, never changed in place.
        self.prepared: PreparedEnvironment | None = None
        self.endpoint: str | None = None
        self.major: int | None = None

    @property
    def key(self) -> str:
        return self._reporter.key

    def handle(self, command: Create | Update | Resume) -> None:
        try:
            if isinstance(command, Create):
                self._create(command.spec)
            elif isinstance(command, Update):
                self._update(command.spec, command.previous, command.worker_replacement)
            else:
                self._resume(command.spec)
        except Interrupted:
            log.info("environment %s: interrupted", self.key)
        except Exception as exc:  # a bug must not kill the thread (and with it the processes)
            log.exception("environment %s: unexpected error", self.key)
            kind: EventKind = "create_failed" if isinstance(command, Create) else "update_failed"
            if isinstance(command, Resume):
                kind = "unavailable"
            self._reporter.emit(kind, f"Internal error while starting Airflow: {exc}", "INTERNAL_ERROR")

    # The steps -----------------------------------------------------------------------------

    def _create(self, spec: EnvironmentSpec) -> None:
        deadline = self._clock() + self._start_timeout
        try:
            self.stop_everything()
            self._launcher.end_leftovers(spec.home)
            prepared = self._prepare(spec, self._new_ports())
            self._reporter.progress("Creating the Airflow metadata database")
            self._provisioner.initialize_database(prepared, self._remaining(deadline))
            self._launch(prepared, deadline)
        except (EnvironmentSetupError, StartFailure) as exc:
            self.stop_everything()
            self._reporter.emit("create_failed", exc.message, exc.error_code)
            return
        self._became_available(prepared)

    def _resume(self, spec: EnvironmentSpec) -> None:
        deadline = self._clock() + self._start_timeout
        try:
            self.stop_everything()
            self._launcher.end_leftovers(spec.home)
            prepared = self._prepare(spec, self._new_ports())
            # An upgrade an earlier openmwaa was in the middle of: never start on its database.
            upgrading = self._provisioner.resume_upgrade(prepared, self._remaining(deadline))
            if not self._provisioner.has_database(prepared):
                self._provisioner.initialize_database(prepared, self._remaining(deadline))
        except (EnvironmentSetupError, StartFailure) as exc:
            self._reporter.emit("unavailable", exc.message, exc.error_code)
            return
        try:
            self._launch(prepared, deadline)
        except StartFailure as exc:
            # Keep what started: the watcher restarts the rest and reports recovery.
            self.prepared = prepared
            self.endpoint = prepared.base_url
            self._watcher.mark_unavailable(exc.error_code, exc.message)
            return
        if upgrading:
            self._provisioner.finish_upgrade(spec)
        self._became_available(prepared)

    def _update(self, spec: EnvironmentSpec, previous: EnvironmentSpec, worker_replacement: str) -> None:
        deadline = self._clock() + self._start_timeout
        old = self.prepared
        # Not "did the runtime change": after a restart nothing runs yet (old is None), and an
        # upgrade interrupted by that restart must still be migrated, or rolled back.
        upgrading = spec.airflow_version != previous.airflow_version
        if old is None:
            self._launcher.end_leftovers(spec.home)
        try:
            new = self._prepare(spec, old.ports if old else self._new_ports())
        except EnvironmentSetupError as exc:
            # Nothing was touched: what ran before runs on (or, after a restart, starts again).
            if old is not None:
                self._reporter.emit("update_failed", exc.message, exc.error_code)
            elif not upgrading or self._roll_back(spec, exc):
                self._restore(previous, exc)
            return
        specs = self._components(new)
        restart = [c.name for c in specs] if old is None else self._changed(old, new, specs)
        # Schedulers and workers the new counts add or drop (web servers follow web_replicas).
        wanted = {c.name for c in specs}
        current = [s for s in self._group.specs() if not s.serves_api]
        added = [c.name for c in specs if not c.serves_api and c.name not in {s.name for s in current}]
        # Workers beyond MinWorkers are the autoscaler's: it drains them when they are idle or
        # beyond MaxWorkers, and an update replaces them all (see _replace_workers).
        surplus = [s.name for s in current if s.name not in wanted and s.kind != WORKER_KIND]
        if old is not None:
            self._group.remove(surplus)
            restart += [name for name in added if name not in restart]
        if old is not None and not restart:
            self._became_available(new)
            return
        self._reporter.progress(f"Restarting {', '.join(restart)}")
        everything = upgrading or old is None or old.runtime.version != new.runtime.version
        # Unless everything stops (a new Airflow version), the web servers restart one at a
        # time, so requests keep being served; the other components restart in place.
        roll = not everything and any(c.serves_api and c.name in restart for c in specs)
        if roll:
            restart = [n for n in restart if not any(c.serves_api and c.name == n for c in specs)]
        if self._replace_workers(specs, restart, worker_replacement, everything=everything):
            deadline = self._clock() + self._start_timeout  # the wait was not start-up time
        try:
            self._group.stop(None if everything else restart)
            if upgrading:
                self._reporter.progress(
                    f"Upgrading the metadata database from Airflow {previous.airflow_version} "
                    f"to {spec.airflow_version}"
                )
                self._provisioner.begin_upgrade(new, previous.airflow_version, self._remaining(deadline))
            self._launch(new, deadline, only=None if everything else restart, roll_web=roll)
        except (EnvironmentSetupError, StartFailure) as exc:
            self.stop_everything()
            if upgrading and not self._roll_back(spec, exc):
                return
            self._restore(previous, exc)
            return
        if upgrading:
            self._provisioner.finish_upgrade(spec)
        self._provisioner.remove_unused(new)
        self._became_available(new)

    def _roll_back(self, spec: EnvironmentSpec, cause: EnvironmentSetupError | StartFailure) -> bool:
        """Put the database back as it was before the upgrade; if that fails, nothing may start."""
        try:
            self._provisioner.roll_back_upgrade(spec)
        except EnvironmentSetupError as exc:
            self._reporter.emit("update_failed", cause.message, cause.error_code)
            self._watcher.mark_unavailable(
                exc.error_code,
                f"The upgrade to Airflow {spec.airflow_version} failed and its database could not be "
                f"rolled back: {exc.message} openmwaa tries again when it restarts.",
            )
            return False
        return True

    def _restore(self, previous: EnvironmentSpec, cause: EnvironmentSetupError | StartFailure) -> None:
        """Bring ``previous`` back after a failed update, then say update_failed (and why).

        Only then: until ``previous`` serves again the environment is still UPDATING, so no
        new update can be queued behind the rollback and take its "healthy" for its own.
        """
        deadline = self._clock() + self._start_timeout
        try:
            prepared = self._prepare(previous, self.prepared.ports if self.prepared else self._new_ports())
            self._launch(prepared, deadline)
        except (EnvironmentSetupError, StartFailure) as exc:
            self.stop_everything()
            self._reporter.emit("update_failed", cause.message, cause.error_code)
            self._watcher.mark_unavailable(
                exc.error_code, f"The previous configuration did not start again either: {exc.message}"
            )
            return
        self._became_available(prepared, failed_update=cause)

    @staticmethod
    def _changed(
        old: PreparedEnvironment, new: PreparedEnvironment, specs: Sequence[ComponentSpec]
    ) -> list[str]:
        """The components whose configuration the update changes."""
        same = old.runtime.root == new.runtime.root
        restart = components_to_restart(old.env, new.env, specs, same_runtime=same)
        if web_env_changed(old.web_env, new.web_env):  # only what serves the API reads it
            restart += [c.name for c in specs if c.serves_api and c.name not in restart]
        if worker_env_changed(old.worker_env, new.worker_env):  # only the workers read it
            restart += [c.name for c in specs if c.kind == WORKER_KIND and c.name not in restart]
        return restart

    def _replace_workers(
        self, specs: Sequence[ComponentSpec], restart: Sequence[str], strategy: str, *, everything: bool
    ) -> bool:
        """Before the restart: every worker goes, the autoscaled ones too (the autoscaler starts
        them again); GRACEFUL lets them finish their tasks first, FORCED ends their tasks at once
        (Airflow retries them). True if that was waited for."""
        if not (everything or any(c.kind == WORKER_KIND and c.name in restart for c in specs)):
            return False
        workers = [c.name for c in self._group.specs() if c.kind == WORKER_KIND]
        waited = strategy == "GRACEFUL" and self._let_workers_finish(workers)
        if strategy != "GRACEFUL" and (handles := self._running(workers)):
            self._launcher.interrupt_tasks(handles, self._timings.forced_task_grace)
        if not everything:
            self._group.remove([n for n in workers if n not in restart])
        return waited

    def _running(self, names: Sequence[str]) -> list[ProcessHandle]:
        """The processes of those of ``names`` that run."""
        running = self._group.running
        return [running[n] for n in names if n in running]

    def _let_workers_finish(self, names: Sequence[str]) -> bool:
        """GRACEFUL: the workers stop taking tasks and finish the ones they run, within a bound.

        Celery's warm shutdown (SIGTERM to each worker's main process); the scheduler runs on
        meanwhile, and what it queues waits in the broker for the new workers.
        """
        handles = self._running(names)
        if not handles:
            return False
        bound = self._timings.graceful_worker_stop
        self._reporter.progress(
            f"Waiting for the running tasks of {', '.join(h.name for h in handles)} to finish "
            f"(WorkerReplacementStrategy GRACEFUL, at most {bound:.0f} s)"
        )
        until = self._clock() + bound
        self._workers.let_finish(handles)
        while any(h.poll() is None for h in handles):
            if self._clock() >= until:
                log.warning(
                    "environment %s: workers still ran tasks after %.0f s; stopping them", self.key, bound
                )
                return True
            if self._interrupt.wait(self._timings.health_interval):
                raise Interrupted
        return True

    def delete(self, command: Delete) -> None:
        self.stop_everything()
        try:
            self._launcher.end_leftovers(command.home)
            python = self.prepared.runtime.python if self.prepared else None
            self._provisioner.remove(command.home, command.database_url, python)
        except (OSError, EnvironmentSetupError) as exc:
            message = exc.message if isinstance(exc, EnvironmentSetupError) else str(exc)
            self._reporter.emit("delete_failed", message, "DELETE_FAILED")
            return
        finally:
            self.release()
        self._reporter.emit("deleted", "")

    def stop_everything(self) -> None:
        self._group.stop(None)
        self.endpoint = None

    def release(self) -> None:
        """Give the environment's ports back (it is deleted, or openmwaa stops)."""
        if self.prepared is not None:
            p = self.prepared.ports
            release_ports([p.api, p.worker_log, p.trigger_log])

    # Starting --------------------------------------------------------------------------------

    def _prepare(self, spec: EnvironmentSpec, ports: Ports) -> PreparedEnvironment:
        self._check_interrupt()
        prepared = self._provisioner.prepare(spec, ports, self._reporter.progress)
        self._check_interrupt()
        return prepared

    @staticmethod
    def _components(prepared: PreparedEnvironment) -> list[ComponentSpec]:
        """What starts: one web server (the others follow, see web_replicas), the schedulers and,
        in distributed mode, MinWorkers Celery workers."""
        spec = prepared.spec
        replicas = {"scheduler": spec.schedulers, WORKER_KIND: spec.workers[0]}
        group = spec.celery.queue if spec.celery is not None else None
        return components_for(prepared.runtime, [prepared.ports.api], replicas, worker_group=group)

    def _launch(
        self,
        prepared: PreparedEnvironment,
        deadline: float,
        only: list[str] | None = None,
        *,
        roll_web: bool = False,
    ) -> None:
        """Start components (``roll_web``: and restart the web servers one at a time), then wait
        until Airflow reports every one healthy."""
        self._check_interrupt()
        self.prepared = prepared
        self.major = prepared.runtime.major
        self._reporter.progress("Starting Airflow components")
        for stale in prepared.spec.home.glob("airflow-*.pid"):  # Airflow 2 refuses to start beside one
            stale.unlink(missing_ok=True)
        chosen = [s for s in self._components(prepared) if only is None or s.name in only]
        self._group.start(chosen, self._clock())
        self.endpoint = prepared.base_url
        waiting = self._web_server_first(chosen)
        try:
            if roll_web:
                self._replicas.restart_one_at_a_time(
                    prepared, functools.partial(self._wait_until, deadline=deadline)
                )
            self._wait_healthy(prepared, deadline)
        finally:
            for handle in waiting:
                self._launcher.set_background(handle, False)

    def _web_server_first(self, started: Sequence[ComponentSpec]) -> list[ProcessHandle]:
        """Lower the others' CPU share while the web server starts (see startup_priority)."""
        if not any(s.serves_api for s in started):
            return []
        running = self._group.running
        handles = [running[s.name] for s in started if not s.serves_api and s.name in running]
        return [h for h in handles if self._launcher.set_background(h, True)]

    def _wait_healthy(self, prepared: PreparedEnvironment, deadline: float) -> None:
        while True:
            for name, code in self._group.exited():
                handle = self._group.running[name]
                raise StartFailure(
                    "COMPONENT_CRASHED",
                    f"Airflow {name} exited with code {code} while starting. "
                    f"End of {handle.log_path}:\n{log_tail(handle.log_path)}",
                )
            report = self._probe(prepared.base_url, prepared.runtime.major)
            if web_kind(prepared.runtime.major) not in report.failing:
                self._replicas.warmed(prepared)  # it answers: warm it while the rest start
            if report.healthy:
                return
            if self._clock() >= deadline:
                raise StartFailure(
                    "STARTUP_TIMEOUT",
                    f"Airflow did not become healthy within {self._start_timeout:.0f} s ({report.detail}). "
                    f"Component logs are in {prepared.spec.home / 'logs'}.",
                )
            if self._interrupt.wait(self._timings.health_interval):
                raise Interrupted

    def _wait_until(
        self,
        done: Callable[[], bool],
        *,
        deadline: float,
        starting: Sequence[str] = (),
        within: float | None = None,
    ) -> bool:
        """See :class:`~openmwaa.supervisor.web_replicas.Waiter`."""
        give_up = None if within is None else self._clock() + within
        while True:
            for name, code in self._group.exited():
                if name in starting:
                    handle = self._group.running[name]
                    raise StartFailure(
                        "COMPONENT_CRASHED",
                        f"Airflow {name} exited with code {code} while starting. "
                        f"End of {handle.log_path}:\n{log_tail(handle.log_path)}",
                    )
            if done():
                return True
            now = self._clock()
            if give_up is not None and now >= give_up:
                return False
            if now >= deadline:
                raise StartFailure(
                    "STARTUP_TIMEOUT",
                    f"Airflow {', '.join(starting)} did not answer within {self._start_timeout:.0f} s. "
                    f"Component logs are in {self.prepared.spec.home / 'logs' if self.prepared else '-'}.",
                )
            if self._interrupt.wait(self._timings.health_interval):
                raise Interrupted

    def _became_available(
        self, prepared: PreparedEnvironment, failed_update: EnvironmentSetupError | StartFailure | None = None
    ) -> None:
        self._replicas.reset(self._clock())
        self._workers.reset(self._clock())
        self.prepared = prepared
        self.major = prepared.runtime.major
        self.endpoint = prepared.base_url
        if failed_update is None:
            self._watcher.became_available("available", "")
        else:
            self._watcher.became_available("update_failed", failed_update.message, failed_update.error_code)

    def _new_ports(self) -> Ports:
        if self.prepared is not None:
            return self.prepared.ports
        api, worker_log, trigger_log = allocate_ports(3)
        return Ports(api=api, worker_log=worker_log, trigger_log=trigger_log)

    def _remaining(self, deadline: float) -> float:
        left = deadline - self._clock()
        if left <= 0:
            raise StartFailure(
                "STARTUP_TIMEOUT", f"Airflow did not start within {self._start_timeout:.0f} s."
            )
        return left

    def _check_interrupt(self) -> None:
        if self._interrupt.is_set():
            raise Interrupted
