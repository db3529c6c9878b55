"""Write the shipped constraints files: ``scripts/refresh-constraints`` (``python -m`` this module).

Two sources, chosen with ``--source``:

``pypi`` (the default, and what the shipped files were written with)
    Resolve Airflow and the packages openmwaa installs beside it with uv. For a version MWAA
    publishes an image for (:mod:`openmwaa.runtime.mwaa_image`), against MWAA's pins: every
    package the image carries gets the image's version, and what MWAA does not pin (packages
    only other Pythons need) is resolved against PyPI as it stood one day after MWAA last
    changed the image's package files. A pin that cannot be honoured on a Python (a version
    that requires a newer Python) is left to the resolver for that Python only, and recorded
    in the data's ``unmet`` and the file's header. With ``--mwaa-repo DIR`` (a git copy of
    aws/amazon-mwaa-docker-images) that data is first rewritten from MWAA's files.
    For the other versions, against PyPI *as it stood when that Airflow version was released*
    (``--exclude-newer`` one day after the upload of its wheel, read from PyPI's JSON simple
    API). This is how Airflow makes its own constraints (the resolution of its release), needs
    nothing but the package index, and is reproducible: PyPI never changes an uploaded file or
    its upload time.
``airflow``
    Download Airflow's published ``constraints-<airflow>/constraints-<python>.txt`` from the
    apache/airflow repository on GitHub, for machines that can reach it.

Either way a file is written only for the Pythons the Airflow release declares it supports (the
``Programming Language :: Python :: 3.N`` classifiers of its wheel's metadata, which Airflow keeps
in step with the Pythons it publishes constraints for; uv ignores ``Requires-Python`` upper
bounds, so they are not enough), and only when its resolution succeeds. A (version, Python) pair
without a file is refused at install time with a message that names the Pythons that have one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

from openmwaa.runtime.constraints import CONSTRAINTS_DIR, parse_pins
from openmwaa.runtime.installer import find_uv
from openmwaa.runtime.mwaa_image import MWAA_IMAGES_FILE, MwaaImage, mwaa_images
from openmwaa.runtime.mwaa_refresh import (
    Resolution,
    as_of,
    compile_requirements,
    image_from_source,
    resolve_against,
    write_images,
)
from openmwaa.runtime.mwaa_repository import MwaaSource, image_versions, read_source
from openmwaa.runtime.packages import required_packages
from openmwaa.runtime.versions import SUPPORTED_VERSIONS, version_tuple

#: The Pythons openmwaa runs on (pyproject's requires-python and newer).
PYTHONS: Final = ("3.10", "3.11", "3.12", "3.13")
#: Providers resolved beside what a runtime installs, so that a requirements.txt naming them gets
#: the versions of Airflow's release, as Airflow's own constraints would give (not installed).
PROVIDERS: Final = (
    "apache-airflow-providers-http",
    "apache-airflow-providers-ftp",
    "apache-airflow-providers-sqlite",
    "apache-airflow-providers-slack",
    "apache-airflow-providers-ssh",
)
SIMPLE_API: Final = "https://pypi.org/simple/apache-airflow/"
AIRFLOW_CONSTRAINTS: Final = (
    "https://raw.githubusercontent.com/apache/airflow/constraints-{version}/constraints-{python}.txt"
)
#: Time after Airflow's upload that still counts as "its release": providers and Airflow 3's
#: core and task-sdk packages are uploaded in the same hour.
RELEASE_WINDOW: Final = dt.timedelta(days=1)
TIMEOUT: Final = 60.0


def _files(simple_index: dict[str, object], names: set[str]) -> list[dict[str, object]]:
    files = simple_index.get("files")
    listed = files if isinstance(files, list) else []
    return [f for f in listed if isinstance(f, dict) and f.get("filename") in names]


def release_time(version: str, simple_index: dict[str, object]) -> dt.datetime:
    """When ``apache-airflow==version`` was first uploaded, from the JSON simple API's files."""
    names = {
        f"apache_airflow-{version}-py3-none-any.whl",
        f"apache_airflow-{version}.tar.gz",
        f"apache-airflow-{version}.tar.gz",
    }
    times = [
        dt.datetime.fromisoformat(str(f["upload-time"]).replace("Z", "+00:00"))
        for f in _files(simple_index, names)
        if f.get("upload-time")
    ]
    if not times:
        raise LookupError(f"PyPI lists no upload of apache-airflow {version}")
    return min(times)


