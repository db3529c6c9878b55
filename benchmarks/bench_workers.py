"""Distributed mode (``OPENMWAA_EXECUTOR=celery``) against today's LocalExecutor environment.

Runs real openmwaa servers (``python -m openmwaa up``) in temporary data directories, one after
the other, and drives them with boto3. Each section measures one thing and adds rows to one
table (ratios against a baseline measured in the same run); ``--only`` picks sections.

- ``creation``: CreateEnvironment -> AVAILABLE, warm (the runtime is installed, and the
  server's template database of it is built by a first environment, which is not timed), in
  distributed mode against local mode (its warm path copies a template SQLite file).
  Target: 20 s or less.
- ``memory``: idle PSS of all of an environment's processes (web server, schedulers, DAG
  processor, triggerer and, in distributed mode, its Celery workers) after ``--idle`` seconds,
  against the local-mode environment; openmwaa's own PostgreSQL and Redis are counted
  separately (they serve every environment of the server).

- ``speedup``: a DAG of 40 tasks that each sleep 3 s, its makespan (trigger -> run done) on an
  environment with MaxWorkers 4 against one with MaxWorkers 1, both mw1.small (5 tasks a worker)
  and MinWorkers 1, in distributed mode with openmwaa's default autoscaling windows. Target: at
  least 2.5x faster. The DAG lets all its tasks run at once (``max_active_tasks=40``): with
  Airflow's default of 16 a DAG's run takes at most 16 of the 20 slots four workers have, and the
  best possible speed-up with no overhead at all is 2.67x (3 waves of 3 s against 8); the
  benchmark measures the workers, not that cap. ``--prestarted`` adds a row with MinWorkers =
  MaxWorkers = 4 (the workers already run: no autoscaling), which tells the autoscaler's share
  from the parallel speed-up.
  A second table then says where each run's time went (``fan_breakdown.py``): from Airflow's
  task instances, the trigger -> first queued/started, queued -> started, each task's run beyond
  its 3 s sleep, a task's end -> the next queued, when the Celery workers appeared; and CPU
  seconds per part (task processes, Celery pool children, the api-server's execution API, the
  schedulers, PostgreSQL...) against the machine's (shared) busy time and load average.
- ``scaling``: on the MaxWorkers 4 run, seconds from the trigger until a second worker runs
  (target: within 60 s), and from the run's end until the count is back at MinWorkers (target:
  within 3 minutes).

Both modes create the same configuration: mw1.small, MWAA's defaults (2 schedulers, which run
only in distributed mode; MinWorkers 1), one web server (``OPENMWAA_WEB_SERVERS_LIMIT=1``, so the
comparison is about the executor).

    .venv/bin/python benchmarks/bench_workers.py [--version 3.3.1] [--idle 30] [--only speedup,scaling]
        [--prestarted]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fan_breakdown import (  # noqa: E402
    PARTS,
    CpuSampler,
    TaskTimes,
    task_times,
    timeline,
    workload_durations,
)
from tests.e2e.conftest import (  # noqa: E402
    AIRFLOW3,
    OpenMwaaServer,
    invoke,
    processes_using,
    request_environment,
    start_server,
    stop_server,
    wait_for_status,
)
from tests.e2e.test_distributed import processes_in  # noqa: E402

from openmwaa.supervisor.memory import process_pss, process_tree_pss  # noqa: E402
from openmwaa.supervisor.pidfiles import running_workers  # noqa: E402

MB = 1024 * 1024
STATUS_POLL = 0.2
#: A row: what, openmwaa's figure, the baseline's, the unit, the target.
Row = tuple[str, float, float | None, str, str]


@dataclass
class Run:
    """What the sections share: the options, and one server per mode, started on first use."""

    version: str
    idle: float
    tmp: Path
    servers: dict[str, OpenMwaaServer] = field(default_factory=dict)
    data_dirs: dict[str, Path] = field(default_factory=dict)
    #: Per mode: the environment each section may reuse (created warm by ``creation``).
    warm_env: dict[str, str] = field(default_factory=dict)
    #: The sections chosen, and the MaxWorkers 4 fan-out run (``speedup`` and ``scaling`` share it).
    sections: tuple[str, ...] = ()
    fan: FanRun | None = None
    #: Also time the fan DAG with MinWorkers = MaxWorkers = 4 (``--prestarted``).
    prestarted: bool = False
    #: The fan-out runs whose breakdown is printed after the table.
    breakdown: list[FanRun] = field(default_factory=list)

    def server(self, mode: str) -> OpenMwaaServer:
        """The server of ``mode``, the only one running (they would share the CPUs); a server
        started again resumes the environments it had."""
        if mode not in self.servers:
            for other in list(self.servers):
                stop_server(self.servers.pop(other))
            if mode not in self.data_dirs:
                self.data_dirs[mode] = Path(tempfile.mkdtemp(prefix=f"bench-workers-{mode}-", dir=self.tmp))
                os.chmod(self.data_dirs[mode], 0o711)  # noqa: S103 (environments' users pass through)
            extra = {
                "OPENMWAA_EXECUTOR": "celery" if mode == "distributed" else "local",
                "OPENMWAA_WEB_SERVERS_LIMIT": "1",
            }
            self.servers[mode] = start_server(self.data_dirs[mode], extra_env=extra)
            for name in [n for m, n in self.warm_env.items() if m == mode]:
                wait_for_status(self.servers[mode].client(), name, {"AVAILABLE"})
        return self.servers[mode]

    def environment(self, mode: str) -> str:
        """An AVAILABLE environment in ``mode`` (the one ``creation`` timed, if it ran)."""
        server = self.server(mode)
        if mode not in self.warm_env:
            create(server, f"{mode}-first", self.version)
            self.warm_env[mode] = f"{mode}-first"
        return self.warm_env[mode]


def create(server: OpenMwaaServer, name: str, version: str) -> float:
    """CreateEnvironment (mw1.small, MWAA's defaults), then poll until AVAILABLE; the seconds it took."""
    bucket = f"bucket-{name.lower()}"
    server.make_bucket(bucket)
    mwaa = server.client()
    started = time.monotonic()
    request_environment(server, name, version, bucket, EnvironmentClass="mw1.small")
    while time.monotonic() - started < 900:
        env = mwaa.get_environment(Name=name)["Environment"]
        if env["Status"] == "AVAILABLE":
            return time.monotonic() - started
        if env["Status"] == "CREATE_FAILED":
            raise AssertionError(f"{name} failed: {env.get('LastUpdate')}\n{server.log_tail()}")
        time.sleep(STATUS_POLL)
    raise AssertionError(f"{name} did not become AVAILABLE within 900 s")


def home(server: OpenMwaaServer, name: str) -> Path:
    return server.data_dir / "environments" / "123456789012" / "us-east-1" / name


# Sections -------------------------------------------------------------------------------------


def creation(run: Run) -> list[Row]:
    times = {}
    for mode in ("local", "distributed"):
        server = run.server(mode)
        create(server, f"{mode}-first", run.version)  # builds the template database: not timed
        times[mode] = create(server, f"{mode}-warm", run.version)
        run.warm_env[mode] = f"{mode}-warm"
    return [
        (
            f"Airflow {run.version} create -> AVAILABLE, warm",
            times["distributed"],
            times["local"],
            "s",
            "<= 20 s",
        )
    ]


def memory(run: Run) -> list[Row]:
    pss = {}
    services = 0
    for mode in ("local", "distributed"):
        name = run.environment(mode)
        server = run.server(mode)
        time.sleep(run.idle)
        pss[mode] = process_tree_pss(processes_using(home(server, name)))
        if mode == "distributed":
            services = sum(process_pss(pid) for pid in processes_in(server.data_dir / "services"))
    return [
        (
            f"Airflow {run.version} idle memory (PSS), environment",
            pss["distributed"] / MB,
            pss["local"] / MB,
            "MB",
            "-",
        ),
        (
            "openmwaa's PostgreSQL + Redis, idle (PSS, shared by all environments)",
            services / MB,
            None,
            "MB",
            "-",
        ),
    ]


FAN_DAG = "bench_fan"
FAN_TASKS = 40
FAN_SLEEP = 3.0
CORES = os.cpu_count() or 1
FAN_DAG_SOURCE = """
import time
from datetime import datetime
from airflow import DAG
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator



def nap():
    time.sleep(3)


with DAG(
    "bench_fan", start_date=datetime(2024, 1, 1), schedule=None, catchup=False, max_active_tasks=40
) as dag:
    for i in range(40):
        PythonOperator(task_id=f"sleep{i}", python_callable=nap)
"""


@dataclass
class FanRun:
    label: str
    makespan: float
    #: Seconds from the trigger until a second worker ran (None: it never did).
    scaled_up: float | None = None
    #: Seconds from the run's end until only MinWorkers ran again (None: not measured).
    scaled_down: float | None = None
    cpu: CpuSampler | None = None
    tasks: list[TaskTimes] = field(default_factory=list)
    #: Seconds after the trigger each Celery worker process appeared (negative: already running).
    workers_up: list[float] = field(default_factory=list)
    #: Seconds each Celery task held a pool process (the workers' logs).
    workloads: list[float] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)


