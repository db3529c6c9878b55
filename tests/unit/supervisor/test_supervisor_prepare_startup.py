"""prepare_environment with a startup script: one run per MWAA component kind, exports per component."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from openmwaa.runtime.airflow_config import Ports
from openmwaa.runtime.errors import StartupScriptError
from openmwaa.runtime.installer import Runtime
from openmwaa.runtime.secrets import EnvironmentSecrets
from openmwaa.supervisor.prepare import prepare_environment
from openmwaa.supervisor.spec import EnvironmentSpec

SCRIPT = """#!/bin/bash
echo "run as $MWAA_AIRFLOW_COMPONENT"
case "$MWAA_AIRFLOW_COMPONENT" in
  scheduler) export FROM_SCHEDULER=yes SHARED=scheduler ;;
  worker) export FROM_WORKER=yes SHARED=worker ;;
  webserver) export FROM_WEBSERVER=yes ;;
  *) echo "MWAA_AIRFLOW_COMPONENT is not set" >&2; exit 9 ;;
esac
export MWAA_AIRFLOW_COMPONENT=tampered
"""


class FakeRuntimes:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def ensure(self, version: str, progress: Callable[[str], None]) -> Runtime:
        return self.runtime


def spec_with(tmp_path: Path, script: str) -> EnvironmentSpec:
    (tmp_path / "dags").mkdir(exist_ok=True)
    path = tmp_path / "startup.sh"
    path.write_text(script)
    return EnvironmentSpec(
        key="1/r/env",
        name="env",
        airflow_version="3.3.1",
        home=tmp_path / "home",
        dags_dir=tmp_path / "dags",
        plugins_zip=None,
        requirements_file=None,
        startup_script=path,
        airflow_config={},
        secrets=EnvironmentSecrets.generate(),
    )


@pytest.fixture
def runtimes(tmp_path: Path) -> FakeRuntimes:
    root = tmp_path / "runtime"
    (root / "bin").mkdir(parents=True)
    return FakeRuntimes(Runtime("3.3.1", 3, root, root / "bin" / "python", root / "bin"))


def test_the_script_runs_once_per_component_kind_and_each_component_gets_its_exports(
    tmp_path: Path, runtimes: FakeRuntimes
) -> None:
    progress: list[str] = []
    prepared = prepare_environment(
        spec_with(tmp_path, SCRIPT),
        runtimes,  # type: ignore[arg-type]
        Ports(1, 2, 3),
        progress.append,
        base_environ={"PATH": "/usr/bin:/bin"},
    )
    scheduler_side, web = prepared.env_for(False), prepared.env_for(True)
    assert scheduler_side["MWAA_AIRFLOW_COMPONENT"] == "scheduler"
    assert (scheduler_side.get("FROM_SCHEDULER"), scheduler_side.get("FROM_WORKER")) == ("yes", "yes")
    assert scheduler_side["SHARED"] == "worker", "tasks run on the scheduler's side: the worker run wins"
    assert "FROM_WEBSERVER" not in scheduler_side
    assert web["MWAA_AIRFLOW_COMPONENT"] == "webserver"
    assert web["FROM_WEBSERVER"] == "yes"
    assert "FROM_SCHEDULER" not in web and "FROM_WORKER" not in web and "SHARED" not in web
    logs = tmp_path / "home" / "logs"
    assert (logs / "startup.log").read_text().strip() == "run as scheduler"
    assert (logs / "startup-worker.log").read_text().strip() == "run as worker"
    assert (logs / "startup-webserver.log").read_text().strip() == "run as webserver"
    assert [p for p in progress if "startup script" in p] == [
        f"Running the startup script (MWAA_AIRFLOW_COMPONENT={kind})"
        for kind in ("scheduler", "worker", "webserver")
    ]


def test_without_a_script_the_components_still_know_what_they_are(
    tmp_path: Path, runtimes: FakeRuntimes
) -> None:
    spec = dataclasses.replace(spec_with(tmp_path, ""), startup_script=None)
    prepared = prepare_environment(spec, runtimes, Ports(1, 2, 3), print, base_environ={})  # type: ignore[arg-type]
    assert prepared.env["MWAA_AIRFLOW_COMPONENT"] == "scheduler"
    assert prepared.web_env["MWAA_AIRFLOW_COMPONENT"] == "webserver"
    assert {k: v for k, v in prepared.env.items() if k != "MWAA_AIRFLOW_COMPONENT"} == {
        k: v for k, v in prepared.web_env.items() if k != "MWAA_AIRFLOW_COMPONENT"
    }


def test_a_run_that_fails_fails_the_preparation(tmp_path: Path, runtimes: FakeRuntimes) -> None:
    script = (
        '#!/bin/bash\n[ "$MWAA_AIRFLOW_COMPONENT" = webserver ] && { echo "no web today"; exit 4; }\ntrue\n'
    )
    with pytest.raises(StartupScriptError, match="exited with code 4"):
        prepare_environment(
            spec_with(tmp_path, script),
            runtimes,  # type: ignore[arg-type]
            Ports(1, 2, 3),
            print,
            base_environ={"PATH": "/usr/bin:/bin"},
        )