def wheel_url(version: str, simple_index: dict[str, object]) -> str:
    found = _files(simple_index, {f"apache_airflow-{version}-py3-none-any.whl"})
    if not found:
        raise LookupError(f"PyPI lists no wheel of apache-airflow {version}")
    return str(found[0]["url"])


def declared_pythons(metadata: str) -> set[str]:
    """``{"3.10", ...}`` from a wheel METADATA's ``Programming Language :: Python :: 3.N`` classifiers."""
    prefix = "Classifier: Programming Language :: Python :: "
    tags = (line[len(prefix) :].strip() for line in metadata.splitlines() if line.startswith(prefix))
    return {tag for tag in tags if re.fullmatch(r"3\.\d{1,2}", tag)}


def fetch_declared_pythons(version: str, simple_index: dict[str, object]) -> set[str]:
    """The Pythons apache-airflow ``version`` declares, from its wheel's PEP 658 metadata file."""
    url = wheel_url(version, simple_index) + ".metadata"
    with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:  # noqa: S310 - an https URL PyPI gave
        return declared_pythons(answer.read().decode("utf-8", errors="replace"))


def compile_inputs(version: str) -> list[str]:
    return [*required_packages(version), *PROVIDERS]


def resolve_from_pypi(uv: str, version: str, python: str, released: dt.datetime) -> str | None:
    """The pinned resolution, with a header saying how it was made; None if it cannot resolve."""
    cutoff = (released + RELEASE_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
    inputs = compile_inputs(version)
    done = compile_requirements(uv, inputs, python, cutoff)
    if done.returncode != 0:
        return None
    header = (
        f"# apache-airflow {version}, Python {python}, linux: the constraints openmwaa installs it with.\n"
        f"# Written by scripts/refresh-constraints --source pypi: resolved with uv against PyPI as it\n"
        f"# stood one day after apache-airflow {version} was uploaded ({released:%Y-%m-%dT%H:%M:%SZ}),\n"
        f"# i.e. --exclude-newer {cutoff}, from: {' '.join(inputs)}\n"
    )
    return header + done.stdout.decode()


def resolve_from_mwaa(uv: str, version: str, python: str, image: MwaaImage) -> tuple[str, Resolution] | None:
    """The resolution against MWAA's pins, with a header saying how it was made and what differs."""
    inputs = compile_inputs(version)
    done = resolve_against(uv, inputs, python, image.pins(), image.as_of)
    if done is None:
        return None
    header = [
        f"# apache-airflow {version}, Python {python}, linux: the constraints openmwaa installs it with.",
        "# Written by scripts/refresh-constraints --source pypi: resolved with uv against the pins of",
        f"# MWAA's image for Airflow {version} (Python {image.python}; runtime/mwaa_images.json, from",
        f"# aws/amazon-mwaa-docker-images@{image.commit[:12]}); what MWAA does not pin, as of",
        f"# --exclude-newer {image.as_of}. From: {' '.join(inputs)}",
    ]
    header += [f"# Not MWAA's version on Python {python}: {name}: {why}" for name, why in done.unmet.items()]
    if done.no_wheel:
        listed = ", ".join(f"{name} {version}" for name, version in done.no_wheel.items())
        header.append(f"# No wheel for Python {python} on linux x86_64 (built at install): {listed}")
    pins = "".join(f"{name}=={version}\n" for name, version in sorted(done.pins.items()))
    return "\n".join(header) + "\n" + pins, done


def download_from_airflow(version: str, python: str) -> str | None:
    url = AIRFLOW_CONSTRAINTS.format(version=version, python=python)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:  # noqa: S310 - fixed https URL
            body: bytes = answer.read()
    except OSError:
        return None
    return f"# apache-airflow {version}, Python {python}: Airflow's published {url}\n" + body.decode()


def fetch_simple_index() -> dict[str, object]:
    request = urllib.request.Request(SIMPLE_API, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310 - fixed https URL
        data: dict[str, object] = json.load(answer)
    return data


def write_constraints(target: Path, text: str, version: str) -> None:
    pins = parse_pins(text)  # refuse to ship anything that is not a list of pins
    if pins.get("apache-airflow") != version:
        raise ValueError(f"{target}: resolution does not pin apache-airflow=={version}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text if text.endswith("\n") else text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/refresh-constraints",
        description="Write openmwaa's shipped constraints files (one per Airflow and Python version).",
    )
    parser.add_argument(
        "--source",
        choices=("pypi", "airflow"),
        default="pypi",
        help="pypi: resolve as of each release (default); airflow: download Airflow's files",
    )
    parser.add_argument(
        "--version",
        action="append",
        dest="versions",
        metavar="X.Y.Z",
        help="only this Airflow version (repeatable; default: every supported version)",
    )
    parser.add_argument(
        "--python",
        action="append",
        dest="pythons",
        metavar="3.N",
        help=f"only this Python version (repeatable; default: {', '.join(PYTHONS)})",
    )
    parser.add_argument("--out", type=Path, default=CONSTRAINTS_DIR, help="folder to write into")
    parser.add_argument(
        "--mwaa-repo",
        type=Path,
        metavar="DIR",
        help="a git copy of aws/amazon-mwaa-docker-images: rewrite mwaa_images.json from it first",
    )
    parser.add_argument("--mwaa-data", type=Path, default=MWAA_IMAGES_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    versions: list[str] = args.versions or list(SUPPORTED_VERSIONS)
    for version in versions:
        version_tuple(version)
    pythons: list[str] = args.pythons or list(PYTHONS)
    uv = find_uv()
    if args.source == "pypi" and uv is None:
        print("uv is needed to resolve; pip install uv", file=sys.stderr)
        return 2
    images = dict(mwaa_images(args.mwaa_data))
    sources: dict[str, MwaaSource] = {}
    if args.mwaa_repo is not None:
        for version in set(image_versions(args.mwaa_repo)) & set(versions):
            sources[version] = read_source(args.mwaa_repo, version)
            # Resolved against all of MWAA's constraints; only those that apply are kept.
            source = sources[version]
            images[version] = MwaaImage(
                airflow_version=version,
                python=source.python,
                commit=source.commit,
                as_of=as_of(source),
                required=source.required,
                image=source.image,
                constraints=source.constraints,
            )
    index = fetch_simple_index()
    declared = {version: fetch_declared_pythons(version, index) for version in versions}
    resolutions: dict[tuple[str, str], Resolution] = {}

    def one(job: tuple[str, str]) -> str:
        version, python = job
        target = args.out / version / f"constraints-{python}.txt"
        if python not in declared[version]:
            target.unlink(missing_ok=True)
            return f"{version} py{python}: Airflow does not declare Python {python}, no file"
        if args.source == "pypi" and version in images:
            assert uv is not None
            done = resolve_from_mwaa(uv, version, python, images[version])
            text = None if done is None else done[0]
            if done is not None:
                resolutions[job] = done[1]
        elif args.source == "pypi":
            assert uv is not None
            text = resolve_from_pypi(uv, version, python, release_time(version, index))
        else:
            text = download_from_airflow(version, python)
        if text is None:
            target.unlink(missing_ok=True)
            return f"{version} py{python}: no resolution (not supported), no file"
        write_constraints(target, text, version)
        return f"{version} py{python}: {len(parse_pins(text))} pins -> {target}"

    jobs = [(v, p) for v in versions for p in pythons]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for line in pool.map(one, jobs):
            print(line)
    if resolutions:
        write_images(args.mwaa_data, updated_images(images, sources, resolutions))
        print(f"MWAA's images -> {args.mwaa_data}")
    return 0


def updated_images(
    images: dict[str, MwaaImage],
    sources: dict[str, MwaaSource],
    resolutions: dict[tuple[str, str], Resolution],
) -> dict[str, MwaaImage]:
    """The data to ship: fresh from MWAA's repository where read, with this run's unmet pins."""
    updated: dict[str, MwaaImage] = {}
    for version in sorted(images, key=version_tuple, reverse=True):
        mine = {py: r for (v, py), r in resolutions.items() if v == version}
        image = images[version]
        if version in sources:
            names = {name for r in mine.values() for name in r.pins}
            image = image_from_source(sources[version], names, {py: r.unmet for py, r in mine.items()})
        elif mine:
            unmet = {**image.unmet, **{py: r.unmet for py, r in mine.items()}}
            image = MwaaImage(**{**image.__dict__, "unmet": {py: u for py, u in sorted(unmet.items()) if u}})
        updated[version] = image
    return updated


if __name__ == "__main__":
    raise SystemExit(main())
