"""Nothing left behind: decoding workers die with a killed parent, a full disk loses nothing, an
interrupted write's temp file is cleaned up by the next write and never read as a result."""

from __future__ import annotations

import json
import os
import re
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


LINUX_WITH_WORKERS = pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                                        reason="decoding workers start on Linux machines with two cores or more")


@pytest.fixture(scope="module")
def large_checkpoint_and_folder(tmp_path_factory):
    """A 128-px checkpoint and a folder of 400 + 400 large noise images (train/good, test/good): a batch of
    decoded images is larger than a pipe holds, so a worker whose parent is gone blocks at exit
    flushing its queue (what left workers behind for an hour), and decoding them takes a while."""
    from egbad_core.config import SEED_PRESET, ModelConfig, replace
    from egbad_core.model.checkpoints import Checkpoint, save_checkpoint
    from egbad_core.model.networks import Networks

    tmp = tmp_path_factory.mktemp("large")
    config = ModelConfig(image_size=128, width=4, latent_size=4)
    checkpoint = save_checkpoint(tmp / "m.pt", Checkpoint(Networks(config), replace(SEED_PRESET, model=config)))
    root = tmp / "many"
    rng = np.random.default_rng(0)
    for folder in ("train/good", "test/good"):
        (root / folder).mkdir(parents=True)
        for i in range(400):
            Image.fromarray(rng.integers(0, 255, (384, 384), dtype=np.uint8)).save(root / folder / f"{i:03d}.png")
    return checkpoint, root


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used (user + system), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kill_mid_run(command: list[str], said: str | None, log: Path,
                  env: dict | None = None) -> tuple[set[int], subprocess.Popen]:
    """Start ``command`` (its output to ``log``, a file, so that it never waits on a full pipe),
    wait until it has two child processes and its output holds ``said`` (None: until those children
    have worked half a second between them: decoding is under way), then SIGKILL it; (the children
    it had, the process)."""
    with open(log, "w") as stream:
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, text=True, env=env)
    workers: set[int] = set()
    deadline = time.monotonic() + 120

    def waiting() -> bool:
        return process.poll() is None and time.monotonic() < deadline

    while len(workers) < 2 and waiting():
        workers = {pid for pid in children(process.pid) if alive(pid)}
    while waiting() and (said not in log.read_text() if said is not None else sum(map(cpu_seconds, workers)) < 0.5):
        time.sleep(0.05)  # polled, not timed: what is waited for is read from the process
    workers |= {pid for pid in children(process.pid) if alive(pid)}
    assert len(workers) >= 2, "no child processes were started"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return workers, process


def _left_after(workers: set[int], seconds: float = 10) -> list[int]:
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in workers if alive(pid)]


@LINUX_WITH_WORKERS
def test_decoding_workers_end_when_detect_is_killed_with_sigkill(large_checkpoint_and_folder, tmp_path):
    checkpoint, root = large_checkpoint_and_folder
    workers, _ = _kill_mid_run(  # killed while the first rows are scored: the workers' queues are full
        [sys.executable, "-m", "egbad_core.cli", "detect", "--checkpoint", str(checkpoint), "--data", str(root),
         "--out-dir", str(tmp_path / "out"), "--threshold", "1", "--device", "cpu"], "score", tmp_path / "log")
    assert not _left_after(workers), "a decoding worker outlived its killed parent"


