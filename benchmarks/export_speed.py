"""An exported model's speed beside the app's (issue 21): images/s of onnxruntime running
``model.onnx`` and of the app scoring the same images, on the same CPU, and how far apart the
scores are. A photo model (scored at the photos' own resolution in windows) is exported for the
size most of the folder's test photos have and timed on those, in megapixels/s as well; the app
searches a photo's windows in groups, the exported model exactly.

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
    if checkpoint.networks.config.full_resolution:
        print(json.dumps(_photos(checkpoint, args, onnxruntime)))
        return 0
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


def _photos(checkpoint, args, onnxruntime) -> dict:
    """A photo model's figures: its photos scored by the app and by the exported model."""
    from egbad_core.data.decoding import decode_image, to_gray
    from egbad_core.data.folders import scoring_listing
    from egbad_core.run.photos import photo_scoring_task

    config = checkpoint.networks.config
    listing = scoring_listing(session.parse_source(args.data))
    loaded = [decode_image(path, config.load_size, scale=config.photo_scale) for _, path in listing.files]
    size = session.usual_photo_size([own for _, own in loaded])
    photos = [torch.from_numpy(pixels) for pixels, own in loaded if own == size][: args.images]
    if config.channels == 1:
        photos = [to_gray(p[None])[0] for p in photos]
    done = session.export_onnx(checkpoint, tempfile.mkdtemp(prefix="egbad-export-"), photo_size=size)
    request = session.ScoreRequest(checkpoint).frozen()
    run_to_end(photo_scoring_task(request, photos[0]))  # warm up
    started = time.perf_counter()
    app = [run_to_end(photo_scoring_task(request, photo)).score for photo in photos]
    app_seconds = time.perf_counter() - started
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    model = onnxruntime.InferenceSession(str(done.model), options, providers=["CPUExecutionProvider"])
    unit = [(photo.float() / 255)[None].numpy() for photo in photos]
    model.run(None, {"pixels": unit[0]})  # warm up
    started = time.perf_counter()
    scores = np.concatenate([model.run(None, {"pixels": u})[0] for u in unit])
    onnx_seconds = time.perf_counter() - started
    megapixels = len(photos) * photos[0].shape[-1] * photos[0].shape[-2] / 1e6
    return {
        "checkpoint": args.checkpoint, "photos": len(photos), "size": f"{size[1]}x{size[0]}",
        "app MP/s": round(megapixels / app_seconds, 2), "onnxruntime MP/s": round(megapixels / onnx_seconds, 2),
        "onnx / app": round(app_seconds / onnx_seconds, 2),
        "largest relative score difference": float(np.abs(scores - app).max() / np.abs(np.asarray(app)).max()),
        "export s": round(done.seconds, 1), "threads": args.threads, "onnxruntime": onnxruntime.__version__,
        "machine": platform.processor() or platform.machine(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
