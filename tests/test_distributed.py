"""Training on two CPU processes with torchrun and gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import write_mnist_csv

HERE = Path(__file__).resolve().parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(HERE.parent))
    env.pop("WORLD_SIZE", None)
    return env


def test_two_processes_end_with_one_model(tmp_path):
    csv = write_mnist_csv(tmp_path / "digits.csv", [7, 8, 2] * 12)
    done = subprocess.run([*TORCHRUN, str(HERE / "ddp_worker.py"), str(csv), str(tmp_path)],
                          capture_output=True, text=True, timeout=240, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    # 24 training images, batches of 8 shared 4 and 4: 3 iterations an epoch
    expected = {"first": ("completed", 6), "resumed": ("completed", 9), "stopped": ("stopped", 3)}
    for run, (reason, iterations) in expected.items():
        for rank in ranks:
            assert (rank[run]["reason"], rank[run]["iterations"]) == (reason, iterations), run
        one, other = ranks[0][run]["state"], ranks[1][run]["state"]
        assert one.keys() == other.keys()
        for key in one:
            assert torch.equal(one[key], other[key]), f"{run}: {key}"
    assert not torch.equal(ranks[0]["first"]["state"]["generator.network.0.weight"],
                           ranks[0]["resumed"]["state"]["generator.network.0.weight"])  # the resumed run trained on
    for name in ("m.pt", "resumed.pt", "stopped.pt"):
        assert (tmp_path / name).is_file()  # rank 0 wrote each checkpoint (the stopped one at the stop)


def test_torchrun_trains_through_the_cli_and_detect_scores_the_checkpoint(tmp_path):
    csv = write_mnist_csv(tmp_path / "digits.csv", [7, 8, 2] * 12)
    model = tmp_path / "m.pt"
    train = [*TORCHRUN, "-m", "egbad_core.cli", "train", "--data", str(csv), "--normal-labels", "7,8",
             "--epochs", "1", "--batch-size", "8", "--out", str(model), "--quiet", "--preset", "default",
             "--image-size", "16", "--device", "cpu"]
    done = subprocess.run(train, capture_output=True, text=True, timeout=240, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and lines[0]["processes"] == 2 and lines[0]["status"] == "completed"  # one speaks
    detect = subprocess.run([sys.executable, "-m", "egbad_core.cli", "detect", "--checkpoint", str(model), "--data",
                             str(csv), "--out-dir", str(tmp_path / "out"), "--quiet"],
                            capture_output=True, text=True, timeout=120, env=_env())
    assert detect.returncode == 0, detect.stderr[-3000:]
    assert json.loads((tmp_path / "out/summary.json").read_text())["n_images"] == 36
    # The same scoring on two processes, each a share of the images: one scores.csv, the same rows.
    shared = subprocess.run([*TORCHRUN, "-m", "egbad_core.cli", "detect", "--checkpoint", str(model), "--data",
                             str(csv), "--out-dir", str(tmp_path / "out2"), "--quiet", "--device", "cpu"],
                            capture_output=True, text=True, timeout=240, env=_env())
    assert shared.returncode == 0, shared.stderr[-3000:]
    alone_rows = (tmp_path / "out/scores.csv").read_text().splitlines()
    shared_rows = (tmp_path / "out2/scores.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in shared_rows] == [r.split(",")[0] for r in alone_rows]
    assert [float(r.split(",")[5]) for r in shared_rows[1:]] == pytest.approx([float(r.split(",")[5]) for r in alone_rows[1:]], rel=1e-5)
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["grid.png", "scores.csv", "summary.json"]


def test_more_processes_than_the_data_can_fill_is_one_clear_sentence(tmp_path):
    csv = write_mnist_csv(tmp_path / "digits.csv", [7, 8, 8, 2])
    train = [*TORCHRUN, "-m", "egbad_core.cli", "train", "--data", str(csv), "--normal-labels", "7,8",
             "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--quiet", "--preset", "default", "--device", "cpu"]
    done = subprocess.run(train, capture_output=True, text=True, timeout=240, env=_env())
    assert done.returncode != 0
    assert done.stderr.count("2 processes need at least 4 training images") == 1
    assert "egbad_core/" not in done.stderr  # no traceback from our processes (torchrun reports their exit its own way)
