"""An inspector's marks: kept beside the data, counted in the metrics as the image's label (issue 21)."""

import json

import pytest

from conftest import write_folder
from egbad_core import session
from egbad_core.cli import main
from egbad_core.errors import EgbadError
from egbad_core.events import run_to_end


@pytest.fixture
def scored(tiny_checkpoint, tmp_path):
    root = write_folder(tmp_path / "parts", train=4, good=4, defects=4)
    source = session.parse_source(str(root))
    request = session.ScoreRequest(session.load_checkpoint(tiny_checkpoint), threshold=0.0)
    return root, source, request, run_to_end(session.detect(request, source))


def test_a_mark_replaces_the_folders_label_in_the_metrics_and_is_kept_beside_the_data(scored):
    root, source, request, detection = scored
    defect = detection.images.ids.index("test/spot/000.png")
    before = detection.truth.copy()
    kept = session.mark_image(detection, source, defect, False)  # the inspector says: this one is good
    assert kept == root / "corrections.csv" and kept.read_text() == "id,verdict\ntest/spot/000.png,good\n"
    assert before[defect] and not detection.truth[defect] and (detection.truth != before).sum() == 1
    assert detection.summary()["n_defects"] == int(before.sum()) - 1 and detection.summary()["corrected"] == 1
    again = run_to_end(session.detect(request, source))  # a later run on the folder reads the marks
    assert again.corrections == {"test/spot/000.png": False} and not again.truth[defect]
    session.mark_image(again, source, defect, None)  # taken back: the folder's label again
    assert kept.read_text() == "id,verdict\n" and again.truth[defect]


def test_egbad_detect_counts_the_marks_and_a_broken_file_is_one_sentence(scored, tiny_checkpoint, tmp_path, capsys):
    root, source, _, detection = scored
    session.mark_image(detection, source, detection.images.ids.index("test/good/001.png"), True)
    out = tmp_path / "out"
    assert main(["detect", "--checkpoint", str(tiny_checkpoint), "--data", str(root), "--out-dir", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["corrected"] == 1 and summary["n_defects"] == 5
    row = next(r for r in (out / "scores.csv").read_text().splitlines() if r.startswith("test/good/001.png"))
    assert row.split(",")[2] == "True"  # is_defect as marked
    assert "corrections.csv" not in capsys.readouterr().err  # not named as a skipped file either
    (root / "corrections.csv").write_text("what,ever\n1,2\n")
    assert main(["detect", "--checkpoint", str(tiny_checkpoint), "--data", str(root), "--out-dir", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corrections.csv is not a corrections file" in err[0]


def test_marks_need_a_folder(tiny_checkpoint, mnist_csv):
    source = session.parse_source(str(mnist_csv), normal_labels="7,8")
    detection = run_to_end(session.detect(session.ScoreRequest(session.load_checkpoint(tiny_checkpoint)), source))
    with pytest.raises(EgbadError, match="not a folder"):
        session.mark_image(detection, source, 0, True)
