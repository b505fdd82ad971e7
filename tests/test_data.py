from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_folder, write_mnist_csv
from egbad_core.config import Normalisation
from egbad_core.data.sources import DataSource, parse_labels
from egbad_core.data.loading import load_test_set, load_training_set
from egbad_core.errors import EgbadError


def test_demo_is_the_seeds_split():
    source = DataSource.parse("demo")
    train = load_training_set(source, 64)
    test = load_test_set(source, 64)
    assert len(train) == 400 and set(train.labels) == {"7", "8"}
    assert train.pixels.shape == (400, 1, 64, 64)
    assert set(test.labels) == {"2", "7", "8"}
    assert test.is_defect.sum() == test.labels.count("2") > 0
    assert 0.0 <= float(train.pixels.min()) and float(train.pixels.max()) <= 1.0


def test_csv_keeps_normal_labels_for_training_and_marks_defects(mnist_csv):
    source = DataSource.parse(str(mnist_csv), normal_labels="7,8", test_labels="2,7")
    train = load_training_set(source, 32)
    test = load_test_set(source, 32)
    assert len(train) == 16 and set(train.labels) == {"7", "8"}
    assert train.pixels.shape == (16, 1, 32, 32)
    assert set(test.labels) == {"2", "7"}
    assert list(test.is_defect) == [label == "2" for label in test.labels]
    assert test.ids[0] == "digits.csv#row1"


def test_normalisation_happens_once_as_an_affine_map(mnist_csv):
    train = load_training_set(DataSource.parse(str(mnist_csv)), 16)
    normalised = Normalisation(0.5, 0.5).apply(train.pixels)
    assert float(normalised.min()) >= -1.0 and float(normalised.max()) <= 1.0
    assert np.allclose(normalised.numpy(), train.pixels.numpy() * 2 - 1)


@pytest.mark.parametrize(
    "content,message",
    [
        ("", "is empty"),
        ("a,b\n1,2\n", "no 'label' column"),
        ("label," + ",".join(f"p{i}" for i in range(783)) + "\n" + "7" + ",0" * 783 + "\n", "783 pixel columns"),
    ],
)
def test_bad_csv_files_get_a_plain_message_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(EgbadError, match=message) as error:
        load_training_set(DataSource.parse(str(path)), 16)
    assert "bad.csv" in str(error.value)


@pytest.mark.parametrize("cell,row", [("x", 4), ("", 6)])
def test_non_numeric_and_missing_pixels_are_named_by_row(tmp_path, mnist_csv, cell, row):
    lines = mnist_csv.read_text().splitlines()
    values = lines[row].split(",")
    values[10] = cell
    lines[row] = ",".join(values)
    path = tmp_path / "cells.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(EgbadError, match=f"cells.csv has a missing or non-numeric pixel on data row {row}"):
        load_training_set(DataSource.parse(str(path)), 16)


def test_labels_the_file_does_not_hold_are_refused(mnist_csv):
    with pytest.raises(EgbadError, match="no rows labelled 9"):
        load_training_set(DataSource.parse(str(mnist_csv), normal_labels="7,9"), 16)


def test_missing_path_is_refused():
    with pytest.raises(EgbadError, match="does not exist"):
        DataSource.parse("/no/such/file.csv")


def test_labels_parse_as_text():
    assert parse_labels(" 7, 8.0 ,") == ("7", "8")
    assert parse_labels(None) is None


def test_folder_in_mvtec_layout(image_folder):
    source = DataSource.parse(str(image_folder))
    train = load_training_set(source, 32)
    test = load_test_set(source, 32, channels=train.channels)
    assert train.pixels.shape == (12, 1, 32, 32)  # grey textures stay one channel
    assert test.label_counts() == {"good": 4, "spot": 4}
    assert list(test.is_defect) == [label == "spot" for label in test.labels]
    assert test.ids[0].startswith("test/good/")


def test_colour_folders_get_three_channels(tmp_path):
    root = write_folder(tmp_path / "colour", train=4, good=1, defects=1, colour=True)
    assert load_training_set(DataSource.parse(str(root)), 16).channels == 3


def test_one_unreadable_image_is_skipped_and_named(image_folder):
    good = image_folder / "train" / "good"
    (good / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (good / "empty.png").write_bytes(b"")
    (good / "notes.txt").write_text("hello")
    truncated = (good / "000.png").read_bytes()
    (good / "truncated.png").write_bytes(truncated[: len(truncated) // 2])
    train = load_training_set(DataSource.parse(str(image_folder)), 16)
    assert len(train) == 12
    skipped = {Path(s.path).name: s.reason for s in train.skipped}
    assert set(skipped) == {"broken.png", "empty.png", "notes.txt", "truncated.png"}
    assert "empty" in skipped["empty.png"]


def test_unusual_image_modes_are_converted(image_folder):
    good = image_folder / "train" / "good"
    Image.fromarray((np.arange(30 * 40).reshape(30, 40) * 50).astype(np.uint16)).save(good / "deep.png")
    Image.new("RGBA", (40, 30), (10, 200, 30, 128)).save(good / "alpha.png")
    Image.new("RGB", (40, 30), (10, 200, 30)).convert("P").save(good / "palette.png")
    Image.new("CMYK", (40, 30), (10, 20, 30, 0)).save(good / "cmyk.tiff")
    train = load_training_set(DataSource.parse(str(image_folder)), 16)
    assert len(train) == 16 and not train.skipped


def test_a_huge_image_is_refused_without_decoding_it(image_folder):
    huge = image_folder / "train" / "good" / "huge.png"
    Image.new("L", (20000, 20000)).save(huge)  # compresses to a few hundred KB
    train = load_training_set(DataSource.parse(str(image_folder)), 16)
    assert [Path(s.path).name for s in train.skipped] == ["huge.png"]
    assert "too large" in train.skipped[0].reason


@pytest.mark.parametrize("layout", ["empty", "no_train_good", "no_images"])
def test_folders_without_usable_training_images_are_refused(tmp_path, layout):
    root = tmp_path / "data"
    root.mkdir()
    if layout == "no_train_good":
        (root / "test" / "good").mkdir(parents=True)
    if layout == "no_images":
        (root / "train" / "good").mkdir(parents=True)
        (root / "train" / "good" / "a.png").write_bytes(b"")
    with pytest.raises(EgbadError, match={"empty": "is empty", "no_train_good": "train/good", "no_images": "no readable image"}[layout]):
        load_training_set(DataSource.parse(str(root)), 16)


def test_csv_rows_of_the_wrong_width(tmp_path):
    path = write_mnist_csv(tmp_path / "ok.csv", [7, 8])
    text = path.read_text().splitlines()
    text[1] += ",5"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(EgbadError, match="ok.csv"):
        load_training_set(DataSource.parse(str(path)), 16)
