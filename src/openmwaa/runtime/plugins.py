"""plugins.zip, unpacked safely into the environment's plugins folder.

The archive comes from a user's bucket, so it is treated as hostile: every member must stay
inside the target (no absolute paths, no ``..``, no links), and the number of members and
their unpacked size are bounded before anything is written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Final

from openmwaa.runtime.errors import PluginsInstallError

MAX_UNPACKED_BYTES: Final = 512 * 1024 * 1024
MAX_MEMBERS: Final = 10_000
_CHUNK: Final = 1024 * 1024


def plugins_dir(home: Path, archive: Path | None) -> Path:
    """Where ``archive`` unpacks: named by its digest, so an update never disturbs the running one."""
    if archive is None:
        return home / "plugins" / "empty"
    try:
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise PluginsInstallError(f"Cannot read plugins.zip: {exc.strerror}.") from exc
    return home / "plugins" / digest


def install_plugins(home: Path, archive: Path | None) -> Path:
    """Unpack ``archive`` (or make an empty folder); the path for ``[core] plugins_folder``."""
    target = plugins_dir(home, archive)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".tmp-{target.name}-{uuid.uuid4().hex[:8]}")
    try:
        staging.mkdir()
        if archive is not None:
            extract_zip(archive, staging)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def remove_other_plugins(home: Path, keep: Path) -> None:
    root = home / "plugins"
    if root.is_dir():
        for entry in root.iterdir():
            if entry != keep:
                shutil.rmtree(entry, ignore_errors=True)


def extract_zip(
    archive: Path, dest: Path, *, max_bytes: int = MAX_UNPACKED_BYTES, max_members: int = MAX_MEMBERS
) -> None:
    """Extract ``archive`` into the existing directory ``dest``; PluginsInstallError if unsafe."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > max_members:
                raise PluginsInstallError(f"plugins.zip has more than {max_members} entries.")
            plan = [(info, _safe_relative(info)) for info in members]
            declared = sum(info.file_size for info in members)
            if declared > max_bytes:
                raise PluginsInstallError(f"plugins.zip unpacks to more than {max_bytes // 2**20} MiB.")
            written = 0
            for info, relative in plan:
                path = dest.joinpath(*relative.parts) if relative.parts else dest
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                # Count what is really inflated: declared sizes in the header can lie.
                with zf.open(info) as src, path.open("wb") as out:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise PluginsInstallError(
                                f"plugins.zip unpacks to more than {max_bytes // 2**20} MiB."
                            )
                        out.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise PluginsInstallError(f"plugins.zip is not a valid zip archive: {exc}.") from exc
    except NotImplementedError as exc:
        raise PluginsInstallError(f"plugins.zip uses an unsupported compression method: {exc}.") from exc
    except OSError as exc:
        raise PluginsInstallError(f"Cannot unpack plugins.zip: {exc.strerror or exc}.") from exc


def _safe_relative(info: zipfile.ZipInfo) -> PurePosixPath:
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise PluginsInstallError(f"plugins.zip entry {name!r} is a symbolic link; links are not allowed.")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise PluginsInstallError(f"plugins.zip entry {name!r} points outside the plugins folder.")
    return PurePosixPath(*[p for p in path.parts if p not in ("", ".")])
