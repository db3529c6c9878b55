import pytest

from openmwaa.errors import ValidationError
from openmwaa.services.invoke import check_path, encode_query, most_privileged_role, role_arns


def test_role_arns_most_privileged_first() -> None:
    assert role_arns("us-east-1", "123456789012", "env") == [
        f"arn:aws:airflow:us-east-1:123456789012:role/env/{r}"
        for r in ("Admin", "Op", "User", "Viewer", "Public")
    ]


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        (["Viewer", "Admin"], "Admin"),
        (["Public", "User"], "User"),
        (["Viewer"], "Viewer"),
        (["Public"], "Public"),
        ([], None),
    ],
)
def test_most_privileged_role_wins(allowed: list[str], expected: str | None) -> None:
    arns = [f"arn:aws:airflow:us-east-1:123456789012:role/env/{r}" for r in allowed]
    assert most_privileged_role(arns) == expected


@pytest.mark.parametrize(
    "path", ["/dags", "/dags/my_dag/dagRuns", "/variables/test-restapi-key", "/monitor/health"]
)
def test_valid_paths(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "dags",
        "/../v1/dags",
        "/dags/../../admin",
        "/dags/%2e%2e/x",
        "//evil.example/x",
        "/dags?x=1",
        "/dags#frag",
        "http://evil/x",
        "/dags\\x",
        "/",
        "/dags/ space",
    ],
)
def test_paths_that_could_escape_are_refused(path: str) -> None:
    with pytest.raises(ValidationError):
        check_path(path)


def test_query_encoding() -> None:
    assert encode_query({"paused": False}) == "paused=false"
    assert encode_query({"only_active": True, "limit": 5}) == "only_active=true&limit=5"
    assert encode_query({"tags": ["a", "b"]}) == "tags=a&tags=b"
    assert encode_query({"dag_id_pattern": "x y&z"}) == "dag_id_pattern=x+y%26z"
    assert encode_query(None) == ""
    assert encode_query({"skip": None}) == ""


@pytest.mark.parametrize("bad", [["paused"], "paused=false", {"x": {"nested": 1}}, {"x": [{"a": 1}]}])
def test_query_rejects_non_scalar_values(bad: object) -> None:
    with pytest.raises(ValidationError):
        encode_query(bad)
