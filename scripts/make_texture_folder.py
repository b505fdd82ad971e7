"""Make an MVTec-layout folder of synthetic textures with visible defects, for trying the
default preset on data that is not digits (benchmarks/quality.py --data FOLDER).

Good parts: a woven colour texture with noise, 96×96. Defects: a dark scratch, or a bright spot.
Usage: python scripts/make_texture_folder.py OUT [--train 200] [--test 60] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def texture(rng: np.random.Generator, size: int = 96) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size]
    phase = rng.uniform(0, 2 * np.pi, 2)
    weave = 0.5 + 0.25 * np.sin(x / 3.0 + phase[0]) * np.sin(y / 3.0 + phase[1])
    base = np.stack([weave * 0.8, weave * 0.6, weave * 0.4], axis=-1) + rng.normal(0, 0.04, (size, size, 3))
    return Image.fromarray((np.clip(base, 0, 1) * 255).astype(np.uint8))


def scratch(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    draw = ImageDraw.Draw(image)
    x0, y0 = rng.integers(10, 86, 2)
    angle = rng.uniform(0, np.pi)
    length = rng.integers(25, 50)
    x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
    draw.line([int(x0), int(y0), int(x1), int(y1)], fill=(20, 15, 10), width=int(rng.integers(2, 4)))
    return image


def spot(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    draw = ImageDraw.Draw(image)
    x, y = rng.integers(15, 81, 2)
    r = int(rng.integers(5, 10))
    draw.ellipse([x - r, y - r, x + r, y + r], fill=(250, 240, 200))
    return image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--test", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    root = Path(args.out)
    plan = [("train/good", args.train, None), ("test/good", args.test, None),
            ("test/scratch", args.test // 2, scratch), ("test/spot", args.test // 2, spot)]
    for folder, count, defect in plan:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = texture(rng)
            if defect is not None:
                image = defect(image, rng)
            image.save(root / folder / f"{i:03d}.png")
    print(root)


if __name__ == "__main__":
    main()
