"""The window as a user clicks it, offscreen, on tiny data with tiny networks."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QPushButton  # noqa: E402

from conftest import TINY, open_window, write_folder, write_mnist_csv  # noqa: E402
from egbad_core import config  # noqa: E402
from egbad_core.model.checkpoints import load_checkpoint  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setitem(config.PRESETS, "default", TINY)
    win = open_window(qtbot, tmp_path)
    csv = write_mnist_csv(tmp_path / "digits.csv", [7, 8, 2] * 16)
    panel = win.data_panel
    panel.csv.setChecked(True)
    panel.csv_path.setText(str(csv))
    panel.normal_labels.setText("7,8")
    with qtbot.waitSignal(win.data_loaded, timeout=30_000):
        panel.load_button.click()
    yield win
    win.close()
    assert not win.runner.any_running(), "a worker thread outlived its test"


def button(win, name: str) -> QPushButton:
    found = win.findChild(QPushButton, name)
    assert found is not None, name
    return found


def train(qtbot, win, epochs: int) -> None:
    win.training_panel.epochs.setValue(epochs)
    with qtbot.waitSignal(win.training_finished, timeout=120_000):
        button(win, "trainButton").click()


def test_required_widgets_carry_their_object_names(window):
    from PySide6.QtWidgets import QWidget

    for name in ("trainButton", "stopButton", "detectButton", "lossPlot", "thresholdSlider", "flaggedLabel",
                 "exportGridButton", "scoreTable", "scoreHistogram"):
        assert window.findChild(QWidget, name) is not None, name


def test_loaded_data_is_described(window):
    assert "32 images" in window.data_panel.summary.text()  # 7s and 8s for training
    assert window.data_panel.examples.pixmap() is not None


def test_train_fills_the_loss_plot_and_stop_re_enables_train(qtbot, window):
    window.training_panel.epochs.setValue(50)
    stop = button(window, "stopButton")
    start = button(window, "trainButton")
    start.click()
    assert not start.isEnabled() and stop.isEnabled()
    start.click()  # a second click during the run does nothing
    qtbot.waitUntil(lambda: window.loss_plot.point_count() >= 3, timeout=60_000)
    with qtbot.waitSignal(window.training_finished, timeout=60_000) as finished:
        stop.click()
    assert finished.args == ["stopped"]
    assert start.isEnabled() and not stop.isEnabled()
    assert window.model is not None and window.model_path
    assert load_checkpoint(window.model_path).iteration_losses.shape[0] == window.loss_plot.point_count()
    qtbot.waitUntil(lambda: window.loss_plot.redraws > 0, timeout=2000)


def test_detect_fills_the_table_and_the_slider_ends_change_the_flagged_count(qtbot, window, tmp_path):
    train(qtbot, window, 2)
    fit = window.model.notes["reconstruction_r2"]  # the reconstructions' R², said under the preview and the model
    assert "Epoch 2: G(E(x)) explains" in window.training_view.fit_label.text()
    assert f"R² {fit:.2f}" in window.model_label.text() and "variation" in window.model_label.text()
    with qtbot.waitSignal(window.detection_ready, timeout=60_000):
        qtbot.keyClick(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    view = window.detection_view
    assert view.table.model().rowCount() == 48
    slider = view.slider
    slider.setValue(slider.minimum())
    assert view.flagged_label.text() == "48 of 48 flagged"
    slider.setValue(slider.maximum())
    low = int(view.flagged_label.text().split()[0])
    assert low < 48
    assert view.spin.value() == pytest.approx(view.top, rel=1e-3)
    assert view.histogram.line.value() == pytest.approx(view.top, rel=1e-3)
    assert "AUROC" in view.metrics_label.text()
    # The threshold by the share of good parts it flags, and what any threshold means for them.
    assert view.by_rate.isEnabled()
    view.one_in.setValue(20)
    qtbot.mouseClick(view.by_rate, Qt.MouseButton.LeftButton)
    assert view.alarms_label.text() == "· about 1 in 20 good parts flagged"
    assert view.detection.threshold_method == "about 1 in 20 good parts flagged"
    assert "training images" in view.alarms_label.toolTip()
    slider.setValue(slider.minimum())
    assert view.alarms_label.text() != "· about 1 in 20 good parts flagged"

    with qtbot.waitSignal(window.exported, timeout=30_000):
        window.export_grid(str(tmp_path / "grid.png"))
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    with qtbot.waitSignal(window.exported, timeout=30_000):
        window.export_scores_csv(str(tmp_path / "scores.csv"))
    assert (tmp_path / "scores.csv").read_text().count("\n") == 49


def test_dragging_the_histogram_line_moves_the_slider(qtbot, window):
    train(qtbot, window, 1)
    with qtbot.waitSignal(window.detection_ready, timeout=60_000):
        button(window, "detectButton").click()
    view = window.detection_view
    view.histogram.line.setValue(view.top / 2)  # as a mouse drag does
    assert view.slider.value() == pytest.approx(view.top / 2, rel=1e-3)
    assert view.spin.value() == pytest.approx(view.top / 2, rel=1e-3)


def test_closing_during_training_is_clean_and_keeps_a_checkpoint(qtbot, window, tmp_path):
    window.training_panel.epochs.setValue(200)
    button(window, "trainButton").click()
    qtbot.waitUntil(lambda: window.loss_plot.point_count() >= 2, timeout=60_000)
    path = window._pending_path
    window.close()
    assert not window.runner.any_running()
    assert path.startswith(str(tmp_path / "checkpoints"))
    stopped = load_checkpoint(path)
    assert stopped.notes["stopped_mid_epoch"] is True  # written by the stop, not by an epoch's end
    assert stopped.iteration_losses.shape[0] >= 2
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))


def test_the_ui_thread_never_blocks_while_training(qtbot, window):
    gaps: list[float] = []
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(beat)
    heartbeat.start()
    started = time.perf_counter()
    train(qtbot, window, 3)
    seconds = time.perf_counter() - started
    heartbeat.stop()
    # Beats all through the training (a quick machine trains these tiny epochs in a fifth of a second):
    assert len(gaps) >= max(5, 0.3 * seconds / 0.010), f"{len(gaps)} beats in {seconds:.2f} s of training"
    assert max(gaps[1:]) < 0.2, f"the UI thread stalled for {max(gaps[1:]) * 1000:.0f} ms"


def test_bad_data_shows_a_message_and_keeps_the_loaded_data(qtbot, window, tmp_path):
    before = window.data
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    window.data_panel.csv_path.setText(str(bad))
    window.data_panel.load_button.click()
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=10_000)
    assert "no 'label' column" in window.last_error and "bad.csv" in window.last_error
    assert window.data is before


def test_a_bad_checkpoint_shows_a_message(qtbot, window, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("nope")
    window.load_checkpoint(str(bad))
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=10_000)
    assert "bad.pt" in window.last_error
    assert window.model is None


def test_a_loaded_checkpoint_brings_back_its_history_and_settings(qtbot, window):
    train(qtbot, window, 2)
    path = window.model_path
    points = window.loss_plot.point_count()
    window.loss_plot.clear_history()
    window.training_panel.epochs.setValue(7)
    with qtbot.waitSignal(window.model_changed, timeout=30_000):
        window.load_checkpoint(path)
    assert window.loss_plot.point_count() == points
    assert window.training_panel.epochs.value() == 2


def test_folder_data_with_a_corrupt_image_names_it(qtbot, window, tmp_path):
    root = write_folder(tmp_path / "parts", train=6)
    (root / "train" / "good" / "broken.png").write_bytes(b"garbage")
    window.data_panel.folder.setChecked(True)
    window.data_panel.folder_path.setText(str(root))
    with qtbot.waitSignal(window.data_loaded, timeout=30_000):
        window.data_panel.load_button.click()
    assert "broken.png" in window.data_panel.summary.text()


def test_settings_are_kept_between_runs(qtbot, window, tmp_path):
    window.training_panel.epochs.setValue(33)
    window.training_panel.mixed_precision.setChecked(True)
    window.close()
    from egbad_gui.app import build_window

    again = build_window(window.settings)
    qtbot.addWidget(again)
    assert again.training_panel.epochs.value() == 33
    assert again.training_panel.mixed_precision.isChecked()
    assert again.data_panel.csv.isChecked()
    again.close()


def test_closing_during_scoring_is_clean(qtbot, window):
    train(qtbot, window, 1)
    window.model = replace_score(window.model, anogan_steps=100_000)  # a search that would run for minutes
    index = window.detection_view.method.findData("anogan")
    window.detection_view.method.setCurrentIndex(index)
    button(window, "detectButton").click()
    qtbot.waitUntil(lambda: window.runner.is_running("score"), timeout=5000)
    window.close()
    assert not window.runner.any_running()


def replace_score(model, **changes):
    from dataclasses import replace

    return replace(model, settings=replace(model.settings, score=replace(model.settings.score, **changes)))


def test_a_diverging_run_says_so_and_the_window_keeps_working(qtbot, window, monkeypatch):
    from egbad_core.train.trainer import Trainer

    monkeypatch.setattr(Trainer, "step", lambda self, x: (float("nan"), 1.0, 1.0))
    with qtbot.waitSignal(window.training_finished, timeout=60_000) as finished:
        button(window, "trainButton").click()
    assert finished.args == ["diverged"]
    assert "diverged" in window.last_error and "NaN" in window.last_error
    assert button(window, "trainButton").isEnabled()


def test_each_preset_trains_at_its_own_image_size(qtbot, window):
    panel = window.training_panel
    assert "discrimination=nearest" in panel.recipe.text() and "width=8" in panel.recipe.text()
    panel.preset.setCurrentIndex(panel.preset.findData("seed"))
    assert panel.batch_size.value() == 128 and panel.lr_e.value() == pytest.approx(4e-4)
    assert panel.recipe.text() == "the seed's recipe as written"
    train(qtbot, window, 1)
    assert window.data.train.image_size == TINY.model.image_size  # loaded for the default preset
    assert window.model.networks.config.image_size == 64 and window.model.settings.name == "seed"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="True and None are immortal from Python 3.12: "
                    "their reference counts never move, so the leak cannot show (nor harm)")
def test_the_qt_binding_keeps_its_references_to_true_and_none(qtbot):
    """PySide6 6.12.0 dropped a reference to True on each signal emission and to None on each
    void call; under Python 3.11 the app then died within minutes of training (pyproject pins
    it out). This catches such a binding if it comes back."""
    import sys

    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QWidget

    class Emitter(QObject):
        fired = Signal()

    emitter, widget = Emitter(), QWidget()
    emitter.fired.connect(lambda: None)
    before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(500):
        emitter.fired.emit()
        widget.update()
    after = sys.getrefcount(True), sys.getrefcount(None)
    assert after[0] >= before[0] - 10 and after[1] >= before[1] - 10, (before, after)


def test_checkpoints_go_to_the_app_data_folder_wherever_the_app_was_launched(qtbot, tmp_path, monkeypatch):
    """Launched from a desktop menu, the current folder is the home folder or /: not where models go."""
    from PySide6.QtCore import QStandardPaths

    from egbad_gui.app import build_window

    monkeypatch.setitem(config.PRESETS, "default", TINY)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    launched_from = tmp_path / "elsewhere"
    launched_from.mkdir()
    monkeypatch.chdir(launched_from)
    expected = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    assert expected.startswith(str(tmp_path / "data-home"))
    win = build_window(QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.data_loaded, timeout=60_000):
        pass
    assert win.checkpoint_folder().startswith(expected)
    assert win.training_panel.checkpoint_folder.text() == win.checkpoint_folder()  # shown in the window
    win.training_panel.epochs.setValue(1)
    with qtbot.waitSignal(win.training_finished, timeout=120_000):
        button(win, "trainButton").click()
    assert win.model_path.startswith(expected) and not any(launched_from.iterdir())
    # Changeable, and remembered.
    chosen = str(tmp_path / "my-models")
    win.training_panel.set_checkpoint_folder(chosen)
    win.training_panel.checkpoint_folder_changed.emit(chosen)
    win.close()
    again = build_window(win.settings)
    qtbot.addWidget(again)
    assert again.checkpoint_folder() == chosen and again.training_panel.checkpoint_folder.text() == chosen
    again.close()


def test_a_patch_model_shows_anomaly_maps_a_colour_bar_and_pixel_metrics(qtbot, window, tmp_path, monkeypatch):
    from test_patches import TINY_PATCH, texture_folder

    monkeypatch.setitem(config.PRESETS, "patch", TINY_PATCH)
    root = texture_folder(tmp_path / "surface")
    panel = window.training_panel
    panel.preset.setCurrentIndex(panel.preset.findData("patch"))
    window.data_panel.folder.setChecked(True)
    window.data_panel.folder_path.setText(str(root))
    with qtbot.waitSignal(window.data_loaded, timeout=30_000):
        window.data_panel.load_button.click()
    train(qtbot, window, 1)
    assert window.model.networks.config.patch_model
    with qtbot.waitSignal(window.detection_ready, timeout=60_000):
        button(window, "detectButton").click()
    view = window.detection_view
    assert "anomaly map" in view.caption.text()
    assert "pixel AUROC" in view.metrics_label.text() and "PRO" in view.metrics_label.text()
    low, high = float(view.colour_bar.low.text()), float(view.colour_bar.high.text())
    assert high > low and view.colour_bar.unit.text() == "score"
    assert view.detail_image.pixmap() is not None and not view.detail_image.pixmap().isNull()


def test_far_scores_are_piled_into_the_histograms_last_bin_not_stretching_it(qtbot):
    from egbad_gui.plots import FAR, ScoreHistogram, view_span

    shown = np.concatenate([np.linspace(0.0, 1.2, 100), np.linspace(40.0, 250.0, 20)])  # relative scores
    span = view_span(shown, 1.3, relative=True)
    assert span == FAR  # not 262: the normal images keep the width of the plot
    assert view_span(shown, 15.0, relative=True) == 30.0  # a high threshold stays well inside
    assert view_span(shown[:100], 1.3, relative=True) == pytest.approx(1.3 * 1.05)  # nothing far: all of them
    assert view_span(shown, 1.3, relative=False) == pytest.approx(250 * 1.05)  # raw scores: no cut
    histogram = ScoreHistogram()
    qtbot.addWidget(histogram)
    histogram.set_scores(shown, np.arange(120) >= 100, span)
    edges, counts = histogram.defect.getData()
    assert edges.max() <= span and counts[-1] == 20 and counts.sum() == 20  # every far defect in the last bin
    assert histogram.normal.getData()[1].sum() == 100


def test_egbad_gui_help_prints_usage_without_a_display():
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "egbad_gui.app", "--help"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0 and "usage: egbad-gui" in result.stdout and not result.stderr


def test_without_a_display_egbad_gui_says_so_in_one_sentence():
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "egbad_gui.app"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "needs a desktop" in result.stderr and "xvfb-run" in result.stderr


def test_missing_xcb_libraries_are_named_with_their_packages(monkeypatch):
    import ctypes.util

    from egbad_gui import app

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if name in ("xcb-icccm", "xcb-keysyms") else "lib")
    problem = app.display_problem({"DISPLAY": ":0"}, "linux")
    assert "libxcb-icccm.so, libxcb-keysyms.so" in problem and "apt-get install libxcb-icccm4 libxcb-keysyms1" in problem
    assert app.display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert app.display_problem({}, "win32") is None


def test_a_first_start_opens_tall_enough_for_the_whole_training_panel(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from egbad_gui.app import build_window

    settings = QSettings(str(tmp_path / "first.ini"), QSettings.Format.IniFormat)
    window = build_window(settings)
    qtbot.addWidget(window)
    panel = window.left_scroll.widget().sizeHint().height()
    screen = window.screen().availableGeometry()
    assert window.height() >= min(panel + window.menuBar().sizeHint().height(), screen.height())
    assert window.height() <= screen.height() and window.width() <= screen.width()
    window.runner.shutdown()


def test_what_an_earlier_load_froze_is_freed_once_it_is_garbage(qtbot, window):
    import gc
    import weakref

    class Held:
        pass

    held = Held()
    held.me = held  # a reference cycle: only the cycle collector frees it
    gone = weakref.ref(held)
    with qtbot.waitSignal(window.data_loaded, timeout=30_000):
        window.data_panel.load_button.click()  # this load freezes it with everything else alive now
    del held
    gc.collect()
    assert gone() is not None  # frozen: left out of collections
    with qtbot.waitSignal(window.data_loaded, timeout=30_000):
        window.data_panel.load_button.click()  # the next load thaws and collects before freezing again
    assert gone() is None, "an object frozen by an earlier load was never freed"


def test_the_live_tab_shows_each_part_as_it_lands_raises_the_alarm_and_pauses(qtbot, window, tmp_path, monkeypatch):
    from PIL import Image

    from conftest import digit_like

    train(qtbot, window, 1)
    model, path, _ = window.model_in_use()
    monkeypatch.setattr(window.live_view, "model", lambda: (model, path, 0.0))  # every part flagged
    folder = tmp_path / "camera"
    folder.mkdir()
    live = window.live_view
    live.folder.setText(str(folder))
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)  # Run → Watch a folder live
    assert window.tabs.currentWidget() is live and live.running
    with qtbot.waitSignal(live.inspected, timeout=60_000):
        Image.fromarray(digit_like(2, np.random.default_rng(0))).save(folder / "part1.png")
    assert live.counts == [1, 1] and "part1.png: FLAGGED" in live.caption.text()
    assert live.alarm.isVisible() and "part1.png" in live.alarm.text() and not live.picture.pixmap().isNull()
    assert live.counts_label.text().startswith("1 parts   ·   1 flagged")
    live.acknowledge()
    assert not live.alarm.isVisible()
    live.toggle()  # pause
    qtbot.waitUntil(lambda: not live.running, timeout=30_000)
    assert live.start_button.text() == "Resume watching"
    Image.fromarray(digit_like(7, np.random.default_rng(1))).save(folder / "part2.png")  # lands while paused
    with qtbot.waitSignal(live.inspected, timeout=60_000):
        live.toggle()
    assert live.counts[0] == 2 and "part2.png" in live.caption.text()  # part1 not scored again
    rows = (folder / "inspected" / "scores.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["part1.png", "part2.png"]
    live.toggle()
    qtbot.waitUntil(lambda: not live.running, timeout=30_000)


def test_file_export_model_writes_an_onnx_model_that_scores_as_the_app(qtbot, window, tmp_path):
    pytest.importorskip("onnxruntime")
    from egbad_gui import exports

    train(qtbot, window, 1)
    assert window.export_model_action.isEnabled()
    with qtbot.waitSignal(window.exported, timeout=120_000) as written:
        exports.export_model(window, str(tmp_path / "exported"))
    assert written.args[0].endswith("model.onnx") and (tmp_path / "exported" / "model.json").is_file()
    assert "scores as the app does" in window.statusBar().currentMessage()


def test_the_inspectors_view_layers_steps_through_flagged_images_and_keeps_marks(qtbot, window, tmp_path):
    root = write_folder(tmp_path / "parts", train=8, good=3, defects=3)
    window.data_panel.folder.setChecked(True)
    window.data_panel.folder_path.setText(str(root))
    with qtbot.waitSignal(window.data_loaded, timeout=30_000):
        window.data_panel.load_button.click()
    train(qtbot, window, 1)
    with qtbot.waitSignal(window.detection_ready, timeout=60_000):
        window.detect()
    view = window.detection_view
    view.set_threshold(float(np.median(window.detection.scores.score)))  # about half flagged
    view.table.selectRow(0)
    qtbot.keyClick(view.table, Qt.Key.Key_Return)
    dialog = window.photo_dialog
    side = window.detection.images.image_size
    assert dialog.isVisible() and dialog.view.rgb.shape == (side, side, 3) and dialog.view.reconstruction is not None
    assert np.array_equal(dialog.photo.image, dialog.view.rgb)
    dialog.activateWindow()  # its keys are the dialog's own shortcuts
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5_000)
    qtbot.keyClick(dialog, Qt.Key.Key_R)  # the reconstruction in place of the image
    assert np.array_equal(dialog.photo.image, dialog.view.reconstruction)
    first = dialog.row
    flagged = window.detection.flagged
    qtbot.keyClick(dialog, Qt.Key.Key_N)
    assert dialog.row != first and flagged[dialog.row] and window.photo_dialog is dialog  # the same dialog
    auroc = view.metrics_label.text()
    qtbot.keyClick(dialog, Qt.Key.Key_G if window.detection.truth[dialog.row] else Qt.Key.Key_D)  # the other verdict
    marked = (root / "corrections.csv").read_text().splitlines()
    assert marked[0] == "id,verdict" and marked[1].startswith(window.detection.images.ids[dialog.row])
    assert "marked" in dialog.verdict.text() and view.metrics_label.text() != auroc
    dialog.close()
