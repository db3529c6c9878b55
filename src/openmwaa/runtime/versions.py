"""The Airflow versions an environment can run: MWAA's list, newest first."""

from __future__ import annotations

import re
from typing import Final

#: MWAA's ``AirflowVersion`` values, newest first.
SUPPORTED_VERSIONS: Final[tuple[str, ...]] = (
    "3.3.1",
    "3.2.1",
    "3.0.6",
    "2.11.2",
    "2.11.0",
    "2.10.3",
    "2.10.1",
    "2.9.2",
    "2.8.1",
    "2.7.2",
)

#: What CreateEnvironment uses when the caller names no version (MWAA: the latest).
DEFAULT_VERSION: Final = SUPPORTED_VERSIONS[0]

# Strict on purpose: a version ends up in a pip requirement and a directory name.
_VERSION = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


def version_tuple(version: str) -> tuple[int, int, int]:
    """``"2.10.3"`` -> ``(2, 10, 3)``; ValueError for anything that is not ``X.Y.Z``."""
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not an Airflow version (expected X.Y.Z)")
    return int(match[1]), int(match[2]), int(match[3])


def major(version: str) -> int:
    """The major version, which decides components, configuration and API paths."""
    return version_tuple(version)[0]
