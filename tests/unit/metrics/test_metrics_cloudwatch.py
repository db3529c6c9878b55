"""GetMetricStatistics and GetMetricData over stored minutes: periods, statistics, the window."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmwaa.errors import ValidationError
from openmwaa.metrics.cloudwatch import CloudWatchService
from openmwaa.metrics.recorder import MetricRecorder
from openmwaa.store.metrics import Datapoint, MetricStore, SeriesKey
from openmwaa.wire.cbor import Timestamp
from openmwaa.wire.cloudwatch import InvalidParameterCombinationError

ACCOUNT, REGION = "123456789012", "us-east-1"
DIMS = [{"Name": "Environment", "Value": "e"}]
SERIES = SeriesKey.of(ACCOUNT, REGION, "AWS/MWAA", "CPUUtilization", {"Environment": "e"})


@pytest.fixture
def service(tmp_path: Path) -> CloudWatchService:
    store = MetricStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    # Minutes 0..5 (from 6000 s): values 10, 20, ... each from two samples.
    store.add(
        [
            Datapoint(SERIES, 6000 + 60 * i, 2, 20 * (i + 1), 5 * (i + 1), 15 * (i + 1), "Percent")
            for i in range(6)
        ]
    )
    recorder = MetricRecorder(store, retention_seconds=86400)
    return CloudWatchService(recorder, account_id=ACCOUNT, region=REGION, clock=lambda: 7000.0)


def statistics(service: CloudWatchService, **params: object) -> list[dict[str, object]]:
    request = {"Namespace": "AWS/MWAA", "MetricName": "CPUUtilization", "Dimensions": DIMS, **params}
    return list(service.get_metric_statistics(request)["Datapoints"])


def test_periods_add_up_the_minutes(service: CloudWatchService) -> None:
    points = statistics(
        service,
        StartTime=6000,
        EndTime=6360,
        Period=180,
        Statistics=["SampleCount", "Sum", "Minimum", "Maximum", "Average"],
    )
    assert points == [
        {
            "Timestamp": Timestamp(6000),
            "SampleCount": 6,
            "Sum": 120,
            "Minimum": 5,
            "Maximum": 45,
            "Average": 20,
            "Unit": "Percent",
        },
        {
            "Timestamp": Timestamp(6180),
            "SampleCount": 6,
            "Sum": 300,
            "Minimum": 20,
            "Maximum": 90,
            "Average": 50,
            "Unit": "Percent",
        },
    ]


def test_the_window_starts_at_its_minute_and_ends_before_end_time(service: CloudWatchService) -> None:
    points = statistics(service, StartTime=6070, EndTime=6180, Period=60, Statistics=["Sum"])
    assert [(p["Timestamp"], p["Sum"]) for p in points] == [(Timestamp(6060), 40), (Timestamp(6120), 60)]


def test_unit_filters_and_other_dimensions_find_nothing(service: CloudWatchService) -> None:
    assert (
        statistics(service, StartTime=6000, EndTime=6360, Period=60, Statistics=["Sum"], Unit="Count") == []
    )
    assert (
        statistics(service, StartTime=6000, EndTime=6360, Period=60, Statistics=["Sum"], Dimensions=[]) == []
    )


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"StartTime": 6000, "EndTime": 6360, "Period": 90, "Statistics": ["Sum"]}, ValidationError),
        ({"StartTime": 6000, "EndTime": 6000, "Period": 60, "Statistics": ["Sum"]}, ValidationError),
        ({"StartTime": 6000, "EndTime": 6360, "Period": 60}, InvalidParameterCombinationError),
        (
            {"StartTime": 0, "EndTime": 60 * 1441, "Period": 60, "Statistics": ["Sum"]},
            InvalidParameterCombinationError,
        ),
        ({"StartTime": 0, "EndTime": 60, "Period": 60, "ExtendedStatistics": ["p99"]}, ValidationError),
    ],
)
def test_bad_requests(service: CloudWatchService, params: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        statistics(service, **params)


def test_get_metric_data_newest_first_unless_asked(service: CloudWatchService) -> None:
    query = {
        "Id": "cpu",
        "MetricStat": {
            "Metric": {"Namespace": "AWS/MWAA", "MetricName": "CPUUtilization", "Dimensions": DIMS},
            "Period": 120,
            "Stat": "Maximum",
        },
    }
    [result] = service.get_metric_data({"MetricDataQueries": [query], "StartTime": 6000, "EndTime": 6360})[
        "MetricDataResults"
    ]
    assert result["Values"] == [90, 60, 30] and result["Timestamps"][0] == Timestamp(6240)
    [ascending] = service.get_metric_data(
        {"MetricDataQueries": [query], "StartTime": 6000, "EndTime": 6360, "ScanBy": "TimestampAscending"}
    )["MetricDataResults"]
    assert ascending["Values"] == [30, 60, 90] and ascending["Label"] == "CPUUtilization"
    hidden = {**query, "ReturnData": False}
    assert (
        service.get_metric_data({"MetricDataQueries": [hidden], "StartTime": 6000, "EndTime": 6360})[
            "MetricDataResults"
        ]
        == []
    )
    with pytest.raises(ValidationError, match="not unique"):
        service.get_metric_data({"MetricDataQueries": [query, query], "StartTime": 6000, "EndTime": 6360})


def test_list_metrics_pages_and_filters(service: CloudWatchService) -> None:
    listed = service.list_metrics({"Dimensions": [{"Name": "Environment"}]})
    assert listed == {
        "Metrics": [{"Namespace": "AWS/MWAA", "MetricName": "CPUUtilization", "Dimensions": DIMS}]
    }
    assert service.list_metrics({"Dimensions": [{"Name": "Environment", "Value": "other"}]})["Metrics"] == []
    assert service.list_metrics({"RecentlyActive": "PT3H"})["Metrics"]  # the clock says 7000 s
