"""Airflow 3's task supervisor notices its task's end at once, not up to 5 s later.

The Task SDK's supervisor (``airflow.sdk.execution_time.supervisor``) forks a process per task
and watches its sockets with ``select``, waking on each message and on each socket's end. The task
process closes its sockets itself just before ``os._exit``; the supervisor, woken by that, asks
whether the process has ended (a ``wait`` that does not block) and often is answered "not yet":
the kernel is still tearing down the process's memory. With every socket now closed, nothing is left
to wake the next ``select``, which then sleeps its whole timeout: ``[workers]
min_heartbeat_interval``, 5 s. Measured on a 40-task fan-out (Airflow 3.3.1, Celery, 2 cores):
about half the tasks held their worker slot ~5 s after their task instance had ended, so the
next queued task started that much later.

:func:`install` wraps the supervisor's ``_service_subprocess`` so that once no socket is left to
watch, it waits on the process itself (psutil polls ``waitpid``, returning within milliseconds of
the end) for the same timeout, and then lets Airflow's own step record the exit as before. While
any socket is open the wrapper does nothing. Airflow versions without that method (Airflow 2,
which runs tasks another way) are left as they are.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
from collections.abc import Callable
from typing import Any

import psutil

_MARK = "_openmwaa_wakes_on_exit"


def install() -> bool:
    """Wrap the Task SDK supervisor's ``_service_subprocess``; True if it was (or already is)."""
    try:
        from airflow.sdk.execution_time import supervisor
    except ImportError:  # Airflow 2
        return False
    watched = getattr(supervisor, "WatchedSubprocess", None)
    original = getattr(watched, "_service_subprocess", None)
    if watched is None or original is None:
        return False
    if getattr(original, _MARK, False):
        return True
    watched._service_subprocess = wake_on_exit(original)
    return True


def wake_on_exit(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (``_service_subprocess``), waiting on the process when no socket is left."""

    @functools.wraps(original)
    def service(self: Any, max_wait_time: float, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "_exit_code", 0) is None and not self.selector.get_map():
            # Still running after the timeout: a psutil.Process (fork) or a Popen (fork+exec).
            with contextlib.suppress(psutil.TimeoutExpired, subprocess.TimeoutExpired):
                self._process.wait(timeout=max(0.0, max_wait_time))
            max_wait_time = 0.0
        return original(self, max_wait_time, *args, **kwargs)

    setattr(service, _MARK, True)
    return service
