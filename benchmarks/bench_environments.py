"""Environments: CreateEnvironment -> AVAILABLE (warm and cold runtime), idle memory, trigger-to-success.

Runs a real openmwaa server (``python -m openmwaa up``) in a temporary data directory and drives
it with boto3. For each Airflow major (3.3.1 and 2.11.2), each create running alone (the
environment before it is deleted first) and timed by polling GetEnvironment every 0.2 s:

- cold: the runtime cache is an empty directory, so openmwaa installs Airflow first (uv's own
  download cache stays as the machine has it; pass --cold-uv-cache for an empty one too);
- warm: the runtime is cached, as it is for every environment after the first of a version (and
  so is its migrated template database, which each new SQLite environment copies);
- warm, first environment: the runtime is cached but its template database is not yet built
  (the first environment of a runtime migrates it);
- idle memory: the proportional set size (PSS) of all the environment's processes after it has
  been AVAILABLE and idle for --idle seconds;
- trigger-to-success of the example DAG ``hello_openmwaa`` through InvokeRestApi.

Baseline, measured in the same run with the same runtime: the same Airflow started by hand the
way its docs say (``airflow db migrate``, then the components with Airflow's default settings,
until ``/health`` says healthy), and its idle PSS. Ratios are openmwaa / baseline.
Targets (issue): warm <= 15 s, cold <= 60 s, idle Airflow 3 environment <= 700 MB.

    .venv/bin/python benchmarks/bench_environments.py [--versions 3.3.1,2.11.2] [--idle 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import (  # noqa: E402
    OpenMwaaServer,
    request_environment,
    start_server,
    stop_server,
    trigger_and_wait,
)

from openmwaa.runtime.installer import RuntimeManager  # noqa: E402
from openmwaa.supervisor.health import evaluate_health  # noqa: E402
from openmwaa.supervisor.memory import process_tree_pss  # noqa: E402
from openmwaa.supervisor.metadata_template import template_path  # noqa: E402
from openmwaa.supervisor.pidfiles import read_pidfiles  # noqa: E402

MB = 1024 * 1024
#: GetEnvironment polling while timing a create: fine enough not to add up to a second to each
#: figure (the e2e helper sleeps 1 s), coarse enough not to load the server being measured.
STATUS_POLL = 0.2


def create_environment(server: OpenMwaaServer, name: str, version: str) -> float:
    """CreateEnvironment, then poll until AVAILABLE; the seconds it took."""
    bucket = f"bucket-{name.lower()}"
    server.make_bucket(bucket)
    mwaa = server.client()
    started = time.monotonic()
    request_environment(server, name, version, bucket)
    while time.monotonic() - started < 900:
        env = mwaa.get_environment(Name=name)["Environment"]
        if env["Status"] == "AVAILABLE":
            return time.monotonic() - started
        if env["Status"] == "CREATE_FAILED":
            raise AssertionError(f"{name} ({version}) failed: {env.get('LastUpdate')}\n{server.log_tail()}")
        time.sleep(STATUS_POLL)
    raise AssertionError(f"{name} ({version}) did not become AVAILABLE within 900 s")


def delete_environment(server: OpenMwaaServer, name: str) -> None:
    mwaa = server.client()
    mwaa.delete_environment(Name=name)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            mwaa.get_environment(Name=name)
        except mwaa.exceptions.ResourceNotFoundException:
            return
        time.sleep(STATUS_POLL)
    raise AssertionError(f"{name} was not deleted within 300 s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def baseline_airflow(runtime: Path, major: int, idle: float) -> tuple[float, int]:
    """Start Airflow by hand with its defaults; (seconds to healthy, idle PSS bytes)."""
    home = Path(tempfile.mkdtemp(prefix="bench-bare-airflow-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # As openmwaa runs them: Airflow 2 refuses LocalExecutor on SQLite.
        AIRFLOW__CORE__EXECUTOR="LocalExecutor" if major == 3 else "SequentialExecutor",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
    )
    airflow = str(runtime / "bin" / "airflow")
    if major == 3:
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
        env["AIRFLOW__API_AUTH__JWT_SECRET"] = "b" * 64
        components = [["api-server", "--port", str(port)], ["scheduler"], ["dag-processor"], ["triggerer"]]
        health = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    else:
        env["AIRFLOW__WEBSERVER__SECRET_KEY"] = "b" * 32
        components = [["webserver", "--port", str(port)], ["scheduler"], ["triggerer"]]
        health = f"http://127.0.0.1:{port}/health"
    started = time.monotonic()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    procs = [
        subprocess.Popen(
            [airflow, *c],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for c in components
    ]
    try:
        elapsed = wait_healthy(health, started, major)
        time.sleep(idle)
        # The started processes and their descendants: setproctitle (Airflow 2 scheduler, gunicorn)
        # overwrites what /proc shows of their command line and environment.
        pss = process_tree_pss(p.pid for p in procs)
        return elapsed, pss
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


def wait_healthy(url: str, started: float, major: int, timeout: float = 300) -> float:
    """Healthy as openmwaa judges it (Airflow 2 reports an unused dag_processor as null)."""
    import json

    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                body: dict[str, Any] = json.loads(response.read())
            if evaluate_health(body, major).healthy:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise BaselineError(f"bare Airflow at {url} never became healthy")


class BaselineError(Exception):
    pass


def print_rows(rows: list[tuple[str, str, float, float | None, str]], *, header: bool) -> None:
    if header:
        print(f"{'airflow':<8} {'measure':<44} {'openmwaa':>9} {'baseline':>9} {'ratio':>6}  target")
    for version, label, value, base, target in rows:
        base_text = f"{base:9.1f}" if base is not None else f"{'-':>9}"
        ratio = f"{value / base:6.2f}" if base else f"{'-':>6}"
        print(f"{version:<8} {label:<44} {value:9.1f} {base_text} {ratio}  {target}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", default="3.3.1,2.11.2")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds idle before measuring memory")
    parser.add_argument(
        "--cold-uv-cache", action="store_true", help="also empty uv's download cache for the cold run"
    )
    args = parser.parse_args()
    rows: list[tuple[str, str, float, float | None, str]] = []
    for version in args.versions.split(","):
        major = int(version.split(".")[0])
        work = Path(tempfile.mkdtemp(prefix=f"bench-env-{major}-"))
        work.chmod(0o711)  # environments run as users of their own: they must get through to the runtime
        extra = {"OPENMWAA_RUNTIME_DIR": str(work / "runtimes")}
        if args.cold_uv_cache:
            extra["UV_CACHE_DIR"] = str(work / "uv-cache")
        server = start_server(work / "data", extra_env=extra)
        try:
            # Each create runs with no other environment on the machine.
            cold = create_environment(server, f"cold{major}", version)
            delete_environment(server, f"cold{major}")
            runtime = RuntimeManager(work / "runtimes").path_for(version)
            template_path(runtime).unlink()
            first = create_environment(server, f"first{major}", version)
            delete_environment(server, f"first{major}")
            warm_name = f"warm{major}"
            warm = create_environment(server, warm_name, version)
            time.sleep(args.idle)
            home = server.data_dir / "environments" / "123456789012" / "us-east-1" / warm_name
            # The components openmwaa started (its pid files) and their descendants.
            pss = process_tree_pss(r.pid for r in read_pidfiles(home / "run"))
            t0 = time.monotonic()
            print(f"{version}: cold {cold:.1f} s, first {first:.1f} s, warm {warm:.1f} s", file=sys.stderr)
            run = trigger_and_wait(server, warm_name, major, "hello_openmwaa")
            trigger = time.monotonic() - t0
            if run["state"] != "success":  # report the create figures all the same
                print(f"{version}: hello_openmwaa ended {run['state']}", file=sys.stderr)
        finally:
            stop_server(server)
        try:
            base_start, base_pss = baseline_airflow(runtime, major, args.idle)
        except BaselineError as exc:  # still report openmwaa's own figures
            print(f"baseline for {version} failed: {exc}", flush=True)
            base_start, base_pss = None, None
        new_rows = [
            (version, "create -> AVAILABLE, cold runtime (s)", cold, base_start, "<= 60"),
            (version, "create -> AVAILABLE, warm, no template (s)", first, base_start, ""),
            (version, "create -> AVAILABLE, warm runtime (s)", warm, base_start, "<= 15"),
            (
                version,
                "idle memory, PSS of all processes (MB)",
                pss / MB,
                base_pss / MB if base_pss is not None else None,
                "<= 700" if major == 3 else "",
            ),
            (version, "trigger -> run success, hello_openmwaa (s)", trigger, None, ""),
        ]
        shutil.rmtree(work, ignore_errors=True)
        print_rows(new_rows, header=not rows)  # as each version finishes: nothing is lost to a later failure
        rows += new_rows
    print("\nbaseline: the same runtime started by hand with Airflow's defaults (db migrate + components).")


if __name__ == "__main__":
    main()
