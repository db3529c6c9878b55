from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path

import botocore.session
import pytest
import yaml

from openmwaa.auth.bootstrap import ensure_bootstrap_admin
from openmwaa.auth.credentials import ResolvedCredential, SecretBox
from openmwaa.auth.iam_admin import IdentitiesEditor
from openmwaa.auth.identities import IdentityStore
from openmwaa.auth.identities_file import parse_identities
from openmwaa.auth.sts_sessions import StsSessionStore
from openmwaa.errors import ResourceNotFoundError, UnrecognizedClientError, ValidationError
from openmwaa.principal import Principal
from openmwaa.settings import Settings
from tests.unit.authtest_support import (
    ACCOUNT,
    ALICE_KEY,
    ALICE_SECRET,
    BOB_KEY,
    IDENTITIES_YAML,
    write_identities,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_lookup_user_key(store: IdentityStore) -> None:
    resolved = store.lookup(ALICE_KEY, None, 0)
    assert resolved.secret_access_key == ALICE_SECRET
    assert resolved.principal.arn == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert resolved.principal.user_id.startswith("AIDA") and len(resolved.principal.user_id) == 21
    assert [p.name for p in resolved.policies] == ["user/alice/inline-0", "AssumeAnyRole"]
    assert [p.name for p in store.policies_for(resolved.principal)] == [
        "user/alice/inline-0",
        "AssumeAnyRole",
    ]
    with pytest.raises(UnrecognizedClientError):
        store.lookup("AKIAUNKNOWN000000000", None, 0)


def test_roles_are_parsed(store: IdentityStore) -> None:
    role = store.role_by_arn(f"arn:aws:iam::{ACCOUNT}:role/Deployer")
    assert role is not None
    assert role.max_session_duration == 7200
    assert role.trust_policy.kind == "trust"
    assert [p.name for p in role.policies] == ["role/Deployer/deploy"]
    assert store.role_by_arn("arn:aws:iam::999999999999:role/Deployer") is None
    assert store.role_by_arn(f"arn:aws:iam::{ACCOUNT}:role/Nope") is None


def test_secrets_never_in_repr(store: IdentityStore, box: SecretBox, sessions: StsSessionStore) -> None:
    resolved = store.lookup(ALICE_KEY, None, 0)
    user = store.identities().users["alice"]
    issued = sessions.issue(role_name="Deployer", session_name="s1", source_arn="x", duration=900, now=0)
    texts = [
        repr(resolved),
        repr(user),
        repr(store.identities()),
        repr(issued),
        repr(issued.session),
        repr(box),
    ]
    texts += [repr(store), repr(sessions), str(resolved)]
    for text in texts:
        assert ALICE_SECRET not in text
        assert issued.session.secret_access_key not in text
        assert issued.session_token not in text
        assert issued.session.token_sha256 not in text


def test_inactive_key_is_unrecognized(data_dir: Path, box: SecretBox, sessions: StsSessionStore) -> None:
    path = data_dir / "iam.yaml"
    write_identities(
        path, IDENTITIES_YAML.replace(f"id: {ALICE_KEY}", f"id: {ALICE_KEY}\n        active: false")
    )
    store = IdentityStore(path, account_id=ACCOUNT, box=box, sessions=sessions)
    with pytest.raises(UnrecognizedClientError):
        store.lookup(ALICE_KEY, None, 0)


def test_encrypted_secret_in_file(data_dir: Path, box: SecretBox, sessions: StsSessionStore) -> None:
    path = data_dir / "iam.json"
    sealed = box.encrypt("s3cr3t-value")
    key = {"id": "AKIADAVE000000000001", "secret_encrypted": sealed}
    path.write_text(json.dumps({"users": [{"name": "dave", "access_keys": [key]}]}))
    store = IdentityStore(path, account_id=ACCOUNT, box=box, sessions=sessions)
    assert store.lookup("AKIADAVE000000000001", None, 0).secret_access_key == "s3cr3t-value"
    other_box = SecretBox(__import__("cryptography.fernet").fernet.Fernet.generate_key())
    with pytest.raises(ValidationError, match="cannot be decrypted"):
        IdentityStore(path, account_id=ACCOUNT, box=other_box, sessions=sessions)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("users: {}", "users: expected a list"),
        ("groups: []", "unknown key(s) groups"),
        ("users: [{name: a, password: x}]", "users[0]: unknown key(s) password"),
        ("users: [{name: 'bad name'}]", "users[0]: name must be"),
        ("users: [{name: a}, {name: a}]", "duplicate user name 'a'"),
        ("users: [{name: a, access_keys: [{id: lowercase0000000000, secret: x}]}]", "id must be"),
        ("users: [{name: a, access_keys: [{id: AKIA0000000000000001}]}]", "exactly one of secret"),
        (
            "users: [{name: a, access_keys: [{id: AKIA0000000000000001, secret: x}]},"
            " {name: b, access_keys: [{id: AKIA0000000000000001, secret: y}]}]",
            "used twice",
        ),
        ("users: [{name: a, policies: [{Statement: []}]}]", "users[0] (user a): policies[0]"),
        ("users: [{name: a, managed_policies: [Nope]}]", "managed policy 'Nope' is not defined"),
        ("roles: [{name: r}]", "trust_policy is required"),
        (
            "roles: [{name: r, trust_policy: {Statement: [{Effect: Allow, Action: 'sts:AssumeRole',"
            " Principal: {AWS: '*'}}]}, max_session_duration: 60}]",
            "max_session_duration",
        ),
        (
            "roles: [{name: r, trust_policy: {Statement: [{Effect: Allow, Action: 'sts:AssumeRole',"
            " Resource: '*'}]}}]",
            "roles[0] (role r): trust_policy",
        ),
        ("users: [", "not valid YAML"),
        ("- a\n- b", "must be a mapping"),
    ],
)
def test_invalid_files_name_the_entry(
    data_dir: Path, box: SecretBox, sessions: StsSessionStore, text: str, fragment: str
) -> None:
    path = data_dir / "iam.yaml"
    write_identities(path, text)
    with pytest.raises(ValidationError) as info:
        IdentityStore(path, account_id=ACCOUNT, box=box, sessions=sessions)
    assert fragment in info.value.message
    assert str(path) in info.value.message


