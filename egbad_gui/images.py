"""numpy images → Qt pixmaps. The arrays come from `egbad_core.pictures`'s drawing helpers."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap


def pixmap_from_rgb(rgb: np.ndarray, scale: int = 1) -> QPixmap:
    """uint8 (H, W, 3) → QPixmap, copied so the numpy buffer may be freed afterwards."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width, _ = rgb.shape
    image = QImage(rgb.data, width, height, rgb.strides[0], QImage.Format.Format_RGB888).copy()
    pixmap = QPixmap.fromImage(image)
    if scale != 1:
        pixmap = pixmap.scaled(width * scale, height * scale, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
    return pixmap


def outlined(pixmap: QPixmap, colour: QColor = QColor(230, 30, 30), width: int = 3) -> QPixmap:
    """The same picture with a coloured frame: how flagged images are marked everywhere."""
    framed = QPixmap(pixmap)
    painter = QPainter(framed)
    pen = QPen(colour)
    pen.setWidth(width)
    painter.setPen(pen)
    half = width // 2
    painter.drawRect(half, half, framed.width() - width, framed.height() - width)
    painter.end()
    return framed


def strip(tiles: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """uint8 (H, W, 3) tiles of equal height side by side."""
    if not tiles:
        return np.zeros((1, 1, 3), np.uint8)
    spacer = np.full((tiles[0].shape[0], gap, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for tile in tiles:
        parts += [tile, spacer]
    return np.concatenate(parts[:-1], axis=1)
