"""The runtimes the environments run on hold the versions their shipped constraints name: MWAA's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from openmwaa.runtime.constraints import constraints_file, normalize, parse_pins
from openmwaa.runtime.installer import RuntimeManager, find_uv
from openmwaa.runtime.mwaa_image import NOT_INSTALLED, SUBSTITUTES, mwaa_image
from openmwaa.settings import default_cache_dir
from tests.e2e.conftest import AIRFLOW2, AIRFLOW3

pytestmark = pytest.mark.e2e


def _installed(python: Path) -> dict[str, str]:
    """``{normalized name: version}`` of what the runtime has installed."""
    uv = find_uv()
    assert uv is not None
    frozen = subprocess.run(
        [uv, "pip", "freeze", "--python", str(python)], capture_output=True, check=True, text=True
    ).stdout
    return {
        normalize(name): ver
        for name, sep, ver in (line.partition("==") for line in frozen.splitlines())
        if sep
    }


def test_installed_runtime_matches_its_constraints(shared_env: tuple[str, int]) -> None:
    # shared_env has started an environment, so its version's runtime is installed.
    version = AIRFLOW3 if shared_env[1] == 3 else AIRFLOW2
    manager = RuntimeManager(default_cache_dir())
    runtime = manager.installed(version)
    assert runtime is not None, f"no installed runtime for {version} in {manager.cache_dir}"
    shipped = constraints_file(version, manager.python_tag())
    assert shipped is not None
    pins = parse_pins(shipped.read_text())

    installed = _installed(runtime.python)
    named = {name: ver for name, ver in installed.items() if name in pins}
    drift = {name: (ver, pins[name]) for name, ver in named.items() if ver != pins[name]}
    assert drift == {}, f"installed (left) differs from the shipped constraints (right): {drift}"
    assert installed["apache-airflow"] == version
    # Nearly everything installed comes from the file (only tools uv puts in every venv may not).
    assert len(named) >= 0.9 * len(installed), sorted(set(installed) - set(pins))


def test_installed_runtime_carries_mwaas_versions(shared_env: tuple[str, int]) -> None:
    version = AIRFLOW3 if shared_env[1] == 3 else AIRFLOW2
    manager = RuntimeManager(default_cache_dir())
    runtime = manager.installed(version)
    assert runtime is not None
    image = mwaa_image(version)
    assert image is not None, f"no data of MWAA's image for {version}"
    installed = _installed(runtime.python)
    unmet = image.unmet.get(manager.python_tag(), {})
    # Names as MWAA's image lists them: a substitute's own version where the image has it too.
    carried = {n: v for n, v in image.image.items() if n not in NOT_INSTALLED and n not in SUBSTITUTES}
    differ = {
        name: (installed[name], theirs)
        for name, theirs in carried.items()
        if name in installed and installed[name] != theirs and name not in unmet
    }
    assert differ == {}, f"installed (left) differs from MWAA's image (right): {differ}"
    # Everything MWAA's image carries is installed (a package only MWAA's Python needs aside).
    assert len(set(carried) & set(installed)) >= 0.98 * len(carried), sorted(set(carried) - set(installed))
