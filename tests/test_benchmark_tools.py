"""The benchmark's own measuring tools: a figure is only as good as what it counts."""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

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
