"""While an environment starts, its web server gets the CPU first.

Measured on 2 cores (Airflow 3.3.1, template database): the api-server needs about 9 s of CPU
to start, the scheduler, DAG processor and triggerer about 4 s each. Each component is a
session leader, so with Linux's scheduler autogroups every one gets an equal share; the
others are ready after about 8 s and the api-server, on the critical path to AVAILABLE, still
needs several seconds alone: 14-15 s in all. With the other components' autogroup at nice 10
until the start-up is over, the api-server has a core to itself and everything is healthy
after 10-11 s. Nice 19 starved the others (13-14 s).

Only the autogroup's nice is changed, which the kernel lets a process set back to 0 without
privileges (a process's own nice could not be lowered again). Where autogroups are off or do not
apply (a process in a non-root cgroup), writing it is harmless; where the file is missing or
refused, nothing happens: this only ever changes how soon, never whether.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Final

#: The autogroup nice of the components that wait while the web server starts.
BACKGROUND_NICE: Final = 10


def set_autogroup_nice(pid: int, nice: int, proc: Path = Path("/proc")) -> bool:
    """Set the nice of ``pid``'s autogroup (its session's); False if the kernel would not."""
    with contextlib.suppress(OSError):
        (proc / str(pid) / "autogroup").write_text(f"{nice}\n")
        return True
    return False


def autogroup_nice(pid: int, proc: Path = Path("/proc")) -> int | None:
    """``/autogroup-123 nice 10`` -> 10; None where there is no autogroup."""
    try:
        text = (proc / str(pid) / "autogroup").read_text()
    except OSError:
        return None
    _, _, value = text.strip().rpartition(" ")
    try:
        return int(value)
    except ValueError:
        return None
