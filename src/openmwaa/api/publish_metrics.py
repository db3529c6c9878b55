"""PublishMetrics: MWAA's internal, deprecated metrics call, stored like every other metric.

MWAA's own workers call it to push environment health to CloudWatch. Here each datum goes to
the metric store in the ``AmazonMWAA`` namespace, with the environment's ``Environment``
dimension added, so the CloudWatch API reads it back. It is authorized
(``airflow:PublishMetrics`` on the environment ARN) and validated against the model; its model
lists only ValidationException and InternalServerException, so an unknown environment is a
ValidationException here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from anyio.to_thread import run_sync

from openmwaa.errors import ResourceNotFoundError, ValidationError
from openmwaa.metrics.airflow_names import NAMESPACE
from openmwaa.metrics.recorder import EnvironmentRef, MetricRecorder, StatisticSet, environment_series
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.steps import Operation
from openmwaa.services.environments import EnvironmentService


def operations(service: EnvironmentService, recorder: MetricRecorder | None = None) -> dict[str, Operation]:
    def environment_arn(params: Mapping[str, Any]) -> str:
        return service.arn(str(params["EnvironmentName"]))

    def store(name: str, data: list[Mapping[str, Any]]) -> None:
        record = service.get(name)
        if recorder is None:
            return
        for datum in data:
            dims = {d["Name"]: d["Value"] for d in datum.get("Dimensions") or []}
            ref = EnvironmentRef(record.key.account_id, record.key.region, name)
            series = environment_series(ref, NAMESPACE, datum["MetricName"], dims)
            at = _seconds(datum["Timestamp"])
            unit = str(datum.get("Unit") or "None")
            stats = datum.get("StatisticValues")
            if stats:
                values = StatisticSet(
                    float(stats["SampleCount"]),
                    float(stats["Sum"]),
                    float(stats["Minimum"]),
                    float(stats["Maximum"]),
                )
                recorder.record_set(series, values, unit, at)
            elif "Value" in datum:
                recorder.record(series, float(datum["Value"]), unit, at)

    async def publish(ctx: RequestContext) -> Mapping[str, Any]:
        try:
            await run_sync(store, str(ctx.params["EnvironmentName"]), list(ctx.params["MetricData"]))
        except ResourceNotFoundError as exc:
            raise ValidationError(exc.message) from exc
        return {}

    return {"PublishMetrics": Operation(publish, environment_arn)}


def _seconds(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)
