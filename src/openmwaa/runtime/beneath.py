"""Opening files inside an environment's home without following links the environment planted.

When environments run as users of their own (``runtime/isolation``), the home belongs to the
environment's user, yet openmwaa (root) still writes some files there: component and startup
logs, pid files, the database backup of an upgrade. A path-based ``open`` as root would follow a
symbolic link the environment's code put in their place (``logs/scheduler.log`` ->
``/etc/...``) and write wherever it points. Here every folder below the trusted ``base`` and the
file itself are opened relative to the previous folder with ``O_NOFOLLOW``: a link anywhere
below ``base`` is an error (ELOOP), never followed. ``base`` itself must be trusted: its parent
folders are openmwaa's. (Hard links to others' files are refused by the kernel's
``fs.protected_hardlinks``.)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def folder_beneath(base: Path, folder: Path, *, create: bool = True) -> Iterator[int]:
    """A descriptor of ``folder`` (``base`` or below it), reached without following links."""
    parts = folder.relative_to(base).parts  # ValueError if it is not below base
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_beneath(base: Path, path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open(path, flags, mode)``, refusing links anywhere below ``base``; folders are created."""
    with folder_beneath(base, path.parent) as fd:
        return os.open(path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)


def open_log(path: Path, base: Path, *, append: bool = True, readable: bool = False) -> int:
    """A log file to write (and read), opened beneath ``base`` when it is below it (plainly otherwise)."""
    flags = (os.O_RDWR if readable else os.O_WRONLY) | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    if not path.is_relative_to(base):
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags | os.O_CLOEXEC, 0o644)
    return open_beneath(base, path, flags)
