"""Make the texture benchmark: MVTec-layout folders of procedural surfaces with small defects.

Each material is one large procedural "photograph" (1024×1024); training and test images are
random 128×128 crops of it, so nothing is aligned from one image to the next, as with crops of a
real photo. A defect image carries one defect of a random kind and size, painted into the crop,
and its mask under ``ground_truth/<kind>/<name>_mask.png``:

* scratch: a thin straight line, darker or brighter than the surface;
* spot: a small filled disc of another tone;
* crack: a dark jagged line (a random walk);
* stain: a soft-edged blob that shifts the tone, half transparent;
* smear: a patch where the surface is blurred out.

Materials: stone (fractal noise), bricks, gravel (stones with dark gaps), fabric (a weave),
wood (rings and grain) and grass (blades). Reproducible from the seed; nothing is downloaded.

    python scripts/make_textures.py OUT [--materials stone,bricks,...] [--train 300] [--test 100]
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CANVAS = 1024
PHOTO_CANVAS = 512  # a photographed surface is tiled to this side, the size of many texture photographs
CROP = 128
MATERIALS = ("stone", "bricks", "gravel", "fabric", "wood", "grass")
DEFECTS = ("scratch", "spot", "crack", "stain", "smear")


# ---------------------------------------------------------------------------------------- surfaces


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: random values on a coarse grid, bicubically enlarged."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    image = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)


def _fractal(rng: np.random.Generator, size: int, octaves: tuple[int, ...]) -> np.ndarray:
    total = sum(_value_noise(rng, size, cells) / (i + 1) for i, cells in enumerate(octaves))
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def stone(rng: np.random.Generator) -> np.ndarray:
    base = _fractal(rng, CANVAS, (8, 32, 128, 384))
    speckle = rng.normal(0, 0.05, (CANVAS, CANVAS))
    gray = 0.35 + 0.4 * base + speckle
    return np.stack([gray * 1.0, gray * 0.97, gray * 0.92], -1)


def bricks(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:CANVAS, 0:CANVAS]
    height, width, mortar = 40, 90, 5
    row = y // height
    shifted = x + (row % 2) * (width // 2)
    column = shifted // width
    in_mortar = ((y % height) < mortar) | ((shifted % width) < mortar)
    tone = rng.uniform(0.45, 0.7, (CANVAS // height + 2, CANVAS // width + 3))[row, column]
    grain = _fractal(rng, CANVAS, (64, 256)) * 0.15 + rng.normal(0, 0.04, (CANVAS, CANVAS))
    red = np.where(in_mortar, 0.75, tone + grain)
    return np.stack([red, np.where(in_mortar, 0.72, red * 0.55), np.where(in_mortar, 0.68, red * 0.45)], -1)


def gravel(rng: np.random.Generator) -> np.ndarray:
    count = 2600
    centres = rng.random((count, 2)) * CANVAS
    tones = rng.uniform(0.3, 0.85, count)
    y, x = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
    best = np.full((CANVAS, CANVAS), 1e4, np.float32)
    second = np.full((CANVAS, CANVAS), 1e4, np.float32)
    owner = np.zeros((CANVAS, CANVAS), np.int64)
    for i, (cy, cx) in enumerate(centres):  # nearest and second-nearest stone centre per pixel
        y0, y1 = int(max(cy - 40, 0)), int(min(cy + 40, CANVAS))
        x0, x1 = int(max(cx - 40, 0)), int(min(cx + 40, CANVAS))
        d = np.hypot(y[y0:y1, x0:x1] - cy, x[y0:y1, x0:x1] - cx)
        b, s = best[y0:y1, x0:x1], second[y0:y1, x0:x1]
        closer = d < b
        second[y0:y1, x0:x1] = np.where(closer, b, np.minimum(s, d))
        owner[y0:y1, x0:x1] = np.where(closer, i, owner[y0:y1, x0:x1])
        best[y0:y1, x0:x1] = np.where(closer, d, b)
    edge = np.clip((second - best) / 4.0, 0, 1)  # dark gaps between stones
    shade = 1.0 - 0.35 * np.clip(best / 25.0, 0, 1)  # rounded stones: lighter in the middle
    gray = tones[owner] * shade * (0.25 + 0.75 * edge) + rng.normal(0, 0.04, (CANVAS, CANVAS))
    return np.stack([gray, gray * 0.95, gray * 0.9], -1)


def fabric(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
    wobble = _fractal(rng, CANVAS, (16, 64)) * 2.0
    warp = np.sin((x + wobble) * np.pi / 4.0)
    weft = np.sin((y + wobble) * np.pi / 4.0)
    over = (np.floor(x / 8) + np.floor(y / 8)) % 2
    weave = np.where(over > 0, 0.5 + 0.3 * warp, 0.5 + 0.3 * weft)
    gray = weave * (0.85 + 0.15 * _fractal(rng, CANVAS, (8, 32))) + rng.normal(0, 0.03, (CANVAS, CANVAS))
    return np.stack([gray * 0.55, gray * 0.65, gray * 0.95], -1)


def wood(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
    warp = _fractal(rng, CANVAS, (4, 16, 64)) * 40.0
    rings = np.sin((x * 0.9 + 0.1 * y + warp) * 2 * np.pi / 23.0)
    grain = _value_noise(rng, CANVAS, 512) * 0.1
    gray = 0.55 + 0.15 * rings + grain + rng.normal(0, 0.02, (CANVAS, CANVAS))
    return np.stack([gray, gray * 0.72, gray * 0.45], -1)


def grass(rng: np.random.Generator) -> np.ndarray:
    base = 0.35 + 0.1 * _fractal(rng, CANVAS, (16, 64))
    image = Image.fromarray((np.clip(base, 0, 1) * 255).astype(np.uint8), mode="L")
    draw = ImageDraw.Draw(image)
    for _ in range(60000):
        x0, y0 = rng.uniform(0, CANVAS, 2)
        length = rng.uniform(8, 22)
        angle = np.pi / 2 + rng.normal(0, 0.35)
        x1, y1 = x0 + length * np.cos(angle), y0 - length * np.sin(angle)
        draw.line([x0, y0, x1, y1], fill=int(rng.uniform(40, 230)), width=int(rng.integers(1, 3)))
    gray = np.asarray(image, dtype=np.float32) / 255.0
    return np.stack([gray * 0.6, gray, gray * 0.45], -1)


SURFACES = {"stone": stone, "bricks": bricks, "gravel": gravel, "fabric": fabric, "wood": wood, "grass": grass}


# ---------------------------------------------------------------------------------------- defects


def _tone(rng: np.random.Generator, patch: np.ndarray) -> tuple[float, float, float]:
    """A colour well away from the crop's mean: darker on a light surface, lighter on a dark one."""
    mean = float(patch.mean())
    level = rng.uniform(0.02, 0.2) if mean > 0.45 or rng.random() < 0.5 else rng.uniform(0.8, 0.98)
    return (level, level * rng.uniform(0.9, 1.0), level * rng.uniform(0.85, 1.0))


