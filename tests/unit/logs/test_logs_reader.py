"""Reading log events from files: forward and backward agree, whatever the line lengths."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from openmwaa.logs import reader
from openmwaa.logs.patterns import parse_pattern

lines_strategy = st.lists(
    st.one_of(st.text(alphabet="ab \u00e9", max_size=20), st.integers(1, 200_000).map(lambda n: "x" * n)),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(lines=lines_strategy, limit=st.integers(1, 7), partial=st.booleans())
def test_backward_pages_are_the_forward_events_in_reverse_pages(
    lines: list[str], limit: int, partial: bool
) -> None:
    data = "".join(line + "\n" for line in lines).encode() + (b"still writing" if partial else b"")
    file = io.BytesIO(data)
    end = reader.complete_end(file, len(data))
    forward = list(reader.read_forward(file, 0, default_timestamp=7))
    assert [e.message for e in forward] == [line[: reader.MAX_EVENT_BYTES] for line in lines]
    assert (forward[-1].end if forward else 0) == end
    collected: list[reader.Event] = []
    position = end
    while True:
        page = reader.read_backward(file, position, limit, default_timestamp=7)
        if not page:
            break
        assert len(page) <= limit
        collected[:0] = page
        position = page[0].offset
    assert [(e.offset, e.end, e.message) for e in collected] == [
        (e.offset, e.end, e.message) for e in forward
    ]


def test_timestamps_are_read_in_utc_with_zones() -> None:
    assert reader.parse_timestamp(b"[2026-01-01T00:00:00.250+0100] x") == 1_767_222_000_250
    assert reader.parse_timestamp(b'{"timestamp":"2026-01-01T00:00:00.123456Z"}') == 1_767_225_600_123
    assert reader.parse_timestamp(b"2026-13-01 00:00:00 nope") is None
    assert reader.parse_timestamp(b"no time here") is None


def test_filter_patterns() -> None:
    assert parse_pattern('ERROR "disk full"').matches("ERROR: disk full now")
    assert not parse_pattern('ERROR "disk full"').matches("ERROR: full disk")
    assert parse_pattern("?WARN ?ERROR -ignored").matches("a WARN")
    assert not parse_pattern("?WARN ?ERROR -ignored").matches("a WARN ignored")
    assert not parse_pattern("?WARN ?ERROR").matches("INFO")
    assert parse_pattern(r'"say \"hi\""').matches('they say "hi"')
    assert parse_pattern("").matches("anything")
