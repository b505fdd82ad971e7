"""An inspector's verdicts: images marked good or defective by a person, kept beside the data.

A folder's labels come from where its images lie (``test/good/``, ``test/scratch/``); an
inspector who looks closer may know better. Their marks are kept in ``corrections.csv`` at the top
of the data folder (id, verdict), written atomically at each mark, read by every later run on that
folder (the window's and ``egbad detect``'s), and count in the metrics as the image's label.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..data.folders import CORRECTIONS_NAME
from ..data.sources import DataSource
from ..errors import EgbadError
from ..system.files import atomic_write

VERDICTS = {"good": False, "defect": True}


def corrections_path(source: DataSource) -> Path | None:
    """Where a source's marks are kept: a folder's own ``corrections.csv``; None for CSV and demo data."""
    return Path(source.path) / CORRECTIONS_NAME if source.kind == "folder" else None


def read_corrections(source: DataSource) -> dict[str, bool]:
    """The marks kept for a source (image id → defective); none where there are none. Raises
    EgbadError for a file that is not one this app wrote."""
    path = corrections_path(source)
    if path is None or not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            rows = list(csv.reader(stream))
    except (OSError, UnicodeDecodeError) as error:
        raise EgbadError(f"{path} cannot be read ({error}).") from None
    if not rows or rows[0] != ["id", "verdict"] or any(len(r) != 2 or r[1] not in VERDICTS for r in rows[1:]):
        raise EgbadError(f"{path} is not a corrections file (an 'id,verdict' header, then good or defect per "
                         "image); move it away to start again.")
    return {image_id: VERDICTS[verdict] for image_id, verdict in rows[1:]}


def write_corrections(source: DataSource, marks: dict[str, bool]) -> Path:
    """Keep ``marks`` for the source, atomically; raises EgbadError where it cannot be written."""
    path = corrections_path(source)
    if path is None:
        raise EgbadError("marks are kept beside a folder's images; this data is not a folder.")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["id", "verdict"])
    writer.writerows((image_id, "defect" if defect else "good") for image_id, defect in sorted(marks.items()))
    try:
        atomic_write(path, lambda stream: stream.write(text.getvalue().encode("utf-8")))
    except OSError as error:
        raise EgbadError(f"the marks cannot be kept in {path} ({error}).") from None
    return path
