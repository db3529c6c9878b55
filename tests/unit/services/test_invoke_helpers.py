import pytest

from openmwaa.errors import ValidationError
from openmwaa.services.invoke import check_path, encode_query, role_arns, role_of


def test_role_arns_most_privileged_first() -> None:
    assert role_arns("us-east-1", "123456789012", "env") == [
        f"arn:aws:airflow:us-east-1:123456789012:role/env/{r}"
        for r in ("Admin", "Op", "User", "Viewer", "Public")
    ]


def test_role_of_names_the_airflow_role_of_a_role_arn() -> None:
    assert [role_of(arn) for arn in role_arns("us-east-1", "123456789012", "env")] == [
        "Admin",
        "Op",
        "User",
        "Viewer",
        "Public",
    ]
    with pytest.raises(ValueError, match="not an Airflow role ARN"):
        role_of("arn:aws:airflow:us-east-1:123456789012:role/env/Superuser")


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
