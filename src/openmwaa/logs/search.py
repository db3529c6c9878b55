"""FilterLogEvents' scan of one stream: every line, or only the lines around an anchor term.

A filter with a required term (``ERROR``, ``"exact phrase"``) cannot match a line without it, so
:func:`scan_anchored` reads the file in blocks, finds the term with ``bytes.find`` and parses
only the lines that contain it; the lines in between are passed over without a look. So that
pages still end and resume at the same places as a line-by-line scan, the last line of every
block is handed on as a checkpoint (``raw`` None): the merge of the streams advances its resume
position and its scan budget with it. Both scans yield

    (timestamp, stream, offset, end, raw or None, span_start)

ordered per stream by (timestamp, stream, offset) as in the files, where ``span_start`` is
where the bytes this item accounts for begin (the end of the stream's previous item).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Final

from openmwaa.logs import reader

BLOCK: Final = 1024 * 1024

Item = tuple[int, str, int, int, bytes | None, int]


def scan_all(file: BinaryIO, name: str, end_of_listing: int, default_timestamp: int) -> Iterator[Item]:
    """Every complete line up to ``end_of_listing``."""
    for offset, end, timestamp, raw in reader.scan_forward(file, 0, default_timestamp=default_timestamp):
        if end > end_of_listing:
            return  # written after the listing: the next call sees it
        yield timestamp, name, offset, end, raw, offset


def scan_anchored(
    file: BinaryIO, name: str, end_of_listing: int, default_timestamp: int, anchor: bytes
) -> Iterator[Item]:
    """The lines containing ``anchor``, and every block's last line as a checkpoint."""
    position = 0
    previous = default_timestamp  # the time in force at ``position``
    span_start = 0
    while position < end_of_listing:
        file.seek(position)
        chunk = file.read(min(BLOCK, end_of_listing - position))
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            # A line longer than a block: line by line from here, as scan_all would.
            for offset, end, timestamp, raw in reader.scan_forward(
                file, position, default_timestamp=previous
            ):
                if end > end_of_listing:
                    return
                yield timestamp, name, offset, end, raw, span_start
                span_start = end
            return
        block = chunk[:cut] if cut < len(chunk) else chunk
        last_end = 0
        hit = block.find(anchor)
        while hit >= 0:
            start = block.rfind(b"\n", 0, hit) + 1
            end = block.index(b"\n", hit) + 1
            line = block[start:end]
            raw = (
                line.rstrip(b"\r\n")
                if len(line) <= reader.MAX_EVENT_BYTES
                else line[: reader.MAX_EVENT_BYTES]
            )
            timestamp = _time_at(block, start, end, previous)
            yield timestamp, name, position + start, position + end, raw, span_start
            span_start = position + end
            last_end = end
            hit = block.find(anchor, end)
        previous = _time_at(block, block.rfind(b"\n", 0, cut - 1) + 1, cut, previous)
        if last_end != cut:
            last_start = block.rfind(b"\n", 0, cut - 1) + 1
            yield previous, name, position + last_start, position + cut, None, span_start
            span_start = position + cut
        position += cut


def _time_at(block: bytes, start: int, end: int, previous: int) -> int:
    """The time of the line at ``block[start:end]``: its own, or the last one before it in the
    block, or ``previous`` (the time in force where the block begins)."""
    while True:
        stamp = reader.parse_timestamp(block[start : min(end, start + 100)])
        if stamp is not None:
            return stamp
        if start == 0:
            return previous
        end = start
        start = block.rfind(b"\n", 0, start - 1) + 1