def unpause_when_parsed(server: OpenMwaaServer, name: str, min_workers: int) -> None:
    """Unpause the fan DAG once it is parsed, then wait for the MinWorkers workers to run."""
    mwaa = server.client()
    deadline = time.monotonic() + 180
    while True:
        try:
            invoke(server, name, f"/dags/{FAN_DAG}", "PATCH", Body={"is_paused": False})
            break
        except (mwaa.exceptions.RestApiClientException, mwaa.exceptions.RestApiServerException):
            assert time.monotonic() < deadline, f"{FAN_DAG} was not parsed"
            time.sleep(1)
    while running_workers(home(server, name)) < min_workers:
        assert time.monotonic() < deadline, f"{min_workers} workers did not start"
        time.sleep(0.5)


def fan_out(run: Run, max_workers: int, *, watch_down: bool, min_workers: int = 1) -> FanRun:
    """Create an environment with ``max_workers`` (and ``min_workers``) and time one run of the fan DAG."""
    server = run.server("distributed")
    name = f"fan-min{min_workers}-max{max_workers}"
    bucket = server.make_bucket(f"bucket-{name}")
    (bucket / "dags" / f"{FAN_DAG}.py").write_text(FAN_DAG_SOURCE)
    mwaa = server.client()
    counts = {"MinWorkers": min_workers, "MaxWorkers": max_workers}
    request_environment(server, name, run.version, bucket.name, EnvironmentClass="mw1.small", **counts)
    got = wait_for_status(mwaa, name, {"AVAILABLE", "CREATE_FAILED"})
    assert got["Status"] == "AVAILABLE", got.get("LastUpdate")
    unpause_when_parsed(server, name, min_workers)
    body: dict[str, object] = {"dag_run_id": f"bench-{max_workers}"}
    if int(run.version.split(".")[0]) == 3:
        body["logical_date"] = None
    result = FanRun(f"MinWorkers {min_workers}, MaxWorkers {max_workers}", makespan=0.0)
    result.cpu = CpuSampler(server.process.pid)
    result.cpu.start()
    started, started_wall = time.monotonic(), time.time()
    invoke(server, name, f"/dags/{FAN_DAG}/dagRuns", "POST", Body=body)
    while True:
        if result.scaled_up is None and running_workers(home(server, name)) > 1:
            result.scaled_up = time.monotonic() - started
        try:
            state = invoke(server, name, f"/dags/{FAN_DAG}/dagRuns/{body['dag_run_id']}")["RestApiResponse"]
        except mwaa.exceptions.RestApiServerException:
            state = {"state": "running"}
        if state["state"] in ("success", "failed"):
            assert state["state"] == "success", state
            break
        assert time.monotonic() - started < 900, f"{FAN_DAG} did not finish"
        time.sleep(0.5)
    result.makespan = time.monotonic() - started
    result.cpu.stop()
    result.load = os.getloadavg()[:2]
    result.workers_up = sorted(seen - started for seen in result.cpu.workers_seen.values())
    path = f"/dags/{FAN_DAG}/dagRuns/{body['dag_run_id']}/taskInstances"
    instances = invoke(server, name, path, QueryParameters={"limit": 100})["RestApiResponse"]
    result.tasks = task_times(instances["task_instances"], started_wall)
    for log in sorted((home(server, name) / "logs").glob("worker*.log")):
        result.workloads += workload_durations(log.read_text(errors="replace").splitlines())
    if watch_down:
        ended = time.monotonic()
        while running_workers(home(server, name)) > 1 and time.monotonic() - ended < 600:
            time.sleep(1)
        result.scaled_down = time.monotonic() - ended
    mwaa.delete_environment(Name=name)
    return result


