import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event

from openmwaa.auth.credentials import SecretBox
from openmwaa.store.db import open_engine
from openmwaa.store.environments import (
    EnvironmentExistsError,
    EnvironmentKey,
    EnvironmentRecord,
    EnvironmentRepository,
)


@pytest.fixture
def repo(tmp_path: Path) -> EnvironmentRepository:
    return EnvironmentRepository(open_engine(f"sqlite:///{tmp_path / 'state.db'}"))


def record(name: str, status: str = "CREATING") -> EnvironmentRecord:
    key = EnvironmentKey("123456789012", "us-east-1", name)
    return EnvironmentRecord(
        key=key,
        arn=f"arn:aws:airflow:us-east-1:123456789012:environment/{name}",
        status=status,
        created_at=1.5,
        config={"AirflowVersion": "3.3.1"},
        previous_config=None,
        last_update=None,
        tags={"team": "data"},
        secrets={"jwt_secret": "x" * 64},
    )


def test_insert_get_roundtrip(repo: EnvironmentRepository) -> None:
    repo.insert(record("a"))
    got = repo.get(EnvironmentKey("123456789012", "us-east-1", "a"))
    assert got == record("a")
    assert repo.get_by_arn(record("a").arn) == got
    assert "x" * 64 not in repr(got)


def test_duplicate_name_is_refused(repo: EnvironmentRepository) -> None:
    repo.insert(record("a"))
    with pytest.raises(EnvironmentExistsError):
        repo.insert(record("a"))


def test_state_survives_a_new_engine(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    EnvironmentRepository(open_engine(url)).insert(record("a"))
    again = EnvironmentRepository(open_engine(url))
    assert [r.name for r in again.list_all()] == ["a"]
    assert (tmp_path / "state.db").stat().st_mode & 0o077 == 0


def test_change_is_compare_and_set(repo: EnvironmentRepository) -> None:
    repo.insert(record("a"))
    key = record("a").key
    assert repo.change(key, expect={"AVAILABLE"}, status="DELETING") is None
    changed = repo.change(key, expect={"CREATING"}, status="AVAILABLE", last_update={"Status": "SUCCESS"})
    assert changed is not None
    assert changed.status == "AVAILABLE"
    assert changed.last_update == {"Status": "SUCCESS"}


def test_list_pages_in_name_order(repo: EnvironmentRepository) -> None:
    for name in ["c", "a", "b"]:
        repo.insert(record(name))
    first = repo.list_page("123456789012", "us-east-1", after=None, limit=2)
    assert [r.name for r in first] == ["a", "b"]
    rest = repo.list_page("123456789012", "us-east-1", after="b", limit=2)
    assert [r.name for r in rest] == ["c"]
    assert repo.list_page("999999999999", "us-east-1", after=None, limit=5) == []


def test_delete(repo: EnvironmentRepository) -> None:
    repo.insert(record("a"))
    assert repo.delete(record("a").key) is True
    assert repo.delete(record("a").key) is False
    assert repo.get(record("a").key) is None


def raw_secrets(url: str) -> list[str]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return [row[0] for row in conn.execute("SELECT secrets FROM environments")]


def test_secrets_are_sealed_at_rest_and_read_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    box = SecretBox(Fernet.generate_key())
    repo = EnvironmentRepository(open_engine(url), cipher=box)
    repo.insert(record("a"))
    repo.change(record("a").key, status="AVAILABLE")
    (stored,) = raw_secrets(url)
    assert "x" * 64 not in stored
    assert stored.startswith("sealed:")
    again = EnvironmentRepository(open_engine(url), cipher=box)
    assert again.list_all()[0].secrets == record("a").secrets
    wrong = EnvironmentRepository(open_engine(url), cipher=SecretBox(Fernet.generate_key()))
    with pytest.raises(ValueError, match="cannot decrypt"):
        wrong.list_all()
    with pytest.raises(ValueError, match="no key"):
        EnvironmentRepository(open_engine(url)).list_all()


def test_rows_written_before_sealing_are_read_and_then_sealed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    EnvironmentRepository(open_engine(url)).insert(record("old"))
    assert raw_secrets(url) == ['{"jwt_secret": "' + "x" * 64 + '"}']
    box = SecretBox(Fernet.generate_key())
    repo = EnvironmentRepository(open_engine(url), cipher=box)
    assert repo.list_all()[0].secrets == record("old").secrets
    assert repo.seal_plaintext_secrets() == 1
    assert repo.seal_plaintext_secrets() == 0
    (stored,) = raw_secrets(url)
    assert stored.startswith("sealed:") and "x" * 64 not in stored
    assert EnvironmentRepository(open_engine(url), cipher=box).list_all()[0].secrets == record("old").secrets


def test_reads_by_name_or_arn_never_wait_for_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    EnvironmentRepository(open_engine(url)).insert(record("a"))
    engine = open_engine(url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    repo = EnvironmentRepository(engine)
    repo.load_all()  # once, at start
    assert len(statements) == 1
    key = EnvironmentKey("123456789012", "us-east-1", "a")
    assert repo.get(key) == record("a") and repo.get_by_arn(record("a").arn) == record("a")
    # Misses (an unknown name, a mistyped ARN) are answered from memory too.
    assert repo.get(EnvironmentKey("123456789012", "us-east-1", "nope")) is None
    assert repo.get_by_arn(record("nope").arn) is None
    assert len(statements) == 1
    # Writes keep the cache complete: a new, changed or deleted environment is seen at once.
    repo.insert(record("b"))
    repo.change(key, status="AVAILABLE")
    assert repo.delete(EnvironmentKey("123456789012", "us-east-1", "b"))
    reads = len(statements)
    assert repo.get(key).status == "AVAILABLE"  # type: ignore[union-attr]
    assert repo.get_by_arn(record("a").arn).status == "AVAILABLE"  # type: ignore[union-attr]
    assert repo.get_by_arn(record("b").arn) is None
    assert len(statements) == reads


def test_the_first_miss_fills_the_cache(repo: EnvironmentRepository, tmp_path: Path) -> None:
    repo.insert(record("a"))
    other = EnvironmentRepository(open_engine(f"sqlite:///{tmp_path / 'state.db'}"))
    assert other.get_by_arn(record("a").arn) == record("a")  # not cached yet: read from the database
    assert other.get(EnvironmentKey("123456789012", "us-east-1", "nope")) is None
