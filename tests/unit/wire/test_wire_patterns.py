from __future__ import annotations

from typing import Any

import pytest

from openmwaa.wire.patterns import compile_pattern, translate_java_pattern

TAG_PATTERN = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"


def test_every_patterned_shape_has_a_sample_that_matches(
    service_model: Any, sample_strings: dict[str, str]
) -> None:
    patterned = {
        name for name in service_model.shape_names if "pattern" in service_model.shape_for(name).metadata
    }
    assert patterned <= set(sample_strings)
    for name in patterned:
        pattern = service_model.shape_for(name).metadata["pattern"]
        assert compile_pattern(pattern).fullmatch(sample_strings[name]), name


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        ("été 2024", True),  # letters beyond ASCII are \p{L}
        ("東京", True),
        ("٣", True),  # an Arabic-Indic digit is \p{N}
        ("a\u00a0b", True),  # a no-break space is \p{Z}
        ("a_b.c:d/e=f+g-h@i", True),
        ("", True),
        ("a!b", False),
        ("😀", False),  # So (symbol), not a letter
        ("a\tb", False),  # a tab is Cc, not Z
    ],
)
def test_unicode_property_classes(value: str, matches: bool) -> None:
    assert (compile_pattern(TAG_PATTERN).fullmatch(value) is not None) is matches


def test_full_match_semantics() -> None:
    name = compile_pattern("[a-zA-Z][0-9a-zA-Z-_]*")
    assert name.fullmatch("my-env_1")
    assert name.fullmatch("my env") is None
    assert name.fullmatch("env\n") is None


def test_digits_are_ascii_as_in_java() -> None:
    arn = compile_pattern(r"arn:aws(-[a-z]+)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
    assert arn.fullmatch("arn:aws:iam::123456789012:role/x")
    assert arn.fullmatch("arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/x") is None


def test_translation_outside_a_class_and_negation() -> None:
    assert compile_pattern(r"\p{N}+").fullmatch("12٣")
    assert compile_pattern(r"\P{N}+").fullmatch("ab")
    assert compile_pattern(r"\P{N}+").fullmatch("a1") is None
    with pytest.raises(ValueError, match="negated property"):
        translate_java_pattern(r"[\P{N}]")


def test_literal_bracket_first_in_class_is_kept() -> None:
    assert compile_pattern(r"[]a]+").fullmatch("]a]")
    assert compile_pattern(r"[^]a]+").fullmatch("bc")
