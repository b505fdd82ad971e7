"""Scoring rate of a patch model at its working size (issue 19: at least 20 images/s at 256 px on a
2-core CPU), each term of the map timed on its own, and the whole scoring task beside them.

The networks' weights do not change the work, so a checkpoint is optional: without one, untrained
networks of the preset ``auto`` picks for the folder score it against a reference built from its
own training images.

    python benchmarks/patch_speed.py FOLDER [--checkpoint CKPT] [--images 64] [--repeats 3] [--set score.line_length=0]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace

import torch

from egbad_core import session
from egbad_core.events import run_to_end
from egbad_core.model.inference import folded
from egbad_core.model.networks import Networks
from egbad_core.score import local, nearest
from egbad_core.score.lines import line_map
from egbad_core.score.local_reference import build_patch_reference
from egbad_core.score.method import reusing_heap
from egbad_core.score.moments import layouts_of, moments_of
from egbad_core.score.same_place import lay_out, place_distance
from egbad_core.system.memory import heap_for_scoring, limit_heap_growth


def _model(folder: str, checkpoint: str | None, overrides: list[str]):
    if checkpoint:
        loaded = session.load_checkpoint(checkpoint)
        return loaded.networks, loaded.settings, loaded.reference
    settings, _ = session.choose_preset("auto", source=session.parse_source(folder), overrides=overrides)
    train = run_to_end(session.load_data({"data": folder}, settings.model.load_size)).train
    torch.manual_seed(0)
    networks = Networks(replace(settings.model, channels=train.channels)).place("cpu")
    networks.eval()
    reference, _ = build_patch_reference(networks, train.pixels, settings.normalisation, settings.score)
    return networks, settings, reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--checkpoint")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], help="a setting, as egbad train's --set (untrained networks only)")
    args = parser.parse_args()
    limit_heap_growth()  # the C allocator as egbad and egbad-gui set it: the speeds below are the product's
    networks, settings, reference = _model(args.folder, args.checkpoint, args.set)
    config = settings.score
    test = run_to_end(session.load_data({"data": args.folder}, settings.model.load_size)).test
    pixels = test.pixels[: args.images]
    n = folded(networks)
    x = n.layout(settings.normalisation.apply(pixels[:16]))

    def per_image(fn) -> float:  # ms an image, the best of the repeats
        fn()
        best = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - started)
        return round(best / x.shape[0] * 1000, 2)

    figures = {}
    with torch.inference_mode(), heap_for_scoring():  # as every scoring run holds it
        rebuilt = local.reconstruct(n, x)
        features = local.local_features(n, x, config.stages, config.feature_grid)
        joined = reference.shapes is None  # the layouts, if any, in the moments' bank (seventeenth session)
        moments = moments_of(x, config, layouts=joined)
        figures["reconstruct ms"] = per_image(lambda: local.reconstruct(n, x))
        figures["residual ms"] = per_image(lambda: local.residual_map(x, rebuilt))
        figures["D features ms"] = per_image(lambda: local.local_features(n, x, config.stages, config.feature_grid))
        figures["nearest feature ms"] = per_image(lambda: nearest.nearest_map(features, reference.features))
        figures["moments ms"] = per_image(lambda: moments_of(x, config, layouts=joined))
        if not joined:
            layouts = layouts_of(x, config)
            figures["layouts ms"] = per_image(lambda: layouts_of(x, config))
            figures["nearest layouts ms"] = per_image(lambda: nearest.nearest_map(layouts, reference.shapes, exact=True))
        if reference.moments is not None:
            figures["nearest moments ms"] = per_image(lambda: nearest.nearest_map(moments, reference.moments))
        bank = lay_out(reference.places) if reference.places is not None else None
        if bank is not None:
            figures["same place ms"] = per_image(lambda: place_distance(moments, bank))
        if reference.lines is not None:
            figures["lines ms"] = per_image(lambda: line_map(x, config.line_length, reference.line_bank, config.feature_grid))
        raw = local.raw_maps(n, x, config, reference, bank)
        figures["maps ms"] = per_image(lambda: local.local_maps(raw, reference, config))
    # The task with each term the settings hold, and without the line term (a texture's), taken in
    # turns so that a slower minute of a shared machine falls on both.
    plain = replace(config, line_length=0)
    rates: dict[str, list[float]] = {"all": [], "no lines": []}
    for _ in range(args.repeats):
        for name, used in (("all", config), ("no lines", plain)):
            scores = run_to_end(reusing_heap(local.patch_scoring_task(networks, pixels, settings.normalisation, used,
                                                                      reference)))
            rates[name].append(scores.images_per_s)
    figures["scoring task images/s"] = round(max(rates["all"]), 1)
    if config.line_length:
        figures["without the line term images/s"] = round(max(rates["no lines"]), 1)
    figures.update(working_size=settings.model.load_size, places=reference.places is not None,
                   threads=torch.get_num_threads(), machine=platform.processor() or platform.machine())
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
