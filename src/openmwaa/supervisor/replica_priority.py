"""While a new web server replica starts, it gets the CPU first: scale-up, a crashed one's replacement.

The environment's start-up does this already (see startup_priority): the other components wait
at autogroup nice 10 while the first web server starts. A web server started later competes
with the replicas already serving, and under the load that asked for it those saturate the
cores: measured on 2 cores (Airflow 3.3.1, 2 web servers busy with ``/dags?limit=100``), the
third took about a minute to answer although it needs only ~9 s of CPU. So, while a new
replica starts, every other process of the environment (the serving replicas included) runs
at nice 10; they get their share back the moment it answers (it joins the rotation), exits,
or has been starting for ``limit`` seconds (a replica that never answers must not keep the
others in the background for good).

A crashed replica's replacement only puts the components that serve no requests (scheduler,
DAG processor, ...) in the background: the replicas in rotation carry the whole load without it,
and slowing them would raise the requests in flight, which the autoscaler would take for more
load (a third web server while the second is only restarting).

:func:`background_wanted` decides (pure); :class:`ReplicaPriority` applies that through the
launcher and remembers what it lowered, so each process is set back exactly once, also when a
lifecycle step or a shutdown comes in between (:meth:`ReplicaPriority.restore`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from openmwaa.supervisor.group import ProcessHandle
from openmwaa.supervisor.launcher import ProcessLauncher

#: Seconds a starting replica keeps priority at most (a healthy start takes 10-60 s under load).
PRIORITY_LIMIT = 120.0


def background_wanted(
    running: Collection[str],
    starting: Mapping[str, float],
    now: float,
    limit: float = PRIORITY_LIMIT,
    spared: Collection[str] = (),
) -> set[str]:
    """The running processes to put in the background now.

    ``starting``: the web server replicas that run and have not answered since they started,
    with when each was first seen so. While one of them has been starting for less than
    ``limit`` seconds, everything else that runs goes in the background (starting replicas
    past the limit too), but for the ``spared`` ones; otherwise nothing does.
    """
    fresh = {name for name, since in starting.items() if now - since < limit}
    if not fresh:
        return set()
    return {name for name in running if name not in fresh and name not in spared}


class ReplicaPriority:
    def __init__(
        self, launcher: ProcessLauncher, clock: Callable[[], float], limit: float = PRIORITY_LIMIT
    ) -> None:
        self._launcher = launcher
        self._clock = clock
        self._limit = limit
        #: (name, pid) of each starting replica -> when it was first seen starting.
        self._since: dict[tuple[str, int], float] = {}
        #: Name -> the process this lowered (a restarted component is a new process).
        self._lowered: dict[str, ProcessHandle] = {}

    def update(
        self, running: Mapping[str, ProcessHandle], starting: Collection[str], spared: Collection[str] = ()
    ) -> None:
        """Lower or set back the processes in ``running``, given the replicas ``starting`` now
        (never the ``spared`` ones)."""
        now = self._clock()
        keys = {(name, running[name].pid) for name in starting if name in running}
        self._since = {key: self._since.get(key, now) for key in keys}
        wanted = background_wanted(
            running, {name: since for (name, _), since in self._since.items()}, now, self._limit, spared
        )
        for name, handle in list(self._lowered.items()):
            if name not in wanted or running.get(name) is not handle:
                del self._lowered[name]
                self._launcher.set_background(handle, False)
        for name in sorted(wanted):
            handle = running[name]
            if name not in self._lowered and self._launcher.set_background(handle, True):
                self._lowered[name] = handle

    def restore(self) -> None:
        """Set back everything this lowered (a lifecycle step, a shutdown or an error comes)."""
        lowered, self._lowered = self._lowered, {}
        self._since.clear()
        for handle in lowered.values():
            self._launcher.set_background(handle, False)

    def lowered(self) -> list[str]:
        return sorted(self._lowered)
