"""The constraints every runtime is installed with, shipped as data in the package.

Airflow must be installed against a constraints file: without one, any new release of any
dependency can break a runtime (cryptography 51 broke Airflow 2.11's Fernet, for one). A user's
machine reaches only the package index, so the files ship with openmwaa, one per Airflow version
and Python version, in ``constraints/<airflow version>/constraints-<python>.txt`` (Airflow's own
naming). ``scripts/refresh-constraints`` writes them (see :mod:`openmwaa.runtime.constraints_refresh`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from openmwaa.runtime.versions import version_tuple

CONSTRAINTS_DIR: Final = Path(__file__).resolve().parent / "constraints"

_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)")
_PYTHON = re.compile(r"3\.\d{1,2}")


def normalize(name: str) -> str:
    """A project name as PEP 503 compares them: ``Flask_Login`` is ``flask-login``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints_file(airflow_version: str, python_tag: str) -> Path | None:
    """The shipped file for this Airflow and Python version, or None if openmwaa has none."""
    version_tuple(airflow_version)  # X.Y.Z only: it becomes part of a path
    if _PYTHON.fullmatch(python_tag) is None:
        raise ValueError(f"{python_tag!r} is not a Python version (expected 3.N)")
    path = CONSTRAINTS_DIR / airflow_version / f"constraints-{python_tag}.txt"
    return path if path.is_file() else None


def shipped_pythons(airflow_version: str) -> list[str]:
    """The Python versions openmwaa ships constraints for with this Airflow version, oldest first."""
    folder = CONSTRAINTS_DIR / airflow_version
    tags = [p.name[len("constraints-") : -len(".txt")] for p in folder.glob("constraints-3.*.txt")]
    return sorted(tags, key=lambda tag: int(tag.split(".")[1]))


def parse_pins(text: str) -> dict[str, str]:
    """``{normalized name: version}`` of every ``name==version`` line; comments and blanks skipped.

    Anything else is refused: a constraints file is exactly a list of pins.
    """
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.fullmatch(line)
        if match is None:
            raise ValueError(f"line {number} is not a 'name==version' pin: {raw!r}")
        pins[normalize(match[1])] = match[2]
    return pins
