"""Logs never fill the disk: component logs rotated by size, old files dropped, a cap per environment.

A sweep of one environment's ``logs/`` folder, in order:

1. A component log (``scheduler.log``, ``api-server-1.log``, ...) past ``component_max_bytes`` is
   rotated by copy-and-truncate: ``.1`` -> ``.2`` ... up to ``keep``, the file copied to ``.1`` and
   truncated in place. The component keeps its file open in append mode, so it writes on at the
   new end; lines written during the copy itself can be lost (the usual copytruncate window).
2. Any other log file (rotated copies, task and DAG processing logs) last written more than
   ``retention_seconds`` ago is deleted.
3. While the folder holds more than ``max_bytes``, the oldest such files go first.

Symbolic links are never followed nor counted; empty task folders are removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

_ACTIVE: Final = re.compile(r"[a-z][a-z-]*(-\d+)?\.log")
_LOG_FILE: Final = re.compile(r".+\.log(\.\d+)?")
_EMPTY_DIR_AGE: Final = 3600.0


@dataclass(frozen=True)
class RetentionPolicy:
    retention_seconds: float
    max_bytes: int
    component_max_bytes: int
    keep: int = 3


@dataclass
class SweepResult:
    rotated: int = 0
    deleted: int = 0
    freed: int = 0


def sweep(logs_dir: Path, policy: RetentionPolicy, *, now: float) -> SweepResult:
    result = SweepResult()
    for entry in _regular_files(logs_dir, recursive=False):
        if _ACTIVE.fullmatch(entry.name) and entry.stat().st_size > policy.component_max_bytes:
            rotate(entry, policy.keep)
            result.rotated += 1
    candidates = []  # (mtime, size, path) of files that may go
    total = 0
    for path in _regular_files(logs_dir, recursive=True):
        info = path.stat()
        total += info.st_size
        if path.parent == logs_dir and _ACTIVE.fullmatch(path.name):
            continue  # a component's open log: rotated, never deleted
        if _LOG_FILE.fullmatch(path.name):
            candidates.append((info.st_mtime, info.st_size, path))
    candidates.sort()
    for mtime, size, path in candidates:
        if now - mtime <= policy.retention_seconds and total <= policy.max_bytes:
            break
        if _unlink(path):
            total -= size
            result.deleted += 1
            result.freed += size
    _remove_empty_dirs(logs_dir / "airflow", now)
    return result


def rotate(path: Path, keep: int) -> None:
    """``path`` -> ``path.1`` (``.1`` -> ``.2`` ... the oldest beyond ``keep`` dropped), then truncated."""
    for index in range(keep, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if index == keep:
            _unlink(older)
        elif older.exists():
            older.rename(path.with_name(f"{path.name}.{index + 1}"))
    if keep > 0:
        with path.open("rb") as source, path.with_name(f"{path.name}.1").open("wb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
    os.truncate(path, 0)


def _regular_files(top: Path, *, recursive: bool) -> Iterable[Path]:
    if not recursive:
        try:
            return [p for p in top.iterdir() if stat.S_ISREG(os.lstat(p).st_mode)]
        except OSError:
            return []
    found = []
    for dirpath, _dirs, files in os.walk(top, followlinks=False):
        for name in files:
            path = Path(dirpath) / name
            try:
                if stat.S_ISREG(os.lstat(path).st_mode):
                    found.append(path)
            except OSError:
                continue
    return found


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("could not delete old log %s: %s", path, exc)
        return False


def _remove_empty_dirs(top: Path, now: float) -> None:
    for dirpath, _dirs, _files in os.walk(top, topdown=False, followlinks=False):
        if Path(dirpath) == top:
            continue
        # Bottom-up, so a folder emptied just now goes too; rmdir refuses a non-empty one. A
        # folder changed in the last hour is left alone: Airflow may be about to write into it.
        with contextlib.suppress(OSError):
            if now - os.stat(dirpath).st_mtime > _EMPTY_DIR_AGE:
                os.rmdir(dirpath)


class LogJanitor:
    """Sweeps every environment's logs folder every ``interval`` seconds, in a daemon thread."""

    def __init__(
        self,
        folders: Callable[[], Iterable[Path]],
        policy: RetentionPolicy,
        *,
        interval: float = 60.0,
        clock: Callable[[], float],
    ) -> None:
        self._folders = folders
        self._policy = policy
        self._interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="openmwaa-log-janitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def sweep_all(self) -> None:
        for folder in self._folders():
            if folder.is_dir():
                try:
                    result = sweep(folder, self._policy, now=self._clock())
                except OSError as exc:
                    log.warning("log retention sweep of %s failed: %s", folder, exc)
                    continue
                if result.rotated or result.deleted:
                    log.info(
                        "logs %s: %d rotated, %d deleted (%d bytes freed)",
                        folder,
                        result.rotated,
                        result.deleted,
                        result.freed,
                    )

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sweep_all()
            except Exception:
                log.exception("log retention sweep failed")
