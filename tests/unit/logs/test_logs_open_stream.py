"""A log stream is read without following a link the environment's code swapped in after discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmwaa.logs.files import open_stream


def test_a_stream_swapped_for_a_link_is_not_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "logs" / "airflow").mkdir(parents=True)
    secret = tmp_path / "master.key"
    secret.write_text("secret")
    log = home / "logs" / "scheduler.log"
    log.write_text("line\n")
    with open_stream(log, home / "logs") as file:
        assert file.read() == b"line\n"
    log.unlink()
    log.symlink_to(secret)
    with pytest.raises(OSError):
        open_stream(log, home / "logs")
    (home / "logs" / "airflow").rename(tmp_path / "moved")
    (home / "logs" / "airflow").symlink_to(tmp_path)
    with pytest.raises(OSError):
        open_stream(home / "logs" / "airflow" / "master.key", home / "logs")
