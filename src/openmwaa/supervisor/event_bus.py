"""Where the supervisor's environment events go: every subscriber, in the order they subscribed.

The supervisor is built before the services that listen to it (the environment service needs
the supervisor), so it publishes to a bus and the listeners subscribe once they exist.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from openmwaa.supervisor.spec import EnvironmentEvent

EventHandler = Callable[[EnvironmentEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: tuple[EventHandler, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, handler: EventHandler) -> None:
        with self._lock:
            self._handlers = (*self._handlers, handler)

    def publish(self, event: EnvironmentEvent) -> None:
        for handler in self._handlers:
            handler(event)