@LINUX_WITH_WORKERS
def test_decoding_workers_end_when_train_is_killed_with_sigkill_and_no_half_checkpoint_is_left(
        large_checkpoint_and_folder, tmp_path):
    _, root = large_checkpoint_and_folder
    out = tmp_path / "models"
    out.mkdir()
    workers, process = _kill_mid_run(  # killed while its workers decode the training folder
        [sys.executable, "-m", "egbad_core.cli", "train", "--data", str(root), "--epochs", "100", "--preset", "seed",
         "--image-size", "128", "--set", "model.width=4", "--device", "cpu", "--out", str(out / "m.pt")],
        None, tmp_path / "log")
    assert process.returncode == -signal.SIGKILL  # killed mid-run, not finished
    assert not _left_after(workers), "a decoding worker outlived its killed parent"
    assert [p.name for p in out.iterdir() if p.name != "m.pt"] == []  # no temp file taken for a checkpoint


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_torchrun_ranks_end_when_the_launcher_is_killed_with_sigkill(tmp_path):
    from conftest import write_mnist_csv

    csv = write_mnist_csv(tmp_path / "digits.csv", [7, 8] * 12)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    env.pop("WORLD_SIZE", None)
    ranks, _ = _kill_mid_run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
         "egbad_core.cli", "train", "--data", str(csv), "--epochs", "10000", "--batch-size", "8", "--image-size", "16",
         "--set", "model.width=8", "--device", "cpu", "--out", str(tmp_path / "m.pt")], "epoch 1/", tmp_path / "log", env)
    assert len(ranks) == 2
    assert not _left_after(ranks), "a torchrun rank outlived its killed launcher"


def _done(progress: str) -> int:
    """The images done in a progress bar's line ("score (egbad):  64%|███  | 256/400 …")."""
    found = re.search(r"(\d+)/400", progress)
    return int(found.group(1)) if found else 0


@LINUX_WITH_WORKERS
def test_sigterm_during_detect_keeps_the_rows_scored_and_exits_1(large_checkpoint_and_folder, tmp_path):
    from egbad_core.config import SEED_PRESET, ModelConfig, replace
    from egbad_core.model.checkpoints import Checkpoint, save_checkpoint
    from egbad_core.model.networks import Networks

    _, root = large_checkpoint_and_folder
    # Networks that take seconds over the second chunk's 144 images on one thread, on any machine: the
    # progress bar prints at most twice a second, so a chunk scored faster would end before the signal.
    config = ModelConfig(image_size=128, width=48, latent_size=16)
    checkpoint = save_checkpoint(tmp_path / "m.pt", Checkpoint(Networks(config), replace(SEED_PRESET, model=config)))
    process = subprocess.Popen(
        [sys.executable, "-m", "egbad_core.cli", "detect", "--checkpoint", str(checkpoint), "--data", str(root),
         "--out-dir", str(tmp_path / "out"), "--threshold", "1", "--device", "cpu", "--batch-size", "16"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    try:
        said = read_until(process.stderr, "score")
        while said and _done(said[-1]) < 256:  # until the first chunk's rows are written
            said = read_until(process.stderr, "score")
        assert said and _done(said[-1]) < 400, "the run ended before it could be stopped"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 1, err[-2000:]
    assert "Traceback" not in err and "the rows scored so far are in" in err
    rows = (tmp_path / "out/scores.csv").read_text().splitlines()
    assert rows[0].startswith("id,") and 256 <= len(rows) - 1 < 400  # the rows scored before the stop, whole
    assert all(len(row.split(",")) == len(rows[0].split(",")) for row in rows)


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


@LINUX_WITH_WORKERS
def test_sigterm_while_train_reads_its_images_stops_at_once_with_exit_1(large_checkpoint_and_folder, tmp_path):
    _, root = large_checkpoint_and_folder
    log = tmp_path / "log"
    with open(log, "w") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "egbad_core.cli", "train", "--data", str(root), "--epochs", "100", "--preset",
             "seed", "--image-size", "128", "--device", "cpu", "--out", str(tmp_path / "m.pt")],
            stdout=stream, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline and not re.search(r"read: .*\b[1-9]\d*/400", log.read_text()):
        time.sleep(0.05)  # polled: until the progress bar counts files read
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 1, log.read_text()[-2000:]
    said = log.read_text()
    assert "while reading the training images; nothing was trained" in said and "Traceback" not in said
    [line] = [line for line in said.splitlines() if line.startswith("{")]
    assert json.loads(line)["status"] == "stopped"
    assert not (tmp_path / "m.pt").exists() and "Training seed preset" not in said
