from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from openmwaa.runtime.errors import PluginsInstallError
from openmwaa.runtime.plugins import extract_zip, install_plugins, plugins_dir, remove_other_plugins


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_extracts_nested_files(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "p.zip", {"my_plugin.py": b"x = 1\n", "pkg/__init__.py": b"", "pkg/dir/": b""}
    )
    dest = tmp_path / "out"
    dest.mkdir()
    extract_zip(archive, dest)
    assert (dest / "my_plugin.py").read_bytes() == b"x = 1\n"
    assert (dest / "pkg" / "__init__.py").exists()
    assert (dest / "pkg" / "dir").is_dir()


@pytest.mark.parametrize(
    "name", ["../evil.py", "a/../../evil.py", "/etc/evil.py", "..\\evil.py", "C:/evil.py"]
)
def test_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "p.zip", {"ok.py": b"", name: b"boom"})
    dest = tmp_path / "a" / "b" / "out"
    dest.mkdir(parents=True)
    with pytest.raises(PluginsInstallError, match="outside the plugins folder"):
        extract_zip(archive, dest)
    assert not (dest / "ok.py").exists()  # checked before anything is written
    assert not list(tmp_path.rglob("evil.py"))


def test_symlinks_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "p.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(PluginsInstallError, match="symbolic link"):
        extract_zip(archive, dest)


def test_unpacked_size_is_bounded(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "p.zip", {"big.bin": b"\0" * 200_000})
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(PluginsInstallError, match="unpacks to more than"):
        extract_zip(archive, dest, max_bytes=100_000)


def test_lying_header_sizes_are_caught_while_inflating(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "p.zip", {"big.bin": b"\0" * 300_000})
    # Patch the declared size in the central directory to claim a tiny file.
    data = bytearray(archive.read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(PluginsInstallError):
        extract_zip(archive, dest, max_bytes=100_000)
    assert sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) <= 100_000 + 1024 * 1024


def test_member_count_is_bounded(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "p.zip", {f"f{i}.py": b"" for i in range(20)})
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(PluginsInstallError, match="more than 10 entries"):
        extract_zip(archive, dest, max_members=10)


def test_not_a_zip(tmp_path: Path) -> None:
    archive = tmp_path / "p.zip"
    archive.write_bytes(b"definitely not a zip")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(PluginsInstallError, match="not a valid zip"):
        extract_zip(archive, dest)


def test_install_is_keyed_by_content_and_keeps_the_old_one_until_removed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = install_plugins(home, make_zip(tmp_path / "a.zip", {"a.py": b"a"}))
    second = install_plugins(home, make_zip(tmp_path / "b.zip", {"b.py": b"b"}))
    assert first != second
    assert (first / "a.py").exists() and (second / "b.py").exists()
    assert install_plugins(home, tmp_path / "a.zip") == first  # same content: reused
    remove_other_plugins(home, keep=second)
    assert not first.exists() and second.exists()
    assert not [p for p in (home / "plugins").iterdir() if p.name.startswith(".tmp")]


def test_no_archive_gives_an_empty_folder(tmp_path: Path) -> None:
    path = install_plugins(tmp_path, None)
    assert path == plugins_dir(tmp_path, None)
    assert path.is_dir() and not list(path.iterdir())


def test_failed_extraction_leaves_no_folder(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "p.zip", {"../x.py": b""})
    with pytest.raises(PluginsInstallError):
        install_plugins(tmp_path / "home", archive)
    assert not list((tmp_path / "home" / "plugins").iterdir())
