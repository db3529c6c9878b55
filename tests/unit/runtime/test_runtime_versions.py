from __future__ import annotations

import pytest

from openmwaa.runtime.versions import DEFAULT_VERSION, SUPPORTED_VERSIONS, major, version_tuple


def test_supported_versions_are_mwaas_list_newest_first() -> None:
    assert SUPPORTED_VERSIONS[0] == "3.3.1"
    assert "2.7.2" in SUPPORTED_VERSIONS
    assert len(SUPPORTED_VERSIONS) == 10
    tuples = [version_tuple(v) for v in SUPPORTED_VERSIONS]
    assert tuples == sorted(tuples, reverse=True)


def test_default_is_the_newest() -> None:
    assert max(SUPPORTED_VERSIONS, key=version_tuple) == DEFAULT_VERSION


@pytest.mark.parametrize(("version", "expected"), [("3.3.1", 3), ("3.0.6", 3), ("2.11.2", 2), ("2.7.2", 2)])
def test_major(version: str, expected: int) -> None:
    assert major(version) == expected


@pytest.mark.parametrize(
    "bad", ["", "3", "3.3", "3.3.1rc1", "3.3.1; rm -rf /", " 3.3.1", "../3.3.1", "v3.3.1"]
)
def test_malformed_versions_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an Airflow version"):
        version_tuple(bad)
