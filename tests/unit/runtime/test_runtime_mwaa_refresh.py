"""Resolving against MWAA's pins: pins a Python cannot honour are relaxed and recorded."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from openmwaa.runtime.mwaa_image import mwaa_image
from openmwaa.runtime.mwaa_refresh import as_of, image_from_source, resolve_against, write_images
from openmwaa.runtime.mwaa_repository import MwaaSource

# A stand-in for uv: fails like uv while cachelib is pinned at 0.15.2 for Python 3.10, says
# dill has no wheel when asked for wheels only, and logs every call's arguments.
FAKE_UV = """#!{python}
import sys
argv = sys.argv[1:]
open({log!r}, "a").write(" ".join(argv) + "\\n")
pins = open(argv[argv.index("-c") + 1]).read() if "-c" in argv else ""
if "cachelib==0.15.2" in pins and argv[argv.index("--python-version") + 1] == "3.10":
    sys.stderr.write("  cause: Because the requested Python version (>=3.10) does not satisfy "
                     "Python>=3.11 and cachelib==0.15.2 depends on Python>=3.11, we can conclude\\n")
    sys.exit(1)
if "--only-binary" in argv and "dill" in argv:
    sys.stderr.write("  cause: Because dill==0.3.1.1 has no usable wheels and you require dill\\n")
    sys.exit(1)
print("apache-airflow==3.3.1")
print("cachelib==" + ("0.15.2" if "cachelib==0.15.2" in pins else "0.14.0"))
print("dill==0.3.1.1")
"""


def fake_uv(tmp_path: Path) -> tuple[str, Path]:
    log = tmp_path / "calls"
    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV.format(python=sys.executable, log=str(log)))
    uv.chmod(0o755)
    return str(uv), log


PINS = {"apache-airflow": "3.3.1", "cachelib": "0.15.2", "dill": "0.3.1.1"}


def test_mwaas_pins_are_kept_where_the_python_allows(tmp_path: Path) -> None:
    uv, log = fake_uv(tmp_path)
    done = resolve_against(uv, ["apache-airflow==3.3.1"], "3.12", PINS, "2026-08-13T20:50:00Z")
    assert done is not None
    assert done.pins == PINS and done.unmet == {}
    assert done.no_wheel == {"dill": "0.3.1.1"}
    first = log.read_text().splitlines()[0]
    assert "--exclude-newer 2026-08-13T20:50:00Z" in first and "--python-version 3.12" in first


def test_a_pin_that_needs_a_newer_python_is_relaxed_and_recorded(tmp_path: Path) -> None:
    uv, _ = fake_uv(tmp_path)
    done = resolve_against(uv, ["apache-airflow==3.3.1"], "3.10", PINS, "2026-08-13T20:50:00Z")
    assert done is not None
    assert done.pins["cachelib"] == "0.14.0" and done.pins["apache-airflow"] == "3.3.1"
    assert done.unmet == {"cachelib": "MWAA's 0.15.2 requires Python>=3.11; 0.14.0 on Python 3.10"}


def test_a_failure_that_names_no_pin_gives_no_resolution(tmp_path: Path) -> None:
    uv = tmp_path / "uv"
    uv.write_text(f"#!{sys.executable}\nimport sys\nsys.stderr.write('network down')\nsys.exit(2)\n")
    uv.chmod(0o755)
    assert resolve_against(str(uv), ["x"], "3.11", PINS, "2026-08-13T20:50:00Z") is None


def test_the_data_written_keeps_only_the_constraints_that_apply(tmp_path: Path) -> None:
    source = MwaaSource(
        airflow_version="2.11.2",
        python="3.12",
        commit="a" * 40,
        changed=dt.datetime(2026, 8, 10, 17, 50, 47, tzinfo=dt.timezone.utc),
        required=("apache-airflow[celery,statsd]==2.11.2", "psycopg2"),
        image={"apache-airflow": "2.11.2", "psycopg2": "2.9.12"},
        constraints={"apache-airflow-providers-ssh": "4.3.1", "snowflake-connector-python": "3.0"},
    )
    assert as_of(source) == "2026-08-11T17:50:47Z"
    image = image_from_source(
        source, ["apache-airflow", "apache-airflow-providers-ssh"], {"3.10": {}, "3.11": {"x": "why"}}
    )
    assert image.constraints == {"apache-airflow-providers-ssh": "4.3.1"}
    assert image.unmet == {"3.11": {"x": "why"}}
    path = tmp_path / "images.json"
    write_images(path, {"2.11.2": image})
    assert json.loads(path.read_text())["images"]["2.11.2"]["image"]["psycopg2"] == "2.9.12"
    assert mwaa_image("2.11.2", path) == image
