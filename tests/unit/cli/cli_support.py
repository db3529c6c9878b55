"""Running ``openmwaa`` in process and capturing what it prints."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from openmwaa.cli.main import main


def run_cli(data_dir: Path | None, *args: str) -> tuple[int, str, str]:
    """``openmwaa [--data-dir D] ARGS...``: (exit code, stdout, stderr)."""
    argv = (["--data-dir", str(data_dir)] if data_dir is not None else []) + list(args)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help, usage errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()
