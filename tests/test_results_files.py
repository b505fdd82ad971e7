"""The files a scoring run leaves: scores.csv with one header mid-run and at the end, the grid's
captions in glyphs its font has, and the summary."""

import csv
import json

import numpy as np
import pytest
from egbad_core.config import replace
from egbad_core.data.loading import load_test_set
from egbad_core.data.sources import DataSource
from egbad_core.model.checkpoints import load_checkpoint
from egbad_core.run import grid as grid_module
from egbad_core.run.results import COLUMNS, ScoresFile, write_scores_csv, write_summary
from egbad_core.run.scoring import run_detection


@pytest.fixture
def detection(tiny_checkpoint, mnist_csv):
    checkpoint = load_checkpoint(tiny_checkpoint)
    images = load_test_set(DataSource.parse(str(mnist_csv), normal_labels="7,8"), 16, 1)
    return run_detection(checkpoint, images, threshold="p99")


def test_scores_csv_has_the_same_header_while_a_run_goes_and_at_its_end(detection, tmp_path):
    rows = ScoresFile(tmp_path / "partial.csv")
    rows.append(replace(detection, threshold=float("inf")))  # mid-run: no threshold yet
    rows.close()
    write_scores_csv(tmp_path / "final.csv", detection)
    partial = list(csv.DictReader(open(tmp_path / "partial.csv")))
    final = list(csv.DictReader(open(tmp_path / "final.csv")))
    assert tuple(partial[0]) == tuple(final[0]) == COLUMNS
    assert {row["flagged"] for row in partial} == {""}  # not known until the threshold is
    assert {row["flagged"] for row in final} <= {"True", "False"} and any(row["flagged"] == "True" for row in final)
    assert [row["score"] for row in partial] == [row["score"] for row in final]
    assert [float(row["score"]) for row in final] == detection.scores.score.tolist()  # exactly, as repr
    assert [row["is_defect"] == "True" for row in final] == detection.images.is_defect.tolist()


def test_the_grid_captions_use_only_glyphs_its_font_has(detection):
    font = grid_module._font(11)
    missing = bytes(font.getmask("\ufffe"))  # a character no font draws: the box shown for a missing glyph
    image = grid_module.render_grid(detection, max_images=4)
    assert image.size[0] > 0
    relative = detection.relative()
    text = f"{relative[0]:.2f}x p99"  # what a caption says of a score
    for character in set(text + "score R Dis 0123456789.") - {" "}:
        assert bytes(font.getmask(character)) != missing, f"the grid's font has no {character!r}"
    assert "×" not in open(grid_module.__file__, encoding="utf-8").read().split("def render_grid")[1].split("def write_grid")[0]


def test_the_summary_is_json_with_numpy_numbers(detection, tmp_path):
    summary = detection.summary()
    summary["extra"] = np.float32(0.5)
    path = write_summary(tmp_path / "summary.json", summary)
    read = json.loads(path.read_text())
    assert read["n_images"] == len(detection.images) and read["extra"] == 0.5
