"""IAM decisions through the real app: deny wording, condition keys, policy variables, role choice."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import ACCOUNT, ENV_ARN, ApiServer

NETWORK = {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-a"]}
NO_ROLE = "No Airflow role granted in IAM."


def denied(client: Any, call: Any) -> str:
    """The AccessDeniedException message ``call`` ends in (fails if it is allowed)."""
    with pytest.raises(client.exceptions.AccessDeniedException) as exc:
        call()
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return str(exc.value.response["Error"]["Message"])


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def test_explicit_deny_wording(api: ApiServer) -> None:
    mwaa = api.client(user="denied-get")
    message = denied(mwaa, lambda: mwaa.get_environment(Name="avail"))
    assert message == (
        f"User: {user_arn('denied-get')} is not authorized to perform: airflow:GetEnvironment on "
        f"resource: {ENV_ARN}avail with an explicit deny in an identity-based policy"
    )
    # The Allow airflow:* in the same policy still works for everything else.
    assert "avail" in mwaa.list_environments()["Environments"]


def test_allowed_user_gets_exactly_what_the_policy_says(api: ApiServer) -> None:
    mwaa = api.client(user="getter")
    assert mwaa.get_environment(Name="avail")["Environment"]["Status"] == "AVAILABLE"
    message = denied(mwaa, lambda: mwaa.delete_environment(Name="avail"))
    assert message.endswith("because no identity-based policy allows the airflow:DeleteEnvironment action")
    assert api.client().get_environment(Name="avail")["Environment"]["Status"] == "AVAILABLE"


def test_source_ip(api: ApiServer) -> None:
    ok = api.client(user="ip-loopback")
    assert ok.get_environment(Name="avail")["Environment"]["Name"] == "avail"
    elsewhere = api.client(user="ip-elsewhere")
    message = denied(elsewhere, lambda: elsewhere.get_environment(Name="avail"))
    assert "because no identity-based policy allows the airflow:GetEnvironment action" in message


def test_secure_transport_over_plain_http(api: ApiServer) -> None:
    tls_only = api.client(user="tls-only")
    message = denied(tls_only, lambda: tls_only.get_environment(Name="avail"))
    assert "no identity-based policy allows" in message
    no_http = api.client(user="no-plain-http")
    message = denied(no_http, lambda: no_http.get_environment(Name="avail"))
    assert message.endswith("with an explicit deny in an identity-based policy")


def test_resource_tag(api: ApiServer) -> None:
    mwaa = api.client(user="team-a")
    assert mwaa.get_environment(Name="team-a-env")["Environment"]["Tags"] == {"team": "a"}
    message = denied(mwaa, lambda: mwaa.get_environment(Name="team-b-env"))
    assert f"on resource: {ENV_ARN}team-b-env because" in message
    # An untagged environment has no aws:ResourceTag/team: the condition does not match.
    denied(mwaa, lambda: mwaa.get_environment(Name="avail"))


def test_resource_tag_follows_retagging(api: ApiServer) -> None:
    admin, mwaa = api.client(), api.client(user="team-a")
    arn = ENV_ARN + "bob-env"
    denied(mwaa, lambda: mwaa.get_environment(Name="bob-env"))
    admin.tag_resource(ResourceArn=arn, Tags={"team": "a"})
    try:
        assert mwaa.get_environment(Name="bob-env")["Environment"]["Name"] == "bob-env"
    finally:
        admin.untag_resource(ResourceArn=arn, tagKeys=["team"])
    denied(mwaa, lambda: mwaa.get_environment(Name="bob-env"))


def create_params(name: str, tags: dict[str, str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "Name": name,
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/exec",
        "SourceBucketArn": "arn:aws:s3:::bucket-that-is-not-there",
        "DagS3Path": "dags",
        "NetworkConfiguration": NETWORK,
    }
    if tags is not None:
        params["Tags"] = tags
    return params


@pytest.mark.parametrize(
    ("tags", "allowed"),
    [
        ({"team": "a"}, True),
        ({"team": "a", "owner": "me"}, True),
        ({"team": "b"}, False),  # aws:RequestTag/team is not "a"
        ({"team": "a", "cost": "x"}, False),  # aws:TagKeys has a key outside the list
        ({"owner": "me"}, False),  # no aws:RequestTag/team at all
        (None, False),
    ],
)
def test_request_tags_on_create_environment(
    api: ApiServer, tags: dict[str, str] | None, allowed: bool
) -> None:
    mwaa = api.client(user="tagger")

    def call() -> Any:
        return mwaa.create_environment(**create_params("tagged-env", tags))

    if allowed:
        # Past IAM, the service itself refuses: the bucket does not exist (no Airflow starts).
        with pytest.raises(mwaa.exceptions.ValidationException) as exc:
            call()
        assert "bucket-that-is-not-there" in str(exc.value)
    else:
        message = denied(mwaa, call)
        assert message.startswith(f"User: {user_arn('tagger')} is not authorized to perform: ")
        assert f"airflow:CreateEnvironment on resource: {ENV_ARN}tagged-env" in message


@pytest.mark.parametrize(
    ("tags", "allowed"),
    [({"team": "a"}, True), ({"team": "a", "owner": "x"}, True), ({"team": "b"}, False), ({"x": "a"}, False)],
)
def test_request_tags_on_tag_resource(api: ApiServer, tags: dict[str, str], allowed: bool) -> None:
    mwaa, admin = api.client(user="tagger"), api.client()
    arn = ENV_ARN + "alice-env"
    if allowed:
        mwaa.tag_resource(ResourceArn=arn, Tags=tags)
        assert admin.list_tags_for_resource(ResourceArn=arn)["Tags"] == tags
        admin.untag_resource(ResourceArn=arn, tagKeys=list(tags))
    else:
        message = denied(mwaa, lambda: mwaa.tag_resource(ResourceArn=arn, Tags=tags))
        assert f"airflow:TagResource on resource: {arn} because" in message
    assert admin.list_tags_for_resource(ResourceArn=arn)["Tags"] == {}


def test_username_variable_in_resource(api: ApiServer) -> None:
    mwaa = api.client(user="alice")
    assert mwaa.get_environment(Name="alice-env")["Environment"]["Name"] == "alice-env"
    message = denied(mwaa, lambda: mwaa.get_environment(Name="bob-env"))
    assert f"on resource: {ENV_ARN}bob-env because" in message
    # The variable is the caller's name, not a wildcard: another user's policy does not match alice's.
    nobody = api.client(user="nobody")
    denied(nobody, lambda: nobody.get_environment(Name="nobody-env"))


def test_invoke_rest_api_with_no_role_granted(api: ApiServer) -> None:
    """Allowed other actions but no role: exactly MWAA's message (MwaaHook looks for it)."""
    for user in ("getter", "nobody", "tls-only"):
        mwaa = api.client(user=user)
        for name in ("avail", "no-such-env"):
            message = denied(
                mwaa, lambda m=mwaa, n=name: m.invoke_rest_api(Name=n, Path="/dags", Method="GET")
            )
            assert message == NO_ROLE, (user, name)


