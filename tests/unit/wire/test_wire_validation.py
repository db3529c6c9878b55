"""Table-driven server-side validation: every constraint the model states is enforced, AWS-style."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from openmwaa.errors import PayloadTooLargeError, UnknownOperationError, ValidationError
from openmwaa.wire.model import MwaaWire

ARN = "arn:aws:airflow:us-east-1:123456789012:environment/my-env"
CREATE_BASE: dict[str, Any] = {
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa-exec",
    "SourceBucketArn": "arn:aws:s3:::my-bucket",
    "DagS3Path": "dags",
    "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
}


def create(name: str = "my-env", **changes: Any) -> tuple[str, dict[str, str], str, bytes]:
    body = {**CREATE_BASE, **changes}
    return "CreateEnvironment", {"Name": name}, "", json.dumps(body).encode()


def network(**changes: Any) -> dict[str, Any]:
    return {**CREATE_BASE["NetworkConfiguration"], **changes}


def invoke(**body: Any) -> tuple[str, dict[str, str], str, bytes]:
    return (
        "InvokeRestApi",
        {"Name": "my-env"},
        "",
        json.dumps({"Path": "/dags", "Method": "GET", **body}).encode(),
    )


def listing(query: str) -> tuple[str, dict[str, str], str, bytes]:
    return "ListEnvironments", {}, query, b""


def untag(query: str, arn: str = ARN) -> tuple[str, dict[str, str], str, bytes]:
    return "UntagResource", {"ResourceArn": arn}, query, b""


def raw_create(body: bytes) -> tuple[str, dict[str, str], str, bytes]:
    return "CreateEnvironment", {"Name": "my-env"}, "", body


FAILED = "failed to satisfy constraint:"
LEN_GE = "Member must have length greater than or equal to"
LEN_LE = "Member must have length less than or equal to"
VALUE_GE = "Member must have value greater than or equal to"
VALUE_LE = "Member must have value less than or equal to"
PATTERN = "Member must satisfy regular expression pattern:"
ENUM = "Member must satisfy enum value set:"
NOT_NULL = "Member must not be null"
MAP_KEYS = "Map keys must satisfy constraint:"
PATTERN_NAME = f"{PATTERN} [a-zA-Z][0-9a-zA-Z-_]*"
CONFIG_KEY_PATTERN = f"{PATTERN} [a-z]+([a-z0-9._]*[a-z0-9_]+)?"


def at(path: str, constraint: str, value: str | None = None) -> str:
    """The AWS-style message for one violation (without the value when ``value`` is None)."""
    shown = "" if value is None else f"Value '{value}' "
    return f"{shown}at '{path}' {FAILED} {constraint}"


def wrong_type(path: str, expected: str, got: str) -> str:
    return f"Value at '{path}' {FAILED} Member must be {expected} (got a JSON {got})"


SUBNETS = "networkConfiguration.subnetIds"
GROUPS = "networkConfiguration.securityGroupIds"
TASK_LOGS = "loggingConfiguration.taskLogs"
WINDOW = "weeklyMaintenanceWindowStart"
DEEP_BODY = b'{"Path":"/x","Method":"GET","Body":' + b"[" * 100_000 + b"]" * 100_000 + b"}"

CASES = [
    pytest.param(create("9abc"), [at("name", PATTERN_NAME, "9abc")], id="name-starts-with-digit"),
    pytest.param(create("a b"), [at("name", PATTERN_NAME, "a b")], id="name-with-space"),
    pytest.param(create("a" * 81), [at("name", f"{LEN_LE} 80")], id="name-81-chars"),
    pytest.param(create("a/b"), [at("name", PATTERN_NAME, "a/b")], id="name-with-slash"),
    pytest.param(
        create(NetworkConfiguration=network(SubnetIds=["subnet-a"])),
        [at(SUBNETS, f"{LEN_GE} 2")],
        id="subnets-1",
    ),
    pytest.param(
        create(NetworkConfiguration=network(SubnetIds=["subnet-a", "subnet-b", "subnet-c"])),
        [at(SUBNETS, f"{LEN_LE} 2")],
        id="subnets-3",
    ),
    pytest.param(
        create(NetworkConfiguration=network(SubnetIds=["subnet-a", "vpc-1"])),
        [at(f"{SUBNETS}.2.member", f"{PATTERN} subnet-[a-zA-Z0-9\\-._]+", "vpc-1")],
        id="subnet-pattern",
    ),
    pytest.param(
        create(NetworkConfiguration=network(SecurityGroupIds=[])), [at(GROUPS, f"{LEN_GE} 1")], id="groups-0"
    ),
    pytest.param(
        create(NetworkConfiguration=network(SecurityGroupIds=[f"sg-{i}" for i in range(6)])),
        [at(GROUPS, f"{LEN_LE} 5")],
        id="groups-6",
    ),
    pytest.param(
        create(NetworkConfiguration=network(VpcId="vpc-1")),
        ["Unknown member 'VpcId' at 'networkConfiguration'"],
        id="network-unknown-member",
    ),
    pytest.param(
        create(NetworkConfiguration="subnet-a"),
        [wrong_type("networkConfiguration", "a structure (JSON object)", "string")],
        id="network-not-object",
    ),
    pytest.param(
        create(NetworkConfiguration=network(SubnetIds=["subnet-a", None])),
        [f"Value null at '{SUBNETS}.2.member' {FAILED} {NOT_NULL}"],
        id="null-list-element",
    ),
    pytest.param(listing("MaxResults=0"), [at("maxResults", f"{VALUE_GE} 1", "0")], id="max-results-0"),
    pytest.param(listing("MaxResults=26"), [at("maxResults", f"{VALUE_LE} 25", "26")], id="max-results-26"),
    pytest.param(
        listing("MaxResults=abc"),
        [at("maxResults", "Member must be an integer", "abc")],
        id="max-results-abc",
    ),
    pytest.param(
        listing("MaxResults=2.5"),
        [at("maxResults", "Member must be an integer", "2.5")],
        id="max-results-2.5",
    ),
    pytest.param(
        listing("MaxResults="), [at("maxResults", "Member must be an integer", "")], id="max-results-empty"
    ),
    pytest.param(
        listing("MaxResults=1&MaxResults=2"),
        [at("maxResults", "Member must not be repeated in the query string")],
        id="max-results-repeated",
    ),
    pytest.param(
        listing("NextToken=" + "a" * 2049), [at("nextToken", f"{LEN_LE} 2048")], id="next-token-2049"
    ),
    pytest.param(create(Tags={f"k{i}": "v" for i in range(51)}), [at("tags", f"{LEN_LE} 50")], id="tags-51"),
    pytest.param(create(Tags={"k" * 129: "v"}), [at("tags", f"{MAP_KEYS} {LEN_LE} 128")], id="tag-key-129"),
    pytest.param(
        create(Tags={"a!b": "v"}), [at("tags", f"{MAP_KEYS} {PATTERN}", "a!b")], id="tag-key-bad-char"
    ),
    pytest.param(create(Tags={"k": "v" * 257}), [at("tags.k", f"{LEN_LE} 256")], id="tag-value-257"),
    pytest.param(create(Tags={"k": 1}), [wrong_type("tags.k", "a string", "number")], id="tag-value-number"),
    pytest.param(
        create(Tags=[{"Key": "k", "Value": "v"}]),
        [wrong_type("tags", "a map (JSON object)", "array")],
        id="tags-list",
    ),
    pytest.param(
        create(AirflowConfigurationOptions={"Core.Parallelism": "4"}),
        [f"Value at 'airflowConfigurationOptions' {FAILED} {MAP_KEYS} {CONFIG_KEY_PATTERN}"],
        id="config-key-uppercase",
    ),
    pytest.param(
        create(AirflowConfigurationOptions={"core.": "4"}), [CONFIG_KEY_PATTERN], id="config-key-dot"
    ),
    pytest.param(
        create(AirflowConfigurationOptions={"core.parallelism": "4\n"}),
        [f"Value at 'airflowConfigurationOptions.*' {FAILED} {PATTERN} [ -~]+"],
        id="config-value-newline",
    ),
    pytest.param(create(Schedulers=6), [at("schedulers", f"{VALUE_LE} 5", "6")], id="schedulers-6"),
    pytest.param(create(MaxWorkers=0), [at("maxWorkers", f"{VALUE_GE} 1", "0")], id="max-workers-0"),
    pytest.param(
        create(MaxWorkers=2**31), [at("maxWorkers", f"{VALUE_LE} 2147483647")], id="max-workers-int32"
    ),
    pytest.param(
        create(MaxWorkers="3"), [wrong_type("maxWorkers", "an integer", "string")], id="max-workers-string"
    ),
    pytest.param(
        create(MaxWorkers=True), [wrong_type("maxWorkers", "an integer", "boolean")], id="max-workers-bool"
    ),
    pytest.param(
        create(MaxWorkers=3.0), [wrong_type("maxWorkers", "an integer", "number")], id="max-workers-float"
    ),
    pytest.param(
        create(WeeklyMaintenanceWindowStart="TUE:03:15"),
        [at(WINDOW, PATTERN, "TUE:03:15")],
        id="window-minute",
    ),
    pytest.param(
        create(WeeklyMaintenanceWindowStart="XYZ:03:30"), [at(WINDOW, PATTERN, "XYZ:03:30")], id="window-day"
    ),
    pytest.param(
        create(WeeklyMaintenanceWindowStart="TUE:24:00"), [at(WINDOW, PATTERN, "TUE:24:00")], id="window-hour"
    ),
    pytest.param(
        create(WeeklyMaintenanceWindowStart="TUE:03:300"), [at(WINDOW, f"{LEN_LE} 9")], id="window-long"
    ),
    pytest.param(
        create(EnvironmentClass=""), [at("environmentClass", f"{LEN_GE} 1", "")], id="environment-class-empty"
    ),
    pytest.param(
        create(WebserverAccessMode="PUBLIC"),
        [at("webserverAccessMode", f"{ENUM} [PRIVATE_ONLY, PUBLIC_ONLY, PUBLIC_AND_PRIVATE]", "PUBLIC")],
        id="access-mode-enum",
    ),
    pytest.param(
        create(ExecutionRoleArn="arn:aws:iam::123:role/x"),
        [at("executionRoleArn", PATTERN)],
        id="execution-role-arn",
    ),
    pytest.param(
        create(LoggingConfiguration={"TaskLogs": {"Enabled": True}}),
        [f"Value null at '{TASK_LOGS}.logLevel' {FAILED} {NOT_NULL}"],
        id="logging-nested-required",
    ),
    pytest.param(
        create(LoggingConfiguration={"TaskLogs": {"Enabled": "true", "LogLevel": "INFO"}}),
        [wrong_type(f"{TASK_LOGS}.enabled", "a boolean", "string")],
        id="logging-enabled-string",
    ),
    pytest.param(
        create(LoggingConfiguration={"TaskLogs": {"Enabled": True, "LogLevel": "TRACE"}}),
        [at(f"{TASK_LOGS}.logLevel", ENUM, "TRACE")],
        id="logging-level-enum",
    ),
    pytest.param(create(Bogus=1), ["Unknown member 'Bogus'"], id="top-level-unknown"),
    pytest.param(create(Name="other"), ["Unknown member 'Name'"], id="label-member-in-body"),
    pytest.param(invoke(Path=""), [at("path", f"{LEN_GE} 1", "")], id="invoke-path-empty"),
    pytest.param(invoke(Path="/" + "d" * 64), [at("path", f"{LEN_LE} 64")], id="invoke-path-65"),
    pytest.param(
        invoke(Method="HEAD"),
        [at("method", f"{ENUM} [GET, PUT, POST, PATCH, DELETE]", "HEAD")],
        id="invoke-method",
    ),
    pytest.param(
        ("InvokeRestApi", {"Name": "my-env"}, "", b'{"Path": "/dags"}'),
        [f"1 validation error detected: Value null at 'method' {FAILED} {NOT_NULL}"],
        id="invoke-missing-method",
    ),
    pytest.param(untag("tagKeys="), [at("tagKeys.1.member", f"{LEN_GE} 1", "")], id="untag-empty-key"),
    pytest.param(
        untag("&".join(f"tagKeys=k{i}" for i in range(51))),
        [at("tagKeys", f"{LEN_LE} 50")],
        id="untag-51-keys",
    ),
    pytest.param(untag(""), [f"Value null at 'tagKeys' {FAILED} {NOT_NULL}"], id="untag-no-keys"),
    pytest.param(
        untag("tagKeys=a", arn="arn:aws:airflow:us-east-1:123:environment/x"),
        [at("resourceArn", PATTERN)],
        id="untag-bad-arn",
    ),
    pytest.param(
        (
            "PublishMetrics",
            {"EnvironmentName": "e"},
            "",
            b'{"MetricData": [{"MetricName": "m", "Timestamp": "x"}]}',
        ),
        [wrong_type("metricData.1.member.timestamp", "a timestamp in epoch seconds", "string")],
        id="metrics-timestamp-string",
    ),
    pytest.param(
        ("PublishMetrics", {"EnvironmentName": "e"}, "", b'{"MetricData": [{"Timestamp": 1}]}'),
        [f"Value null at 'metricData.1.member.metricName' {FAILED} {NOT_NULL}"],
        id="metrics-missing-name",
    ),
    pytest.param(
        raw_create(b'{"ExecutionRoleArn":'), ["Request body is not valid JSON"], id="malformed-json"
    ),
    pytest.param(raw_create(b"[]"), ["Request body must be a JSON object."], id="json-array"),
    pytest.param(raw_create(b'"x"'), ["Request body must be a JSON object."], id="json-string"),
    pytest.param(
        raw_create(b'{"DagS3Path": "\xff"}'), ["Request body is not valid UTF-8."], id="invalid-utf8"
    ),
    pytest.param(
        raw_create(b'{"DagS3Path": "a", "DagS3Path": "b"}'),
        ["Request body is not valid JSON: duplicate key 'DagS3Path'"],
        id="duplicate-keys",
    ),
    pytest.param(raw_create(b'{"MaxWorkers": NaN}'), ["Request body is not valid JSON: NaN"], id="nan"),
    pytest.param(
        ("InvokeRestApi", {"Name": "e"}, "", DEEP_BODY), ["Request body is not valid JSON"], id="deep-nesting"
    ),
    pytest.param(
        listing("NextToken=%ff"), ["Query string is not valid percent-encoded UTF-8."], id="query-bad-utf8"
    ),
]


@pytest.mark.parametrize(("request_parts", "fragments"), CASES)
def test_invalid_input_is_a_validation_error(
    wire: MwaaWire, request_parts: tuple[str, dict[str, str], str, bytes], fragments: list[str]
) -> None:
    operation, path_params, query, body = request_parts
    with pytest.raises(ValidationError) as caught:
        wire.parse_input(operation, path_params, query, body)
    assert type(caught.value) is ValidationError
    for fragment in fragments:
        assert fragment in caught.value.message


def test_all_errors_are_collected_and_counted(wire: MwaaWire) -> None:
    with pytest.raises(ValidationError) as caught:
        wire.parse_input("CreateEnvironment", {"Name": "9 lives"}, "", b'{"Schedulers": 9}')
    assert caught.value.message == (
        "6 validation errors detected: "
        "Value null at 'dagS3Path' failed to satisfy constraint: Member must not be null; "
        "Value null at 'executionRoleArn' failed to satisfy constraint: Member must not be null; "
        "Value null at 'networkConfiguration' failed to satisfy constraint: Member must not be null; "
        "Value null at 'sourceBucketArn' failed to satisfy constraint: Member must not be null; "
        f"Value '9 lives' at 'name' failed to satisfy constraint: {PATTERN_NAME}; "
        f"Value '9' at 'schedulers' {FAILED} {VALUE_LE} 5"
    )


def test_many_errors_are_counted_but_only_some_shown(wire: MwaaWire) -> None:
    metric_data = [{"Timestamp": 1} for _ in range(100)]
    with pytest.raises(ValidationError) as caught:
        wire.parse_input(
            "PublishMetrics", {"EnvironmentName": "e"}, "", json.dumps({"MetricData": metric_data}).encode()
        )
    assert caught.value.message.startswith("100 validation errors detected: ")
    assert caught.value.message.endswith("; and 80 more")


def test_sensitive_values_are_never_echoed(wire: MwaaWire) -> None:
    secret = "hunter2\x01"
    with pytest.raises(ValidationError) as caught:
        wire.parse_input(*create(AirflowConfigurationOptions={"Secret.Key": secret})[:4])
    assert secret not in caught.value.message
    assert "Secret.Key" not in caught.value.message


def test_huge_body_is_payload_too_large(wire: MwaaWire) -> None:
    body = b'{"Path": "/x", "Method": "POST", "Body": "' + b"a" * (6 * 1024 * 1024) + b'"}'
    with pytest.raises(PayloadTooLargeError) as caught:
        wire.parse_input("InvokeRestApi", {"Name": "e"}, "", body)
    assert caught.value.status == 413


def test_body_bound_is_configurable() -> None:
    small = MwaaWire.load(max_body_bytes=64)
    small.parse_input("InvokeRestApi", {"Name": "e"}, "", b'{"Path": "/x", "Method": "GET"}')
    with pytest.raises(PayloadTooLargeError):
        small.parse_input(
            "InvokeRestApi",
            {"Name": "e"},
            "",
            b'{"Path": "/x", "Method": "GET", "Body": "' + b"a" * 64 + b'"}',
        )


def test_huge_label_is_rejected_by_length_quickly_and_briefly(wire: MwaaWire) -> None:
    name = "a" * 1_000_000 + "!"
    started = time.monotonic()
    with pytest.raises(ValidationError) as caught:
        wire.parse_input("GetEnvironment", {"Name": name}, "", b"")
    assert time.monotonic() - started < 1.0
    assert "Member must have length less than or equal to 80" in caught.value.message
    assert "regular expression" not in caught.value.message
    assert len(caught.value.message) < 1000


def test_documents_keep_their_json_types(wire: MwaaWire) -> None:
    body = {
        "Path": "/dags/d",
        "Method": "PATCH",
        "Body": {"is_paused": False, "n": None, "l": [1, 1.5, "x", True]},
        "QueryParameters": {"update_mask": ["is_paused"], "limit": 5},
    }
    params = wire.parse_input("InvokeRestApi", {"Name": "e"}, "", json.dumps(body).encode())
    assert params["Body"] == body["Body"]
    assert params["Body"]["is_paused"] is False
    assert params["QueryParameters"] == body["QueryParameters"]


@pytest.mark.parametrize("document", [[1, 2], "text", 3, True])
def test_documents_may_be_any_json(wire: MwaaWire, document: Any) -> None:
    body = json.dumps({"Path": "/x", "Method": "POST", "Body": document}).encode()
    assert wire.parse_input("InvokeRestApi", {"Name": "e"}, "", body)["Body"] == document


def test_valid_edge_values_pass(wire: MwaaWire) -> None:
    name = "a" + "B-_9" * 19 + "z" * 3  # 80 characters
    assert len(name) == 80
    tags = {f"k{i}": "v" for i in range(49)} | {"été 2024": "données"}  # 50 entries
    changes = {
        "Tags": tags,
        "AirflowConfigurationOptions": {"core.default_timezone": "utc", "webserver.x_1": "a b ~"},
        "Schedulers": 5,
        "MaxWorkers": 1,
        "WeeklyMaintenanceWindowStart": "SUN:23:30",
        "NetworkConfiguration": network(SecurityGroupIds=[f"sg-{i}" for i in range(5)]),
        "MinWorkers": None,  # null means "not set"
    }
    params = wire.parse_input(*create(name, **changes)[:4])
    assert params["Name"] == name
    assert "MinWorkers" not in params
    assert params["Tags"]["été 2024"] == "données"


def test_tag_value_empty_string_violates_min(wire: MwaaWire) -> None:
    # The model says TagValue is 1-256 (the contract notes say 0-256): the model wins.
    with pytest.raises(ValidationError, match=re.escape(at("tags.k", LEN_GE))):
        wire.parse_input(*create(Tags={"k": ""})[:4])


def test_query_values_are_percent_decoded_and_plus_is_literal(wire: MwaaWire) -> None:
    params = wire.parse_input(
        "UntagResource", {"ResourceArn": ARN}, "tagKeys=a%20b&tagKeys=c%2Bd&tagKeys=e+f&x-id=ignored", b""
    )
    assert params["tagKeys"] == ["a b", "c+d", "e+f"]


def test_empty_body_means_no_members(wire: MwaaWire) -> None:
    assert wire.parse_input("UpdateEnvironment", {"Name": "e"}, "", b"") == {"Name": "e"}
    assert wire.parse_input("UpdateEnvironment", {"Name": "e"}, "", b" {} ") == {"Name": "e"}
    assert wire.parse_input("CreateCliToken", {"Name": "e"}, "", b"{}") == {"Name": "e"}


def test_unpaired_surrogates_are_rejected(wire: MwaaWire) -> None:
    with pytest.raises(
        ValidationError, match=re.escape("at 'dagS3Path' failed to satisfy constraint: Member must be valid")
    ):
        wire.parse_input(*raw_create(json.dumps({**CREATE_BASE, "DagS3Path": "dags\ud800"}).encode()))


def test_unknown_operation_cannot_be_parsed(wire: MwaaWire) -> None:
    with pytest.raises(UnknownOperationError):
        wire.parse_input("DeleteEverything", {}, "", b"")
