"""STS sessions on disk: one journal line per AssumeRole, compaction, restarts, crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openmwaa.auth import sts_sessions
from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.sts_sessions import IssuedSession, StsSessionStore
from openmwaa.errors import ExpiredTokenError, UnrecognizedClientError


def _issue(
    store: StsSessionStore, name: str = "s1", *, now: float = 1000.0, duration: int = 3600
) -> IssuedSession:
    return store.issue(
        role_name="Deployer", session_name=name, source_arn="arn:x", duration=duration, now=now
    )


def _bytes_written() -> int:
    """Bytes this process has passed to write(2) so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def test_assume_role_writes_one_entry_however_many_sessions_exist(tmp_path: Path, box: SecretBox) -> None:
    # 5,000 live sessions from an earlier run (a snapshot as this and older releases write it).
    path = tmp_path / "sessions.json"
    sealed = box.encrypt("s" * 40)
    entries = [
        {
            "access_key_id": f"ASIA{n:016d}",
            "secret_encrypted": sealed,
            "token_sha256": "0" * 64,
            "role_name": "Deployer",
            "session_name": f"old-{n}",
            "source_arn": "arn:x",
            "issued_at": 900.0,
            "expires_at": 10_000.0,
        }
        for n in range(5000)
    ]
    path.write_text(json.dumps({"version": 1, "sessions": entries}))
    store = StsSessionStore(path, box)
    before = _bytes_written()
    issued = _issue(store)
    written = _bytes_written() - before
    # One journal line (~600 bytes), not the 5,001 sessions (~3 MB) rewritten.
    assert written < 4096, written
    assert store.verify(issued.session.access_key_id, issued.session_token, 1001).session_name == "s1"
    assert store.has("ASIA0000000000004999")


def test_sessions_survive_a_restart_before_and_after_compaction(
    tmp_path: Path, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sts_sessions, "COMPACT_MIN_LINES", 4)
    path = tmp_path / "sessions.json"
    store = StsSessionStore(path, box)
    issued = [_issue(store, f"s{n}") for n in range(11)]
    journal = path.with_name("sessions.json.journal")
    # Compacted along the way: the snapshot holds the earlier sessions, the journal only the rest.
    assert path.exists() and len(journal.read_bytes().splitlines()) <= 4
    restarted = StsSessionStore(path, box)
    for one in issued:
        session = restarted.verify(one.session.access_key_id, one.session_token, 1001)
        assert session.secret_access_key == one.session.secret_access_key
    assert journal.stat().st_mode & 0o077 == 0 and path.stat().st_mode & 0o077 == 0


def test_expired_sessions_are_dropped_at_compaction(
    tmp_path: Path, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sts_sessions, "COMPACT_MIN_LINES", 2)
    store = StsSessionStore(tmp_path / "sessions.json", box)
    short = _issue(store, "short", now=1000, duration=900)
    with pytest.raises(ExpiredTokenError):
        store.verify(short.session.access_key_id, short.session_token, 2000)
    for n in range(3):
        _issue(store, f"later{n}", now=2000)
    assert not store.has(short.session.access_key_id)
    assert not StsSessionStore(tmp_path / "sessions.json", box).has(short.session.access_key_id)


def test_the_oldest_session_makes_room_and_stays_gone_after_a_restart(
    tmp_path: Path, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sts_sessions, "MAX_SESSIONS", 3)
    store = StsSessionStore(tmp_path / "sessions.json", box)
    first, *rest = [_issue(store, f"s{n}") for n in range(4)]
    assert not store.has(first.session.access_key_id)
    restarted = StsSessionStore(tmp_path / "sessions.json", box)
    with pytest.raises(UnrecognizedClientError):
        restarted.verify(first.session.access_key_id, first.session_token, 1001)
    assert all(restarted.has(one.session.access_key_id) for one in rest)


def test_a_torn_last_line_is_ignored(tmp_path: Path, box: SecretBox) -> None:
    store = StsSessionStore(tmp_path / "sessions.json", box)
    kept = _issue(store, "kept")
    journal = tmp_path / "sessions.json.journal"
    with journal.open("ab") as handle:  # a crash in the middle of the next append
        handle.write(b'{"issue":{"access_key_id":"ASIA')
    restarted = StsSessionStore(tmp_path / "sessions.json", box)
    assert restarted.verify(kept.session.access_key_id, kept.session_token, 1001).session_name == "kept"
    _issue(restarted, "after")  # and it goes on appending


def test_a_session_that_cannot_be_written_is_not_handed_out(tmp_path: Path, box: SecretBox) -> None:
    path = tmp_path / "sessions.json"
    store = StsSessionStore(path, box)
    kept = _issue(store, "kept")
    journal = tmp_path / "sessions.json.journal"
    journal.unlink()
    journal.mkdir()  # appending now fails
    with pytest.raises(OSError):
        _issue(store, "lost")
    assert repr(store).endswith("sessions=1)") and store.has(kept.session.access_key_id)
