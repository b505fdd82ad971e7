"""The left-hand panels: where the data comes from, and how training runs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
    QLineEdit, QProgressBar, QPushButton, QRadioButton, QSpinBox, QVBoxLayout, QWidget,
)

from egbad_core.config import PRESETS, Preset, ScoreConfig, TrainConfig, ingredients


def _path_row(placeholder: str, browse) -> tuple[QWidget, QLineEdit]:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    edit = QLineEdit()
    edit.setPlaceholderText(placeholder)
    button = QPushButton("Browse…")
    button.clicked.connect(browse)
    layout.addWidget(edit, 1)
    layout.addWidget(button)
    return row, edit


class DataPanel(QGroupBox):
    """Demo, an MNIST CSV or an MVTec folder; Load asks the window to load it in a worker."""

    load_requested = Signal(dict)  # DataSource.parse keyword arguments

    def __init__(self, parent=None) -> None:
        super().__init__("Data", parent)
        self.demo = QRadioButton("Demo (MNIST: 7s and 8s are good, 2s are defects)")
        self.csv = QRadioButton("MNIST CSV…")
        self.folder = QRadioButton("Image folder… (MVTec layout)")
        self.kind = QButtonGroup(self)
        for index, button in enumerate((self.demo, self.csv, self.folder)):
            self.kind.addButton(button, index)
        self.demo.setChecked(True)

        csv_page = QWidget()
        csv_form = QFormLayout(csv_page)
        csv_row, self.csv_path = _path_row("training CSV (label + 784 pixel columns)", self._browse_csv)
        test_row, self.csv_test_path = _path_row("test CSV (optional: else the same file)", self._browse_test_csv)
        self.normal_labels = QLineEdit("7,8")
        self.normal_labels.setToolTip("Labels of good images: training uses only these")
        self.test_labels = QLineEdit("")
        self.test_labels.setPlaceholderText("all")
        self.test_labels.setToolTip("Labels to score; those not among the normal labels count as defects")
        csv_form.addRow("Train", csv_row)
        csv_form.addRow("Test", test_row)
        csv_form.addRow("Normal labels", self.normal_labels)
        csv_form.addRow("Test labels", self.test_labels)
        folder_page = QWidget()
        folder_form = QFormLayout(folder_page)
        folder_row, self.folder_path = _path_row("folder with train/good/ and test/<label>/", self._browse_folder)
        folder_form.addRow("Folder", folder_row)
        self.pages = {1: csv_page, 2: folder_page}  # only the chosen source's fields are shown
        for page in self.pages.values():
            page.setVisible(False)
        self.kind.idToggled.connect(lambda index, on: index in self.pages and self.pages[index].setVisible(on))

        self.load_button = QPushButton("Load data")
        self.load_button.setObjectName("loadDataButton")
        self.load_button.clicked.connect(self.request_load)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("dataSummary")
        self.examples = QLabel()
        self.examples.setAlignment(Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        for widget in (self.demo, self.csv, csv_page, self.folder, folder_page, self.load_button, self.summary, self.examples):
            layout.addWidget(widget)
        self.last_folder = ""

    def _browse_csv(self) -> None:
        self._browse_file(self.csv_path)

    def _browse_test_csv(self) -> None:
        self._browse_file(self.csv_test_path)

    def _browse_file(self, edit: QLineEdit) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "MNIST-style CSV", self.last_folder, "CSV files (*.csv *.csv.gz);;All files (*)")
        if path:
            self.last_folder = str(Path(path).parent)
            edit.setText(path)
            self.request_load()

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Image folder (MVTec layout)", self.last_folder)
        if path:
            self.last_folder = str(Path(path).parent)
            self.folder_path.setText(path)
            self.request_load()

    def request(self) -> dict:
        """What is chosen now, as DataSource.parse arguments."""
        kind = self.kind.checkedId()
        if kind == 0:
            return {"data": "demo"}
        if kind == 1:
            return {
                "data": self.csv_path.text().strip(),
                "test_data": self.csv_test_path.text().strip() or None,
                "normal_labels": self.normal_labels.text().strip() or None,
                "test_labels": self.test_labels.text().strip() or None,
            }
        return {"data": self.folder_path.text().strip()}

    def request_load(self) -> None:
        self.load_requested.emit(self.request())

    def restore(self, request: dict) -> None:
        data = request.get("data") or "demo"
        if data == "demo":
            self.demo.setChecked(True)
        elif Path(data).is_dir():
            self.folder.setChecked(True)
            self.folder_path.setText(data)
        else:
            self.csv.setChecked(True)
            self.csv_path.setText(data)
            self.csv_test_path.setText(request.get("test_data") or "")
            self.normal_labels.setText(request.get("normal_labels") or "")
            self.test_labels.setText(request.get("test_labels") or "")


class TrainingPanel(QGroupBox):
    """Settings of a training run, where its checkpoints go, Train / Stop / Resume, and its progress."""

    checkpoint_folder_changed = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__("Training", parent)
        self._make_fields()
        self._make_controls()
        self._lay_out()
        self.preset.currentIndexChanged.connect(lambda _i: self.show_preset(self.selected_preset()))
        self.show_preset(self.selected_preset())

    def _make_fields(self) -> None:
        """The preset box, its recipe line, and the settings a run can change."""
        self.preset = QComboBox()
        self.preset.addItem("auto", "auto")
        self.preset.setItemData(0, "Picks a preset by the data when it is loaded, and says why", Qt.ItemDataRole.ToolTipRole)
        self.automatic: Preset | None = None  # what auto picked for the loaded data
        self.automatic_reason = ""
        for name, preset in PRESETS.items():
            self.preset.addItem(name, name)
            self.preset.setItemData(self.preset.count() - 1, preset.description, Qt.ItemDataRole.ToolTipRole)
        self.recipe = QLabel("")
        self.recipe.setObjectName("recipeLabel")
        self.recipe.setWordWrap(True)
        self.recipe.setStyleSheet("color: #555; font-size: 11px;")
        self.recipe.setToolTip("What this preset changes from the seed's recipe (README: Presets). "
                               "Switch any of them with egbad train --set SECTION.NAME=VALUE.")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10_000)
        self.epochs.setToolTip("GAN epochs: D, G and E trained together")
        self.refine_epochs = QSpinBox()
        self.refine_epochs.setRange(0, 10_000)
        self.refine_epochs.setToolTip("Then E learns to reconstruct through G (f-AnoGAN's second stage); "
                                       "in the patch preset G learns with it")
        self.batch_size = QSpinBox()
        self.batch_size.setRange(2, 4096)
        self.lr_g, self.lr_d, self.lr_e = (self._rate() for _ in range(3))
        self.lam = QDoubleSpinBox()
        self.lam.setRange(0.0, 1.0)
        self.lam.setDecimals(3)
        self.lam.setSingleStep(0.05)
        self.lam.setToolTip("λ: weight of the discrimination term in the score")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.device = QComboBox()
        for label, value in (("Auto", "auto"), ("CPU", "cpu"), ("CUDA", "cuda")):
            self.device.addItem(label, value)
        self.mixed_precision = QCheckBox("Mixed precision (bf16)")
        self.mixed_precision.setToolTip("bf16 autocast for training and scoring: faster on recent GPUs, "
                                        "slower on CPUs without AMX; off by default")
        self.device_in_use = QLabel("")
        self.device_in_use.setObjectName("deviceLabel")
        self.checkpoint_folder = QLabel("")
        self.checkpoint_folder.setObjectName("checkpointFolderLabel")
        self.checkpoint_folder.setWordWrap(True)
        self.checkpoint_folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.checkpoint_folder.setStyleSheet("color: #555; font-size: 11px;")
        self.change_folder_button = QPushButton("Change…")
        self.change_folder_button.setObjectName("checkpointFolderButton")
        self.change_folder_button.setToolTip("The folder new training runs write their checkpoints to")
        self.change_folder_button.clicked.connect(self._browse_checkpoint_folder)
        self.folder_row = folder_row = QWidget()
        folder_layout = QHBoxLayout(folder_row)
        folder_layout.setContentsMargins(0, 0, 0, 0)
        folder_layout.addWidget(self.checkpoint_folder, 1)
        folder_layout.addWidget(self.change_folder_button)


    def _make_controls(self) -> None:
        """Train, Resume and Stop, and the progress bar."""
        self.train_button = QPushButton("Train")
        self.train_button.setObjectName("trainButton")
        self.train_button.setToolTip("Train a new model on the loaded data (Ctrl+T)")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setObjectName("resumeButton")
        self.resume_button.setToolTip("Continue training the current model up to the epochs above")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip("Stop after the current iteration; the model and its checkpoint are kept (Esc)")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setObjectName("trainProgress")
        self.progress.setFormat("idle")
        self.progress.setValue(0)


    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("Preset", self.preset)
        form.addRow("", self.recipe)
        form.addRow("Epochs", self.epochs)
        form.addRow("Refine epochs", self.refine_epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("LR of G", self.lr_g)
        form.addRow("LR of D", self.lr_d)
        form.addRow("LR of E", self.lr_e)
        form.addRow("λ (score)", self.lam)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        form.addRow("", self.mixed_precision)
        form.addRow("", self.device_in_use)
        form.addRow("Checkpoints", self.folder_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)

    @staticmethod
    def _rate() -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(6)
        box.setRange(1e-6, 1.0)
        box.setSingleStep(1e-5)
        return box

    def selected_preset(self) -> Preset:
        """The chosen preset; for auto, what it picked for the loaded data (the default before any)."""
        name = self.preset.currentData()
        if name == "auto":
            return self.automatic or PRESETS["default"]
        return PRESETS[name]

    def set_automatic(self, preset: Preset, reason: str) -> None:
        """What auto picked for newly loaded data; shown while auto is selected."""
        self.automatic, self.automatic_reason = preset, reason
        if self.preset.currentData() == "auto":
            self.show_preset(preset)

    def show_preset(self, preset: Preset, train: TrainConfig | None = None, score: ScoreConfig | None = None) -> None:
        """Fill the fields from a preset (or a model's own settings) and list its ingredients."""
        train = train or preset.train
        score = score or preset.score
        self.epochs.setValue(train.epochs)
        self.refine_epochs.setValue(train.refine_epochs)
        self.batch_size.setValue(train.batch_size)
        self.lr_g.setValue(train.lr_g)
        self.lr_d.setValue(train.lr_d)
        self.lr_e.setValue(train.lr_e)
        self.seed.setValue(train.seed)
        self.lam.setValue(score.lam)
        fields_above = ("train.epochs=", "train.batch_size=", "train.lr_", "score.lam=")
        listed = [item.split(".", 1)[1] for item in ingredients(preset) if not item.startswith(fields_above)]
        text = " · ".join(listed) if listed else "the seed's recipe as written"
        if self.preset.currentData() == "auto":
            text = (f"<b>{self.automatic_reason}</b><br>{text}" if self.automatic_reason
                    else "picks a preset when data is loaded")
        self.recipe.setText(text)

    def set_preset_name(self, name: str) -> None:
        index = self.preset.findData(name)
        if index >= 0:
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(index)
            self.preset.blockSignals(False)

    def settings(self) -> Preset:
        """The one settings object a run trains with: the chosen preset with this panel's fields."""
        preset = self.selected_preset()
        train = replace(preset.train, epochs=self.epochs.value(), refine_epochs=self.refine_epochs.value(),
                        batch_size=self.batch_size.value(), lr_g=self.lr_g.value(), lr_d=self.lr_d.value(),
                        lr_e=self.lr_e.value(), seed=self.seed.value(), device=self.device.currentData(),
                        mixed_precision=self.mixed_precision.isChecked())
        return replace(preset, train=train, score=replace(preset.score, **self.score_choices()))

    def score_choices(self) -> dict[str, object]:
        """The score settings this panel sets on top of a preset's or a trained model's."""
        return {"lam": self.lam.value(), "mixed_precision": self.mixed_precision.isChecked()}

    def set_checkpoint_folder(self, folder: str) -> None:
        self.checkpoint_folder.setText(folder)
        self.checkpoint_folder.setToolTip(folder)

    def _browse_checkpoint_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for checkpoints", self.checkpoint_folder.text())
        if folder:
            self.set_checkpoint_folder(folder)
            self.checkpoint_folder_changed.emit(folder)

    def show_progress(self, latest, first_epoch: int) -> None:
        """The bar and its caption from the latest IterationEvent of a run that started after ``first_epoch``."""
        epochs = self.epochs.value() + self.refine_epochs.value()
        total = max(1, (epochs - first_epoch) * latest.batches)
        done = (latest.epoch - 1 - first_epoch) * latest.batches + latest.batch
        self.progress.setMaximum(total)
        self.progress.setValue(min(done, total))
        self.progress.setFormat(f"epoch {latest.epoch}/{epochs} · {latest.images_per_s:.0f} img/s · ETA {clock(latest.eta_s)}")

    def set_running(self, running: bool) -> None:
        """Lock the settings while a run is going."""
        self.train_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for widget in (self.preset, self.epochs, self.refine_epochs, self.batch_size, self.lr_g, self.lr_d, self.lr_e, self.seed, self.device, self.lam, self.mixed_precision):
            widget.setEnabled(not running)
        self.change_folder_button.setEnabled(not running)


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour up."""
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
