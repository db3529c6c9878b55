"""Which local port each environment's web server listens on, kept stable across restarts.

An environment keeps its port (``<data_dir>/webserver/ports.json``, keyed by environment key) so
the ``WebServerHostname`` a user saved keeps working. Ports come from a configured range; when the
remembered one is taken by another program, the environment moves to the next free one.

The file is read once and kept in memory (this process is its only writer): :meth:`PortRegistry.port`
is asked on the event loop for every GetEnvironment, and must not wait for the disk.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
from pathlib import Path


class NoFreePortError(RuntimeError):
    """Every port in the configured range is in use."""


class PortRegistry:
    def __init__(self, path: Path, *, first: int, last: int) -> None:
        if not 0 < first <= last <= 65535:
            raise ValueError(f"invalid web server port range {first}-{last}")
        self._path = path
        self._first = first
        self._last = last
        self._lock = threading.Lock()
        self._ports: dict[str, int] | None = None

    def port(self, key: str) -> int | None:
        """The port remembered for ``key``, if any (from memory once the file has been read)."""
        ports = self._ports
        if ports is None:
            with self._lock:
                ports = self._load()
        return ports.get(key)

    def bind(self, key: str, host: str) -> socket.socket:
        """A listening socket on ``key``'s port (the remembered one if free, else a new one)."""
        with self._lock:
            ports = self._load()
            wanted = ports.get(key)
            taken = {p for k, p in ports.items() if k != key}
            candidates = ([wanted] if wanted is not None else []) + [
                p for p in range(self._first, self._last + 1) if p not in taken and p != wanted
            ]
            for port in candidates:
                sock = _try_listen(host, port)
                if sock is not None:
                    if port != wanted:
                        ports[key] = port
                        self._save(ports)
                    return sock
        raise NoFreePortError(f"no free port for a web server in {self._first}-{self._last}")

    def forget(self, key: str) -> None:
        with self._lock:
            ports = self._load()
            if ports.pop(key, None) is not None:
                self._save(ports)

    def _load(self) -> dict[str, int]:
        """A copy of the remembered ports (the file is read the first time only); hold the lock."""
        if self._ports is None:
            self._ports = self._read()
        return dict(self._ports)

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            return {}  # a damaged file only costs the remembered ports
        return {str(k): int(v) for k, v in data.items() if isinstance(v, int)}

    def _save(self, ports: dict[str, int]) -> None:
        self._ports = dict(ports)
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(ports, indent=1, sort_keys=True))
        os.replace(tmp, self._path)


def _try_listen(host: str, port: int) -> socket.socket | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return None
        raise
    return sock