def _draw_mask(draw_shape) -> np.ndarray:
    mask = Image.new("L", (CROP, CROP), 0)
    draw_shape(ImageDraw.Draw(mask))
    return np.asarray(mask, dtype=np.float32) / 255.0


def _paint(crop: np.ndarray, mask: np.ndarray, colour) -> np.ndarray:
    alpha = mask[..., None]
    return crop * (1 - alpha) + np.asarray(colour, np.float32) * alpha


def scratch(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x0, y0 = rng.uniform(20, CROP - 20, 2)
    angle, length = rng.uniform(0, np.pi), rng.uniform(20, 55)
    x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
    width = int(rng.integers(1, 4))
    mask = _draw_mask(lambda d: d.line([x0, y0, x1, y1], fill=255, width=width))
    return _paint(crop, mask, _tone(rng, crop)), mask


def spot(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x, y = rng.uniform(16, CROP - 16, 2)
    r = rng.uniform(4, 10)
    mask = _draw_mask(lambda d: d.ellipse([x - r, y - r * rng.uniform(0.6, 1.0), x + r, y + r], fill=255))
    return _paint(crop, mask, _tone(rng, crop)), mask


def crack(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    points = [rng.uniform(25, CROP - 25, 2)]
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(6, 12))):
        heading += rng.normal(0, 0.6)
        points.append(points[-1] + rng.uniform(3, 7) * np.array([np.cos(heading), np.sin(heading)]))
    line = [tuple(p) for p in points]
    width = int(rng.integers(1, 3))
    mask = _draw_mask(lambda d: d.line(line, fill=255, width=width, joint="curve"))
    level = rng.uniform(0.0, 0.12)
    return _paint(crop, mask, (level, level, level)), mask


def stain(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x, y = rng.uniform(20, CROP - 20, 2)
    rx, ry = rng.uniform(7, 14, 2)
    shape = Image.new("L", (CROP, CROP), 0)
    ImageDraw.Draw(shape).ellipse([x - rx, y - ry, x + rx, y + ry], fill=255)
    soft = np.asarray(shape.filter(ImageFilter.GaussianBlur(3)), dtype=np.float32) / 255.0
    strength = rng.uniform(0.45, 0.7)
    colour = np.asarray(_tone(rng, crop), np.float32) * rng.uniform(0.8, 1.2, 3)
    stained = _paint(crop, soft * strength, np.clip(colour, 0, 1))
    return stained, (soft > 0.25).astype(np.float32)


def smear(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x, y = rng.uniform(20, CROP - 20, 2)
    rx, ry = rng.uniform(8, 15, 2)
    mask = _draw_mask(lambda d: d.ellipse([x - rx, y - ry, x + rx, y + ry], fill=255))
    # Rounded as _save rounds: truncating had darkened every smear by half a grey level on average,
    # a trace a detector could find where the blur itself changed nothing.
    picture = Image.fromarray(levels(crop))
    blurred = np.asarray(picture.filter(ImageFilter.GaussianBlur(4)), dtype=np.float32) / 255.0
    soft = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5)),
                      dtype=np.float32)[..., None] / 255.0
    return crop * (1 - soft) + blurred * soft, mask


