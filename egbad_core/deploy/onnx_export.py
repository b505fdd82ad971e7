"""A checkpoint written as an ONNX model of its whole score, and a JSON of what that model expects.

The model takes pixels (N, C, S, S) float32 in [0, 1], as the app loads them, and gives each
image's score and anomaly map in the checkpoint's units; the JSON holds the size, the channels,
how the app makes pixels of a file, the threshold and the false-alarm rate it implies (with the
good images' scores, so the rate can be taken again at another threshold). Before the export
says it is done, onnxruntime (where installed: ``pip install ".[deploy]"``) runs the written file
on pixels the app has scored, and the two must agree to EXPORT_TOLERANCE; otherwise nothing is
left behind and the difference is said.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import EgbadError
from ..events import run_to_end
from ..model.checkpoints import Checkpoint
from ..run.detection import unlabelled_threshold
from ..run.scoring import ScoreRequest
from ..score.false_alarms import FalseAlarmRate, false_alarms
from ..system.files import atomic_write, ensure_writable_folder
from .score_module import ScoreModule

EXPORT_FORMAT = "egbad-onnx"
EXPORT_VERSION = 1
EXPORT_TOLERANCE = 1e-4  # relative: the exported scores and maps against the app's
MODEL_NAME, SPEC_NAME = "model.onnx", "model.json"
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # data.decoding.to_gray's


@dataclass(frozen=True)
class Exported:
    """What an export wrote, and how closely it scores as the app does."""

    model: Path
    spec: Path
    difference: float | None  # the largest relative difference from the app's scores and maps; None unchecked
    seconds: float


def export_onnx(checkpoint: Checkpoint, out_dir: str | Path, threshold: float | str | FalseAlarmRate | None = None,
                checkpoint_path: str | None = None) -> Exported:
    """Write ``model.onnx`` and ``model.json`` into ``out_dir``; raises EgbadError for a model
    that cannot be exported or an export that does not score as the app does."""
    started = time.perf_counter()
    config = checkpoint.networks.config
    if config.full_resolution:
        raise EgbadError("this model scores photos at their own resolution in windows; exporting it is not "
                         "supported yet (a model trained with --set model.photo_scale=0 can be).")
    if checkpoint.reference is None:
        raise EgbadError("this checkpoint holds no reference to score against, so it cannot be exported.")
    out_dir = ensure_writable_folder(out_dir)
    module = ScoreModule(checkpoint).eval()
    side, channels = config.load_size, config.channels
    # A whole-image model takes any number of images at once; a patch model one at a time (its
    # searches go a block of places at a time, so its graph is laid out for one image's places).
    batch = 1 if config.patch_model else 2
    pixels = torch.rand(batch, channels, side, side, generator=torch.Generator().manual_seed(0))
    dynamic = None if config.patch_model else {"pixels": {0: torch.export.Dim("images", min=1, max=4096)}}
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it and says so less plainly)
    except ImportError:
        raise EgbadError('exporting a model needs the deploy extra: pip install "egbad-inspector[deploy]" '
                         '(or ".[deploy]" in a checkout).') from None
    with torch.no_grad():
        program = torch.onnx.export(module, (pixels,), dynamo=True, input_names=["pixels"],
                                    output_names=["score", "anomaly_map"], optimize=True, verbose=False,
                                    dynamic_shapes=dynamic)
    data = program.model_proto.SerializeToString()
    request = ScoreRequest(checkpoint)
    spec = _spec(checkpoint, request, threshold, checkpoint_path)
    difference = _checked(data, request, pixels)
    model_path, spec_path = out_dir / MODEL_NAME, out_dir / SPEC_NAME
    atomic_write(model_path, lambda stream: stream.write(data))
    text = json.dumps(spec, indent=2)
    atomic_write(spec_path, lambda stream: stream.write(text.encode("utf-8")))
    return Exported(model_path, spec_path, difference, time.perf_counter() - started)


def _spec(checkpoint: Checkpoint, request: ScoreRequest, threshold: Any, checkpoint_path: str | None) -> dict[str, Any]:
    """What the exported model expects and what its scores mean."""
    config = checkpoint.networks.config
    stats = request.stats()
    value, method = unlabelled_threshold(threshold, stats)
    alarms = None if stats is None else false_alarms(stats.scores, value, stats.held_out)
    side = config.load_size
    return {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "app_version": __version__,
        "checkpoint": checkpoint_path, "model": MODEL_NAME,
        "input": {"name": "pixels", "shape": [1 if config.patch_model else "images", config.channels, side, side],
                  "dtype": "float32",
                  "range": [0.0, 1.0], "channels": "gray" if config.channels == 1 else "rgb",
                  "made_by": f"Pillow: open, convert('RGB'), resize(({side}, {side}), BICUBIC), / 255"
                  + (f"; gray = {GRAY_WEIGHTS[0]} R + {GRAY_WEIGHTS[1]} G + {GRAY_WEIGHTS[2]} B, rounded to a "
                     "whole 0-255 level, before / 255" if config.channels == 1 else "")},
        "outputs": {"score": "(images,) each image's score; flagged where score >= threshold",
                    "anomaly_map": f"(images, {side}, {side}) each place's score (a whole-image model: its residual)",
                    "images": "a patch model scores one image a call, a whole-image model any number"},
        "threshold": value, "threshold_method": method,
        "relative_to": None if stats is None else stats.p99,
        "false_alarms": None if alarms is None else alarms.to_dict(),
        "good_image_scores": None if stats is None else list(stats.scores),
    }


def _checked(data: bytes, request: ScoreRequest, pixels: torch.Tensor) -> float | None:
    """The exported model run by onnxruntime against the app's scoring of the same pixels: the
    largest relative difference, or None where onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    score, anomaly_map = session.run(None, {"pixels": pixels.numpy()})
    app = run_to_end(request.task(pixels, True))
    difference = max(_relative(score, app.score), _relative(anomaly_map, app.residual_maps))
    if not difference <= EXPORT_TOLERANCE:
        raise EgbadError(f"the exported model scores differently from the app (a relative difference of "
                         f"{difference:.2g}, above {EXPORT_TOLERANCE:g}); nothing was written. Please report it.")
    return difference


def _relative(found: np.ndarray, expected: np.ndarray) -> float:
    scale = max(float(np.abs(expected).max()), 1e-12)
    return float(np.abs(np.asarray(found, dtype=np.float64) - expected).max() / scale)
