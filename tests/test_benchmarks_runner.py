"""`python -m benchmarks` (benchmarks/runner.py): failures reported, others still run, atomic
results file. The benchmark scripts here are tiny stand-ins: the runner is the unit under test."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

from benchmarks.runner import LEFT_OUT, REGISTRY, Benchmark, main, matmul_peak, run_all


def _script(folder, name: str, body: str) -> None:
    (folder / name).write_text(textwrap.dedent(body))


@pytest.fixture()
def folder(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    _script(scripts, "bad.py", """
        import sys
        print("half a table")
        print("Traceback: ValueError: the demo model is broken", file=sys.stderr)
        sys.exit(3)
    """)
    # prints what results.md holds while the run is going on: it must still be the old file
    _script(scripts, "good.py", """
        import sys
        from pathlib import Path
        assert sys.argv[1:] == ["--quick", "--markdown"], sys.argv
        results = Path(__file__).parents[1] / "results.md"
        print("| ratio |\\n|---|\\n| **2.50x** |")
        print("during the run: " + results.read_text().strip())
    """)
    _script(scripts, "slow.py", "import time\ntime.sleep(30)\n")
    return scripts


def test_a_failing_benchmark_is_reported_and_the_others_still_run(folder, tmp_path):
    out = tmp_path / "results.md"
    out.write_text("old results\n")
    selected = [Benchmark("bad", "bad.py", "fails"), Benchmark("absent", "absent.py", "no file"),
                Benchmark("slow", "slow.py", "never ends", timeout_s=2),
                Benchmark("good", "good.py", "works")]
    results, text = run_all(selected, out, "python -m benchmarks", measure_peak=False,
                            folder=folder)
    assert [(r.name, r.status) for r in results] == [
        ("bad", "failed"), ("absent", "missing"), ("slow", "timeout"), ("good", "ok")]
    assert out.read_text() == text
    assert "exit code 3" in text and "the demo model is broken" in text
    assert "half a table" in text  # what a failed script printed before it died
    assert "**missing**: benchmarks/absent.py is not in this tree" in text
    assert "**timeout** after 2 s" in text
    assert "| **2.50x** |" in text
    assert "during the run: old results" in text  # not truncated while benchmarks run
    assert "| [good](#good) | ok |" in text and "| [bad](#bad) | failed |" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.md", "scripts"]  # no temp


def test_an_interrupted_run_leaves_the_old_results(folder, tmp_path):
    """Ctrl-C during a benchmark: the run stops and results.md is the previous one."""
    out = tmp_path / "results.md"
    out.write_text("old results\n")
    _script(folder, "interrupt.py", """
        import os, signal, time
        os.kill(os.getppid(), signal.SIGINT)
        time.sleep(10)
    """)
    selected = [Benchmark("good", "good.py", "works"),
                Benchmark("interrupt", "interrupt.py", "Ctrl-C")]
    with pytest.raises(KeyboardInterrupt):
        run_all(selected, out, "python -m benchmarks", measure_peak=False, folder=folder)
    assert out.read_text() == "old results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.md", "scripts"]


def test_registry_and_command_line(capsys):
    names = [b.name for b in REGISTRY]
    assert len(set(names)) == len(names)
    assert {"generation", "threads", "bf16"} <= set(names)  # the merger's three, by name
    for b in REGISTRY:  # every listed script is registered or left out with a reason, not both
        assert b.script not in LEFT_OUT
    in_tree = {p.name for p in (ROOT / "benchmarks").glob("*.py")} - {"__main__.py", "runner.py"}
    assert in_tree <= {b.script for b in REGISTRY} | set(LEFT_OUT)
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(n in listed for n in names)
    with pytest.raises(SystemExit) as exc:
        main(["--only", "no_such_benchmark"])
    assert exc.value.code == 2
    assert "choose from generation" in capsys.readouterr().err


@pytest.mark.parametrize("bench", [b for b in REGISTRY if (ROOT / "benchmarks" / b.script)
                                   .is_file()], ids=lambda b: b.name)
def test_registered_scripts_accept_their_quick_flags(bench):
    """Each script in the tree takes `--quick` and `--markdown` (parsed, not run: --help)."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / bench.script), "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--quick" in proc.stdout and "--markdown" in proc.stdout


def test_matmul_peak_is_a_rate():
    small = matmul_peak(1, n=128, min_seconds=0.05)
    assert 0.05 < small < 1e5  # GFLOP/s of a 128 x 128 matmul on one thread
