"""requirements.txt per environment, with a stand-in for uv that records what it was asked to do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from openmwaa.runtime import requirements
from openmwaa.runtime.errors import RequirementsInstallError
from openmwaa.runtime.installer import Runtime

# compile: echo the requirements as pins (a "dep" of somepkg added, and "requests" already in
# the runtime); freeze: the runtime's packages; install: make a folder per requested pin.
FAKE_UV = f"""#!{sys.executable}
import os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.path.join(os.path.dirname(sys.argv[0]), "uv.log"), "a") as f:
    f.write(" ".join(args) + "\\n")
with open(os.path.join(os.path.dirname(sys.argv[0]), "uv.env"), "w") as f:
    f.write(" ".join(sorted(os.environ)))
if args[:2] == ["pip", "compile"]:
    text = Path(args[2]).read_text()
    if "bad-package" in text:
        print("error: Because bad-package was not found in the package registry", file=sys.stderr)
        sys.exit(1)
    for line in text.splitlines():
        if line.startswith("somepkg"):
            print(line.replace(" ", ""))
            print("somedep==0.5")
        elif line.startswith("requests"):
            print("requests==2.32.0")
elif args[:2] == ["pip", "freeze"]:
    print("apache-airflow==3.3.1")
    print("requests==2.32.0")
elif args[:2] == ["pip", "install"]:
    assert "--no-deps" in args
    target = Path(args[args.index("--target") + 1])
    for line in Path(args[args.index("-r") + 1]).read_text().split():
        (target / line.split("==")[0]).mkdir(parents=True)
"""


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV)
    uv.chmod(0o755)
    monkeypatch.setattr(requirements, "find_uv", lambda: str(uv))
    root = tmp_path / "rt"
    (root / "bin").mkdir(parents=True)
    (root / "openmwaa-constraints.txt").write_text("apache-airflow==3.3.1\nrequests==2.32.0\n")
    return Runtime("3.3.1", 3, root, root / "bin" / "python", root / "bin")


def calls(tmp_path: Path, verb: str = "") -> list[str]:
    log = tmp_path / "uv.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if line.startswith(f"pip {verb}")]


def test_installs_only_what_the_runtime_lacks_into_a_private_dir(runtime: Runtime, tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("somepkg==1.0\nrequests\n")
    home = tmp_path / "home"
    target = requirements.install_requirements(runtime, req, home)
    assert target.parent == home / "site"
    # The resolution is pinned by the runtime's constraints...
    (compiled,) = calls(tmp_path, "compile")
    assert f"-c {runtime.constraints}" in compiled and f"--python {runtime.python}" in compiled
    # ...and only the packages the runtime does not hold are installed, without their dependencies.
    (install,) = calls(tmp_path, "install")
    assert "--no-deps" in install and f"--python {runtime.python}" in install
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith(".")) == ["somedep", "somepkg"]
    # Same file again: nothing to do.
    assert requirements.install_requirements(runtime, req, home) == target
    assert len(calls(tmp_path, "compile")) == 1
    # A changed file gets a new directory; the old one stays until removed.
    req.write_text("somepkg==2.0\n")
    second = requirements.install_requirements(runtime, req, home)
    assert second != target and target.exists()
    requirements.remove_other_requirements(home, keep=second)
    assert not target.exists() and second.exists()


def test_requirements_the_runtime_already_holds_install_nothing(runtime: Runtime, tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("requests\n")
    target = requirements.install_requirements(runtime, req, tmp_path / "home")
    assert calls(tmp_path, "install") == []
    assert target.is_dir()


def test_airflows_published_constraints_line_gives_way_to_the_shipped_pins(
    runtime: Runtime, tmp_path: Path
) -> None:
    req = tmp_path / "requirements.txt"
    url = "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"
    req.write_text(f'--constraint "{url}"\nsomepkg==1.0\n-c ./mine.txt\n')
    target = requirements.install_requirements(runtime, req, tmp_path / "home")
    resolved = (target / ".requirements.in").read_text()
    assert url not in resolved  # unreachable offline, and the same pins as the runtime's
    assert "-c ./mine.txt" in resolved and "somepkg==1.0" in resolved  # the user's own stay


@pytest.mark.parametrize(
    "line",
    [
        "-c https://raw.githubusercontent.com/apache/airflow/constraints-2.11.2/constraints-3.11.txt",
        "--constraint=https://raw.githubusercontent.com/apache/airflow/constraints-2.11.2/constraints-3.11.txt",
        "--constraint 'https://raw.githubusercontent.com/apache/airflow/constraints-3.0.6/constraints-3.12.txt'",
    ],
)
def test_effective_requirements_drops_airflow_constraint_lines(line: str) -> None:
    assert requirements.effective_requirements(f"{line}\nboto3\n") == ("boto3\n", [line])


@pytest.mark.parametrize(
    "line",
    [
        "-c https://example.com/apache/airflow/constraints-2.11.2/constraints-3.11.txt",
        "-c https://raw.githubusercontent.com/apache/airflow/constraints-2.11.2/constraints-3.11.txt.evil",
        "-r https://raw.githubusercontent.com/apache/airflow/constraints-2.11.2/constraints-3.11.txt",
    ],
)
def test_effective_requirements_keeps_other_lines(line: str) -> None:
    assert requirements.effective_requirements(line) == (line + "\n", [])


def test_failure_carries_uvs_message_and_says_what_cannot_change(runtime: Runtime, tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("bad-package\n")
    with pytest.raises(RequirementsInstallError, match="bad-package was not found") as info:
        requirements.install_requirements(runtime, req, tmp_path / "home")
    assert info.value.error_code == "REQUIREMENTS_INSTALL_FAILED"
    assert "Airflow itself among them" in info.value.message
    assert list((tmp_path / "home" / "site").iterdir()) == []


def test_unreadable_file(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(RequirementsInstallError, match="Cannot read"):
        requirements.install_requirements(runtime, tmp_path / "missing.txt", tmp_path / "home")


def test_the_install_gets_the_index_settings_but_not_the_operators_credentials(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "SOME_TOKEN"):
        monkeypatch.setenv(name, "secret")
    monkeypatch.setenv("UV_INDEX_URL", "https://pypi.example/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    req = tmp_path / "requirements.txt"
    req.write_text("somepkg==1.0\n")
    requirements.install_requirements(runtime, req, tmp_path / "home")
    seen = set((tmp_path / "uv.env").read_text().split())
    assert {"UV_INDEX_URL", "PIP_FIND_LINKS", "PATH"} <= seen
    assert not {"AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "SOME_TOKEN"} & seen
