"""An exported model's speed beside the app's (issue 21): images/s of onnxruntime running
``model.onnx`` and of the app scoring the same images, on the same CPU, and how far apart the
scores are.

    python benchmarks/export_speed.py --checkpoint CKPT --data FOLDER|demo [--images 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import numpy as np
import torch

from egbad_core import session
from egbad_core.events import run_to_end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    import onnxruntime

    torch.set_num_threads(args.threads)
    checkpoint = session.load_checkpoint(args.checkpoint)
    images = run_to_end(session.test_images(session.parse_source(args.data), checkpoint))
    pixels = images.pixels[: args.images]
    out = tempfile.mkdtemp(prefix="egbad-export-")
    done = session.export_onnx(checkpoint, out)
    spec = json.loads(done.spec.read_text())
    request = session.ScoreRequest(checkpoint).frozen()
    run_to_end(request.task(pixels[:2], False))  # warm up
    started = time.perf_counter()
    app = run_to_end(request.task(pixels, False))
    app_seconds = time.perf_counter() - started
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    model = onnxruntime.InferenceSession(str(done.model), options, providers=["CPUExecutionProvider"])
    unit = (pixels.float() / 255 if pixels.dtype == torch.uint8 else pixels.float()).numpy()
    step = 1 if spec["input"]["shape"][0] == 1 else 64
    model.run(None, {"pixels": unit[:step]})  # warm up
    started = time.perf_counter()
    scores = np.concatenate([model.run(None, {"pixels": unit[i : i + step]})[0] for i in range(0, len(unit), step)])
    onnx_seconds = time.perf_counter() - started
    figures = {
        "checkpoint": args.checkpoint, "images": len(unit), "side": spec["input"]["shape"][-1],
        "app images/s": round(len(unit) / app_seconds, 1), "onnxruntime images/s": round(len(unit) / onnx_seconds, 1),
        "onnx / app": round(app_seconds / onnx_seconds, 2),
        "largest relative score difference": float(np.abs(scores - app.score).max() / np.abs(app.score).max()),
        "export s": round(done.seconds, 1), "threads": args.threads, "onnxruntime": onnxruntime.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
