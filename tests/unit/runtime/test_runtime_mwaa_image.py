"""The shipped data of MWAA's images, and the shipped constraints against it: MWAA's versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openmwaa.runtime.constraints import constraints_file, normalize, parse_pins, shipped_pythons
from openmwaa.runtime.mwaa_image import NOT_INSTALLED, SUBSTITUTES, mwaa_image, mwaa_images
from openmwaa.runtime.packages import mwaa_python, required_packages
from openmwaa.runtime.versions import SUPPORTED_VERSIONS

#: MWAA's repository has no image for these: their constraints are Airflow's release resolution.
WITHOUT_IMAGE = {"2.7.2", "2.8.1"}
IMAGED = [v for v in SUPPORTED_VERSIONS if v not in WITHOUT_IMAGE]


def test_the_data_covers_every_supported_version_mwaa_has_an_image_for() -> None:
    assert set(mwaa_images()) == set(IMAGED)
    for version in WITHOUT_IMAGE:
        assert mwaa_image(version) is None


def _base(requirement: str) -> str:
    return normalize(requirement.partition("[")[0].partition("==")[0])


@pytest.mark.parametrize("version", IMAGED)
def test_runtimes_install_mwaas_required_packages(version: str) -> None:
    image = mwaa_image(version)
    assert image is not None
    theirs = {SUBSTITUTES.get(_base(r), _base(r)) for r in image.required} - set(NOT_INSTALLED)
    ours = {_base(r) for r in required_packages(version)}
    # celery comes with apache-airflow[celery] (MWAA adds celery[sqs] for its SQS transport).
    assert theirs - {"celery"} <= ours, sorted(theirs - ours)
    assert ours - theirs == {"asyncpg"}  # Airflow 3's async PostgreSQL engine; pinned where MWAA has it
    airflow = next(r for r in required_packages(version) if r.startswith("apache-airflow["))
    assert airflow in image.required


def _cases() -> list[tuple[str, str]]:
    return [(v, py) for v in IMAGED for py in shipped_pythons(v)]


@pytest.mark.parametrize(("version", "python"), _cases())
def test_shipped_pins_are_mwaas_versions(version: str, python: str) -> None:
    image = mwaa_image(version)
    path = constraints_file(version, python)
    assert image is not None and path is not None
    ours = parse_pins(path.read_text())
    unmet = image.unmet.get(python, {})
    differ = {
        name: (ours[name], theirs)
        for name, theirs in image.pins().items()
        if name in ours and ours[name] != theirs and name not in unmet
    }
    assert differ == {}, f"ours (left) differs from MWAA's image (right) on Python {python}: {differ}"
    for name, why in unmet.items():  # recorded only where a pin really is not honoured
        assert ours.get(name) != image.pins()[name], (name, why)
        assert "requires Python" in why
    # Straight from the image's list, names as MWAA's image has them.
    same_name = {n: (ours[n], v) for n, v in image.image.items() if n in ours and ours[n] != v}
    assert {n: d for n, d in same_name.items() if n not in unmet} == {}
    if python == image.python:  # on MWAA's own Python, the runtime carries the whole image
        missing = set(image.carried()) - set(ours)
        assert missing == set(), sorted(missing)


@pytest.mark.parametrize("version", IMAGED)
def test_on_mwaas_python_every_pin_is_honoured(version: str) -> None:
    image = mwaa_image(version)
    assert image is not None
    assert image.unmet.get(image.python, {}) == {}


def test_pins_use_openmwaas_package_names() -> None:
    image = mwaa_image("3.3.1")
    assert image is not None
    pins = image.pins()
    # MWAA's image carries psycopg2-binary beside psycopg2: its own version is the pin.
    assert pins["psycopg2-binary"] == image.image["psycopg2-binary"]
    assert "psycopg2" not in pins and "pycurl" not in pins
    assert pins["apache-airflow"] == "3.3.1"


def test_mwaas_python_per_version() -> None:
    assert mwaa_python("2.10.3") == "3.11"  # MWAA's images up to 2.10 run Python 3.11
    assert mwaa_python("2.11.2") == "3.12"
    assert mwaa_python("3.3.1") == "3.12"
    assert mwaa_python("2.7.2") == "3.11"  # no image in the data: the major's usual Python


def test_data_is_read_from_the_path_given(tmp_path: Path) -> None:
    data = {
        "images": {
            "2.11.2": {
                "python": "3.12",
                "commit": "0" * 40,
                "as_of": "2026-08-11T00:00:00Z",
                "required": ["psycopg2"],
                "image": {"apache-airflow": "2.11.2", "psycopg2": "2.9.12", "pycurl": "7.47.0"},
                "constraints": {"apache-airflow-providers-ssh": "4.1.0"},
                "unmet": {"3.10": {"x": "MWAA's 1 requires Python>=3.11"}},
            }
        }
    }
    path = tmp_path / "images.json"
    path.write_text(json.dumps(data))
    image = mwaa_image("2.11.2", path)
    assert image is not None
    assert image.pins() == {
        "apache-airflow": "2.11.2",
        "psycopg2-binary": "2.9.12",
        "apache-airflow-providers-ssh": "4.1.0",
    }
    assert image.unmet == {"3.10": {"x": "MWAA's 1 requires Python>=3.11"}}
    assert mwaa_image("3.3.1", path) is None
    assert mwaa_images(tmp_path / "absent.json") == {}