def speedup(run: Run) -> list[Row]:
    one = fan_out(run, 1, watch_down=False)
    four = fan_out(run, 4, watch_down="scaling" in run.sections)
    run.fan = four
    rows: list[Row] = [
        (
            f"Airflow {run.version} 40 tasks x 3 s makespan, MaxWorkers 4 (vs 1)",
            four.makespan,
            one.makespan,
            "s",
            "ratio <= 0.40 (2.5x faster)",
        )
    ]
    runs = [one, four]
    if run.prestarted:
        warm = fan_out(run, 4, watch_down=False, min_workers=4)
        runs.append(warm)
        rows.append(
            (
                "  same, MinWorkers = MaxWorkers = 4 (workers already running: no autoscaling)",
                warm.makespan,
                one.makespan,
                "s",
                "-",
            )
        )
    run.breakdown = runs
    return rows


def scaling(run: Run) -> list[Row]:
    four = run.fan if run.fan is not None else fan_out(run, 4, watch_down=True)
    return [
        (
            "tasks queued -> a second worker runs",
            four.scaled_up if four.scaled_up is not None else float("nan"),
            None,
            "s",
            "<= 60 s",
        ),
        (
            "run done -> back to MinWorkers (idle)",
            four.scaled_down if four.scaled_down is not None else float("nan"),
            None,
            "s",
            "<= 180 s",
        ),
    ]


