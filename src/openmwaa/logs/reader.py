"""Log events read lazily from a file: one line is one event, addressed by its byte offset.

Memory stays bounded whatever the file's size: forward reads go line by line, backward reads
by blocks, and a line longer than CloudWatch's event maximum is cut to it. Only complete lines
count (a line still being written is not an event yet), so a position handed out in a token is
always at the start of a line.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

#: CloudWatch Logs' maximum event size.
MAX_EVENT_BYTES: Final = 256 * 1024
_BLOCK: Final = 64 * 1024
_MAX_BACKWARD_LINE: Final = 4 * MAX_EVENT_BYTES
_TIMESTAMP: Final = re.compile(
    rb"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,6}))?\s?(Z|[+-]\d{2}:?\d{2})?"
)


@dataclass(frozen=True)
class Event:
    offset: int
    #: Where the next line starts.
    end: int
    timestamp: int  # ms since the epoch
    message: str


def parse_timestamp(line: bytes) -> int | None:
    """The first ISO-8601 time in the first 100 bytes of ``line``, in ms (UTC when no zone)."""
    match = _TIMESTAMP.search(line, 0, 100)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    if zone and zone != b"Z":
        sign = -1 if zone[:1] == b"-" else 1
        digits = zone[1:].replace(b":", b"")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)
    millis = int((fraction or b"0").ljust(3, b"0")[:3])
    return seconds * 1000 + millis


def _event(offset: int, end: int, line: bytes, previous: int) -> Event:
    text = line.rstrip(b"\r\n")[:MAX_EVENT_BYTES].decode("utf-8", errors="replace")
    stamp = parse_timestamp(line)
    return Event(offset, end, previous if stamp is None else stamp, text)


def read_forward(file: BinaryIO, start: int, *, default_timestamp: int) -> Iterator[Event]:
    """Events from byte ``start`` (a line start) on; a line without a time takes the previous one's."""
    file.seek(start)
    offset = start
    previous = default_timestamp
    while True:
        line = file.readline(MAX_EVENT_BYTES)
        if not line:
            return
        end = offset + len(line)
        if not line.endswith(b"\n"):
            # Longer than an event may be: keep its head, skip to the end of the line.
            while True:
                rest = file.readline(_BLOCK)
                end += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            if not rest:
                return  # the last line is still being written
        event = _event(offset, end, line, previous)
        previous = event.timestamp
        yield event
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
