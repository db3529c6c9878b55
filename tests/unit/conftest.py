from __future__ import annotations

from pathlib import Path

import pytest

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.identities import IdentityStore
from openmwaa.auth.sts_sessions import StsSessionStore
from tests.unit.authtest_support import ACCOUNT, write_identities


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def box(data_dir: Path) -> SecretBox:
    return SecretBox.open(data_dir)


@pytest.fixture
def iam_path(data_dir: Path) -> Path:
    path = data_dir / "iam.yaml"
    write_identities(path)
    return path


@pytest.fixture
def sessions(data_dir: Path, box: SecretBox) -> StsSessionStore:
    return StsSessionStore(data_dir / "sessions.json", box)


@pytest.fixture
def store(iam_path: Path, box: SecretBox, sessions: StsSessionStore) -> IdentityStore:
    return IdentityStore(iam_path, account_id=ACCOUNT, box=box, sessions=sessions, check_interval=0.0)