#: Section name -> what it measures; sections run in this order.
SECTIONS: dict[str, Callable[[Run], list[Row]]] = {
    "creation": creation,
    "memory": memory,
    "speedup": speedup,
    "scaling": scaling,
}


# Running ---------------------------------------------------------------------------------------


@contextmanager
def running(run: Run) -> Iterator[Run]:
    try:
        yield run
    finally:
        for server in run.servers.values():
            stop_server(server)


def print_rows(rows: list[Row]) -> None:
    print(f"{'measure':<72} {'distributed':>12} {'baseline':>12} {'ratio':>7}  target")
    for what, value, baseline, unit, target in rows:
        base = f"{baseline:.1f} {unit}" if baseline is not None else "-"
        ratio = f"{value / baseline:.2f}" if baseline else "-"
        print(f"{what:<72} {f'{value:.1f} {unit}':>12} {base:>12} {ratio:>7}  {target}")


def print_breakdown(runs: list[FanRun]) -> None:
    """Where each fan-out run's makespan went: its timeline, then CPU seconds per part."""
    if not runs:
        return
    lines: list[tuple[str, list[str]]] = []

    def add(what: str, values: list[str]) -> None:
        lines.append((what, values))

    timelines = [timeline(r.tasks, r.makespan, FAN_SLEEP) for r in runs]
    add("makespan (trigger -> run done seen), s", [f"{r.makespan:.1f}" for r in runs])
    add("  task instances finished (of 40)", [str(len(r.tasks)) for r in runs])
    add("  trigger -> first task queued, s", [f"{t.trigger_to_first_queued:.1f}" for t in timelines])
    add("  trigger -> first task started, s", [f"{t.trigger_to_first_start:.1f}" for t in timelines])
    add("  last task ended -> run done seen, s", [f"{t.last_end_to_done:.1f}" for t in timelines])
    add("  per task, median: queued -> started, s", [f"{t.queued_to_start:.2f}" for t in timelines])
    add(
        f"  per task, median: started -> ended minus its {FAN_SLEEP:.0f} s sleep, s",
        [f"{t.run_over_sleep:.2f}" for t in timelines],
    )
    add(
        "  per task, median: a task ended -> the next queued, s",
        [f"{t.end_to_next_queued:.2f}" for t in timelines],
    )
    add(
        "  per task, median: a task ended -> the next started, while tasks queued, s",
        [f"{t.end_to_next_start:.2f}" for t in timelines],
    )
    add(
        "  per task, median: pool process held (Celery task) minus started -> ended, s",
        [
            f"{statistics.median(r.workloads) - statistics.median(t.end - t.start for t in r.tasks):.2f}"
            if r.workloads and r.tasks
            else "-"
            for r in runs
        ],
    )
    add("  most tasks running at once", [str(t.max_running) for t in timelines])
    add("  tasks running on average, first start -> last end", [f"{t.mean_running:.1f}" for t in timelines])
    for n in (6, 11, 16):
        add(
            f"  first time > {n - 1} tasks ran at once, s after trigger",
            [f"{t.first_at[n]:.1f}" if n in t.first_at else "-" for t in timelines],
        )
    add(
        "  Celery workers: seconds after trigger each appeared",
        [", ".join(f"{w:.1f}" if w > 0 else "before" for w in r.workers_up) or "-" for r in runs],
    )
    cpus = [r.cpu.cpu_seconds() if r.cpu else {} for r in runs]
    add("CPU seconds during the run, by part (per task: / 40)", ["" for _ in runs])
    for part in PARTS:
        if any(c.get(part, 0.0) >= 0.05 for c in cpus):
            add(f"  {part}", [f"{c[part]:.1f} ({c[part] / FAN_TASKS:.2f})" for c in cpus])
    totals = [sum(c.values()) for c in cpus]
    add("  all of openmwaa's processes", [f"{t:.1f}" for t in totals])
    add(
        "  machine (every process, every user) / 2 cores x makespan",
        [f"{r.cpu.machine_seconds:.0f} / {CORES * r.makespan:.0f}" if r.cpu else "-" for r in runs],
    )
    add("  load average at the end (1, 5 min)", [f"{r.load[0]:.1f}, {r.load[1]:.1f}" for r in runs])
    width = max(len(w) for w, _ in lines)
    cols = [r.label for r in runs]
    col = max(16, *(len(c) for c in cols), *(len(v) for _, vs in lines for v in vs))
    print()
    print(f"{'where the time goes':<{width}} " + " ".join(f"{c:>{col}}" for c in cols))
    for what, values in lines:
        print(f"{what:<{width}} " + " ".join(f"{v:>{col}}" for v in values))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", default=AIRFLOW3)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds idle before memory is measured")
    parser.add_argument("--only", help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument(
        "--prestarted",
        action="store_true",
        help="speedup: also time MinWorkers = MaxWorkers = 4 (no autoscaling), a row of its own",
    )
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections: {', '.join(unknown)}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        os.chmod(tmp, 0o711)  # noqa: S103
        bench = Run(args.version, args.idle, Path(tmp), sections=tuple(chosen), prestarted=args.prestarted)
        with running(bench) as run:
            for section in (s for s in SECTIONS if s in chosen):
                print(f"== {section}", file=sys.stderr, flush=True)
                rows += SECTIONS[section](run)
    print_rows(rows)
    print_breakdown(run.breakdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
