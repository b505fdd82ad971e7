"""Ground-truth defect masks in MVTec AD's layout, read beside the test images they belong to.

``ground_truth/<label>/<name>_mask.png`` marks the defect pixels of ``test/<label>/<name>.png``.
Masks are made to fit rather than refused: one of another size is resized (nearest neighbour),
one that is not binary is thresholded at half its range, and a defect image without a mask is
named and left out of the pixel-level metrics, never guessed as all clear.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

GROUND_TRUTH = "ground_truth"


def mask_path(root: Path, label: str, image_id: str) -> Path:
    """Where MVTec AD keeps the mask of ``test/<label>/<name>``."""
    return root / GROUND_TRUTH / label / f"{Path(image_id).stem}_mask.png"


def read_masks(root: Path, labels: list[str], ids: list[str], size: int | tuple[int, int],
               originals: list[tuple[int, int]], normal_label: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(masks (N, size, size) bool, known (N,) bool, notes), or (N, height, width) where ``size`` is
    a (height, width): an image labelled ``normal_label`` has an empty mask, known without a file."""
    shape = (size, size) if isinstance(size, int) else tuple(size)
    masks = np.zeros((len(labels), *shape), dtype=bool)
    known = np.zeros(len(labels), dtype=bool)
    resized, thresholded, missing = [], [], []
    for index, (label, image_id) in enumerate(zip(labels, ids)):
        if label == normal_label:
            known[index] = True
            continue
        path = mask_path(root, label, image_id)
        try:
            with Image.open(path) as image:
                values = np.asarray(image.convert("L"), dtype=np.float32)
        except (FileNotFoundError, UnidentifiedImageError, OSError):
            missing.append(str(path.relative_to(root)))
            continue
        low, high = float(values.min()), float(values.max())
        if np.unique(values).size > 2 or (high not in (0.0, 255.0) and high > 0):
            thresholded.append(path.name)
        binary = values > ((low + high) / 2 if high > low else 127.5)
        if binary.shape != tuple(originals[index]):
            resized.append(path.name)
        if binary.shape != shape:
            binary = np.asarray(Image.fromarray(binary).resize(shape[::-1], Image.Resampling.NEAREST), dtype=bool)
        masks[index] = binary
        known[index] = True
    notes = []
    if missing:
        notes.append(f"{len(missing)} defect image(s) have no mask and are left out of the pixel metrics: "
                     + ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "") + ".")
    if thresholded:
        notes.append(f"{len(thresholded)} mask(s) were not black and white and were thresholded at half, "
                     f"e.g. {thresholded[0]}.")
    if resized:
        notes.append(f"{len(resized)} mask(s) were not the size of their image and were resized, e.g. {resized[0]}.")
    return masks, known, notes
