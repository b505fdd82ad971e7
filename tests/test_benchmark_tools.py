"""The benchmark's own measuring tools: a figure is only as good as what it counts."""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import make_second_painting as second  # noqa: E402
import make_subjects  # noqa: E402
import make_textures as paint  # noqa: E402
from visible import pixel_figures  # noqa: E402


def test_a_smear_on_a_smooth_surface_changes_nothing_a_spot_does():
    rng = np.random.default_rng(0)
    paint.CROP = 96
    flat = np.full((96, 96, 3), 0.5, np.float32)
    smeared, smear_mask = paint.smear(flat.copy(), rng)
    spotted, spot_mask = paint.spot(flat.copy(), rng)
    assert make_subjects.visible_change(flat, smeared, smear_mask > 0.5) == 0.0
    assert make_subjects.visible_change(flat, spotted, spot_mask > 0.5) > 50.0


def test_the_second_painter_draws_the_sizes_issue_19_names():
    """Its defects are the issue's words: lines 2–3 px wide, contamination over 1–2% of the image,
    a smear a 20–43 px rectangle; each mask covers what changed, nothing outside it changed."""
    rng = np.random.default_rng(1)
    surface = np.random.default_rng(2).uniform(0.3, 0.7, (128, 128, 3)).astype(np.float32)
    for _ in range(6):
        for kind, painter in second.PAINTERS.items():
            painted, mask = painter(surface.copy(), rng)
            changed = np.abs(painted - surface).max(axis=-1) > 0.02  # 5 grey levels
            inside = mask > 0.5
            assert changed[inside].mean() > 0.9, kind
            outside = ~_grown(inside, 6)  # a soft edge reaches a few px at most
            if kind == "contamination":  # its blur's tail, under a quarter of its strength (as a stain's mask)
                assert np.abs(painted - surface).max(axis=-1)[outside].max() < 0.1
            else:
                assert not (changed & outside).any(), kind
            area = inside.sum()
            if kind in ("scratch", "crack"):
                ends = max(np.ptp(np.nonzero(inside)[0]), np.ptp(np.nonzero(inside)[1]))
                assert 1.5 <= area / max(ends, 1) <= 4.5 if kind == "scratch" else area > 0, kind
            if kind == "contamination":
                assert 0.008 * 128 * 128 <= area <= 0.03 * 128 * 128
            if kind == "smear":
                rows, columns = np.nonzero(inside)
                assert 20 <= np.ptp(rows) + 1 <= 41 and 25 <= np.ptp(columns) + 1 <= 44


def _grown(mask: np.ndarray, by: int) -> np.ndarray:
    grown = mask.copy()
    for axis in (0, 1):  # a square of 2·by + 1: along one axis, then that along the other
        along = grown.copy()
        for shift in range(1, by + 1):
            along |= np.roll(grown, shift, axis) | np.roll(grown, -shift, axis)
        grown = along
    return grown


def _image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_pixel_figures_leave_faint_defects_out_of_the_seen_figure(tmp_path):
    """Two defect images: a spot the map finds and a 'smear' that changed nothing, which the map
    (rightly) does not find. Over all masks the figure is pulled down; over what could be seen it is 1."""
    folder, maps = tmp_path / "subject", tmp_path / "maps"
    maps.mkdir()
    inside = np.zeros((32, 32), np.uint8)
    inside[8:16, 8:16] = 255
    for kind, name in (("good", "000"), ("spot", "001"), ("smear", "002")):
        _image(folder / "test" / kind / f"{name}.png", np.zeros((32, 32), np.uint8))
        anomaly_map = np.random.default_rng(int(name)).uniform(0, 1, (32, 32)).astype(np.float32)
        if kind != "good":
            _image(folder / "ground_truth" / kind / f"{name}_mask.png", inside)
        if kind == "spot":
            anomaly_map[8:16, 8:16] += 5.0
        np.save(maps / f"test_{kind}_{name}.npy", anomaly_map)
    (folder / make_subjects.CHANGES_FILE).write_text("file,kind,change\ntest/spot/001.png,spot,80.0\n"
                                                     "test/smear/002.png,smear,0.4\n")
    figures = pixel_figures(folder, maps)
    assert figures["faint"] == ["test/smear/002.png (0.4)"]
    assert figures["pixel_auroc_seen"] == 1.0
    assert figures["pixel_kinds"] == {"spot": 1.0}
    assert 0.6 < figures["pixel_auroc"] < 0.9  # the smear's pixels are ranked as noise
