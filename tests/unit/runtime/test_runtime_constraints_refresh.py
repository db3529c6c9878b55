"""scripts/refresh-constraints: release times from PyPI's index, resolution as of the release."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from openmwaa.runtime.constraints import parse_pins
from openmwaa.runtime.constraints_refresh import (
    declared_pythons,
    release_time,
    resolve_from_pypi,
    write_constraints,
)

INDEX: dict[str, object] = {
    "files": [
        {"filename": "apache_airflow-2.11.2rc1-py3-none-any.whl", "upload-time": "2026-03-09T19:16:23Z"},
        {"filename": "apache_airflow-2.11.2.tar.gz", "upload-time": "2026-03-14T18:07:41.639331Z"},
        {"filename": "apache_airflow-2.11.2-py3-none-any.whl", "upload-time": "2026-03-14T18:07:32.174551Z"},
        {"filename": "apache_airflow-2.11.20-py3-none-any.whl", "upload-time": "2020-01-01T00:00:00Z"},
    ]
}


def test_release_time_is_the_first_upload_of_exactly_that_version() -> None:
    assert release_time("2.11.2", INDEX) == dt.datetime(
        2026, 3, 14, 18, 7, 32, 174551, tzinfo=dt.timezone.utc
    )


def test_release_time_of_an_unknown_version_is_an_error() -> None:
    with pytest.raises(LookupError, match=r"no upload of apache-airflow 9\.9\.9"):
        release_time("9.9.9", INDEX)


def fake_uv(tmp_path: Path, *, fail: bool = False) -> tuple[str, Path]:
    log = tmp_path / "argv"
    uv = tmp_path / "uv"
    uv.write_text(
        f"#!{sys.executable}\nimport sys\nopen({str(log)!r}, 'w').write(' '.join(sys.argv[1:]) + '\\n' + "
        "sys.stdin.read())\n"
        + ("sys.exit(1)\n" if fail else "print('apache-airflow==2.11.2')\nprint('cryptography==46.0.5')\n")
    )
    uv.chmod(0o755)
    return str(uv), log


def test_resolution_is_cut_off_one_day_after_the_release(tmp_path: Path) -> None:
    uv, log = fake_uv(tmp_path)
    released = dt.datetime(2026, 3, 14, 18, 7, 32, tzinfo=dt.timezone.utc)
    text = resolve_from_pypi(uv, "2.11.2", "3.11", released)
    assert text is not None
    argv, *inputs = log.read_text().splitlines()
    assert "--exclude-newer 2026-03-15T18:07:32Z" in argv and "--python-version 3.11" in argv
    assert inputs[0] == "apache-airflow[celery,statsd]==2.11.2" and "psycopg2-binary" in inputs
    assert parse_pins(text) == {"apache-airflow": "2.11.2", "cryptography": "46.0.5"}
    assert text.startswith("# apache-airflow 2.11.2, Python 3.11")


def test_a_failed_resolution_writes_nothing(tmp_path: Path) -> None:
    uv, _ = fake_uv(tmp_path, fail=True)
    assert resolve_from_pypi(uv, "2.7.2", "3.13", dt.datetime.now(dt.timezone.utc)) is None


def test_only_a_list_of_pins_for_the_right_version_is_written(tmp_path: Path) -> None:
    target = tmp_path / "2.11.2" / "constraints-3.11.txt"
    with pytest.raises(ValueError, match=r"does not pin apache-airflow==2\.11\.2"):
        write_constraints(target, "apache-airflow==2.11.1\n", "2.11.2")
    with pytest.raises(ValueError, match="not a 'name==version' pin"):
        write_constraints(target, "apache-airflow==2.11.2\nrequests>=2\n", "2.11.2")
    assert not target.exists()
    write_constraints(target, "apache-airflow==2.11.2", "2.11.2")
    assert target.read_text() == "apache-airflow==2.11.2\n"


def test_declared_pythons_come_from_the_classifiers() -> None:
    metadata = (
        "Metadata-Version: 2.1\nName: apache-airflow\nRequires-Python: ~=3.8\n"
        "Classifier: Programming Language :: Python :: 3.8\n"
        "Classifier: Programming Language :: Python :: 3.11\n"
        "Classifier: Programming Language :: Python :: 3 :: Only\n"
        "Classifier: Programming Language :: Python :: Implementation :: CPython\n"
    )
    assert declared_pythons(metadata) == {"3.8", "3.11"}
