"""Nothing lost, nothing run: kills, resumes, corrupt files and hostile checkpoints, end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import torch

from conftest import read_until, write_folder, write_mnist_csv
from egbad_core.model.checkpoints import FORMAT, load_checkpoint


def egbad(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "egbad_core.cli", *args], capture_output=True, text=True, timeout=300, **kwargs)


def test_kill_9_mid_training_leaves_a_checkpoint_that_detects_and_resumes(tmp_path):
    csv = write_mnist_csv(tmp_path / "d.csv", [7, 8, 2] * 30)
    checkpoint = tmp_path / "ck.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "egbad_core.cli", "train", "--data", str(csv), "--normal-labels", "7,8",
         "--epochs", "500", "--batch-size", "8", "--image-size", "16", "--device", "cpu", "--out", str(checkpoint), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        said = []
        while not checkpoint.exists() and process.poll() is None:  # the epochs until one wrote a checkpoint
            said += read_until(process.stderr, "epoch ")
        said += read_until(process.stderr, "epoch ")  # and one more: inside a later epoch, perhaps a write
        assert checkpoint.exists(), "".join(said)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    saved = load_checkpoint(checkpoint)
    assert saved.epoch >= 1
    detected = egbad("detect", "--checkpoint", str(checkpoint), "--data", str(csv), "--out-dir", str(tmp_path / "out"), "--quiet")
    assert detected.returncode == 0, detected.stderr
    resumed = egbad("train", "--data", str(csv), "--resume", str(checkpoint), "--epochs", str(saved.epoch + 1),
                    "--out", str(checkpoint), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.splitlines()[-1])["epochs"] == saved.epoch + 1
    assert load_checkpoint(checkpoint).epoch == saved.epoch + 1


def test_a_code_payload_checkpoint_exits_2_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "x": Payload()}, evil)
    result = egbad("detect", "--checkpoint", str(evil), "--data", "demo", "--out-dir", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "evil.pt" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_folder_with_one_corrupt_image_trains_and_names_it(tmp_path):
    root = write_folder(tmp_path / "parts", train=10)
    (root / "train" / "good" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = egbad("train", "--data", str(root), "--epochs", "1", "--batch-size", "8", "--image-size", "16",
                   "--out", str(tmp_path / "m.pt"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "corrupt.png" in result.stderr
    assert any("corrupt.png" in s for s in json.loads(result.stdout.splitlines()[-1])["skipped"])


def test_an_unwritable_output_folder_is_reported_before_training(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = egbad("train", "--data", "demo", "--out", str(blocker / "m.pt"))
    assert result.returncode == 2
    assert "cannot be written" in result.stderr and "epoch" not in result.stderr
