from __future__ import annotations

import sys
from pathlib import Path

import pytest

from openmwaa.runtime import requirements
from openmwaa.runtime.errors import RequirementsInstallError
from openmwaa.runtime.installer import Runtime

FAKE_UV = f"""#!{sys.executable}
import os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["FAKE_UV_LOG"], "a") as f:
    f.write(" ".join(args) + "\\n")
if "bad-package" in Path(args[args.index("-r") + 1]).read_text():
    print("error: Because bad-package was not found in the package registry", file=sys.stderr)
    sys.exit(1)
target = Path(args[args.index("--target") + 1])
(target / "somepkg").mkdir(parents=True)
"""


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV)
    uv.chmod(0o755)
    monkeypatch.setenv("FAKE_UV_LOG", str(tmp_path / "uv.log"))
    monkeypatch.setattr(requirements, "find_uv", lambda: str(uv))
    root = tmp_path / "rt"
    (root / "bin").mkdir(parents=True)
    (root / "openmwaa-constraints.txt").write_text("apache-airflow==3.3.1\n")
    return Runtime("3.3.1", 3, root, root / "bin" / "python", root / "bin")


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "uv.log"
    return log.read_text().splitlines() if log.exists() else []


def test_installs_into_a_private_dir_with_the_runtime_pinned(runtime: Runtime, tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("somepkg==1.0\n")
    home = tmp_path / "home"
    target = requirements.install_requirements(runtime, req, home)
    assert target.parent == home / "site"
    assert (target / "somepkg").is_dir()
    (call,) = calls(tmp_path)
    assert f"-c {runtime.constraints}" in call
    assert f"--python {runtime.python}" in call
    # Same file again: nothing to do.
    assert requirements.install_requirements(runtime, req, home) == target
    assert len(calls(tmp_path)) == 1
    # A changed file gets a new directory; the old one stays until removed.
    req.write_text("somepkg==2.0\n")
    second = requirements.install_requirements(runtime, req, home)
    assert second != target and target.exists()
    requirements.remove_other_requirements(home, keep=second)
    assert not target.exists() and second.exists()


def test_failure_carries_pips_message(runtime: Runtime, tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("bad-package\n")
    with pytest.raises(RequirementsInstallError, match="bad-package was not found") as info:
        requirements.install_requirements(runtime, req, tmp_path / "home")
    assert info.value.error_code == "REQUIREMENTS_INSTALL_FAILED"
    assert list((tmp_path / "home" / "site").iterdir()) == []


def test_unreadable_file(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(RequirementsInstallError, match="Cannot read"):
        requirements.install_requirements(runtime, tmp_path / "missing.txt", tmp_path / "home")
