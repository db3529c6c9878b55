"""The Python packages of MWAA's image for each Airflow version, shipped as data.

``mwaa_images.json`` (beside this module) holds, per Airflow version MWAA publishes an image for
in aws/amazon-mwaa-docker-images: the Python the image runs, the packages its bootstrap step
installs, every package the image carries at its version (from the image's bill of materials),
and MWAA's install-constraint pins for the packages openmwaa resolves beyond the image (the
providers a requirements.txt may name). ``scripts/refresh-constraints --mwaa-repo`` writes it
(:mod:`openmwaa.runtime.constraints_refresh`); the shipped constraints are resolved against it,
so a runtime carries MWAA's versions. Where a pin cannot be honoured on some Python, ``unmet``
says which and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Final

from openmwaa.runtime.versions import version_tuple

MWAA_IMAGES_FILE: Final = Path(__file__).resolve().parent / "mwaa_images.json"

#: Packages of MWAA's image that openmwaa installs under another name: psycopg2 compiles against
#: libpq's headers; psycopg2-binary is the same code, built (MWAA's images carry it too).
SUBSTITUTES: Final = {"psycopg2": "psycopg2-binary"}
#: Packages of MWAA's image that runtimes do not install, and why.
NOT_INSTALLED: Final = {
    "pycurl": "Celery's SQS transport needs it; openmwaa runs no Celery workers on SQS, and it has "
    "no wheel for glibc older than 2.28 (it would compile against libcurl's headers)",
}


@dataclass(frozen=True)
class MwaaImage:
    airflow_version: str
    #: ``3.12``: the Python MWAA's image runs.
    python: str
    #: The aws/amazon-mwaa-docker-images commit the data was read from.
    commit: str
    #: The cut-off openmwaa resolves packages MWAA does not pin with (uv's ``--exclude-newer``).
    as_of: str
    #: MWAA's ``REQUIRED_PACKAGES``, as its bootstrap script lists them.
    required: tuple[str, ...]
    #: ``{normalized name: version}`` of every package in the image.
    image: dict[str, str] = field(default_factory=dict)
    #: MWAA's install-constraint pins for packages openmwaa resolves that the image lacks.
    constraints: dict[str, str] = field(default_factory=dict)
    #: ``{python: {name: why}}``: MWAA's pins that cannot be honoured on that Python.
    unmet: dict[str, dict[str, str]] = field(default_factory=dict)

    def carried(self) -> dict[str, str]:
        """The image's packages under the names a runtime installs them, at the image's versions.

        A substitute the image carries itself keeps the image's own version (MWAA's images hold
        psycopg2-binary beside psycopg2, at a version of its own).
        """
        carried = {name: v for name, v in self.image.items() if name not in NOT_INSTALLED}
        for name, substitute in SUBSTITUTES.items():
            if name in carried:
                version = carried.pop(name)
                carried.setdefault(substitute, version)
        return carried

    def pins(self) -> dict[str, str]:
        """Every pin a runtime is resolved against: the image's, then MWAA's constraints."""
        return {**self.constraints, **self.carried()}


@cache
def _load(path: Path) -> dict[str, MwaaImage]:
    data = json.loads(path.read_text())
    images: dict[str, MwaaImage] = {}
    for version, entry in data["images"].items():
        version_tuple(version)
        images[version] = MwaaImage(
            airflow_version=version,
            python=str(entry["python"]),
            commit=str(entry["commit"]),
            as_of=str(entry["as_of"]),
            required=tuple(entry["required"]),
            image=dict(entry["image"]),
            constraints=dict(entry.get("constraints", {})),
            unmet={py: dict(reasons) for py, reasons in entry.get("unmet", {}).items()},
        )
    return images


def mwaa_images(path: Path = MWAA_IMAGES_FILE) -> dict[str, MwaaImage]:
    """Every version MWAA ships an image for; empty if the data file is absent."""
    return _load(path) if path.is_file() else {}


def mwaa_image(version: str, path: Path = MWAA_IMAGES_FILE) -> MwaaImage | None:
    """MWAA's image for Airflow ``version``, or None where MWAA's repository has none."""
    version_tuple(version)
    return mwaa_images(path).get(version)
