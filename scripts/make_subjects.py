"""Make the quality benchmark's subjects (benchmarks/subjects.py) as MVTec-layout folders.

From the photographs inside the Debian packages the subjects name, extracted under PHOTOS (the
commands are in subjects.py's docstring); nothing is downloaded here and no image is committed.

* a ``texture``: random crops (128 px) of the photograph, tiled to 512 px or more, as
  scripts/make_textures.py cuts them;
* an ``aligned`` part: the photograph's centred square at 256 px, re-photographed in a fixture for
  each image: shifted by up to 4 px, turned by up to 1°, its light changed by up to 6% and a little
  sensor noise added. The defects are painted on after the jitter, where the camera sees them.

Each test defect image carries one defect of the five kinds of make_textures.py in turn (scratch,
spot, crack, stain, smear), with its mask; sizes are in pixels of the image, so at 256 px a spot is
8–20 px across, a stain or smear 15–30 px.

    python scripts/make_subjects.py PHOTOS OUT [--half tuning|report|fresh|all] [--subjects a,b] [--train 300] [--test 100]
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "benchmarks"))

import make_textures as paint  # noqa: E402
from subjects import HALVES, SUBJECTS, Subject  # noqa: E402

PART_SIDE = 256
TEXTURE_SIDE = 128  # set for each texture: the painters' module-wide side is left at 256 by a part
SHIFT_PX = 4.0
TURN_DEGREES = 1.0
LIGHT = 0.06
NOISE = 0.01  # sensor noise, in units of the pixel range
CHANGES_FILE = "defects.csv"  # each defect image's visible change (``visible_change``), beside the folders


def _photo(path: Path) -> Image.Image:
    picture = Image.open(path)
    if picture.mode in ("RGBA", "LA", "P"):
        picture = picture.convert("RGBA")
        flat = Image.new("RGBA", picture.size, (255, 255, 255, 255))  # a transparent background as white paper
        picture = Image.alpha_composite(flat, picture)
    return picture.convert("RGB")


def texture_canvas(subject: Subject, photos: Path, least: int = paint.PHOTO_CANVAS) -> np.ndarray:
    """The surface to crop from, in [0, 1]: the photograph (its shorter side resized to
    ``subject.side`` where set), tiled to at least ``least`` px a side (512 unless asked)."""
    picture = _photo(photos / subject.path)
    if subject.side:
        scale = subject.side / min(picture.size)
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.Resampling.LANCZOS)
    array = np.asarray(picture, dtype=np.float32) / 255.0
    least = max(least, paint.PHOTO_CANVAS)
    reps = [-(-least // array.shape[0]), -(-least // array.shape[1]), 1]
    return np.tile(array, reps)


class Fixture:
    """One part, photographed again and again in a fixture: the same framing but for a little jitter."""

    def __init__(self, subject: Subject, photos: Path, side: int = PART_SIDE) -> None:
        picture = _photo(photos / subject.path)
        square = min(picture.size)
        left, top = (picture.width - square) // 2, (picture.height - square) // 2
        margin = round(side * 1.1)  # room for the shift and the turn, cut off again afterwards
        self.part = picture.crop((left, top, left + square, top + square)).resize((margin, margin), Image.Resampling.LANCZOS)
        self.side = side

    def view(self, rng: np.random.Generator) -> np.ndarray:
        dx, dy = rng.uniform(-SHIFT_PX, SHIFT_PX, 2)
        turned = self.part.rotate(rng.uniform(-TURN_DEGREES, TURN_DEGREES), Image.Resampling.BICUBIC,
                                  translate=(float(dx), float(dy)), fillcolor=(128, 128, 128))
        offset = (turned.width - self.side) // 2
        array = np.asarray(turned.crop((offset, offset, offset + self.side, offset + self.side)), dtype=np.float32) / 255.0
        light = rng.uniform(1 - LIGHT, 1 + LIGHT)
        return np.clip(array * light + rng.normal(0, NOISE, array.shape), 0, 1).astype(np.float32)


def make_subject(subject: Subject, photos: Path, out: Path, train: int, test: int, seed: int = 0,
                 side: int | None = None) -> Path:
    """One MVTec-layout folder: train/good, test/good, test/<defect>, ground_truth/<defect>; its
    images ``side`` px a side (default: PART_SIDE for parts, TEXTURE_SIDE for textures)."""
    rng = np.random.default_rng([seed, zlib.crc32(subject.name.encode())])
    side, image = views(subject, photos, rng, side)
    paint.CROP = side  # the painters draw in the image's own pixels
    folder = out / subject.name
    for sub in ("train/good", "test/good", *(f"test/{d}" for d in paint.DEFECTS), *(f"ground_truth/{d}" for d in paint.DEFECTS)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    gray = is_gray(subject)
    for i in range(train):
        paint._save(image(), folder / "train" / "good" / f"{i:03d}.png", gray)
    for i in range(test):
        paint._save(image(), folder / "test" / "good" / f"{i:03d}.png", gray)
    changes = []
    for i in range(test):
        kind = paint.DEFECTS[i % len(paint.DEFECTS)]
        clean = image()
        damaged, mask = paint.DEFECT_MAKERS[kind](clean, rng)
        paint._save(damaged, folder / "test" / kind / f"{i:03d}.png", gray)
        Image.fromarray(((mask > 0.5) * 255).astype(np.uint8)).save(folder / "ground_truth" / kind / f"{i:03d}_mask.png")
        changes.append(f"test/{kind}/{i:03d}.png,{kind},{visible_change(clean, damaged, mask > 0.5):.2f}")
    (folder / CHANGES_FILE).write_text("file,kind,change\n" + "\n".join(changes) + "\n")
    return folder


def views(subject: Subject, photos: Path, rng: np.random.Generator,
          side: int | None = None) -> tuple[int, Callable[[], np.ndarray]]:
    """The images' side and a new view of the subject on each call: a random crop of a texture, the
    part in its fixture again (``side`` default: PART_SIDE for parts, TEXTURE_SIDE for textures)."""
    if subject.kind == "aligned":
        fixture = Fixture(subject, photos, side or PART_SIDE)
        return fixture.side, lambda: fixture.view(rng)
    canvas = texture_canvas(subject, photos, (side or TEXTURE_SIDE) * 2)
    side = side or TEXTURE_SIDE

    def crop() -> np.ndarray:
        y, x = rng.integers(0, canvas.shape[0] - side), rng.integers(0, canvas.shape[1] - side)
        return canvas[y : y + side, x : x + side].copy()

    return side, crop


def is_gray(subject: Subject) -> bool:
    """Whether the subject's photograph is gray, and its images are saved so."""
    return subject.package == "krita-data" or subject.path.endswith("box.png")


