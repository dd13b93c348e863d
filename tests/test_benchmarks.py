"""The README's benchmark commands still run and print what it says they print.

Timings are not asserted (they belong to the benchmarks, run on a quiet machine);
these only catch a benchmark that crashes or no longer reports a case.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args[0]} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result.stdout


def test_layer_benchmark_prints_a_ratio_for_every_case():
    out = run_benchmark("benchmarks/bench_layers.py", "--reps", "1", "--threads", "1", "--settle", "0")
    rows = [line for line in out.splitlines() if re.match(r"(conv|maxpool) ", line)]
    assert len(rows) == 8, f"expected 4 cases x 2 dtypes, got:\n{out}"
    for row in rows:
        ratio = float(row.split()[row.split().index("1") + 3])  # after the thread count: ours, torch, ratio
        assert ratio > 0, row


def test_training_benchmark_reports_epoch_time_and_test_accuracy():
    out = run_benchmark("benchmarks/bench_numpy_training.py", "--epochs", "1", "--threads", "1")
    assert re.search(r"median epoch \d+\.\d+ s", out), out
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert accuracy > 0.5, f"one epoch of LeNet-5 should already beat chance by far:\n{out}"


def test_epoch_benchmark_prints_the_numpy_torch_ratio():
    out = run_benchmark("benchmarks/bench_epoch.py", "--epochs", "1", "--rounds", "1", "--threads", "1")
    ratio = float(re.search(r"ratio numpy / torch per epoch: (\d+\.\d+)", out).group(1))
    assert ratio > 0, out
    for lib in ("numpy", "torch"):
        assert re.search(rf"{lib}: median epoch \d+\.\d+ s", out), out
