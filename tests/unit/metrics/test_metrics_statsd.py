"""StatsD lines -> recorded MWAA series: parsing, whose prefix, gauges, the AWS/MWAA copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmwaa.metrics.recorder import EnvironmentRef, MetricRecorder
from openmwaa.metrics.statsd import StatsdReceiver, StatsdSample, parse_line, statsd_prefix
from openmwaa.store.metrics import MetricStore, SeriesKey

NOW = 1_767_225_630.0
ENV = EnvironmentRef("123456789012", "us-east-1", "prod")


@pytest.mark.parametrize(
    ("line", "sample"),
    [
        ("p.scheduler_heartbeat:1|c", StatsdSample("p.scheduler_heartbeat", 1.0, "c")),
        ("p.ti_failures:1|c|@0.5", StatsdSample("p.ti_failures", 2.0, "c")),
        ("p.executor.open_slots:16|g", StatsdSample("p.executor.open_slots", 16.0, "g")),
        ("p.pool.open_slots.x:-2|g", StatsdSample("p.pool.open_slots.x", -2.0, "g", delta=True)),
        ("p.dag.a.b.duration:12.5|ms", StatsdSample("p.dag.a.b.duration", 12.5, "ms")),
        ("p.x:1|c|#tag:value", StatsdSample("p.x", 1.0, "c")),
        (
            "p.task.duration,dag_id=d,task_id=t:1500|ms",
            StatsdSample("p.task.duration", 1500.0, "ms", tags=(("dag_id", "d"), ("task_id", "t"))),
        ),
    ],
)
def test_parse_line(line: str, sample: StatsdSample) -> None:
    assert parse_line(line) == sample


@pytest.mark.parametrize(
    "line", ["", "p.x", "p.x:1", "p.x:abc|c", "p.x:1|z", "p.x:1|c|@0", "p.x:nan|g", "p x:1|c"]
)
def test_lines_that_are_not_statsd_are_none(line: str) -> None:
    assert parse_line(line) is None


def test_the_prefix_depends_on_the_secret_only() -> None:
    assert statsd_prefix("a") == statsd_prefix("a") != statsd_prefix("b")
    assert statsd_prefix("a").isalnum()


@pytest.fixture
def recorder(tmp_path: Path) -> MetricRecorder:
    return MetricRecorder(
        MetricStore.open(f"sqlite:///{tmp_path / 'm.db'}"), retention_seconds=3600, clock=lambda: NOW
    )


def stored(
    recorder: MetricRecorder,
) -> dict[tuple[str, str, tuple[tuple[str, str], ...]], list[tuple[float, ...]]]:
    recorder.flush()
    out = {}
    for series in recorder.store.series(ENV.account_id, ENV.region):
        rows = recorder.store.datapoints(series, 0, 2**40)
        out[(series.namespace, series.name, series.dimensions)] = [tuple(r[1:5]) for r in rows]
    return out


def test_lines_become_mwaa_series_of_their_environment(recorder: MetricRecorder) -> None:
    receiver = StatsdReceiver(recorder, lambda: {"ompre": ENV}, clock=lambda: NOW)
    receiver.handle_packet(
        b"ompre.scheduler_heartbeat:1|c\nompre.scheduler_heartbeat:1|c\n"
        b"ompre.executor.queued_tasks:3|g\nompre.pool.open_slots.default_pool:5|g\n"
        b"ompre.pool.open_slots.default_pool:-2|g\nother.scheduler_heartbeat:1|c\n"
        b"ompre.not_an_mwaa_metric:1|c\nompre.dagbag_size:1|s\ngarbage\n"
        b"ompre.dagrun.duration.success,dag_id=hello,run_type=manual:2500|ms\n"
        b"ompre.dagrun.duration.success.hello:2500|ms"
    )
    data = stored(recorder)
    env = ("Environment", "prod")
    assert data[("AmazonMWAA", "SchedulerHeartbeat", (env, ("Function", "Scheduler")))] == [(2, 2, 1, 1)]
    assert data[("AmazonMWAA", "QueuedTasks", (env, ("Function", "Executor")))] == [(1, 3, 3, 3)]
    assert data[("AWS/MWAA", "QueuedTasks", (env,))] == [(1, 3, 3, 3)]
    # A gauge change applies to the last value: 5, then 3.
    assert data[("AmazonMWAA", "OpenSlots", (env, ("Pool", "default_pool")))] == [(2, 8, 3, 5)]
    # Airflow 3 sends the modern name (tags) and the legacy one: counted once.
    assert data[("AmazonMWAA", "DAGDurationSuccess", (("DAG", "hello"), env))] == [(1, 2500, 2500, 2500)]
    assert len(data) == 5 and receiver.ignored == 5


def test_an_unknown_prefix_asks_again_at_most_every_few_seconds(recorder: MetricRecorder) -> None:
    now = [NOW]
    asked: list[int] = []
    known: dict[str, EnvironmentRef] = {}

    def environments() -> dict[str, EnvironmentRef]:
        asked.append(1)
        return dict(known)

    receiver = StatsdReceiver(recorder, environments, clock=lambda: now[0])
    receiver.handle_line("newenv.scheduler_heartbeat:1|c")
    known["newenv"] = ENV
    receiver.handle_line("newenv.scheduler_heartbeat:1|c")  # too soon to ask again
    now[0] += 6
    receiver.handle_line("newenv.scheduler_heartbeat:1|c")
    assert len(asked) == 2 and receiver.ignored == 2
    series = SeriesKey.of(
        ENV.account_id,
        ENV.region,
        "AmazonMWAA",
        "SchedulerHeartbeat",
        {"Function": "Scheduler", "Environment": "prod"},
    )
    recorder.flush()
    assert [r[1] for r in recorder.store.datapoints(series, 0, 2**40)] == [1]
