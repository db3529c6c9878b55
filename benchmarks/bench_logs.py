"""Logs query: FilterLogEvents over 100k task log lines (issue 15 target: within 1 s).

Writes Airflow-3-style JSON task logs (``--lines`` in total over ``--streams`` streams) into a
temporary environment's ``logs/airflow`` folder and times openmwaa's LogsService directly (no
HTTP: the figure is the query itself) for: a rare phrase (one match), a common term (every line
matches, so the first page fills to 10,000 events / 1 MB), and GetLogEvents from the tail.
Prints p50 and p95 of ``--runs`` warm runs.

    .venv/bin/python benchmarks/bench_logs.py [--lines 100000] [--streams 10] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from openmwaa.logs.service import EnvironmentLogs, LogsService
from openmwaa.logs.tokens import TokenSigner

GROUP = "airflow-bench-Task"


def write_logs(logs: Path, lines: int, streams: int) -> list[str]:
    names = []
    t0 = time.time() - 3600
    for s in range(streams):
        path = logs / "airflow" / f"dag_id=bench/run_id=r{s}/task_id=t/attempt=1.log"
        path.parent.mkdir(parents=True)
        with path.open("w") as out:
            for i in range(lines // streams):
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + i * 0.01))
                event = (
                    "needle in the haystack"
                    if (s, i) == (streams // 2, 777)
                    else f"processed row {i} of batch {s}"
                )
                out.write(json.dumps({"timestamp": stamp + "Z", "level": "info", "event": event}) + "\n")
        names.append(f"dag_id=bench/run_id=r{s}/task_id=t/attempt=1.log")
    return names


def timed(run: object, runs: int) -> tuple[float, float, int]:
    samples = []
    count = 0
    for _ in range(runs):
        started = time.perf_counter()
        result = run()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
        count = len(result["events"])
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "logs"
        names = write_logs(logs, args.lines, args.streams)
        env = EnvironmentLogs("bench", {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}}, logs, time.time())
        service = LogsService(
            list_environments=lambda: [env],
            find_environment=lambda name: env if name == "bench" else None,
            signer=TokenSigner(b"k" * 32),
            region="us-east-1",
            account_id="123456789012",
        )
        cases = {
            'FilterLogEvents "needle in the haystack"': lambda: service.filter_log_events(
                GROUP, {"filterPattern": '"needle in the haystack"'}
            ),
            "FilterLogEvents processed (first page)": lambda: service.filter_log_events(
                GROUP, {"filterPattern": "processed"}
            ),
            "GetLogEvents (tail, 10,000)": lambda: service.get_log_events(GROUP, {"logStreamName": names[0]}),
        }
        print(f"{args.lines:,} lines in {args.streams} streams, {args.runs} warm runs each\n")
        print(f"{'query':<45} {'events':>7} {'p50 ms':>8} {'p95 ms':>8}   target")
        for label, run in cases.items():
            p50, p95, count = timed(run, args.runs)
            target = "p95 <= 1000 ms" if label.startswith("FilterLogEvents") else ""
            print(f"{label:<45} {count:>7} {p50:>8.1f} {p95:>8.1f}   {target}")


if __name__ == "__main__":
    main()
