"""The web servers' port registry: remembered ports, answered from memory."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from openmwaa.webserver.port_registry import PortRegistry

#: Files opened while a test watches (an audit hook cannot be removed, so it only records on demand).
_opened: list[list[str]] = []


def _record_open(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opened:
        _opened[-1].append(str(args[0]))


sys.addaudithook(_record_open)


def test_the_remembered_port_is_answered_without_reading_the_file(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        first = int(probe.getsockname()[1])
    path = tmp_path / "ports.json"
    PortRegistry(path, first=first, last=min(first + 10, 65535)).bind("a", "127.0.0.1").close()
    remembered = json.loads(path.read_text())["a"]

    registry = PortRegistry(path, first=first, last=min(first + 10, 65535))  # a restart
    assert registry.port("a") == remembered  # the first answer reads the file
    _opened.append([])
    try:
        answers = [registry.port("a") for _ in range(100)] + [registry.port("unknown")]
    finally:
        opened = _opened.pop()
    assert answers == [remembered] * 100 + [None]
    assert opened == []  # asked on the event loop for every GetEnvironment: no disk access


def test_a_bound_port_is_remembered_at_once_and_forgotten(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        first = int(probe.getsockname()[1])
    path = tmp_path / "ports.json"
    registry = PortRegistry(path, first=first, last=min(first + 10, 65535))
    assert registry.port("a") is None
    sock = registry.bind("a", "127.0.0.1")
    port = int(sock.getsockname()[1])
    sock.close()
    assert registry.port("a") == port == json.loads(path.read_text())["a"]
    registry.forget("a")
    assert registry.port("a") is None and json.loads(path.read_text()) == {}
