"""The score table's model: it sorts itself, and a re-flag or a selection follows the image."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QModelIndex, Qt  # noqa: E402

from egbad_gui.score_table import COLUMNS, ScoreTableModel  # noqa: E402

SCORE = COLUMNS.index("Score")
ID = COLUMNS.index("ID")


@pytest.fixture
def model(qtbot):
    table = ScoreTableModel()
    score = np.array([0.5, 3.0, 1.0, 2.0, np.nan])
    table.set_results([f"img{i}" for i in range(5)], ["good"] * 5, score, score, score, None,
                      np.zeros(5, bool), None)
    return table


def _column(model, column):
    return [model.data(model.index(row, column)) for row in range(model.rowCount())]


def test_a_header_click_sorts_by_the_columns_numbers(model):
    model.sort(SCORE, Qt.SortOrder.DescendingOrder)
    assert _column(model, ID) == ["img1", "img3", "img2", "img0", "img4"]  # an unknown score last
    model.sort(ID, Qt.SortOrder.AscendingOrder)
    assert _column(model, ID) == [f"img{i}" for i in range(5)]
    model.sort(SCORE, Qt.SortOrder.AscendingOrder)
    assert model.image_row(0) == 4 and model.view_row(1) == 4


def test_reflagging_announces_the_rows_where_the_images_are_shown(model, qtbot):
    model.sort(SCORE, Qt.SortOrder.DescendingOrder)
    flagged = np.zeros(5, bool)
    flagged[3] = True  # img3, shown second
    with qtbot.waitSignal(model.dataChanged) as changed:
        model.set_flagged(flagged)
    assert changed.args[0].row() == 1
    assert model.data(model.index(1, COLUMNS.index("Flagged"))) == "yes"


def test_a_kept_index_follows_its_image_through_a_sort(model):
    from PySide6.QtCore import QPersistentModelIndex

    kept = QPersistentModelIndex(model.index(2, ID))  # img2
    model.sort(SCORE, Qt.SortOrder.DescendingOrder)
    assert kept.row() == 2 and model.data(model.index(kept.row(), ID)) == "img2"
    model.sort(SCORE, Qt.SortOrder.AscendingOrder)
    assert model.data(model.index(kept.row(), ID)) == "img2"
    assert model.rowCount(QModelIndex()) == 5
