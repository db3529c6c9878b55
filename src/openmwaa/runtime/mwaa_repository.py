"""Read MWAA's package lists from a local git copy of aws/amazon-mwaa-docker-images.

Used only by ``scripts/refresh-constraints --mwaa-repo`` on a developer's machine (runtimes never
read it: they use the shipped :mod:`openmwaa.runtime.mwaa_image` data). Per Airflow version,
under ``images/airflow/<version>/``:

- ``bootstrap/02-airflow/001-install-required-pip-packages.sh``: ``REQUIRED_PACKAGES``;
- ``etc/airflow_constraints.txt``: the constraints the image is installed with;
- ``BillOfMaterials/<version>/Python-Packages-BOM.txt``: every package of the built image
  (``pip-licenses --format=plain-vertical``: name, version, license, URL, license file, ...);
- ``Dockerfiles/Dockerfile.base``: ``ENV PYTHON_VERSION=3.12.10``.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from openmwaa.runtime.constraints import normalize, parse_pins

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION: Final = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[A-Za-z0-9.]+)?")
_DIST_INFO: Final = re.compile(r"/site-packages/([A-Za-z0-9][A-Za-z0-9._]*)-([^/-]+)\.dist-info/")
_PYTHON: Final = re.compile(r"^ENV PYTHON_VERSION=(3\.\d{1,2})\.\d+", re.MULTILINE)


@dataclass(frozen=True)
class MwaaSource:
    """What MWAA's repository says about one version's image."""

    airflow_version: str
    python: str
    commit: str
    #: When the image's package files were last changed (the commit time).
    changed: dt.datetime
    required: tuple[str, ...]
    image: dict[str, str]
    constraints: dict[str, str]


def parse_bill_of_materials(text: str) -> dict[str, str]:
    """``{normalized name: version}`` of every package in a ``Python-Packages-BOM.txt``.

    Two signals, because license texts span lines freely: a license file path in a package's
    ``<name>-<version>.dist-info``; and a block whose name follows a blank line, whose version
    is the next line, whose URL (the fourth line) is one or ``UNKNOWN``, and whose license file
    (the fifth) is a path or ``UNKNOWN`` (a license that spans lines leaves only the first signal).
    """
    found = {normalize(m[1]): m[2] for m in _DIST_INFO.finditer(text)}
    lines = text.splitlines()
    for i in range(1, len(lines) - 4):
        url, license_file = lines[i + 3], lines[i + 4]
        if lines[i - 1].strip() or not (url == "UNKNOWN" or url.startswith(("https://", "http://"))):
            continue
        if not (license_file == "UNKNOWN" or license_file.startswith("/")):
            continue
        name, version = lines[i], lines[i + 1]
        if _NAME.fullmatch(name) and _VERSION.fullmatch(version):
            found.setdefault(normalize(name), version)
    return found


def parse_required_packages(script: str, airflow_version: str) -> tuple[str, ...]:
    """The ``REQUIRED_PACKAGES=( ... )`` array of MWAA's bootstrap script, versions filled in."""
    match = re.search(r"REQUIRED_PACKAGES=\((.*?)\)", script, re.DOTALL)
    if match is None:
        raise ValueError("the script defines no REQUIRED_PACKAGES array")
    items = []
    for raw in match[1].splitlines():
        item = raw.split("#", 1)[0].strip().strip('"').strip("'")
        if item:
            items.append(item.replace("${AIRFLOW_VERSION}", airflow_version))
    return tuple(items)


def parse_python(dockerfile: str) -> str:
    match = _PYTHON.search(dockerfile)
    if match is None:
        raise ValueError("the Dockerfile sets no PYTHON_VERSION")
    return match[1]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True, timeout=120)
    return done.stdout.decode("utf-8", errors="replace")


def image_versions(repo: Path) -> list[str]:
    """The Airflow versions the repository has an image folder for."""
    names = _git(repo, "ls-tree", "--name-only", "HEAD:images/airflow").split()
    return [name for name in names if re.fullmatch(r"\d+\.\d+\.\d+", name)]


def read_source(repo: Path, version: str) -> MwaaSource:
    """One version's image, as the repository's ``HEAD`` has it."""
    base = f"images/airflow/{version}"
    files = {
        "required": f"{base}/bootstrap/02-airflow/001-install-required-pip-packages.sh",
        "constraints": f"{base}/etc/airflow_constraints.txt",
        "bom": f"{base}/BillOfMaterials/{version}/Python-Packages-BOM.txt",
        "dockerfile": f"{base}/Dockerfiles/Dockerfile.base",
    }
    text = {key: _git(repo, "show", f"HEAD:{path}") for key, path in files.items()}
    changed = max(
        dt.datetime.fromisoformat(_git(repo, "log", "-1", "--format=%cI", "HEAD", "--", path).strip())
        for key, path in files.items()
        if key in ("constraints", "bom")
    )
    image = parse_bill_of_materials(text["bom"])
    if image.get("apache-airflow") != version:
        raise ValueError(f"{files['bom']} lists no apache-airflow {version}")
    return MwaaSource(
        airflow_version=version,
        python=parse_python(text["dockerfile"]),
        commit=_git(repo, "rev-parse", "HEAD").strip(),
        changed=changed.astimezone(dt.timezone.utc),
        required=parse_required_packages(text["required"], version),
        image=image,
        constraints=parse_pins(text["constraints"]),
    )
