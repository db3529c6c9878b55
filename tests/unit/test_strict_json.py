"""json_fragment: the strict check that lets a document be passed on unchanged."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openmwaa.strict_json import json_fragment

#: JSON values as a parser gives them back (finite floats; any text, surrogates excluded).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
containers = st.one_of(st.lists(json_values), st.dictionaries(st.text(), json_values))


def _embedded(document: bytes) -> Any:
    fragment = json_fragment(document)
    assert fragment is not None
    return json.loads(orjson.dumps({"before": 1, "doc": fragment, "after": [2]}))


@settings(max_examples=50, deadline=None)
@given(
    value=containers,
    ensure_ascii=st.booleans(),
    indent=st.sampled_from([None, 1, "\t"]),
    padding=st.sampled_from(["", " ", "\r\n\t "]),
)
def test_any_object_or_array_is_embedded_byte_for_byte(
    value: Any, ensure_ascii: bool, indent: Any, padding: str
) -> None:
    """Whatever the writer's style, the bytes go in unchanged and a client reads the same value."""
    document = (padding + json.dumps(value, ensure_ascii=ensure_ascii, indent=indent) + padding).encode()
    fragment = json_fragment(document)
    assert fragment is not None
    assert orjson.dumps([fragment]) == b"[" + document + b"]"
    assert _embedded(document) == {"before": 1, "doc": value, "after": [2]}


def test_big_and_deep_documents_pass() -> None:
    big = {"dags": [{"dag_id": f"d{i}", "tags": [{"name": "ünï ☕ \U0001d538"}] * 3} for i in range(20_000)]}
    document = orjson.dumps(big)
    assert len(document) > 1_000_000
    assert _embedded(document)["doc"] == big
    deep = b"[" * 500 + b"]" * 500
    assert _embedded(deep)["doc"] == json.loads(deep)


def test_duplicate_keys_pass_and_a_client_keeps_the_last() -> None:
    assert _embedded(b'{"a": 1, "a": 2}')["doc"] == {"a": 2}


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"   ",
        b'{"value": NaN}',  # Python's json writes these; they are not JSON
        b'{"value": Infinity}',
        b"[-Infinity]",
        b'{"a": 1}x',  # something after the value
        b'{"a": 1}{"b": 2}',
        b'{"a": 1}\x00',
        b'{"a": 1,}',
        b"{'a': 1}",
        b'{"a": 01}',
        b'{"a": 1e400}',
        b'{"a": 1.0e+}',
        b'{"a": "\xff"}',  # invalid UTF-8
        b'{"a": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"a": "\\ud800"}',  # a lone surrogate escape
        b'{"a": "\x01"}',  # a raw control character in a string
        b'{"a": "\\x41"}',  # not a JSON escape
        b'{"a": [1, 2}',
        b'{"a": ',  # cut short
        b"[" * 1025 + b"]" * 1025,  # deeper than simdjson's 1,024 levels
        b'\xef\xbb\xbf{"a": 1}',  # a byte order mark: never in the middle of a response
        b"\x0c{}",  # form feed is not JSON whitespace
    ],
)
def test_what_is_not_one_valid_json_document_is_refused(document: bytes) -> None:
    assert json_fragment(document) is None


@pytest.mark.parametrize("document", [b"null", b"true", b"1", b'"text"', b' "x" '])
def test_scalars_are_left_to_the_decoding_path(document: bytes) -> None:
    assert json_fragment(document) is None
