"""Secrets at rest: one master key (the token key is derived from it), and no readable plaintext secrets."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import jwt
import pytest

from openmwaa.app import build_services
from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.identities import IdentityStore
from openmwaa.auth.sts_sessions import StsSessionStore
from openmwaa.errors import ValidationError
from openmwaa.services.web_tokens import KEY_LABEL, derive_key
from openmwaa.settings import Settings
from tests.unit.authtest_support import ACCOUNT, write_identities

SEALED_ONLY = """
users:
  - name: carol
    access_keys:
      - id: AKIACAROL00000000001
        secret_encrypted: {token}
"""


def test_derived_keys_are_stable_per_label_and_master_key(tmp_path: Path) -> None:
    box = SecretBox.open(tmp_path / "a")
    key = box.derive_key("web-tokens")
    assert len(key) == 32
    assert SecretBox.open(tmp_path / "a").derive_key("web-tokens") == key  # survives a restart
    assert box.derive_key("something-else") != key
    assert SecretBox.open(tmp_path / "b").derive_key("web-tokens") != key
    with pytest.raises(ValueError, match="label"):
        box.derive_key("")


def test_the_server_keeps_no_second_key_file_and_removes_an_old_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    old = data / "web-token.key"
    old_key = os.urandom(32)
    old.write_bytes(old_key)
    old.chmod(0o644)  # as older versions could leave it: readable, never checked
    settings = Settings(data_dir=data, runtime_dir=tmp_path / "rt", default_environment=False)
    services = build_services(settings)
    token = services.web_tokens.issue_cli_token(environment_arn="arn:x", identity="arn:y")
    assert not old.exists()
    assert sorted(p.name for p in data.iterdir() if p.name.endswith(".key")) == ["master.key"]
    # Signed with the CLI key under the key derived from master.key, and nothing else.
    signing = derive_key(SecretBox.open(data).derive_key(KEY_LABEL), "cli")
    claims = jwt.decode(token, signing, algorithms=["HS256"], audience="arn:x")
    assert claims["sub"] == "arn:y"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, old_key, algorithms=["HS256"], audience="arn:x")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_plaintext_secrets_in_a_file_others_may_read_are_refused(
    data_dir: Path, box: SecretBox, sessions: StsSessionStore, mode: int
) -> None:
    path = data_dir / "iam.yaml"
    write_identities(path)
    path.chmod(mode)
    with pytest.raises(ValidationError, match="chmod 600"):
        IdentityStore(path, account_id=ACCOUNT, box=box, sessions=sessions)


def test_sealed_secrets_may_sit_in_a_readable_file(
    data_dir: Path, box: SecretBox, sessions: StsSessionStore
) -> None:
    path = data_dir / "iam.yaml"
    path.write_text(SEALED_ONLY.format(token=box.encrypt("carol-secret-0000000000")))
    path.chmod(0o644)
    store = IdentityStore(path, account_id=ACCOUNT, box=box, sessions=sessions)
    assert store.lookup("AKIACAROL00000000001", None, 0.0).secret_access_key == "carol-secret-0000000000"


def test_a_file_made_readable_later_is_not_reloaded(
    iam_path: Path, box: SecretBox, sessions: StsSessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = IdentityStore(iam_path, account_id=ACCOUNT, box=box, sessions=sessions, check_interval=0.0)
    before = store.identities()
    iam_path.write_text(iam_path.read_text() + "\n")
    iam_path.chmod(0o644)
    with caplog.at_level(logging.ERROR):
        assert store.identities() is before
    assert "chmod 600" in caplog.text
