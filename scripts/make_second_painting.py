"""A second set of defect images for the quality benchmark's subjects, by a painter written from
issue 19's own words (its defects described, not ours), to see whether the detector was fitted to
the painter it was tuned against (scripts/make_textures.py's).

The checks nobody here sees paint their own defects; this painter was written and committed before
anything was scored with it, and its sizes are the issue's, in pixels of the image:

* scratch: a straight line 2–3 px wide, anti-aliased, of another tone than the surface under it;
* crack: a jagged line 2–3 px wide that darkens the surface (multiplies it) rather than paints it;
* spot: a blob 8–20 px across of another tone;
* contamination: "a soft, half-transparent blob of another tone over 1–2% of the image", of an
  irregular outline (smoothed noise cut inside a disc), tinted where the image has colour;
* smear: "a blurred rectangle", 25–43 px by 20–40 px, the surface under it blurred (σ 3–5 px).

Each subject's training images and good test images are the first painting's (linked, so models
kept from a ``quality.py --keep`` run score them as they were trained); the defect images are new
views of the same surface or part with the second painter's defects, and their masks.

    python scripts/make_second_painting.py PHOTOS FIRST OUT [--subjects a,b] [--test 100] [--seed 0] [--side 256]
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "benchmarks"))

import make_subjects  # noqa: E402
import make_textures as paint  # noqa: E402
from subjects import SUBJECTS, by_name  # noqa: E402

KINDS = ("scratch", "spot", "crack", "contamination", "smear")
FINE = 4  # lines and outlines are drawn this many times finer, then averaged down (anti-aliased)


def _shape(side: int, draw) -> np.ndarray:
    """A mask in [0, 1] of what ``draw`` draws on a FINE-times finer canvas (its coordinates are
    the image's; the drawing function scales them)."""
    canvas = Image.new("L", (side * FINE, side * FINE), 0)
    draw(ImageDraw.Draw(canvas), FINE)
    return np.asarray(canvas.resize((side, side), Image.Resampling.BOX), dtype=np.float32) / 255.0


def _other_tone(rng: np.random.Generator, crop: np.ndarray, where: np.ndarray) -> np.ndarray:
    """A colour 0.25–0.5 away from the surface's mean under ``where``, to whichever side has room,
    with a tint on a colour image."""
    under = crop[where > 0.5].mean(axis=0) if (where > 0.5).any() else crop.reshape(-1, crop.shape[-1]).mean(axis=0)
    level = float(under.mean())
    step = rng.uniform(0.25, 0.5)
    target = level - step if level - step >= 0.02 and (level + step > 0.98 or rng.random() < 0.5) else level + step
    tint = rng.uniform(0.85, 1.15, crop.shape[-1]) if crop.shape[-1] == 3 else np.ones(crop.shape[-1])
    return np.clip(target * tint, 0, 1).astype(np.float32)


def _over(crop: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return crop * (1 - alpha[..., None]) + colour * alpha[..., None]


def scratch(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    side = crop.shape[0]
    x0, y0 = rng.uniform(0.15 * side, 0.85 * side, 2)
    angle, length = rng.uniform(0, np.pi), rng.uniform(20, 50)
    x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
    width = rng.uniform(2, 3)
    mask = _shape(side, lambda d, k: d.line([x0 * k, y0 * k, x1 * k, y1 * k], fill=255, width=round(width * k)))
    return _over(crop, mask, _other_tone(rng, crop, mask)), mask


def spot(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    side = crop.shape[0]
    x, y = rng.uniform(0.15 * side, 0.85 * side, 2)
    rx = rng.uniform(4, 10)
    ry = rx * rng.uniform(0.6, 1.0)
    mask = _shape(side, lambda d, k: d.ellipse([(x - rx) * k, (y - ry) * k, (x + rx) * k, (y + ry) * k], fill=255))
    return _over(crop, mask, _other_tone(rng, crop, mask)), mask


def crack(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    side = crop.shape[0]
    points = [rng.uniform(0.2 * side, 0.8 * side, 2)]
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(8, 16))):
        heading += rng.normal(0, 0.7)
        points.append(points[-1] + rng.uniform(2, 5) * np.array([np.cos(heading), np.sin(heading)]))
    width = rng.uniform(2, 3)
    mask = _shape(side, lambda d, k: d.line([tuple(p * k) for p in points], fill=255, width=round(width * k), joint="curve"))
    darker = rng.uniform(0.15, 0.4)
    return crop * (1 - mask[..., None] * (1 - darker)), mask


def contamination(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    side = crop.shape[0]
    area = rng.uniform(0.01, 0.02) * side * side
    radius = np.sqrt(area / np.pi)
    x, y = rng.uniform(radius + 8, side - radius - 8, 2)
    yy, xx = np.mgrid[0:side, 0:side]
    disc = np.hypot(xx - x, yy - y) / (1.5 * radius)
    noise = Image.fromarray(((rng.random((side, side)) * 255).astype(np.uint8))).filter(ImageFilter.GaussianBlur(float(radius / 3)))
    noise = np.asarray(noise, np.float32)
    lumpy = (noise - noise.mean()) / (noise.std() + 1e-6) * 0.6 - disc * 2  # high near the centre, ragged outline
    outline = lumpy >= np.sort(lumpy.ravel())[-max(1, round(area))]  # the blob's area as asked
    soft = np.asarray(Image.fromarray((outline * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2)), np.float32) / 255.0
    strength = rng.uniform(0.35, 0.6)
    return _over(crop, soft * strength, _other_tone(rng, crop, outline.astype(np.float32))), (soft > 0.25).astype(np.float32)


def smear(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    side = crop.shape[0]
    w, h = rng.uniform(25, 43), rng.uniform(20, 40)
    x, y = rng.uniform(4, side - w - 4), rng.uniform(4, side - h - 4)
    mask = _shape(side, lambda d, k: d.rectangle([x * k, y * k, (x + w) * k, (y + h) * k], fill=255))
    blurred = np.asarray(Image.fromarray(paint.levels(crop)).filter(ImageFilter.GaussianBlur(float(rng.uniform(3, 5)))),
                         dtype=np.float32) / 255.0
    if blurred.ndim == 2:
        blurred = blurred[..., None]
    feather = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1)), np.float32) / 255.0
    return crop * (1 - feather[..., None]) + blurred * feather[..., None], mask


PAINTERS = {"scratch": scratch, "spot": spot, "crack": crack, "contamination": contamination, "smear": smear}


def repaint(name: str, photos: Path, first: Path, out: Path, test: int, seed: int, side: int | None = None) -> Path:
    """OUT/<name>: the first painting's training and good test images linked, new defect images
    (``side``: the first painting's, where it was made with make_subjects.py's ``--side``)."""
    subject = by_name(name)
    source = first / name
    if not (source / "train").is_dir():
        raise FileNotFoundError(f"{source} has no train folder; make it with scripts/make_subjects.py first")
    rng = np.random.default_rng([seed, zlib.crc32(("second " + name).encode())])
    _, view = make_subjects.views(subject, photos, rng, side)
    folder = out / name
    (folder / "test").mkdir(parents=True, exist_ok=True)
    for linked in ("train", "test/good"):
        if not (folder / linked).exists():
            (folder / linked).symlink_to((source / linked).resolve(), target_is_directory=True)
    gray = make_subjects.is_gray(subject)
    changes = []
    for i in range(test):
        kind = KINDS[i % len(KINDS)]
        clean = view()
        damaged, mask = PAINTERS[kind](clean, rng)
        for sub in (f"test/{kind}", f"ground_truth/{kind}"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        paint._save(damaged, folder / "test" / kind / f"{i:03d}.png", gray)
        Image.fromarray(((mask > 0.5) * 255).astype(np.uint8)).save(folder / "ground_truth" / kind / f"{i:03d}_mask.png")
        changes.append(f"test/{kind}/{i:03d}.png,{kind},{make_subjects.visible_change(clean, damaged, mask > 0.5):.2f}")
    (folder / make_subjects.CHANGES_FILE).write_text("file,kind,change\n" + "\n".join(changes) + "\n")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", help="where the subjects' Debian packages were extracted")
    parser.add_argument("first", help="the subjects as scripts/make_subjects.py made them")
    parser.add_argument("out")
    parser.add_argument("--subjects", help="only these, by name (default: every subject FIRST holds)")
    parser.add_argument("--test", type=int, default=100, help="defect images a subject")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side", type=int, help="the images' side, as make_subjects.py --side made FIRST")
    args = parser.parse_args()
    names = args.subjects.split(",") if args.subjects else [s.name for s in SUBJECTS if (Path(args.first) / s.name).is_dir()]
    for name in names:
        try:
            print(repaint(name, Path(args.photos), Path(args.first), Path(args.out), args.test, args.seed, args.side),
                  flush=True)
        except (FileNotFoundError, KeyError) as error:
            print(f"{name}: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