def test_yaml_errors_do_not_quote_the_file(data_dir: Path, box: SecretBox, sessions: StsSessionStore) -> None:
    path = data_dir / "iam.yaml"
    write_identities(
        path, "users:\n  - name: a\n    access_keys: [{id: AKIA0000000000000001, secret: TOPSECRET: x}]\n"
    )
    with pytest.raises(ValidationError) as info:
        IdentityStore(path, account_id=ACCOUNT, box=box, sessions=sessions)
    assert "line 3" in info.value.message
    assert "TOPSECRET" not in info.value.message


def test_missing_file_means_no_identities(data_dir: Path, box: SecretBox, sessions: StsSessionStore) -> None:
    store = IdentityStore(data_dir / "none.yaml", account_id=ACCOUNT, box=box, sessions=sessions)
    with pytest.raises(UnrecognizedClientError):
        store.lookup(ALICE_KEY, None, 0)


def test_reload_on_change_and_keep_last_good(
    iam_path: Path, box: SecretBox, sessions: StsSessionStore
) -> None:
    clock = FakeClock()
    store = IdentityStore(iam_path, account_id=ACCOUNT, box=box, sessions=sessions, monotonic=clock)
    assert store.lookup(BOB_KEY, None, 0).principal.name == "bob"

    iam_path.write_text(IDENTITIES_YAML.replace(BOB_KEY, "AKIABOBNEWKEY0000009"))
    os.utime(iam_path, ns=(1, 1))  # a different mtime even on coarse file systems
    clock.t = 0.5  # within the check interval: not yet re-read
    assert store.lookup(BOB_KEY, None, 0).principal.name == "bob"
    clock.t = 1.5
    with pytest.raises(UnrecognizedClientError):
        store.lookup(BOB_KEY, None, 0)
    assert store.lookup("AKIABOBNEWKEY0000009", None, 0).principal.name == "bob"

    iam_path.write_text("users: [")  # broken: the last good identities stay
    os.utime(iam_path, ns=(2, 2))
    clock.t = 3.0
    assert store.lookup("AKIABOBNEWKEY0000009", None, 0).principal.name == "bob"


def test_policies_for_unknown_principal_is_empty(store: IdentityStore) -> None:
    ghost = Principal(
        arn=f"arn:aws:iam::{ACCOUNT}:user/ghost",
        account_id=ACCOUNT,
        kind="user",
        user_id="AIDAX",
        name="ghost",
        session_name=None,
        access_key_id="AKIAX",
    )
    assert store.policies_for(ghost) == ()


def test_master_key_created_private_and_refused_when_open(data_dir: Path) -> None:
    box = SecretBox.open(data_dir)
    key_path = data_dir / "master.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert SecretBox.open(data_dir).decrypt(box.encrypt("x")) == "x"  # same key on reopen
    key_path.chmod(0o644)
    with pytest.raises(ValidationError, match="chmod 600"):
        SecretBox.open(data_dir)


def test_resolved_credential_is_frozen(store: IdentityStore) -> None:
    resolved: ResolvedCredential = store.lookup(ALICE_KEY, None, 0)
    with pytest.raises(AttributeError):
        resolved.secret_access_key = "x"  # type: ignore[misc]


# --- editing ------------------------------------------------------------------------------------


TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ],
}
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "airflow:*", "Resource": "*"}],
}


