import json
import subprocess
import sys

import pytest

from conftest import write_mnist_csv
from egbad_core.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "egbad_core.cli", *args], capture_output=True, text=True, timeout=300)


def test_train_then_detect_end_to_end_on_tiny_data(tmp_path):
    csv = write_mnist_csv(tmp_path / "digits.csv", [7, 8, 2] * 6)
    checkpoint = tmp_path / "ck" / "m.pt"
    trained = run("train", "--data", str(csv), "--normal-labels", "7,8", "--epochs", "1", "--batch-size", "8",
                  "--device", "cpu", "--out", str(checkpoint), "--quiet", "--set", "score.lam=0.25",
                  "--set", "train.cycle_weight=0")
    assert trained.returncode == 0, trained.stderr
    from egbad_core.model.checkpoints import load_checkpoint

    saved = load_checkpoint(checkpoint)
    assert saved.settings.score.lam == 0.25 and saved.settings.train.cycle_weight == 0.0 and saved.settings.score.discrimination == "nearest"
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["epochs"] == 1 and result["checkpoint"] == str(checkpoint)
    assert result["seconds"] > 0 and result["train_images_per_s"] > 0
    assert result["reconstruction_r2"] == pytest.approx(saved.notes["reconstruction_r2"], abs=1e-4)
    assert result["reconstruction_r2"] < 1 and "of the images' variation" in trained.stderr
    assert checkpoint.is_file()

    out = tmp_path / "out"
    detected = run("detect", "--checkpoint", str(checkpoint), "--data", str(csv), "--out-dir", str(out), "--quiet",
                   "--maps", str(tmp_path / "maps"))
    assert detected.returncode == 0, detected.stderr
    summary = json.loads((out / "summary.json").read_text())
    for key in ("auroc", "auprc", "f1", "threshold", "n_images", "n_flagged", "seconds", "images_per_s"):
        assert key in summary
    assert summary["n_images"] == 18 and summary["auroc"] is not None  # 2s are defects: not in 7,8
    assert (out / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (out / "scores.csv").read_text().splitlines()
    assert lines[0] == "id,label,is_defect,residual,discrimination,score,relative_score,flagged,worst_row,worst_col"
    assert len(lines) == 19
    assert json.loads(detected.stdout.strip().splitlines()[-1])["n_flagged"] == summary["n_flagged"]
    assert len(list((tmp_path / "maps").glob("*.png"))) == len(list((tmp_path / "maps").glob("*.npy"))) == 18


@pytest.mark.parametrize(
    "make,args,message",
    [
        (None, ["train", "--data", "{tmp}/missing.csv"], "missing.csv does not exist"),
        ("empty_dir", ["train", "--data", "{tmp}/empty"], "is empty"),
        ("no_label", ["train", "--data", "{tmp}/nolabel.csv"], "no 'label' column"),
        (None, ["train", "--data", "demo", "--set", "score.nope=1"], "is not a setting"),
        (None, ["train", "--data", "demo", "--set", "model.spectral_norm=maybe"], "is not a bool"),
        (None, ["train", "--data", "demo", "--set", "score.batch_size=0"], "batch size and AnoGAN steps must be positive"),
        ("bad_ckpt", ["detect", "--checkpoint", "{tmp}/bad.pt", "--data", "demo", "--out-dir", "{tmp}/o"], "bad.pt"),
    ],
)
def test_bad_input_ends_with_exit_2_and_one_plain_line(tmp_path, capsys, make, args, message):
    if make == "empty_dir":
        (tmp_path / "empty").mkdir()
    if make == "no_label":
        (tmp_path / "nolabel.csv").write_text("a,b\n1,2\n")
    if make == "bad_ckpt":
        (tmp_path / "bad.pt").write_text("not a model")
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_out_of_memory_names_the_setting_to_lower(monkeypatch, capsys, tmp_path):
    import egbad_core.cli as cli

    def exhausted(args):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(cli, "train_command", exhausted)
    assert cli.main(["train", "--data", "demo", "--batch-size", "512"]) == 2
    err = capsys.readouterr().err
    assert "lower --batch-size (it was 512)" in err and "Traceback" not in err


def test_a_signal_that_comes_while_the_stop_is_held_does_not_hang_and_a_second_interrupts():
    import signal
    import threading

    from egbad_core.console import signals_stop

    stop, said = threading.Event(), []
    with signals_stop(stop, lambda: said.append("stopping")):
        handler = signal.getsignal(signal.SIGINT)

        def while_held() -> None:  # as when the signal lands inside the stop's own wait
            with stop._cond:
                handler(signal.SIGINT, None)

        caller = threading.Thread(target=while_held, daemon=True)
        caller.start()
        caller.join(timeout=5)
        assert not caller.is_alive()  # setting the stop there had waited on its own lock for ever
        assert stop.wait(timeout=5)
        for _ in range(500):  # the announcement follows the stop, from the same helper thread
            if said:
                break
            threading.Event().wait(0.01)
        assert said == ["stopping"]
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)  # the second Ctrl-C: at once
    assert signal.getsignal(signal.SIGINT) is not handler  # the handlers put back


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_during_train_stops_writes_the_stopped_checkpoint_and_the_json_line(tmp_path, signal_name):
    import signal

    from conftest import read_until
    from egbad_core.model.checkpoints import load_checkpoint

    csv = write_mnist_csv(tmp_path / "digits.csv", [7, 8] * 12)
    checkpoint = tmp_path / "m.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "egbad_core.cli", "train", "--data", str(csv), "--epochs", "10000", "--batch-size", "8",
         "--image-size", "16", "--set", "model.width=8", "--device", "cpu", "--out", str(checkpoint), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        said = read_until(process.stderr, "epoch 1/")  # the first epoch is done: training is under way
        assert said and said[-1].startswith("epoch 1/"), "".join(said)
        process.send_signal(getattr(signal, signal_name))
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 1, err
    assert "Traceback" not in err and "Stopping after this iteration" in err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "stopped" and result["checkpoint"] == str(checkpoint)
    saved = load_checkpoint(checkpoint)
    assert saved.notes["stopped_mid_epoch"] is True and saved.epoch == result["epochs"] >= 1


def test_the_refinement_stage_is_named_not_shown_as_nan_losses(tmp_path, capsys):
    csv = write_mnist_csv(tmp_path / "digits.csv", [7, 8] * 6)
    assert main(["train", "--data", str(csv), "--epochs", "1", "--batch-size", "8", "--device", "cpu",
                 "--out", str(tmp_path / "m.pt"), "--set", "train.refine_epochs=1"]) == 0
    said = capsys.readouterr().err
    assert "epoch 1/2: D " in said and "epoch 2/2: refining G(E(x)): error " in said
    assert "nan" not in said.lower()
