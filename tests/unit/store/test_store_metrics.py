"""The metric store: minutes merge on write, series are listed, old minutes are pruned."""

from __future__ import annotations

from pathlib import Path

from openmwaa.metrics.recorder import MetricRecorder, StatisticSet
from openmwaa.store.metrics import Datapoint, MetricStore, SeriesKey

A = SeriesKey.of(
    "123456789012",
    "us-east-1",
    "AmazonMWAA",
    "SchedulerHeartbeat",
    {"Environment": "e", "Function": "Scheduler"},
)
B = SeriesKey.of("123456789012", "us-east-1", "AWS/MWAA", "NumSchedulers", {"Environment": "e"})


def test_writes_of_one_minute_merge(tmp_path: Path) -> None:
    store = MetricStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    store.add([Datapoint(A, 60, 1, 5, 5, 5, "Count"), Datapoint(A, 120, 1, 1, 1, 1, "Count")])
    store.add([Datapoint(A, 60, 2, 3, 1, 2, "Count")])
    assert store.datapoints(A, 0, 180) == [(60, 3, 8, 1, 5, "Count"), (120, 1, 1, 1, 1, "Count")]
    assert store.datapoints(A, 61, 180) == [(120, 1, 1, 1, 1, "Count")]
    assert store.datapoints(B, 0, 180) == []


def test_series_are_listed_by_namespace_name_and_recency(tmp_path: Path) -> None:
    store = MetricStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    store.add([Datapoint(A, 60, 1, 1, 1, 1, "Count"), Datapoint(B, 600, 1, 2, 2, 2, "Count")])
    assert store.series("123456789012", "us-east-1") == [B, A]
    assert store.series("123456789012", "us-east-1", namespace="AmazonMWAA") == [A]
    assert store.series("123456789012", "us-east-1", since=300) == [B]
    assert store.series("210987654321", "us-east-1") == []


def test_the_recorder_aggregates_and_prunes_past_the_retention(tmp_path: Path) -> None:
    now = [1000.0]
    recorder = MetricRecorder(
        MetricStore.open(f"sqlite:///{tmp_path / 'm.db'}"), retention_seconds=600, clock=lambda: now[0]
    )
    recorder.record(A, 1, "Count")
    recorder.record(A, 3, "Count")
    recorder.record_set(A, StatisticSet(4, 10, 0, 7), "Count", at=1010)
    recorder.flush()
    assert recorder.store.datapoints(A, 0, 2000) == [(960, 6, 14, 0, 7, "Count")]
    now[0] = 1600
    recorder.record(A, 2, "Count")
    recorder.flush()
    recorder.prune()  # minutes before 1000 go
    assert recorder.store.datapoints(A, 0, 2000) == [(1560, 1, 2, 2, 2, "Count")]


def test_the_number_of_series_is_capped(tmp_path: Path) -> None:
    recorder = MetricRecorder(
        MetricStore.open(f"sqlite:///{tmp_path / 'm.db'}"), retention_seconds=600, max_series=1
    )
    recorder.record(A, 1, "Count")
    recorder.record(B, 1, "Count")
    recorder.record(A, 1, "Count")
    recorder.flush()
    assert recorder.dropped == 1 and recorder.store.count() == 1