def test_editor_round_trip(data_dir: Path, box: SecretBox) -> None:
    path = data_dir / "iam.yaml"
    editor = IdentitiesEditor(path, account_id=ACCOUNT, box=box)
    editor.add_user("erin")
    key = editor.create_access_key("erin")
    editor.put_user_policy("erin", "airflow", ALLOW_ALL)
    editor.put_user_policy(
        "erin", "airflow", '{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}'
    )
    editor.create_role("Ops", TRUST, max_session_duration=7200)
    editor.put_role_policy("Ops", "all", ALLOW_ALL)

    assert key.access_key_id.startswith("AKIA") and len(key.access_key_id) == 20
    assert len(key.secret_access_key) == 40
    text = path.read_text()
    assert key.secret_access_key not in text  # stored encrypted
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    identities = editor.load()
    assert identities.keys[key.access_key_id][1].secret_access_key == key.secret_access_key
    assert [p.name for p in identities.users["erin"].policies] == ["user/erin/airflow"]  # replaced, not added
    assert identities.users["erin"].policies[0].statements[0].effect == "Deny"
    assert identities.roles["Ops"].max_session_duration == 7200
    described = editor.describe()
    assert key.secret_access_key not in repr(described)
    assert described["users"][0]["access_keys"] == [{"id": key.access_key_id, "active": True}]


def test_editor_rejects_invalid_change_and_keeps_file(data_dir: Path, box: SecretBox) -> None:
    path = data_dir / "iam.yaml"
    editor = IdentitiesEditor(path, account_id=ACCOUNT, box=box)
    editor.add_user("erin")
    before = path.read_bytes()
    with pytest.raises(ValidationError):
        editor.put_user_policy(
            "erin", "bad", {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}
        )
    with pytest.raises(ValidationError, match="already exists"):
        editor.add_user("erin")
    with pytest.raises(ResourceNotFoundError):
        editor.create_access_key("nobody")
    assert path.read_bytes() == before


# --- bootstrap ----------------------------------------------------------------------------------


def test_bootstrap_generates_admin_and_client_files(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", port=8799)
    key_id, secret = ensure_bootstrap_admin(settings)
    assert key_id.startswith("AKIA") and len(key_id) == 20 and key_id[4:].isalnum() and key_id.isupper()
    assert len(secret) == 40
    assert ensure_bootstrap_admin(settings) == (key_id, secret)  # idempotent

    box = SecretBox.open(settings.data_dir)
    identities = parse_identities(
        yaml.safe_load(settings.iam_path.read_text()), account_id=ACCOUNT, source="x", box=box
    )
    admin = identities.users["admin"]
    assert admin.policies[0].statements[0].effect == "Allow"
    assert secret not in settings.iam_path.read_text()

    for name in ("credentials", "config"):
        assert stat.S_IMODE((settings.data_dir / name).stat().st_mode) == 0o600
    # botocore itself reads the files: credentials, region, endpoint and host-prefix injection.
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(settings.data_dir / "credentials"),
        "AWS_CONFIG_FILE": str(settings.data_dir / "config"),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        for profile in ("openmwaa", "default"):
            session = botocore.session.Session(profile=profile)
            creds = session.get_credentials()
            assert (creds.access_key, creds.secret_key) == (key_id, secret)
            client = session.create_client("mwaa")
            assert client.meta.region_name == "us-east-1"
            assert client.meta.endpoint_url == "http://127.0.0.1:8799"
            assert client.meta.config.inject_host_prefix is False
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_bootstrap_with_given_keys(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "d",
        bootstrap_access_key_id="AKIACIEXAMPLE0000001",
        bootstrap_secret_access_key="ci-secret-0000000000000000000000000000000",
    )
    assert ensure_bootstrap_admin(settings) == (
        "AKIACIEXAMPLE0000001",
        "ci-secret-0000000000000000000000000000000",
    )
    rotated = Settings(
        data_dir=tmp_path / "d",
        bootstrap_access_key_id="AKIACIEXAMPLE0000001",
        bootstrap_secret_access_key="rotated-secret",
    )
    assert ensure_bootstrap_admin(rotated)[1] == "rotated-secret"
    box = SecretBox.open(settings.data_dir)
    store = IdentityStore(
        settings.iam_path, account_id=ACCOUNT, box=box, sessions=StsSessionStore(tmp_path / "s.json", box)
    )
    assert store.lookup("AKIACIEXAMPLE0000001", None, 0).secret_access_key == "rotated-secret"
    assert len(store.identities().users["admin"].access_keys) == 1
    assert "rotated-secret" in (settings.data_dir / "credentials").read_text()


def test_bootstrap_refuses_half_given_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="both"):
        ensure_bootstrap_admin(Settings(data_dir=tmp_path, bootstrap_access_key_id="AKIACIEXAMPLE0000001"))


def test_yaml_unquoted_version_date_is_accepted(
    data_dir: Path, box: SecretBox, sessions: StsSessionStore
) -> None:
    path = data_dir / "iam.yaml"
    write_identities(
        path,
        textwrap.dedent(
            """
            managed_policies:
              p:
                Version: 2012-10-17
                Statement: [{Effect: Allow, Action: "*", Resource: "*"}]
            """
        ),
    )
    store = IdentityStore(path, account_id=ACCOUNT, box=box, sessions=sessions)
    assert store.identities().users == {}
