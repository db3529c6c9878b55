"""What a server openmwaa runs keeps between starts: its password and its port.

Both live beside the servers' data, in files only openmwaa's user can read (0600): the
password is generated once, and the port is kept while it stays free, so the URLs openmwaa
hands to Airflow stay the same across restarts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
from pathlib import Path

from openmwaa.runtime.isolation import EnvironmentUser
from openmwaa.supervisor.loopback_ports import allocate_ports


def read_or_create_secret(path: Path) -> str:
    """A password of 48 hex digits (URL-safe as it is), created 0600 on first use."""
    with contextlib.suppress(FileNotFoundError):
        value = path.read_text().strip()
        if value:
            return value
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_hex(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def kept_port(path: Path) -> int:
    """The port recorded in ``path`` if it is free now, else a new free loopback port (recorded)."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        port = int(path.read_text().strip())
        if 1024 <= port <= 65535 and _free(port):
            return port
    port = allocate_ports(1)[0]
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(f"{port}\n")
    return port


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def private_dir(path: Path, user: EnvironmentUser | None) -> Path:
    """``path`` (created 0700), owned by ``user`` when the server runs as one."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    if user is not None:
        shutil.chown(path, user.uid, user.gid)
    return path


def write_private_file(path: Path, text: str, user: EnvironmentUser | None) -> None:
    """``text`` into ``path`` (0600, ``user``'s), never through a link planted there."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        if user is not None:
            os.fchown(handle.fileno(), user.uid, user.gid)
        handle.write(text)