def visible_change(clean: np.ndarray, damaged: np.ndarray, inside: np.ndarray) -> float:
    """How much the paint changed the saved image inside its mask: the mean absolute difference in
    grey levels (0–255). A smear over a surface that is smooth at its scale changes nothing (a
    2,048-px wood photo: 0.2–0.6), and a benchmark should not count a defect nobody could see."""
    change = np.abs(paint.levels(damaged).astype(np.int16) - paint.levels(clean))
    return float(change[inside].mean()) if inside.any() else 0.0


def main(subjects: tuple[Subject, ...] = SUBJECTS, description: str = __doc__, train: int = 300, test: int = 100,
         side: int | None = None) -> int:
    """The command line, for these subjects (``make_large_photos.py`` gives its own and their size)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="where the subjects' Debian packages were extracted")
    parser.add_argument("out")
    parser.add_argument("--half", choices=(*HALVES, "all"), default="all")
    parser.add_argument("--subjects", help="only these, by name")
    parser.add_argument("--train", type=int, default=train)
    parser.add_argument("--test", type=int, default=test, help="good test images; as many defect images")
    parser.add_argument("--side", type=int, default=side, help="the images' side (default: 256 for parts, 128 for textures)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    chosen = [s for s in subjects if args.half in ("all", s.half)]
    if args.subjects:
        names = set(args.subjects.split(","))
        chosen = [s for s in chosen if s.name in names]
    for subject in chosen:
        if not (Path(args.photos) / subject.path).is_file():
            print(f"{subject.name}: {Path(args.photos) / subject.path} is missing; extract {subject.package} there first.",
                  file=sys.stderr)
            return 2
        print(make_subject(subject, Path(args.photos), Path(args.out), args.train, args.test, args.seed, args.side),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
