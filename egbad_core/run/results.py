"""``scores.csv`` and ``summary.json``: the result files a scoring run leaves, each with one writer.

``scores.csv`` has the same columns whenever it is read: while a run goes its rows are appended a
chunk at a time (``ScoresFile``), with ``flagged`` left empty until the threshold is known; at the
end it is rewritten whole, atomically, with every cell (``write_scores_csv``). A cell that is not
known (no labels, no training statistics, no map) is empty. Both write rows through ``score_rows``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import EgbadError
from ..system.files import FULL, atomic_write, full_disk
from .detection import Detection

COLUMNS = ("id", "label", "is_defect", "residual", "discrimination", "score", "relative_score", "flagged",
           "worst_row", "worst_col")


def score_rows(detection: Detection) -> list[tuple]:
    """One row per image in COLUMNS' order; ``flagged`` empty while the threshold is not set."""
    scores, images = detection.scores, detection.images
    relative = detection.relative()
    places = detection.worst_places()  # where to look: the worst place, in the image file's own pixels
    truth = detection.truth  # an inspector's marks where there are some
    flagged = detection.flagged if math.isfinite(detection.threshold) else None
    rows = []
    for i, image_id in enumerate(images.ids):
        rows.append((
            image_id, images.labels[i], "" if truth is None else bool(truth[i]),
            repr(float(scores.residual[i])), repr(float(scores.discrimination[i])), repr(float(scores.score[i])),
            "" if relative is None else repr(float(relative[i])), "" if flagged is None else bool(flagged[i]),
            *(("", "") if places is None else (int(places[i, 0]), int(places[i, 1]))),
        ))
    return rows


def _csv_bytes(rows: Iterable[tuple]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue().encode("utf-8")


class ScoresFile:
    """``scores.csv`` growing a chunk at a time. A chunk's rows go to the file in one unbuffered
    write, so a process killed at any moment (kill -9 included) leaves whole rows only. With
    ``resume`` the rows of a file already there are kept and their ids read back (``ids``)."""

    def __init__(self, path: Path, resume: bool = False) -> None:
        self.path = path
        self.ids: set[str] = scored_ids(path) if resume else set()
        carry_on = resume and path.is_file() and path.stat().st_size > 0
        self.stream = open(path, "ab" if carry_on else "wb", buffering=0)
        if not carry_on:
            self._write(_csv_bytes([COLUMNS]))

    def append(self, detection: Detection) -> None:
        self._write(_csv_bytes(score_rows(detection)))

    def _write(self, data: bytes) -> None:
        """One write; a full disk is one sentence naming the file (the rows before it stay)."""
        try:
            self.stream.write(data)
        except OSError as error:
            if error.errno in FULL:
                raise EgbadError(full_disk(self.path, error)) from None
            raise

    def close(self) -> None:
        self.stream.close()


def scored_ids(path: Path) -> set[str]:
    """The ids of the rows of a ``scores.csv`` (none where there is no such file); raises
    EgbadError for a file that is not one."""
    if not path.is_file():
        return set()
    with open(path, newline="", encoding="utf-8", errors="replace") as stream:
        rows = list(csv.reader(stream))
    if rows and tuple(rows[0]) != COLUMNS:
        raise EgbadError(f"{path} is not a scores.csv this app wrote (its first line is not the header); "
                         "move it away or choose another results folder.")
    return {row[0] for row in rows[1:] if len(row) == len(COLUMNS)}


def write_scores_csv(path: str | Path, detection: Detection) -> Path:
    """Every image's row, written atomically."""
    path = checked_file(path)
    data = _csv_bytes([COLUMNS, *score_rows(detection)])
    atomic_write(path, lambda stream: stream.write(data))
    return path


def write_summary(path: str | Path, summary: dict[str, Any]) -> Path:
    """The summary dict as indented JSON, written atomically."""
    path = checked_file(path)
    text = json.dumps(summary, indent=2, default=_json_default)
    atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def checked_file(path: str | Path) -> Path:
    """``path`` as a file to write; raises EgbadError for a folder."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise EgbadError(f"{path} is a folder; give a file name to write.")
    return path
