"""EnvironmentClass rules, table-driven: the classes, each count's bounds and defaults per class."""

from __future__ import annotations

from typing import Any

import pytest

from openmwaa.errors import ValidationError
from openmwaa.services import environment_class
from openmwaa.services.environment_class import COUNT_MEMBERS, check, with_defaults

CLASSES = ("mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge")
#: Each count member's accepted range: mw1.micro, and every larger class.
MICRO_BOUNDS = dict.fromkeys(COUNT_MEMBERS, (1, 1))
LARGER_BOUNDS = {
    "MinWebservers": (2, 5),
    "MaxWebservers": (2, 5),
    "Schedulers": (2, 5),
    "MinWorkers": (1, 25),
    "MaxWorkers": (1, 25),
}


def checked(config: dict[str, Any], *, given: tuple[str, ...] | None = None) -> None:
    check(config, given=set(config) if given is None else given, fallback="the default")


def test_the_classes_are_mwaas() -> None:
    assert environment_class.ENVIRONMENT_CLASSES == CLASSES


@pytest.mark.parametrize(
    "name", ["foo", "", "mw1.Small", "mw2.small", "mw1.small ", "MW1.SMALL", "mw1.3xlarge"]
)
def test_anything_else_is_refused_with_the_valid_values(name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        checked({"EnvironmentClass": name})
    assert exc.value.message == (
        f"1 validation error detected: Value '{name}' at 'environmentClass' failed to satisfy "
        "constraint: Member must satisfy enum value set: "
        "[mw1.micro, mw1.small, mw1.medium, mw1.large, mw1.xlarge, mw1.2xlarge]"
    )


def test_create_defaults_are_mw1_small_with_mwaas_counts() -> None:
    assert with_defaults({}) == {
        "EnvironmentClass": "mw1.small",
        "MinWebservers": 2,
        "MaxWebservers": 2,
        "Schedulers": 2,
        "MinWorkers": 1,
        "MaxWorkers": 10,
    }


@pytest.mark.parametrize("name", CLASSES)
def test_defaults_per_class_are_valid_for_it(name: str) -> None:
    config = with_defaults({"EnvironmentClass": name})
    expected = (
        dict.fromkeys(COUNT_MEMBERS, 1)
        if name == "mw1.micro"
        else {"MinWebservers": 2, "MaxWebservers": 2, "Schedulers": 2, "MinWorkers": 1, "MaxWorkers": 10}
    )
    assert {m: config[m] for m in COUNT_MEMBERS} == expected
    check(config, given=("EnvironmentClass",), fallback="the default")


def test_given_counts_are_kept_and_an_unknown_class_gets_none() -> None:
    assert with_defaults({"EnvironmentClass": "mw1.large", "MaxWorkers": 25})["MaxWorkers"] == 25
    assert with_defaults({"EnvironmentClass": "foo"}) == {"EnvironmentClass": "foo"}


def bound_cases() -> list[Any]:
    cases = []
    for name in CLASSES:
        bounds = MICRO_BOUNDS if name == "mw1.micro" else LARGER_BOUNDS
        for member, (low, high) in bounds.items():
            cases.append(pytest.param(name, member, low, high, id=f"{name}-{member}"))
    return cases


@pytest.mark.parametrize(("name", "member", "low", "high"), bound_cases())
def test_each_count_is_bounded_per_class(name: str, member: str, low: int, high: int) -> None:
    base = with_defaults({"EnvironmentClass": name})
    # The pair's other member moves along so only the bound under test can fail.
    partner = {"MinWebservers": "MaxWebservers", "MinWorkers": "MaxWorkers"}
    path = member[:1].lower() + member[1:]
    for value in (low, high):
        config = {**base, member: value}
        if member in partner:
            config[partner[member]] = value
        elif member in partner.values():
            config[next(k for k, v in partner.items() if v == member)] = value
        checked(config)
    with pytest.raises(ValidationError) as exc:
        config = {**base, member: low - 1}
        if member.startswith("Max"):
            config[member.replace("Max", "Min")] = low - 1
        checked(config)
    assert (
        f"Value '{low - 1}' at '{path}' failed to satisfy constraint: Member must have value greater "
        in str(exc.value)
    )
    assert f"than or equal to {low} for environment class {name}" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        config = {**base, member: high + 1}
        if member.startswith("Min"):
            config[member.replace("Min", "Max")] = high + 1
        checked(config)
    assert (
        f"Value '{high + 1}' at '{path}' failed to satisfy constraint: Member must have value less "
        in str(exc.value)
    )
    assert f"than or equal to {high} for environment class {name}" in str(exc.value)


def test_schedulers_zero_is_refused_though_the_model_has_no_minimum() -> None:
    with pytest.raises(ValidationError, match="at 'schedulers' failed"):
        checked({"EnvironmentClass": "mw1.small", "Schedulers": 0})


@pytest.mark.parametrize(("low", "high"), [("MinWorkers", "MaxWorkers"), ("MinWebservers", "MaxWebservers")])
def test_min_must_not_exceed_max(low: str, high: str) -> None:
    with pytest.raises(ValidationError) as exc:
        checked({"EnvironmentClass": "mw1.large", low: 4, high: 3})
    path = low[:1].lower() + low[1:]
    assert str(exc.value) == (
        f"1 validation error detected: Value '4' at '{path}' failed to satisfy constraint: "
        f"Member must have value less than or equal to {high} (3)"
    )
    checked({"EnvironmentClass": "mw1.large", low: 3, high: 3})


def test_every_violation_is_reported_and_left_out_members_say_where_they_came_from() -> None:
    config = {"EnvironmentClass": "mw1.micro", "Schedulers": 2, "MinWebservers": 2, "MaxWebservers": 2}
    with pytest.raises(ValidationError) as exc:
        check(config, given=("EnvironmentClass",), fallback="the current value")
    message = str(exc.value)
    assert message.startswith("3 validation errors detected: ")
    assert "Value '2' at 'schedulers' (the current value) failed" in message
    assert "Value '2' at 'minWebservers' (the current value) failed" in message
    assert "less than or equal to 1 for environment class mw1.micro" in message


def test_a_long_bad_class_is_shown_truncated() -> None:
    with pytest.raises(ValidationError) as exc:
        checked({"EnvironmentClass": "x" * 1024})
    assert f"Value '{'x' * 256}...' at 'environmentClass'" in str(exc.value)
    assert "x" * 257 not in str(exc.value)
