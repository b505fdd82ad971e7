"""Scoring photos at their own resolution (issue 20: at least 1.5 megapixels/s on a 2-core CPU, peak
memory bounded by the window, not the photo): megapixels/s and the process's peak RSS over a run of
large photos, on the CPU and on CUDA where there is one.

The networks' weights do not change the work, so untrained networks of the patch preset score
photos of noise against a reference built from windows of others. Each photo is made, scored and
dropped in turn, as ``egbad detect`` holds one photo at a time.

    python benchmarks/photo_speed.py [--photos 5] [--height 3000] [--width 4096] [--device cpu|cuda] [--shape-window 24]

Four ways in one run: the texture model as shipped (the windows share the photo's moments, taken
once), the same with each window taking its own moments (the way before the twelfth session: the
baseline of the ratio), the same without the line term (before the fifteenth session), and an
aligned-part model, which also compares each place with the frame's same place
(``score/frame_place.py``; its frame from photos like those scored) and has no line term.

With ``--files DIR`` the photos are written there as JPEG files first and scored by ``egbad detect``
in a child process, as a user runs it (decoding, thumbnails, pixel samples, results files): its
megapixels/s and the child's peak RSS (issue 20: 100 photos of 4,096×3,000 under 3 GB).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from dataclasses import replace
from unittest.mock import patch

import torch

from egbad_core.config import PATCH_PRESET
from egbad_core.events import run_to_end
from egbad_core.model.checkpoints import Checkpoint, save_checkpoint
from egbad_core.model.networks import Networks
from egbad_core.run.photos import photo_scoring_task, photo_windows
from egbad_core.score import tiling
from egbad_core.score.frame_place import FrameTally, frame_moments
from egbad_core.score.registration import reduced, reduction
from egbad_core.run.scoring import ScoreRequest
from egbad_core.score.local_reference import build_patch_reference
from egbad_core.system.memory import limit_heap_growth


def _photo(height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    grain = torch.randn(1, 3, height // 4, width // 4, generator=generator)
    texture = torch.nn.functional.interpolate(grain, size=(height, width), mode="bilinear")[0]
    return (128 + 40 * texture).clamp_(0, 255).to(torch.uint8)


def _checkpoint(device: str, working: int, shape_window: int = 0) -> Checkpoint:
    """``shape_window`` 0: no tone layouts, as `auto` sets photos (train/choice.py)."""
    settings = replace(PATCH_PRESET, model=replace(PATCH_PRESET.model, channels=3, working_size=working, photo_scale=1.0),
                       train=replace(PATCH_PRESET.train, device=device),
                       score=replace(PATCH_PRESET.score, shape_window=shape_window))
    torch.manual_seed(0)
    networks = Networks(settings.model).place(device)
    networks.eval()
    windows = torch.stack([_photo(working, working, 100 + i) for i in range(24)])
    reference, _ = build_patch_reference(networks, windows, settings.normalisation, settings.score)
    return Checkpoint(networks=networks, settings=settings, reference=reference)


def _request(device: str, working: int, shape_window: int = 0) -> ScoreRequest:
    return ScoreRequest(_checkpoint(device, working, shape_window)).frozen()


def _timed(request: ScoreRequest, args: argparse.Namespace) -> tuple[float, list[float]]:
    """Seconds spent scoring ``args.photos`` photos, and each photo's megapixels/s."""
    rates, scoring = [], 0.0
    for index in range(args.photos):
        photo = _photo(args.height, args.width, index)  # made before the clock starts: a camera's photo arrives made
        started = time.perf_counter()
        result = run_to_end(photo_scoring_task(request, photo))
        scoring += time.perf_counter() - started
        rates.append(result.megapixels_per_s)
        del result, photo
    return scoring, rates


def _without_lines(request: ScoreRequest) -> ScoreRequest:
    """The request's model without the line term (a texture's; ``auto`` gives aligned parts none)."""
    checkpoint = request.checkpoint
    settings = replace(checkpoint.settings, score=replace(checkpoint.settings.score, line_length=0))
    return replace(request, checkpoint=replace(checkpoint, settings=settings))  # its networks already folded


