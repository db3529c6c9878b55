"""The shipped constraints files: present for every supported version, and exactly lists of pins."""

from __future__ import annotations

import sys

import pytest

from openmwaa.runtime.constraints import (
    CONSTRAINTS_DIR,
    constraints_file,
    normalize,
    parse_pins,
    shipped_pythons,
)
from openmwaa.runtime.packages import required_packages
from openmwaa.runtime.versions import SUPPORTED_VERSIONS

HOST_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_every_supported_version_ships_constraints_for_the_python_we_run_on(version: str) -> None:
    path = constraints_file(version, HOST_PYTHON)
    assert path is not None, f"no constraints for Airflow {version} on Python {HOST_PYTHON}"
    pins = parse_pins(path.read_text())
    assert pins["apache-airflow"] == version
    for requirement in required_packages(version):  # everything the installer asks for is pinned
        assert normalize(requirement.split("[")[0].split("==")[0]) in pins
    assert HOST_PYTHON in shipped_pythons(version)


def test_every_shipped_file_is_a_list_of_pins_for_its_own_version() -> None:
    files = sorted(CONSTRAINTS_DIR.glob("*/constraints-*.txt"))
    assert len(files) >= len(SUPPORTED_VERSIONS)
    for path in files:
        version = path.parent.name
        assert version in SUPPORTED_VERSIONS, f"{path} is for a version openmwaa does not offer"
        assert parse_pins(path.read_text())["apache-airflow"] == version


def test_the_cryptography_that_broke_airflow_2_is_never_allowed() -> None:
    # cryptography 51 made MultiFernet a Rust class; Airflow 2.11 sets an attribute on it (a 500
    # on every encrypted write). The constraints of Airflow 2 pin a release before it.
    for version in (v for v in SUPPORTED_VERSIONS if v.startswith("2.")):
        path = constraints_file(version, HOST_PYTHON)
        assert path is not None
        major = int(parse_pins(path.read_text())["cryptography"].split(".")[0])
        assert major < 51, version


def test_parse_pins_normalizes_names_and_skips_comments() -> None:
    text = "# header\n\nFlask_Login==0.6.3  # why\nzope.interface==7.0\n"
    assert parse_pins(text) == {"flask-login": "0.6.3", "zope-interface": "7.0"}


@pytest.mark.parametrize(
    "line",
    [
        "requests>=2",
        "requests==2.0\nfoo",
        "-e file:///x",
        "pkg==1.0 ; python_version<'3.12'",
        "==1.0",
        "pkg==\n",
    ],
)
def test_parse_pins_refuses_anything_but_pins(line: str) -> None:
    with pytest.raises(ValueError, match="not a 'name==version' pin"):
        parse_pins(line)


@pytest.mark.parametrize(
    ("version", "python"), [("../2.11.2", "3.11"), ("2.11.2", "3.11/../x"), ("2.11", "3.11")]
)
def test_constraints_file_refuses_odd_names(version: str, python: str) -> None:
    with pytest.raises(ValueError):
        constraints_file(version, python)


def test_unknown_python_has_no_file() -> None:
    assert constraints_file("2.11.2", "3.99") is None
