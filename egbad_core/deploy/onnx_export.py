"""A checkpoint written as an ONNX model of its whole score, and a JSON of what that model expects.

The model takes pixels (N, C, S, S) float32 in [0, 1], as the app loads them, and gives each
image's score and anomaly map in the checkpoint's units; the JSON holds the size, the channels,
how the app makes pixels of a file, the threshold and the false-alarm rate it implies (with the
good images' scores, so the rate can be taken again at another threshold). A photo model, which
scores photos at their own resolution in windows, is exported for one photo size (``photo_size``,
a line camera's): it takes the photo at the model's scale and gives the stitched map. Before the export
says it is done, onnxruntime (where installed: ``pip install ".[deploy]"``) runs the written file
on pixels the app has scored, and the two must agree to EXPORT_TOLERANCE; otherwise nothing is
left behind and the difference is said.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..data.decoding import scaled_size
from ..errors import EgbadError
from ..events import run_to_end
from ..model.checkpoints import Checkpoint
from ..run.detection import unlabelled_threshold
from ..run.photos import photo_scoring_task, photo_windows
from ..run.scoring import ScoreRequest
from ..score.false_alarms import FalseAlarmRate, implied
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
                checkpoint_path: str | None = None, photo_size: tuple[int, int] | None = None) -> Exported:
    """Write ``model.onnx`` and ``model.json`` into ``out_dir``; raises EgbadError for a model
    that cannot be exported or an export that does not score as the app does. ``photo_size``:
    (height, width) of the photos a photo model will score, in their own pixels."""
    started = time.perf_counter()
    config = checkpoint.networks.config
    if checkpoint.reference is None:
        raise EgbadError("this checkpoint holds no reference to score against, so it cannot be exported.")
    request = ScoreRequest(checkpoint)
    shape, windows = _input_shape(request, photo_size)
    out_dir = ensure_writable_folder(out_dir)
    module = ScoreModule(checkpoint, *windows).eval()
    # A whole-image model takes any number of images at once; a patch model one at a time (its
    # searches go a block of places at a time, so its graph is laid out for one image's places).
    batch = 1 if config.patch_model else 2
    levels = torch.randint(0, 256, (batch, config.channels, *shape), generator=torch.Generator().manual_seed(0))
    pixels = levels.float() / 255  # whole levels, as a file gives them: a photo is checked as the app loads one
    dynamic = None if config.patch_model else {"pixels": {0: torch.export.Dim("images", min=1, max=4096)}}
    try:
        import onnxscript.optimizer  # torch's exporter needs it and says so less plainly
    except ImportError:
        raise EgbadError('exporting a model needs the deploy extra: pip install "egbad-inspector[deploy]" '
                         '(or ".[deploy]" in a checkout).') from None
    with torch.no_grad():
        program = torch.onnx.export(module, (pixels,), dynamo=True, input_names=["pixels"],
                                    output_names=["score", "anomaly_map"], optimize=False, verbose=False,
                                    dynamic_shapes=dynamic)
    # Constants folded and what is left unused removed: the exporter's own optimize less its rewrite
    # rules, whose matching grows with the square of the graph (a 1,024-px photo window's: 21 s
    # against 0.6; a 2,048-px photo's export took 10 minutes), and onnxruntime runs both alike.
    onnxscript.optimizer.fold_constants(program.model)
    onnxscript.optimizer.remove_unused_nodes(program.model)
    data = program.model_proto.SerializeToString()
    spec = _spec(checkpoint, request, threshold, checkpoint_path, shape, photo_size, windows[0] if windows else None)
    difference = _checked(data, request, levels, config.full_resolution)
    model_path, spec_path = out_dir / MODEL_NAME, out_dir / SPEC_NAME
    atomic_write(model_path, lambda stream: stream.write(data))
    text = json.dumps(spec, indent=2)
    atomic_write(spec_path, lambda stream: stream.write(text.encode("utf-8")))
    return Exported(model_path, spec_path, difference, time.perf_counter() - started)


def usual_photo_size(sizes: list[tuple[int, int]] | None) -> tuple[int, int] | None:
    """The (height, width) most of these photos have: what a photo model exported from the window
    is made for (the photos it was shown); None where there are none."""
    return Counter(sizes).most_common(1)[0][0] if sizes else None


def _input_shape(request: ScoreRequest, photo_size: tuple[int, int] | None) -> tuple[tuple[int, int], tuple]:
    """(height, width) the model takes, and for a photo model its windows and their settings."""
    config = request.checkpoint.networks.config
    if not config.full_resolution:
        return (config.load_size, config.load_size), ()
    if photo_size is None:
        raise EgbadError("this model scores photos at their own resolution, and an exported model takes one "
                         "size: give the photos' size (--photo-size WIDTHxHEIGHT).")
    height, width = scaled_size(*photo_size, config.photo_scale)
    if min(height, width) < config.working_size:
        raise EgbadError(f"photos of {photo_size[1]}×{photo_size[0]} px are {width}×{height} at the model's scale, "
                         f"smaller than its {config.working_size}-px working size.")
    reference = request.checkpoint.reference
    if getattr(reference, "frame", None) is not None and (height, width) == reference.frame_size:
        raise EgbadError("this model compares each place of a photo with the same place of its training photos after "
                         "finding how the photo lies (a turn and a shift), which an exported graph cannot do yet: score "
                         "these photos with egbad detect or the app, or train with --set score.same_place=false for a "
                         "model that exports.")
    windows, scaled = photo_windows(request, height, width)
    return (height, width), (windows, scaled.settings)


def _spec(checkpoint: Checkpoint, request: ScoreRequest, threshold: Any, checkpoint_path: str | None,
          shape: tuple[int, int], photo_size: tuple[int, int] | None, windows: Any = None) -> dict[str, Any]:
    """What the exported model expects and what its scores mean."""
    config = checkpoint.networks.config
    stats = request.stats()
    value, method = unlabelled_threshold(threshold, stats)
    alarms = implied(stats, value)
    height, width = shape
    photo = None if windows is None else {
        "own_size": list(photo_size), "scale": config.photo_scale, "windows": len(windows),
        "window": windows.window, "overlap": windows.overlap}
    return {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "app_version": __version__,
        "checkpoint": checkpoint_path, "model": MODEL_NAME,
        "input": {"name": "pixels", "shape": [1 if config.patch_model else "images", config.channels, height, width],
                  "dtype": "float32",
                  "range": [0.0, 1.0], "channels": "gray" if config.channels == 1 else "rgb",
                  "made_by": f"Pillow: open, convert('RGB'), resize(({width}, {height}), BICUBIC), / 255"
                  + (f"; gray = {GRAY_WEIGHTS[0]} R + {GRAY_WEIGHTS[1]} G + {GRAY_WEIGHTS[2]} B, rounded to a "
                     "whole 0-255 level, before / 255" if config.channels == 1 else "")},
        "outputs": {"score": "(images,) each image's score; flagged where score >= threshold",
                    "anomaly_map": f"(images, {height}, {width}) each place's score (a whole-image model: its residual)",
                    "images": "a patch model scores one image a call, a whole-image model any number"},
        "photo": photo,
        "threshold": value, "threshold_method": method,
        "relative_to": None if stats is None else stats.p99,
        "false_alarms": None if alarms is None else alarms.to_dict(),
        "good_image_scores": None if stats is None else list(stats.scores),
    }


def _checked(data: bytes, request: ScoreRequest, levels: torch.Tensor, photo: bool) -> float | None:
    """The exported model run by onnxruntime against the app's scoring of the same pixels (``levels``,
    whole 0–255 levels): the largest relative difference, or None where onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    score, anomaly_map = session.run(None, {"pixels": (levels.float() / 255).numpy()})
    if photo:  # as the app loads a photo (uint8), its banks searched exactly as the export's are
        scored = run_to_end(photo_scoring_task(request, levels[0].to(torch.uint8), grouped=False))
        expected_score, expected_map = np.array([scored.score]), scored.anomaly_map[None]
    else:
        app = run_to_end(request.task(levels.float() / 255, True))
        expected_score, expected_map = app.score, app.residual_maps
    difference = max(_relative(score, expected_score), _relative(anomaly_map, expected_map))
    if not difference <= EXPORT_TOLERANCE:
        raise EgbadError(f"the exported model scores differently from the app (a relative difference of "
                         f"{difference:.2g}, above {EXPORT_TOLERANCE:g}); nothing was written. Please report it.")
    return difference


def _relative(found: np.ndarray, expected: np.ndarray) -> float:
    scale = max(float(np.abs(expected).max()), 1e-12)
    return float(np.abs(np.asarray(found, dtype=np.float64) - expected).max() / scale)
