"""Where images come from: the demo, an MNIST-style CSV or an MVTec-layout folder, and which labels matter."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import EgbadError

DEMO_NORMAL_LABELS = ("7", "8")
DEMO_TEST_LABELS = ("2", "7", "8")


@dataclass(frozen=True)
class DataSource:
    """Where the images come from and which labels matter; cheap to make, loaded on demand."""

    kind: str  # "demo", "csv" or "folder"
    path: str | None = None
    test_path: str | None = None  # CSV only: a separate test file
    normal_labels: tuple[str, ...] | None = None  # CSV: labels of the good images
    test_labels: tuple[str, ...] | None = None  # CSV: labels to score; None = all

    @classmethod
    def parse(
        cls,
        data: str,
        test_data: str | None = None,
        normal_labels: str | tuple[str, ...] | None = None,
        test_labels: str | tuple[str, ...] | None = None,
    ) -> "DataSource":
        """Make a source from what a user typed: ``demo``, a CSV file or a folder."""
        normal = parse_labels(normal_labels)
        tests = parse_labels(test_labels)
        if data == "demo":
            return cls("demo", normal_labels=normal or DEMO_NORMAL_LABELS, test_labels=tests or DEMO_TEST_LABELS)
        path = Path(data)
        if not path.exists():
            raise EgbadError(f"{data} does not exist.")
        if test_data is not None and not Path(test_data).is_file():
            raise EgbadError(f"{test_data} does not exist or is not a file.")
        if path.is_dir():
            return cls("folder", str(path), test_data, normal, tests)
        return cls("csv", str(path), test_data, normal, tests)

    def describe(self) -> str:
        if self.kind == "demo":
            return "demo (MNIST 7s and 8s normal, 2s defects)"
        return f"{self.kind} {self.path}"

    def with_normal_labels(self, labels: tuple[str, ...] | None) -> "DataSource":
        """The same source with the normal labels filled in, if it had none (from a checkpoint)."""
        if self.normal_labels or not labels:
            return self
        return replace(self, normal_labels=tuple(labels))


def parse_labels(labels: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...] | None:
    """``"7, 8"`` → ``("7", "8")``; labels are compared as text, ``7.0`` being ``7``."""
    if labels is None:
        return None
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    cleaned = tuple(label_text(item.strip()) for item in items if str(item).strip())
    return cleaned or None


def label_text(value: object) -> str:
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text