def _aligned(request: ScoreRequest, height: int, width: int) -> ScoreRequest:
    """The request's model as an aligned-part model's: a frame of photos of this size beside its
    banks, and no line term, as ``auto`` sets them."""
    checkpoint = _without_lines(request).checkpoint
    settings = checkpoint.settings
    tally = FrameTally()
    for index in range(3):
        tally.add(frame_moments(_photo(height, width, 200 + index)[None], settings.score, settings.normalisation))
    template = reduced(_photo(height, width, 200)[None], reduction(height, width))  # each photo's pose found against it
    reference = replace(checkpoint.reference, frame=tally.statistics(), frame_size=(height, width), frame_template=template)
    return replace(request, checkpoint=replace(checkpoint, reference=reference))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=5)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--working", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--files", type=Path, help="write the photos here and score them with egbad detect")
    parser.add_argument("--shape-window", type=int, default=0, help="the tone layouts' window (0: none, as auto sets photos)")
    args = parser.parse_args()
    if args.files:
        return _by_the_command(args)
    limit_heap_growth()  # the C allocator as egbad and egbad-gui set it: the figures below are the product's
    request = _request(args.device, args.working, args.shape_window)
    windows, _ = photo_windows(request, args.height, args.width)
    run_to_end(photo_scoring_task(request, _photo(512, 512, 0)))  # warm up
    before = _peak_rss_mb()
    scoring, rates = _timed(request, args)
    with patch.object(tiling, "_moment_cuts", lambda *_: None):
        own, _ = _timed(request, args)
    plain, _ = _timed(_without_lines(request), args)
    aligned, _ = _timed(_aligned(request, args.height, args.width), args)
    total = args.photos * args.height * args.width / 1e6
    figures = {"photo": f"{args.width}×{args.height}", "photos": args.photos, "window": windows.window,
               "overlap": windows.overlap, "windows a photo": len(windows),
               "megapixels/s": round(total / scoring, 2),
               "best photo megapixels/s": round(max(rates), 2),
               "megapixels/s, each window its own moments": round(total / own, 2),
               "megapixels/s without the line term": round(total / plain, 2),
               "aligned megapixels/s (same place of the frame)": round(total / aligned, 2),
               "peak RSS MB": round(_peak_rss_mb()), "peak RSS before the photos MB": round(before),
               "device": args.device, "threads": torch.get_num_threads(),
               "machine": platform.processor() or platform.machine()}
    if args.device == "cuda":
        figures["peak CUDA MB"] = round(torch.cuda.max_memory_allocated() / 2**20)
        figures["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(figures, ensure_ascii=False))
    return 0


def _tree_pss_mb(root: int) -> float:
    """The proportional set size of a process and its descendants (Linux), in MB: shared pages
    counted once over the tree, which RSS summed over the processes would count again in each."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    total, waiting = 0.0, [root]
    while waiting:
        pid = waiting.pop()
        waiting += children.get(pid, [])
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0) / 1024
    return total


def _by_the_command(args: argparse.Namespace) -> int:
    """The photos written as files and scored by ``egbad detect`` in a child process."""
    from PIL import Image

    checkpoint = _checkpoint(args.device, args.working)
    args.files.mkdir(parents=True, exist_ok=True)
    for index in range(args.photos):
        path = args.files / f"{index:03d}.jpg"
        if not path.exists():
            Image.fromarray(_photo(args.height, args.width, index).permute(1, 2, 0).numpy()).save(path, quality=90)
    with tempfile.TemporaryDirectory() as out:
        model = save_checkpoint(Path(out) / "model.pt", checkpoint)
        command = [sys.executable, "-m", "egbad_core.cli", "detect", "--checkpoint", str(model), "--data", str(args.files),
                   "--device", args.device, "--out-dir", str(Path(out) / "results"), "--threshold", "3", "--quiet"]
        started, peak_tree = time.perf_counter(), 0.0
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
            while child.poll() is None:  # the whole tree's memory: egbad detect and its decoding workers
                peak_tree = max(peak_tree, _tree_pss_mb(child.pid))
                time.sleep(0.25)
            said, complaint = child.communicate()
        seconds = time.perf_counter() - started
    if child.returncode:
        print(complaint or said, file=sys.stderr)
        return child.returncode
    total = args.photos * args.height * args.width / 1e6
    print(json.dumps({"photo": f"{args.width}×{args.height}", "photos": args.photos, "by": "egbad detect",
                      "megapixels/s end to end": round(total / seconds, 2), "seconds": round(seconds, 1),
                      "peak PSS of the process and its workers MB": round(peak_tree),
                      "peak RSS of one process MB": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
                      "device": args.device, "machine": platform.processor() or platform.machine(),
                      "said": said.strip().splitlines()[-1:]}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
