"""Nothing left behind: decoding workers die with a killed parent, a full disk loses nothing, an
interrupted write's temp file is cleaned up by the next write and never read as a result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import read_until
from egbad_core.errors import EgbadError
from egbad_core.model.checkpoints import load_checkpoint
from egbad_core.system.files import atomic_write, remove_stale_temps


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                    reason="decoding workers start on Linux machines with two cores or more")
def test_decoding_workers_end_when_detect_is_killed_with_sigkill(tmp_path):
    from egbad_core.config import SEED_PRESET, ModelConfig, replace
    from egbad_core.model.checkpoints import Checkpoint, save_checkpoint
    from egbad_core.model.networks import Networks

    # Images kept at 128 px: a batch of decoded images is larger than a pipe holds, so a worker whose
    # parent is gone blocks at exit flushing its queue (what left workers behind for an hour).
    config = ModelConfig(image_size=128, width=4, latent_size=4)
    checkpoint = save_checkpoint(tmp_path / "m.pt", Checkpoint(Networks(config), replace(SEED_PRESET, model=config)))
    root = tmp_path / "many"
    rng = np.random.default_rng(0)
    for folder in ("train/good", "test/good"):
        (root / folder).mkdir(parents=True)
    for i in range(400):  # enough files for workers, large enough that decoding them takes a while
        Image.fromarray(rng.integers(0, 255, (384, 384), dtype=np.uint8)).save(root / "test/good" / f"{i:03d}.png")
    process = subprocess.Popen(
        [sys.executable, "-m", "egbad_core.cli", "detect", "--checkpoint", str(checkpoint), "--data", str(root),
         "--out-dir", str(tmp_path / "out"), "--threshold", "1", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while len(workers) < 2 and process.poll() is None and time.monotonic() < deadline:
        workers = {pid for pid in children(process.pid) if alive(pid)}
    read_until(process.stderr, "score")  # the first rows are being scored: the workers' queues are full
    assert workers, "no decoding worker was started"
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)], "a decoding worker outlived its killed parent"


def test_a_full_disk_names_the_file_keeps_the_old_checkpoint_and_leaves_no_temp(tiny_checkpoint, tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(tiny_checkpoint.read_bytes())
    limit = 20_000  # bytes: far less than a checkpoint; the file system says "file too large" past it
    script = "\n".join([
        "import resource, signal, sys",
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)",  # a write past the limit fails instead of killing
        "from egbad_core.errors import EgbadError",
        "from egbad_core.model.checkpoints import load_checkpoint, save_checkpoint",
        f"checkpoint = load_checkpoint({str(target)!r})",
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))",
        "try:",
        f"    save_checkpoint({str(target)!r}, checkpoint)",
        "except EgbadError as error:",
        "    print(error)",
        "    sys.exit(2)",
    ])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert str(target) in result.stdout and "full" in result.stdout and "Traceback" not in result.stderr
    assert load_checkpoint(target).epoch >= 1  # the previous checkpoint, whole
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no half-written temp file


def test_a_write_that_runs_out_of_space_is_one_sentence(tmp_path):
    def full(stream):
        raise OSError(28, "No space left on device")

    (tmp_path / "scores.csv").write_text("old\n")
    with pytest.raises(EgbadError, match="scores.csv could not be written: No space left on device"):
        atomic_write(tmp_path / "scores.csv", full)
    assert (tmp_path / "scores.csv").read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_a_dead_writers_temp_file_is_removed_by_the_next_write_and_a_live_ones_is_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.pt.{int(dead.stdout)}.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    ours = tmp_path / f".model.pt.{os.getpid()}.def456.tmp"
    ours.write_bytes(b"being written")
    other = tmp_path / f".grid.png.{int(dead.stdout)}.x.tmp"
    other.write_bytes(b"another file's")
    atomic_write(tmp_path / "model.pt", lambda stream: stream.write(b"new"))
    assert not stale.exists() and ours.exists() and other.exists()
    assert (tmp_path / "model.pt").read_bytes() == b"new"
    assert remove_stale_temps(tmp_path, "grid.png") == 1 and not other.exists()
