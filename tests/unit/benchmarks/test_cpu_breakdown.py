"""benchmarks/cpu_breakdown.py: per-part CPU from a fake /proc."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from openmwaa.supervisor.pidfiles import PidRecord, write_pidfile
from tests.unit.benchmarks.loader import load_benchmark_module

TICKS = 100


@pytest.fixture(scope="module")
def cpu() -> ModuleType:
    module = load_benchmark_module("cpu_breakdown")
    module.TICKS = TICKS  # type: ignore[attr-defined]  # the fake /proc counts hundredths of a second
    return module


class FakeProc:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.machine(0)

    def machine(self, busy: int, idle: int = 0, steal: int = 0) -> None:
        # user nice system idle iowait irq softirq steal guest guest_nice
        line = f"cpu  {busy} 0 0 {idle} 7 0 0 {steal} 0 0"
        (self.root / "stat").write_text(f"{line}\ncpu0 0 0 0 0 0 0 0 0 0 0\n")

    def process(
        self, pid: int, *, ppid: int, session: int, start: int, cpu: tuple[int, int, int, int], nice: int = 0
    ) -> None:
        folder = self.root / str(pid)
        folder.mkdir(exist_ok=True)
        utime, stime, cutime, cstime = cpu
        rest = [
            "S",
            ppid,
            pid,
            session,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            utime,
            stime,
            cutime,
            cstime,
            20,
            0,
            1,
            0,
            start,
        ]
        (folder / "stat").write_text(f"{pid} (some (odd) name) " + " ".join(map(str, rest)) + " 0 0\n")
        (folder / "autogroup").write_text(f"/autogroup-{pid} nice {nice}\n")

    def gone(self, pid: int) -> None:
        for name in ("stat", "autogroup"):
            (self.root / str(pid) / name).unlink()
        (self.root / str(pid)).rmdir()


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "home" / "run"
    run.mkdir(parents=True)
    write_pidfile(run, PidRecord("api-server", 200, 1000))
    write_pidfile(run, PidRecord("dag-processor", 300, 1000))
    return run


def test_sample_counts_each_component_session_with_its_waited_children(
    cpu: ModuleType, proc: FakeProc, run_dir: Path
) -> None:
    proc.process(100, ppid=1, session=100, start=500, cpu=(50, 10, 999, 999))  # openmwaa server
    proc.process(200, ppid=100, session=200, start=1000, cpu=(300, 100, 0, 0), nice=10)
    proc.process(300, ppid=100, session=300, start=1000, cpu=(20, 10, 40, 30))  # dag-processor
    proc.process(301, ppid=300, session=300, start=1200, cpu=(5, 5, 0, 0))  # a file being parsed
    proc.process(150, ppid=100, session=100, start=900, cpu=(7, 3, 0, 0))  # the server's own child
    proc.process(400, ppid=1, session=400, start=100, cpu=(1000, 0, 0, 0))  # someone else's
    proc.process(500, ppid=1, session=500, start=100, cpu=(8, 2, 0, 0))  # the load generator

    sample = cpu.sample([run_dir], 100, loadgen_pid=500, proc=proc.root)

    assert sample.parts == {
        "api-server": 4.0,
        "dag-processor": (20 + 10 + 40 + 30 + 5 + 5) / TICKS,
        # its own time and its child's, not the cutime of the components it waited for
        cpu.SERVER: (50 + 10 + 7 + 3) / TICKS,
        cpu.LOADGEN: 0.1,
    }
    assert sample.nice == {"api-server": 10, "dag-processor": 0}
    assert sample.processes == {"api-server": 1, "dag-processor": 2}


def test_a_pid_file_whose_process_was_replaced_is_not_counted(
    cpu: ModuleType, proc: FakeProc, run_dir: Path
) -> None:
    proc.process(200, ppid=1, session=200, start=4242, cpu=(300, 100, 0, 0))  # pid reused

    sample = cpu.sample([run_dir], 100, loadgen_pid=500, proc=proc.root)

    assert "api-server" not in sample.parts


def test_rates_split_the_machine_into_parts_other_and_idle(cpu: ModuleType) -> None:
    before = cpu.CpuSample(10.0, 100.0, {"api-server": 5.0, "scheduler": 2.0, cpu.SERVER: 1.0}, steal=4.0)
    after = cpu.CpuSample(
        12.0,
        103.0,
        {"api-server": 6.6, "scheduler": 1.0, cpu.SERVER: 1.2, "api-server-1": 0.4},
        steal=4.2,
    )

    rates = cpu.rates(before, after, cores=2)

    assert rates == pytest.approx(
        {
            "api-server": 0.8,
            "scheduler": 0.0,  # restarted: its counter went down
            cpu.SERVER: 0.1,
            "api-server-1": 0.2,  # started in between: counted from zero
            cpu.OTHER: 1.5 - 1.1,
            cpu.STEAL: 0.1,
            cpu.IDLE: 0.4,
        }
    )


def test_rates_refuse_samples_out_of_order(cpu: ModuleType) -> None:
    sample = cpu.CpuSample(10.0, 100.0, {})
    with pytest.raises(ValueError, match="not in order"):
        cpu.rates(sample, sample)


def test_a_process_that_ended_between_samples_moves_into_its_parent(
    cpu: ModuleType, proc: FakeProc, run_dir: Path
) -> None:
    proc.process(300, ppid=100, session=300, start=1000, cpu=(20, 10, 0, 0))
    proc.process(301, ppid=300, session=300, start=1200, cpu=(5, 5, 0, 0))
    proc.machine(1000, steal=50)
    before = cpu.sample([run_dir], 100, loadgen_pid=500, proc=proc.root)
    proc.gone(301)
    proc.process(300, ppid=100, session=300, start=1000, cpu=(20, 10, 30, 10))  # waited for 301 (+30)
    proc.machine(1100, steal=60)
    after = cpu.sample([run_dir], 100, loadgen_pid=500, proc=proc.root)
    after = cpu.CpuSample(before.at + 1.0, after.machine, after.parts, steal=after.steal)

    rates = cpu.rates(before, after, cores=2)

    assert rates["dag-processor"] == pytest.approx(0.3)
    assert rates[cpu.OTHER] == pytest.approx(0.7)
    assert rates[cpu.STEAL] == pytest.approx(0.1)
    assert rates[cpu.IDLE] == pytest.approx(0.9)


def test_table_has_a_row_per_part_and_a_busy_total(cpu: ModuleType) -> None:
    lines = cpu.table(
        {"1 ws": {"api-server": 0.9, cpu.IDLE: 0.5}, "2 ws": {"api-server": 0.7, "api-server-1": 0.7}},
        order=("api-server", "api-server-1"),
    )

    assert [line.split("|")[1].strip() for line in lines[2:]] == [
        "api-server",
        "api-server-1",
        "idle",
        "busy, all parts",
    ]
    assert lines[3].split("|")[2].strip() == "-"
    assert [c.strip() for c in lines[-1].split("|")[2:4]] == ["0.90", "1.40"]
