"""Free loopback ports, never handed out twice by one openmwaa process."""

from __future__ import annotations

import socket
import threading

_lock = threading.Lock()
_handed_out: set[int] = set()


def allocate_ports(count: int) -> list[int]:
    """``count`` distinct ports that are free now on 127.0.0.1."""
    ports: list[int] = []
    with _lock:
        while len(ports) < count:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                ports.append(port)
    return ports


def release_ports(ports: list[int]) -> None:
    with _lock:
        _handed_out.difference_update(ports)
