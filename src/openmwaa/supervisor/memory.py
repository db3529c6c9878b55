"""Memory of a process tree, as the kernel accounts it (PSS: shared pages split between sharers)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from openmwaa.supervisor.proc import PROC, all_stats, descendants


def process_pss(pid: int, proc: Path = PROC) -> int:
    """Proportional set size of one process in bytes (0 if it is gone)."""
    try:
        text = (proc / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def process_tree_pss(pids: Iterable[int], proc: Path = PROC) -> int:
    """Total PSS in bytes of ``pids`` and all their descendants, each process counted once."""
    tree = descendants(list(pids), all_stats(proc))
    return sum(process_pss(pid, proc) for pid in tree)
