"""Which of an environment's files make up each log group, and their stream names.

Under ``<home>/logs``: the components' own logs (``scheduler.log``, ``api-server-1.log``, rotated
copies ``scheduler.log.1``) and Airflow's ``airflow/`` folder, where task logs are
``dag_id=<d>/run_id=<r>/task_id=<t>/attempt=<n>.log`` (Airflow's default template; MWAA's
task stream name is the same with ``:`` written ``_``) and the DAG processor's per-file logs sit under
``dag_processor/`` (Airflow 3) or ``scheduler/`` (Airflow 2). Symbolic links are never followed
and a stream name is only ever looked up among the files found, never joined onto a path.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from openmwaa.runtime.beneath import open_beneath

#: Group suffix -> the component log files (top level of ``logs/``) that belong to it.
_COMPONENT_FILES: Final = {
    "Scheduler": re.compile(r"(scheduler|triggerer)(-\d+)?\.log(\.\d+)?"),
    "WebServer": re.compile(r"(api-server|webserver)(-\d+)?\.log(\.\d+)?"),
    "DAGProcessing": re.compile(r"dag-processor(-\d+)?\.log(\.\d+)?"),
    "Task": None,
    "Worker": None,
}
#: Under ``logs/airflow``: the DAG processor's per-file logs.
_DAG_PROCESSING_DIRS: Final = ("dag_processor", "scheduler")
_TASK_DIR: Final = re.compile(r"dag_id=[^/]+")
#: More streams than this in one group are not listed (the most recently written are kept).
MAX_STREAMS: Final = 10_000


@dataclass(frozen=True)
class StreamFile:
    name: str
    path: Path
    size: int
    mtime: float
    ctime: float
    inode: int


def group_streams(logs_dir: Path, suffix: str) -> list[StreamFile]:
    """The streams of group ``suffix`` in ``logs_dir``, sorted by name."""
    found: list[StreamFile] = []
    pattern = _COMPONENT_FILES.get(suffix)
    if pattern is not None:
        for entry in _scandir(logs_dir):
            if pattern.fullmatch(entry.name):
                found.extend(_stream(entry.name, Path(entry.path)))
    airflow_dir = logs_dir / "airflow"
    if suffix == "Task":
        for entry in _scandir(airflow_dir):
            if _TASK_DIR.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                found.extend(_walk(airflow_dir, Path(entry.path)))
    elif suffix == "DAGProcessing":
        for name in _DAG_PROCESSING_DIRS:
            found.extend(_walk(airflow_dir, airflow_dir / name))
    if len(found) > MAX_STREAMS:
        found = sorted(found, key=lambda s: s.mtime, reverse=True)[:MAX_STREAMS]
    return sorted(found, key=lambda s: s.name)


def find_stream(logs_dir: Path, suffix: str, name: str) -> StreamFile | None:
    for stream in group_streams(logs_dir, suffix):
        if stream.name == name:
            return stream
    return None


def _walk(root: Path, top: Path) -> Iterator[StreamFile]:
    for dirpath, _dirs, files in os.walk(top, followlinks=False):
        for file in files:
            if file.endswith(".log") or re.fullmatch(r".+\.log\.\d+", file):
                path = Path(dirpath) / file
                yield from _stream(path.relative_to(root).as_posix(), path)


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except OSError:
        return []


def _stream(name: str, path: Path) -> Iterator[StreamFile]:
    try:
        info = os.lstat(path)
    except OSError:
        return
    if stat.S_ISREG(info.st_mode):
        yield StreamFile(stream_name(name), path, info.st_size, info.st_mtime, info.st_ctime, info.st_ino)


def stream_name(relative: str) -> str:
    """CloudWatch stream names have no ``:`` or ``*``: MWAA writes run ids' ``:`` as ``_``."""
    return relative.replace(":", "_").replace("*", "_")


def open_stream(path: Path, logs_dir: Path) -> BinaryIO:
    """A found stream's file, opened without following a link swapped in since it was found.

    The environment's code may own ``logs/`` (runtime/isolation): every folder from the home
    down and the file itself are opened with O_NOFOLLOW (runtime/beneath).
    """
    return os.fdopen(open_beneath(logs_dir.parent, path, os.O_RDONLY), "rb")
