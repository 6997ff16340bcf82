"""The benchmark reports the machine's steal time per workload (bench/run.py): the share of CPU time the
hypervisor gave to other guests, which explains slow rounds of both systems."""

from __future__ import annotations

from pathlib import Path

from bench import run


def test_steal_share_is_the_steal_ticks_over_all_ticks():
    assert run.steal_share((100, 1000), (150, 2000)) == 5.0
    assert run.steal_share((0, 0), (0, 0)) is None


def test_machine_ticks_read_the_cpu_line_of_proc_stat(monkeypatch, tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 1 5 80 2 0 1 7 0 0\ncpu0 5 0 2 40 1 0 0 3 0 0\n")
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: real(stat if str(self) == "/proc/stat" else self))
    assert run.machine_ticks() == (7, 106)


def test_machine_ticks_on_this_machine_move_forward():
    steal, total = run.machine_ticks()
    assert total > 0 and 0 <= steal <= total


def test_the_results_name_the_interpreter_and_how_it_is_linked():
    """Both systems' Python processes run on this interpreter; a shared libpython (pyenv's default build) is
    measurably slower than a statically linked one, so the results say which it was."""
    shared = "libpython" in Path("/proc/self/maps").read_text()
    build = run.python_build()
    assert build.startswith(run.platform.python_version() + " (")
    assert build.endswith("libpython shared)" if shared else "libpython static)")
    assert "python" in run.machine()
