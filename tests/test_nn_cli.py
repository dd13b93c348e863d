"""The coursekit command: one-line errors with exit status 2, a smoke run, the summary table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from coursekit.cli import main  # noqa: E402


def _one_line_error(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"{argv}: exit status {code}, expected 2"
    assert len(err.splitlines()) == 1, f"{argv}: expected one line on stderr, got:\n{err}"
    assert err.startswith("coursekit: error: ") and match in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv,match", [
    (["train", "--model", "lenet6"], "unknown model 'lenet6'"),
    (["train", "--data", "imagenet"], "unknown data set 'imagenet'"),
    (["train", "--data", "cifar10"], "--data-root"),
    (["train", "--data", "mnist", "--data-root", "/no/such/dir"], "does not exist"),
    (["train", "--epochs", "many"], "invalid int value"),
    (["train", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "--schedule", "linear"], "unknown --schedule"),
    (["train", "--data", "digits"], "input_size must be 28 or 32"),
    (["summary", "--model", "lenet6"], "unknown model"),
    (["summary", "--input-shape", "3,x"], "--input-shape"),
    (["fly"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_status_2(capsys, argv, match):
    _one_line_error(capsys, argv, match)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA, so --device cuda is no error here")
def test_cuda_where_there_is_none(capsys):
    _one_line_error(capsys, ["train", "--device", "cuda"], "CUDA is not available")


def test_data_root_without_the_files(capsys, tmp_path):
    _one_line_error(capsys, ["train", "--data", "fashion_mnist", "--data-root", str(tmp_path)], "cannot load")


def test_installed_command_exits_2_on_unknown_model():
    exe = shutil.which("coursekit") or shutil.which("coursekit", path=str(__import__("pathlib").Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "coursekit"]
    run = subprocess.run(cmd + ["train", "--model", "nope"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "coursekit: error: unknown model 'nope'; choose one of: lenet5, alexnet_small, vgg_small, resnet18_small, alexnet"]


def test_smoke_run_writes_checkpoint_curves_and_metrics(tmp_path, capsys):
    metrics = tmp_path / "m.json"
    code = main(["train", "--model", "lenet5", "--data", "synthetic", "--epochs", "1", "--limit", "64",
                 "--augment", "--out", str(tmp_path / "run"), "--metrics-out", str(metrics), "--device", "cpu",
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    m = json.loads(metrics.read_text())
    for key in ("test_accuracy", "epochs", "seconds", "device", "images_per_second", "epoch_seconds"):
        assert key in m, f"metrics JSON lacks {key}: {sorted(m)}"
    assert m["epochs"] == 1 and m["device"] == "cpu" and 0 <= m["test_accuracy"] <= 1
    assert len(m["epoch_seconds"]) == 1 and m["images_per_second"] > 0
    for name in ("checkpoint.pt", "curves.png", "confusion.png", "history.json"):
        assert (tmp_path / "run" / name).stat().st_size > 0, f"{name} not written"
    assert (tmp_path / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_prints_the_alexnet_table(capsys):
    assert main(["summary", "--model", "alexnet"]) == 0
    out = capsys.readouterr().out
    assert "96x55x55" in out and "34,944" in out and "62,378,344" in out
