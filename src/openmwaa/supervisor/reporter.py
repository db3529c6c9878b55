"""How a runner tells the services layer what happened to its environment."""

from __future__ import annotations

import logging
from collections.abc import Callable

from openmwaa.supervisor.spec import EnvironmentEvent, EventKind

log = logging.getLogger(__name__)


class Reporter:
    """Sends one environment's events; a failing listener is logged, never raised into the runner."""

    def __init__(self, key: str, listener: Callable[[EnvironmentEvent], None]) -> None:
        self.key = key
        self._listener = listener

    def emit(self, kind: EventKind, message: str, error_code: str | None = None) -> None:
        try:
            self._listener(EnvironmentEvent(self.key, kind, message, error_code))
        except Exception:  # the listener's bug must not stop the supervisor
            log.exception("environment %s: event listener failed on %s", self.key, kind)

    def progress(self, message: str) -> None:
        self.emit("progress", message)
