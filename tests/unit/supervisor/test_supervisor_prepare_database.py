"""initialize_database with a fake ``airflow db migrate``: who migrates, with what configuration."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from openmwaa.runtime.airflow_config import Ports, airflow_environment, component_environment
from openmwaa.runtime.errors import DatabaseSetupError
from openmwaa.runtime.installer import Runtime
from openmwaa.runtime.secrets import EnvironmentSecrets
from openmwaa.supervisor.metadata_template import template_path
from openmwaa.supervisor.prepare import PreparedEnvironment, initialize_database
from openmwaa.supervisor.spec import EnvironmentSpec

#: Stands in for ``python -m airflow db migrate``: records its configuration, creates the tables.
FAKE_AIRFLOW = """
import json, os, sqlite3, sys
assert sys.argv[1:] == ["-m", "airflow", "db", "migrate"], sys.argv
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "record.jsonl"), "a") as record:
    record.write(json.dumps({k: v for k, v in os.environ.items() if k.startswith("AIRFLOW")}) + "\\n")
if os.path.exists(os.path.join(here, "fail")):
    print("boom"); sys.exit(3)
db = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///").split("?")[0]
conn = sqlite3.connect(db)
conn.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num TEXT)")
conn.execute("CREATE TABLE IF NOT EXISTS slot_pool (pool TEXT, slots INTEGER)")
conn.execute("DELETE FROM alembic_version")
conn.execute("INSERT INTO alembic_version VALUES ('head')")
if not conn.execute("SELECT 1 FROM slot_pool").fetchone():
    slots = int(os.environ.get("AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT", "128"))
    conn.execute("INSERT INTO slot_pool VALUES ('default_pool', ?)", (slots,))
conn.commit()
"""


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    root = tmp_path / "runtime"
    (root / "bin").mkdir(parents=True)
    (root / "fake_airflow.py").write_text(FAKE_AIRFLOW)
    python = root / "bin" / "python"
    # The real interpreter runs the parent-death shim (``-S -c``), which execs this again.
    python.write_text(
        f'#!/bin/sh\n[ "$1" = -S ] && exec {sys.executable} "$@"\n'
        f'exec {sys.executable} {root / "fake_airflow.py"} "$@"\n'
    )
    python.chmod(0o755)
    return Runtime(version="3.3.1", major=3, root=root, python=python, bin_dir=root / "bin")


def prepared_env(
    tmp_path: Path, runtime: Runtime, name: str, options: dict[str, str] | None = None, **extra: str
) -> PreparedEnvironment:
    home = tmp_path / name
    for path in (home / "logs", home / "plugins", tmp_path / "dags"):
        path.mkdir(parents=True, exist_ok=True)
    spec = EnvironmentSpec(
        key=f"1/r/{name}",
        name=name,
        airflow_version=runtime.version,
        home=home,
        dags_dir=tmp_path / "dags",
        plugins_zip=None,
        requirements_file=None,
        startup_script=None,
        airflow_config=options or {},
        secrets=EnvironmentSecrets.generate(),
    )
    ports = Ports(1, 2, 3)
    airflow_env = airflow_environment(
        major=3,
        home=home,
        dags_dir=spec.dags_dir,
        plugins_dir=home / "plugins",
        database_url=None,
        secrets=spec.secrets,
        ports=ports,
        options=spec.airflow_config,
    )
    env = component_environment(base(tmp_path), airflow_env, extra, runtime.bin_dir)
    return PreparedEnvironment(spec, runtime, ports, env, None, home / "plugins")


def base(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin"}


def migrations(tmp_path: Path) -> list[dict[str, str]]:
    record = tmp_path / "runtime" / "record.jsonl"
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def slots(db: Path) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT pool, slots FROM slot_pool").fetchall()


def test_first_environment_migrates_the_template_and_later_ones_copy_it(
    tmp_path: Path, runtime: Runtime
) -> None:
    first = prepared_env(tmp_path, runtime, "one")
    initialize_database(first, timeout=60, base_environ=base(tmp_path))
    second = prepared_env(tmp_path, runtime, "two")
    initialize_database(second, timeout=60, base_environ=base(tmp_path))

    (ran,) = migrations(tmp_path)  # one migrate for both environments: the template's
    assert ran["AIRFLOW_HOME"] != str(first.spec.home) and ".tmp-metadata-template-" in ran["AIRFLOW_HOME"]
    assert ran["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    for env in (first, second):  # no environment's secret or path reaches the template
        for secret in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
            assert ran[secret] != env.env[secret]
        assert str(env.spec.home) not in json.dumps(ran)
    assert template_path(runtime.root).is_file()
    for env in (first, second):
        assert slots(env.spec.home / "airflow.db") == [("default_pool", 128)]
    assert (
        "migrating the metadata database template"
        in (first.spec.home / "logs" / "db-migrate.log").read_text()
    )


def test_pool_size_is_fixed_up_in_the_copy(tmp_path: Path, runtime: Runtime) -> None:
    env = prepared_env(tmp_path, runtime, "pools", {"core.default_pool_task_slot_count": "9"})
    initialize_database(env, timeout=60, base_environ=base(tmp_path))
    assert len(migrations(tmp_path)) == 1  # the template's, which keeps the default
    assert slots(env.spec.home / "airflow.db") == [("default_pool", 9)]


def test_configuration_migrate_depends_on_means_the_environment_migrates_itself(
    tmp_path: Path, runtime: Runtime
) -> None:
    env = prepared_env(tmp_path, runtime, "logs", {"logging.log_filename_template": "{{ ti.task_id }}.log"})
    initialize_database(env, timeout=60, base_environ=base(tmp_path))
    (ran,) = migrations(tmp_path)
    assert ran["AIRFLOW_HOME"] == str(env.spec.home)
    assert ran["AIRFLOW__CORE__FERNET_KEY"] == env.env["AIRFLOW__CORE__FERNET_KEY"]
    assert not template_path(runtime.root).exists()


def test_a_startup_script_export_counts_too(tmp_path: Path, runtime: Runtime) -> None:
    env = prepared_env(tmp_path, runtime, "script", AIRFLOW__ELASTICSEARCH__LOG_ID_TEMPLATE="{dag_id}")
    initialize_database(env, timeout=60, base_environ=base(tmp_path))
    assert migrations(tmp_path)[0]["AIRFLOW_HOME"] == str(env.spec.home)


def test_a_failed_template_migrate_fails_the_create_and_says_why(tmp_path: Path, runtime: Runtime) -> None:
    env = prepared_env(tmp_path, runtime, "fails")
    (runtime.root / "fail").touch()
    with pytest.raises(DatabaseSetupError, match="boom"):
        initialize_database(env, timeout=60, base_environ=base(tmp_path))
    (runtime.root / "fail").unlink()
    assert not template_path(runtime.root).exists()
    assert not (env.spec.home / "airflow.db").exists()
    initialize_database(env, timeout=60, base_environ=base(tmp_path))  # a retry builds it
    assert (env.spec.home / "airflow.db").is_file()
