"""Log events read lazily from a file: one line is one event, addressed by its byte offset.

Memory stays bounded whatever the file's size: forward reads go line by line, backward reads
by blocks, and a line longer than CloudWatch's event maximum is cut to it. Only complete lines
count (a line still being written is not an event yet), so a position handed out in a token is
always at the start of a line.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

#: CloudWatch Logs' maximum event size.
MAX_EVENT_BYTES: Final = 256 * 1024
_BLOCK: Final = 64 * 1024
_MAX_BACKWARD_LINE: Final = 4 * MAX_EVENT_BYTES
_TIMESTAMP: Final = re.compile(
    rb"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:[.,](\d{1,6}))?\s?(Z|[+-]\d{2}:?\d{2})?"
)


@dataclass(frozen=True)
class Event:
    offset: int
    #: Where the next line starts.
    end: int
    timestamp: int  # ms since the epoch
    #: The line as read (without its newline, cut to MAX_EVENT_BYTES).
    raw: bytes

    @property
    def message(self) -> str:
        return self.raw.decode("utf-8", errors="replace")


def parse_timestamp(line: bytes) -> int | None:
    """The first ISO-8601 time in the first 100 bytes of ``line``, in ms (UTC when no zone)."""
    match = _TIMESTAMP.search(line, 0, 100)
    return None if match is None else _match_millis(match)


def _match_millis(match: re.Match[bytes]) -> int | None:
    seconds = _epoch_seconds(match.group(1))
    if seconds is None:
        return None
    fraction, zone = match.group(2), match.group(3)
    if zone and zone != b"Z":
        sign = -1 if zone[:1] == b"-" else 1
        digits = zone[1:].replace(b":", b"")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)
    if fraction is None:
        return seconds * 1000
    return seconds * 1000 + int(fraction[:3].ljust(3, b"0"))


@functools.lru_cache(maxsize=4096)
def _epoch_seconds(text: bytes) -> int | None:
    """``YYYY-MM-DD?HH:MM:SS`` in UTC (cached: consecutive lines mostly share their second)."""
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def _event(offset: int, end: int, line: bytes, previous: int) -> Event:
    stamp = parse_timestamp(line)
    return Event(offset, end, previous if stamp is None else stamp, line.rstrip(b"\r\n")[:MAX_EVENT_BYTES])


def read_forward(file: BinaryIO, start: int, *, default_timestamp: int) -> Iterator[Event]:
    """Events from byte ``start`` (a line start) on; a line without a time takes the previous one's."""
    for offset, end, timestamp, raw in scan_forward(file, start, default_timestamp=default_timestamp):
        yield Event(offset, end, timestamp, raw)


def scan_forward(
    file: BinaryIO, start: int, *, default_timestamp: int
) -> Iterator[tuple[int, int, int, bytes]]:
    """:func:`read_forward` as plain ``(offset, end, timestamp, raw)`` tuples: the hot loop of a search."""
    file.seek(start)
    offset = start
    previous = default_timestamp
    readline = file.readline
    search = _TIMESTAMP.search
    while True:
        line = readline(MAX_EVENT_BYTES)
        if not line:
            return
        end = offset + len(line)
        if line[-1:] != b"\n":
            # Longer than an event may be: keep its head, skip to the end of the line.
            while True:
                rest = readline(_BLOCK)
                end += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            if not rest:
                return  # the last line is still being written
        match = search(line, 0, 100)
        if match is not None:
            stamp = _match_millis(match)
            if stamp is not None:
                previous = stamp
        yield offset, end, previous, line.rstrip(b"\r\n")
        offset = end


def complete_end(file: BinaryIO, size: int) -> int:
    """The offset just past the last complete line of the first ``size`` bytes."""
    position = size
    while position > 0:
        start = max(0, position - _BLOCK)
        file.seek(start)
        block = file.read(position - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


def read_backward(
    file: BinaryIO, end: int, limit: int, *, default_timestamp: int, max_bytes: int = 2 * 1024 * 1024
) -> list[Event]:
    """Up to ``limit`` events (about ``max_bytes`` at most) ending at byte ``end`` (a line start),
    oldest first."""
    lines: list[tuple[int, bytes]] = []
    collected = 0
    position = end
    # ``buffer`` is the file from ``position`` to the first collected line: one line whose start
    # is not known yet, newline included (empty before the first read).
    buffer = b""
    while position > 0 and len(lines) < limit and collected < max_bytes:
        start = max(0, position - _BLOCK)
        file.seek(start)
        buffer = file.read(position - start) + buffer
        position = start
        newline = buffer.find(b"\n")
        if newline < 0:
            break  # only when ``end`` was not a line start
        cursor = position + newline + 1
        complete = []
        for part in buffer[newline + 1 :].split(b"\n")[:-1]:
            complete.append((cursor, part + b"\n"))
            cursor += len(part) + 1
        collected += len(buffer) - newline - 1
        lines[:0] = complete
        buffer = buffer[: newline + 1]
        if len(buffer) > _MAX_BACKWARD_LINE:
            # A line this long has no start in reach: reading stops before it (bounded memory).
            return _events(lines[-limit:], end, default_timestamp)
    if position == 0 and buffer and len(lines) < limit:
        lines.insert(0, (0, buffer))  # the file's first line
    return _events(lines[-limit:], end, default_timestamp)


def _events(lines: list[tuple[int, bytes]], end: int, default_timestamp: int) -> list[Event]:
    events = []
    previous = default_timestamp
    for index, (offset, line) in enumerate(lines):
        following = lines[index + 1][0] if index + 1 < len(lines) else end
        event = _event(offset, following, line, previous)
        previous = event.timestamp
        events.append(event)
    return events
