"""The event bus between the supervisor and its listeners."""

from __future__ import annotations

from openmwaa.supervisor import EnvironmentEvent
from openmwaa.supervisor.event_bus import EventBus


def test_every_subscriber_gets_each_event_in_order() -> None:
    bus = EventBus()
    seen: list[tuple[str, str]] = []
    bus.publish(EnvironmentEvent("a/b/early", "available"))  # nobody listening yet: dropped
    bus.subscribe(lambda event: seen.append(("first", event.key)))
    bus.subscribe(lambda event: seen.append(("second", event.key)))
    bus.publish(EnvironmentEvent("a/b/env", "available"))
    assert seen == [("first", "a/b/env"), ("second", "a/b/env")]
