"""Runtime install: MWAA's package set against plain Airflow, cold and warm, same constraints.

For each Airflow version, four installs of a fresh runtime into a temporary cache, each timed
from ``RuntimeManager.ensure`` to its return:

- plain, cold: ``apache-airflow`` and the database drivers only (what runtimes held before
  recipe 4), with uv's download cache empty (every wheel downloaded);
- plain, warm: the same with uv's cache filled (what every later install sees);
- MWAA set, cold and warm: :func:`openmwaa.runtime.packages.required_packages`.

Both sets are installed against the same shipped constraints file, so the ratio is the cost of
the extra packages. The runtime's size on disk is reported too (uv hard-links from its cache:
files shared between versions and runtimes are stored once).

Then a fresh machine's first installs (``--phase shared``): each version in turn into one
runtime cache with one uv cache, empty at the start: the later versions reuse the wheels the
earlier ones downloaded (the same package at the same version is downloaded and stored once),
and the cache's size on disk is compared with the sum of the runtimes' sizes alone.

    .venv/bin/python benchmarks/bench_runtime_install.py [--versions 3.3.1,2.11.2] [--phase all]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openmwaa.runtime import installer
from openmwaa.runtime.installer import RuntimeManager

PLAIN_EXTRAS = ("psycopg2-binary", "asyncpg")


def plain_packages(version: str) -> tuple[str, ...]:
    return (f"apache-airflow=={version}", *PLAIN_EXTRAS)


def disk_size(*paths: Path) -> int:
    """Bytes on disk, a hard-linked file counted once (du counts each inode once per call)."""
    out = subprocess.run(["du", "-scb", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[-1].split()[0])


def shared_installs(versions: list[str], root: Path) -> None:
    """A fresh machine: every version in turn, one uv cache and one runtime cache."""
    os.environ["UV_CACHE_DIR"] = str(root / "uv-shared")
    manager = RuntimeManager(root / "runtimes-shared")
    print(f"\nFresh machine, versions in turn (Python {sys.version_info[0]}.{sys.version_info[1]})\n")
    print("| version | install | runtime alone | added to the cache |")
    print("|---|---|---|---|")
    installed: list[Path] = []
    for version in versions:
        start = time.monotonic()
        runtime = manager.ensure(version)
        elapsed = time.monotonic() - start
        before = disk_size(*installed) if installed else 0
        installed.append(runtime.root)
        alone, added = disk_size(runtime.root), disk_size(*installed) - before
        print(f"| {version} | {elapsed:.1f} s | {alone / 2**20:.0f} MB | {added / 2**20:.0f} MB |")
    print(f"\nuv's cache: {disk_size(root / 'uv-shared') / 2**20:.0f} MB")


def timed_install(version: str, *, plain: bool, uv_cache: Path, cache: Path) -> tuple[float, int]:
    os.environ["UV_CACHE_DIR"] = str(uv_cache)
    original = getattr(installer, "required_packages")  # noqa: B009 - the name the installer calls
    if plain:
        setattr(installer, "required_packages", plain_packages)  # noqa: B010
    try:
        start = time.monotonic()
        runtime = RuntimeManager(cache).ensure(version)
        elapsed = time.monotonic() - start
    finally:
        setattr(installer, "required_packages", original)  # noqa: B010
    return elapsed, disk_size(runtime.root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default="3.3.1,2.11.2")
    parser.add_argument("--phase", choices=("all", "compare", "shared"), default="all")
    args = parser.parse_args()
    rows: list[tuple[str, dict[tuple[bool, str], tuple[float, int]]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
        root = Path(tmp)
        if args.phase in ("all", "shared"):
            shared_installs(args.versions.split(","), root)
        if args.phase == "shared":
            return 0
        for version in args.versions.split(","):
            results: dict[tuple[bool, str], tuple[float, int]] = {}
            for plain in (True, False):
                uv_cache = root / f"uv-{version}-{plain}"
                for kind in ("cold", "warm"):  # cold fills uv's cache; warm reuses it
                    cache = root / f"runtimes-{version}-{plain}-{kind}"
                    results[(plain, kind)] = timed_install(
                        version, plain=plain, uv_cache=uv_cache, cache=cache
                    )
                    print(
                        f"  {version} {'plain' if plain else 'MWAA set'} {kind}: "
                        f"{results[(plain, kind)][0]:.1f} s",
                        file=sys.stderr,
                    )
            rows.append((version, results))
        report(rows)  # before the temporary runtimes are removed, which takes a while
    return 0


def report(rows: list[tuple[str, dict[tuple[bool, str], tuple[float, int]]]]) -> None:
    print(f"\nRuntime install (Python {sys.version_info[0]}.{sys.version_info[1]}), seconds; size on disk\n")
    print("| version | install | plain Airflow (baseline) | MWAA package set | ratio |")
    print("|---|---|---|---|---|")
    for version, results in rows:
        for kind in ("cold", "warm"):
            base, mwaa = results[(True, kind)], results[(False, kind)]
            print(
                f"| {version} | {kind} | {base[0]:.1f} s, {base[1] / 2**20:.0f} MB | "
                f"{mwaa[0]:.1f} s, {mwaa[1] / 2**20:.0f} MB | {mwaa[0] / base[0]:.2f} |"
            )


if __name__ == "__main__":
    raise SystemExit(main())