DEFECT_MAKERS = {"scratch": scratch, "spot": spot, "crack": crack, "stain": stain, "smear": smear}


# ---------------------------------------------------------------------------------------- folders


def levels(array: np.ndarray) -> np.ndarray:
    """An image in [0, 1] as the whole 0–255 levels a file holds (rounded)."""
    return (np.clip(array, 0, 1) * 255).round().astype(np.uint8)


def _save(array: np.ndarray, path: Path, gray: bool) -> None:
    pixels = levels(array)
    image = Image.fromarray(pixels)
    (image.convert("L") if gray else image).save(path)


def photo_surface(path: Path) -> np.ndarray:
    """A photographed surface as a canvas: the picture tiled to at least PHOTO_CANVAS a side (game
    terrain photos are made to tile seamlessly), values in [0, 1]."""
    picture = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    reps = [-(-PHOTO_CANVAS // picture.shape[0]), -(-PHOTO_CANVAS // picture.shape[1]), 1]
    return np.tile(picture, reps)[:PHOTO_CANVAS, :PHOTO_CANVAS]


def make_material(root: Path, material: str, train: int, test: int, seed: int, gray: bool = False,
                  photo: Path | None = None) -> Path:
    """One MVTec-layout folder: train/good, test/good, test/<defect>, ground_truth/<defect>.
    ``photo``: the surface is that photograph instead of the procedural material."""
    rng = np.random.default_rng([seed, MATERIALS.index(material) if photo is None else zlib.crc32(material.encode())])
    canvas = photo_surface(photo) if photo is not None else np.clip(SURFACES[material](rng), 0, 1).astype(np.float32)
    folder = root / material

    def crop() -> np.ndarray:
        y, x = rng.integers(0, canvas.shape[0] - CROP, 2)
        return canvas[y : y + CROP, x : x + CROP].copy()

    for sub in ("train/good", "test/good", *(f"test/{d}" for d in DEFECTS), *(f"ground_truth/{d}" for d in DEFECTS)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(train):
        _save(crop(), folder / "train" / "good" / f"{i:03d}.png", gray)
    for i in range(test):
        _save(crop(), folder / "test" / "good" / f"{i:03d}.png", gray)
    for i in range(test):
        kind = DEFECTS[i % len(DEFECTS)]
        damaged, mask = DEFECT_MAKERS[kind](crop(), rng)
        _save(damaged, folder / "test" / kind / f"{i:03d}.png", gray)
        Image.fromarray(((mask > 0.5) * 255).astype(np.uint8)).save(folder / "ground_truth" / kind / f"{i:03d}_mask.png")
    return folder


def main() -> None:
    global CROP
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--materials", default=",".join(MATERIALS))
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--test", type=int, default=100, help="good test images; as many defect images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gray", action="store_true", help="write grayscale images, as many texture photographs are")
    parser.add_argument("--size", type=int, default=128, help="side of each image (default %(default)s)")
    parser.add_argument("--photos", help="a folder of texture photographs: each one (named by --materials, "
                        "without .png) is a surface instead of a procedural material")
    args = parser.parse_args()
    CROP = args.size
    for material in args.materials.split(","):
        photo = Path(args.photos) / f"{material}.png" if args.photos else None
        print(make_material(Path(args.out), material, args.train, args.test, args.seed, args.gray, photo))


if __name__ == "__main__":
    main()
