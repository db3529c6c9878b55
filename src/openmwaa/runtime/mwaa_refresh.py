"""Resolve a runtime's constraints against MWAA's pins, and write ``mwaa_images.json``.

Part of ``scripts/refresh-constraints`` (:mod:`openmwaa.runtime.constraints_refresh`), for the
Airflow versions MWAA publishes an image for.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from openmwaa.runtime.constraints import normalize, parse_pins
from openmwaa.runtime.mwaa_image import MwaaImage
from openmwaa.runtime.mwaa_repository import MwaaSource

#: How long after MWAA last changed an image's package files still counts as "its build": what
#: MWAA does not pin (packages only other Pythons need) is resolved as of then.
BUILD_WINDOW: Final = dt.timedelta(days=1)
#: A resolution is retried at most this many times, each time without the pins it could not honour.
MAX_RELAXATIONS: Final = 20
#: The platform wheels are looked for (the usual Linux machine; older glibc has fewer wheels).
WHEEL_PLATFORM: Final = "x86_64-manylinux_2_28"
_NEEDS_PYTHON: Final = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?),? depends on Python>=(\d+\.\d+)")
_NO_WHEELS: Final = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?),? has no (?:usable )?wheels")


@dataclass(frozen=True)
class Resolution:
    pins: dict[str, str]
    #: ``{name: why}``: MWAA's pins the resolution could not honour on this Python.
    unmet: dict[str, str]
    #: ``{name: version}``: pins with no wheel for this Python on linux x86_64 (built at install).
    no_wheel: dict[str, str]


def as_of(source: MwaaSource) -> str:
    return (source.changed + BUILD_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")


def compile_requirements(
    uv: str,
    inputs: Iterable[str],
    python: str,
    cutoff: str,
    extra: Iterable[str] = (),
    *,
    platform: str = "linux",
) -> subprocess.CompletedProcess[bytes]:
    """``uv pip compile`` of ``inputs`` for ``python`` on ``platform``, as PyPI stood at ``cutoff``."""
    argv = [
        uv,
        "pip",
        "compile",
        "-",
        "--python-version",
        python,
        "--python-platform",
        platform,
        "--exclude-newer",
        cutoff,
        "--no-header",
        "--no-annotate",
        "--quiet",
        *extra,
    ]
    stdin = "\n".join(inputs).encode()
    return subprocess.run(argv, input=stdin, capture_output=True, check=False, timeout=600)


def resolve_against(
    uv: str, inputs: Iterable[str], python: str, pins: Mapping[str, str], cutoff: str
) -> Resolution | None:
    """``inputs`` resolved with ``pins`` as constraints; None if it cannot resolve at all."""
    requested = list(inputs)
    unmet: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="openmwaa-mwaa-") as tmp:
        constraints = Path(tmp) / "mwaa-pins.txt"
        for _ in range(MAX_RELAXATIONS):
            kept = {name: version for name, version in pins.items() if name not in unmet}
            constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(kept.items())))
            done = compile_requirements(uv, requested, python, cutoff, ["-c", str(constraints)])
            if done.returncode == 0:
                break
            stderr = done.stderr.decode("utf-8", errors="replace")
            found = {
                normalize(name): f"MWAA's {version} requires Python>={needs}"
                for name, version, needs in _NEEDS_PYTHON.findall(stderr)
                if normalize(name) in kept and kept[normalize(name)] == version
            }
            if not found:
                return None
            unmet.update(found)
        else:
            return None
    resolved = parse_pins(done.stdout.decode())
    for name in list(unmet):
        unmet[name] += f"; {resolved[name]} on Python {python}" if name in resolved else ""
    return Resolution(pins=resolved, unmet=unmet, no_wheel=find_no_wheel(uv, resolved, python, cutoff))


def find_no_wheel(uv: str, pins: Mapping[str, str], python: str, cutoff: str) -> dict[str, str]:
    """The pins that have no wheel for ``python`` on linux x86_64 (uv names one per try)."""
    missing: dict[str, str] = {}
    lines = [f"{name}=={version}" for name, version in sorted(pins.items())]
    for _ in range(len(lines)):
        binary = [arg for name in pins if name not in missing for arg in ("--only-binary", name)]
        done = compile_requirements(
            uv, lines, python, cutoff, ["--no-deps", *binary], platform=WHEEL_PLATFORM
        )
        if done.returncode == 0:
            break
        found = {
            normalize(n): v
            for n, v in _NO_WHEELS.findall(done.stderr.decode("utf-8", errors="replace"))
            if normalize(n) in pins and normalize(n) not in missing
        }
        if not found:
            break
        missing.update(found)
    return missing


def image_from_source(
    source: MwaaSource, resolved_names: Iterable[str], unmet: Mapping[str, Mapping[str, str]]
) -> MwaaImage:
    """The data kept for one image: MWAA's constraint pins only for packages openmwaa resolves."""
    extra = {n: source.constraints[n] for n in sorted(set(resolved_names)) if n in source.constraints}
    return MwaaImage(
        airflow_version=source.airflow_version,
        python=source.python,
        commit=source.commit,
        as_of=as_of(source),
        required=source.required,
        image=dict(sorted(source.image.items())),
        constraints={n: v for n, v in extra.items() if n not in source.image},
        unmet={py: dict(sorted(r.items())) for py, r in sorted(unmet.items()) if r},
    )


def write_images(path: Path, images: Mapping[str, MwaaImage]) -> None:
    """``mwaa_images.json``, newest version first, one pin a line (diffs stay readable)."""
    data = {
        "source": "https://github.com/aws/amazon-mwaa-docker-images",
        "written_by": "scripts/refresh-constraints --mwaa-repo",
        "images": {
            version: {
                "python": image.python,
                "commit": image.commit,
                "as_of": image.as_of,
                "required": list(image.required),
                "unmet": image.unmet,
                "image": image.image,
                "constraints": image.constraints,
            }
            for version, image in images.items()
        },
    }
    path.write_text(json.dumps(data, indent=1) + "\n")
