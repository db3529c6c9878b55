"""The CBOR codec against botocore's own CBOR serializer and parser, and hostile input."""

from __future__ import annotations

import datetime
from typing import Any

import botocore.session
import pytest
from botocore.parsers import RpcV2CBORParser
from botocore.serialize import RpcV2CBORSerializer

from openmwaa.wire import cbor


@pytest.fixture(scope="module")
def model() -> Any:
    return botocore.session.get_session().get_service_model("cloudwatch")


def test_what_botocore_sends_decodes(model: Any) -> None:
    start = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    request = RpcV2CBORSerializer().serialize_to_request(
        {
            "Namespace": "AmazonMWAA",
            "MetricName": "SchedulerHeartbeat",
            "Dimensions": [{"Name": "Function", "Value": "Scheduler"}],
            "StartTime": start,
            "EndTime": start + datetime.timedelta(hours=1),
            "Period": 300,
            "Statistics": ["Sum", "Average"],
        },
        model.operation_model("GetMetricStatistics"),
    )
    decoded = cbor.decode(request["body"])
    assert decoded["Dimensions"] == [{"Name": "Function", "Value": "Scheduler"}]
    assert decoded["StartTime"] == start.timestamp() and decoded["Period"] == 300
    assert decoded["Statistics"] == ["Sum", "Average"]


def test_what_we_send_botocore_parses(model: Any) -> None:
    body = cbor.encode(
        {
            "Label": "SchedulerHeartbeat",
            "Datapoints": [
                {"Timestamp": cbor.Timestamp(1767225600), "Sum": 12.0, "Average": 0.5, "Unit": "Count"},
                {"Timestamp": cbor.Timestamp(1767225660.5), "Sum": -3.25, "Unit": "Count"},
            ],
        }
    )
    parsed = RpcV2CBORParser().parse(
        {"body": body, "headers": {}, "status_code": 200},
        model.operation_model("GetMetricStatistics").output_shape,
    )
    first, second = parsed["Datapoints"]
    assert first["Timestamp"].timestamp() == 1767225600 and first["Sum"] == 12 and first["Average"] == 0.5
    assert second["Timestamp"].timestamp() == 1767225660.5 and second["Sum"] == -3.25


@pytest.mark.parametrize(
    "value",
    [0, 23, 24, 255, 256, 65536, 2**32, 2**63, -1, -25, -(2**40), 1.5, float("inf"), True, None, "",
     "é" * 300, b"\x00\xff", [], [1, [2, {"a": None}]], {"k": {"n": [1.25]}}],
)  # fmt: skip
def test_round_trip(value: Any) -> None:
    assert cbor.decode(cbor.encode(value)) == value


def test_indefinite_lengths_and_half_floats() -> None:
    # {_ "a": [_ 1, 2], "b": (_ "x", "y")} and a half-precision 1.5
    data = bytes.fromhex("bf6161 9f0102ff 6162 7f61786179ff ff".replace(" ", ""))
    assert cbor.decode(data) == {"a": [1, 2], "b": "xy"}
    assert cbor.decode(bytes.fromhex("f93e00")) == 1.5


@pytest.mark.parametrize(
    "data",
    [
        b"",  # nothing
        b"\x82\x01",  # an array short of an item
        b"\x01\x02",  # trailing bytes
        b"\xa1\x01\x02",  # a map with an integer key
        b"\xc2\x41\x00",  # tag 2 (bignum)
        b"\xff",  # a lone break
        b"\x1c",  # reserved additional information
        b"\x62\xff\xfe",  # text that is not UTF-8
        b"\x81" * 40 + b"\x00",  # nested too deeply
        b"\x9f\x01",  # an indefinite array without its break
        b"\x7f\x41\x61\xff",  # a byte chunk inside a text string
    ],
)
def test_malformed_input_is_refused(data: bytes) -> None:
    with pytest.raises(cbor.CborError):
        cbor.decode(data)
