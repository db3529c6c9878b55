from __future__ import annotations

import random
import time

import pytest

from openmwaa.iam.matching import ActionPattern, ArnPattern, Glob, split_arn


def _reference_match(pattern: str, subject: str) -> bool:
    """Textbook dynamic-programming wildcard match, to check the greedy matcher against."""
    rows, cols = len(pattern), len(subject)
    table = [[False] * (cols + 1) for _ in range(rows + 1)]
    table[0][0] = True
    for i in range(1, rows + 1):
        if pattern[i - 1] == "*":
            table[i][0] = table[i - 1][0]
        for j in range(1, cols + 1):
            p = pattern[i - 1]
            if p == "*":
                table[i][j] = table[i - 1][j] or table[i][j - 1]
            else:
                table[i][j] = table[i - 1][j - 1] and (p in ("?", subject[j - 1]))
    return table[rows][cols]


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("*", "", True),
        ("?", "", False),
        ("a*", "a", True),
        ("*a", "ba", True),
        ("ab*ba", "aba", False),  # first and last segments may not overlap
        ("ab*ba", "abba", True),
        ("a*b*c", "axxbyyc", True),
        ("a*b*c", "axxcyyb", False),
        ("a?c*", "abcdef", True),
        ("*?", "", False),
        ("*x?z*", "aaxyzbb", True),
        ("**", "anything", True),
    ],
)
def test_glob_examples(pattern: str, subject: str, expected: bool) -> None:
    assert Glob.from_text(pattern).match(subject) is expected
    assert _reference_match(pattern, subject) is expected


def test_glob_agrees_with_reference_on_random_inputs() -> None:
    rng = random.Random(20240501)
    for _ in range(5000):
        pattern = "".join(rng.choice("ab*?") for _ in range(rng.randint(0, 8)))
        subject = "".join(rng.choice("ab") for _ in range(rng.randint(0, 10)))
        assert Glob.from_text(pattern).match(subject) is _reference_match(pattern, subject), (
            pattern,
            subject,
        )


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "pattern",
    ["a*a*a*a*a*a*a*a*a*a*b", "*a*a*a*a*a*a*a*a*a*a*a*a*b*", "?*?*?*?*?*?*?*?*?*b", "a*?a*?a*?a*?a*?b"],
)
def test_pathological_patterns_finish_fast(pattern: str) -> None:
    subject = "a" * 100_000
    glob = Glob.from_text(pattern)
    started = time.perf_counter()
    for _ in range(10):
        assert not glob.match(subject)
    # A backtracking matcher would take astronomically long; linear-ish work takes milliseconds.
    assert time.perf_counter() - started < 2.0


def test_action_patterns_are_case_insensitive_and_split_by_service() -> None:
    pattern = ActionPattern.parse("Airflow:Create*")
    assert pattern.service == "airflow"
    assert pattern.exact is None
    assert pattern.match("airflow", "createclitoken")
    assert not pattern.match("s3", "createbucket")
    assert ActionPattern.parse("airflow:GetEnvironment").exact == "airflow:getenvironment"


def test_arn_pattern_matches_field_by_field() -> None:
    pattern = ArnPattern.parse("arn:aws:airflow:*:111122223333:environment/*", variables=True)
    subject = "arn:aws:airflow:us-east-1:111122223333:environment/a:b/c"
    assert pattern.match(subject, split_arn(subject), lambda key: None)
    # The region star cannot reach across the account field.
    other = "arn:aws:airflow:us-east-1:444455556666:environment/x"
    assert not pattern.match(other, split_arn(other), lambda key: None)
    assert not pattern.match("*", split_arn("*"), lambda key: None)


def test_variable_with_colon_does_not_split_fields() -> None:
    pattern = ArnPattern.parse("arn:aws:airflow:*:*:environment/${aws:username}", variables=True)
    assert pattern.globs is None
    subject = "arn:aws:airflow:r:1:environment/alice"
    assert pattern.match(subject, split_arn(subject), {"aws:username": "alice"}.get)