def test_invoke_rest_api_role_grant_is_per_environment(api: ApiServer) -> None:
    mwaa = api.client(user="viewer-only")
    message = denied(mwaa, lambda: mwaa.invoke_rest_api(Name="team-a-env", Path="/dags", Method="GET"))
    assert message == NO_ROLE
    # On "avail" the Viewer role is granted: IAM lets the call through, and it stops only because
    # no Airflow runs behind this record.
    with pytest.raises(mwaa.exceptions.ValidationException) as exc:
        mwaa.invoke_rest_api(Name="avail", Path="/dags", Method="GET")
    assert "no running web server" in str(exc.value)


def test_create_web_login_token_with_no_role_granted(api: ApiServer) -> None:
    mwaa = api.client(user="getter")
    assert denied(mwaa, lambda: mwaa.create_web_login_token(Name="avail")) == NO_ROLE


def test_admin_invoke_reaches_the_environment(api: ApiServer) -> None:
    with pytest.raises(ClientError) as exc:
        api.client().invoke_rest_api(Name="avail", Path="/dags", Method="GET")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "no running web server" in str(exc.value)


def test_new_identities_are_picked_up_while_running(api: ApiServer) -> None:
    editor = api.editor()
    editor.add_user("late-user")
    key = editor.create_access_key("late-user")
    started = time.monotonic()
    api.wait_for_user("late-user")
    reload_seconds = time.monotonic() - started
    mwaa = api.client(aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key)
    denied(mwaa, lambda: mwaa.get_environment(Name="avail"))
    editor.put_user_policy(
        "late-user",
        "read",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": ENV_ARN + "avail"}
                ],
            }
        ),
    )
    deadline = time.monotonic() + 5
    while True:
        try:
            assert mwaa.get_environment(Name="avail")["Environment"]["Name"] == "avail"
            break
        except mwaa.exceptions.AccessDeniedException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert reload_seconds < 3
