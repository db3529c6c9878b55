from __future__ import annotations

import os
import subprocess
from pathlib import Path

from openmwaa.supervisor.memory import process_pss, process_tree_pss
from openmwaa.supervisor.proc import all_stats, descendants, parse_stat


def fake_proc(root: Path, pid: int, ppid: int, pss_kb: int, comm: str = "python") -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    fields = ["S", str(ppid), str(pid), str(pid)] + ["0"] * 15 + ["1234"] + ["0"] * 10
    (d / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")
    (d / "smaps_rollup").write_text(f"00400000-7fff [rollup]\nRss:   {pss_kb * 2} kB\nPss:   {pss_kb} kB\n")


def test_tree_sum_counts_descendants_once_and_nothing_else(tmp_path: Path) -> None:
    fake_proc(tmp_path, 10, 1, 1000)
    fake_proc(tmp_path, 11, 10, 200, comm="airflow worker -- (idle) x")
    fake_proc(tmp_path, 12, 11, 30)
    fake_proc(tmp_path, 20, 1, 5000)  # unrelated
    assert process_tree_pss([10], proc=tmp_path) == 1230 * 1024
    assert process_tree_pss([10, 11], proc=tmp_path) == 1230 * 1024
    assert process_tree_pss([20, 12], proc=tmp_path) == 5030 * 1024
    assert process_tree_pss([99], proc=tmp_path) == 0


def test_parse_stat_with_awkward_command_names() -> None:
    stat = parse_stat(7, "7 (a) b (c)) S 3 4 5 " + " ".join(["0"] * 15) + " 999 0 0")
    assert (stat.ppid, stat.pgrp, stat.session, stat.start_ticks) == (3, 4, 5, 999)


def test_real_processes_have_pss() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        me = process_pss(os.getpid())
        assert me > 1024 * 1024
        assert child.pid in descendants([os.getpid()], all_stats())
        assert process_tree_pss([os.getpid()]) > me
    finally:
        child.kill()
        child.wait()
