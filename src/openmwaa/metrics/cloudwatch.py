"""The CloudWatch read API over the metric store: ListMetrics, GetMetricStatistics, GetMetricData.

Datapoints are stored per minute with their statistic set, so any period that is a multiple
of 60 s is served exactly (SampleCount, Sum, Minimum, Maximum add up; Average is Sum over
SampleCount). Percentiles (ExtendedStatistics, ``p99`` stats) and metric math are not kept or
evaluated: asking for them is an InvalidParameterValue that says so.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from openmwaa.errors import ValidationError
from openmwaa.metrics.recorder import MetricRecorder
from openmwaa.store.metrics import RESOLUTION, SeriesKey
from openmwaa.wire.cbor import Timestamp
from openmwaa.wire.cloudwatch import (
    STATISTICS,
    InvalidNextTokenError,
    InvalidParameterCombinationError,
    MissingParameterError,
)

#: CloudWatch's limits: datapoints in one GetMetricStatistics answer, metrics in one ListMetrics page.
MAX_STATISTICS_DATAPOINTS: Final = 1440
LIST_PAGE: Final = 500
RECENT_SECONDS: Final = 3 * 3600

Row = tuple[int, float, float, float, float, str]


class CloudWatchService:
    def __init__(
        self, recorder: MetricRecorder, *, account_id: str, region: str, clock: Callable[[], float]
    ) -> None:
        self._recorder = recorder
        self._store = recorder.store
        self._account = account_id
        self._region = region
        self._clock = clock

    def list_metrics(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._recorder.flush()
        since = int(self._clock()) - RECENT_SECONDS if params.get("RecentlyActive") else None
        found = self._store.series(
            self._account,
            self._region,
            namespace=params.get("Namespace"),
            name=params.get("MetricName"),
            since=since,
        )
        filters = params.get("Dimensions") or []
        found = [s for s in found if _matches(s, filters)]
        start = _decode_token(params["NextToken"]) if "NextToken" in params else 0
        page = found[start : start + LIST_PAGE]
        result: dict[str, Any] = {
            "Metrics": [
                {
                    "Namespace": s.namespace,
                    "MetricName": s.name,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in s.dimensions],
                }
                for s in page
            ]
        }
        if start + LIST_PAGE < len(found):
            result["NextToken"] = _encode_token(start + LIST_PAGE)
        return result

    def get_metric_statistics(self, params: Mapping[str, Any]) -> dict[str, Any]:
        statistics = params.get("Statistics") or []
        if "ExtendedStatistics" in params:
            raise ValidationError("openmwaa keeps no percentiles: ExtendedStatistics are not available.")
        if not statistics:
            raise InvalidParameterCombinationError(
                "At least one of the parameters Statistics and ExtendedStatistics must be specified."
            )
        period = int(params["Period"])
        start, end = _window(params, period)
        if (end - start) // period > MAX_STATISTICS_DATAPOINTS:
            raise InvalidParameterCombinationError(
                f"You have requested up to {(end - start) // period} datapoints, which exceeds the "
                f"limit of {MAX_STATISTICS_DATAPOINTS}. You may reduce the datapoints requested by "
                "increasing Period, or decreasing the time range."
            )
        series = self._series(params)
        self._recorder.flush()
        buckets = _buckets(self._rows(series, start, end, params.get("Unit")), start, period)
        datapoints = []
        for at, (count, total, low, high, unit) in sorted(buckets.items()):
            point: dict[str, Any] = {"Timestamp": Timestamp(at)}
            point.update({s: _statistic(s, (count, total, low, high, unit)) for s in statistics})
            point["Unit"] = unit
            datapoints.append(point)
        return {"Label": series.name, "Datapoints": datapoints}

    def get_metric_data(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if "NextToken" in params:
            raise InvalidNextTokenError("The NextToken is not valid: openmwaa answers in one page.")
        queries = params["MetricDataQueries"]
        if not queries:
            raise MissingParameterError("The parameter MetricDataQueries must not be empty.")
        ids = [q["Id"] for q in queries]
        if len(set(ids)) != len(ids):
            raise ValidationError("The values for parameter id in MetricDataQueries are not unique.")
        self._recorder.flush()
        descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        results = []
        for query in queries:
            stat_spec = query.get("MetricStat")
            if "Expression" in query or stat_spec is None:
                raise ValidationError(
                    f"openmwaa does not evaluate metric math: query {query['Id']} needs a MetricStat."
                )
            stat = stat_spec["Stat"]
            if stat not in STATISTICS:
                raise ValidationError(
                    f"The statistic {stat[:64]} is not available: use one of {', '.join(STATISTICS)}."
                )
            period = int(stat_spec["Period"])
            start, end = _window(params, period)
            series = self._series(stat_spec["Metric"])
            buckets = _buckets(self._rows(series, start, end, stat_spec.get("Unit")), start, period)
            ordered = sorted(buckets.items(), reverse=descending)
            if query.get("ReturnData", True) is False:
                continue
            results.append(
                {
                    "Id": query["Id"],
                    "Label": query.get("Label") or series.name,
                    "Timestamps": [Timestamp(at) for at, _ in ordered],
                    "Values": [_statistic(stat, values) for _, values in ordered],
                    "StatusCode": "Complete",
                }
            )
        return {"MetricDataResults": results, "Messages": []}

    # Helpers ------------------------------------------------------------------------------

    def _series(self, params: Mapping[str, Any]) -> SeriesKey:
        for member in ("Namespace", "MetricName"):
            if member not in params:
                raise MissingParameterError(f"The parameter {member} is required.")
        dimensions = {d["Name"]: d["Value"] for d in params.get("Dimensions") or []}
        if len(dimensions) != len(params.get("Dimensions") or []):
            raise InvalidParameterCombinationError("The collection Dimensions must not contain duplicates.")
        namespace, name = params["Namespace"], params["MetricName"]
        return SeriesKey.of(self._account, self._region, namespace, name, dimensions)

    def _rows(self, series: SeriesKey, start: int, end: int, unit: str | None) -> list[Row]:
        rows = self._store.datapoints(series, start, end)
        return [r for r in rows if unit is None or r[5] == unit]


def _window(params: Mapping[str, Any], period: int) -> tuple[int, int]:
    if period % RESOLUTION:
        raise ValidationError(f"The parameter Period must be a multiple of {RESOLUTION}.")
    start, end = float(params["StartTime"]), float(params["EndTime"])
    if start >= end:
        raise ValidationError("The parameter StartTime must be less than the parameter EndTime.")
    # As CloudWatch does, the start is rounded down to the minute (12:32:34 -> 12:32:00).
    return int(start) // RESOLUTION * RESOLUTION, int(end)


def _buckets(rows: Sequence[Row], start: int, period: int) -> dict[int, list[Any]]:
    """Rows summed into periods counted from ``start``: period start -> [count, sum, min, max, unit]."""
    buckets: dict[int, list[Any]] = {}
    for minute, count, total, low, high, unit in rows:
        at = start + (minute - start) // period * period
        slot = buckets.get(at)
        if slot is None:
            buckets[at] = [count, total, low, high, unit]
        else:
            slot[0] += count
            slot[1] += total
            slot[2] = min(slot[2], low)
            slot[3] = max(slot[3], high)
    return buckets


def _statistic(stat: str, values: Sequence[Any]) -> float:
    count, total, low, high, _unit = values
    return float(
        {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high, "Average": total / count}[stat]
    )


def _matches(series: SeriesKey, filters: Sequence[Mapping[str, str]]) -> bool:
    dims = dict(series.dimensions)
    return all(f["Name"] in dims and ("Value" not in f or dims[f["Name"]] == f["Value"]) for f in filters)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"om1:{offset}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, _, number = text.partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidNextTokenError("The NextToken is not valid.") from exc
    if prefix != "om1" or offset < 0:
        raise InvalidNextTokenError("The NextToken is not valid.")
    return offset
