"""PNG encoding of uint8 images and image grids (numpy + Pillow), for HTTP responses and figures."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    """A grayscale uint8 (H, W) image as PNG bytes, enlarged `scale` times without smoothing."""
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="L")
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def png_base64(image: np.ndarray) -> str:
    """A grayscale uint8 image as base64 PNG (for JSON bodies)."""
    return base64.b64encode(png_bytes(image)).decode("ascii")


def grid(rows: Sequence[Sequence[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equally sized uint8 images into one uint8 image, row by row, with gaps."""
    height, width = rows[0][0].shape
    columns = max(len(row) for row in rows)
    canvas = np.full((len(rows) * (height + gap) - gap, columns * (width + gap) - gap), 64, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, left = r * (height + gap), c * (width + gap)
            canvas[top : top + height, left : left + width] = image
    return canvas


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 pixels."""
    return np.rint(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def grid_png(rows: Sequence[Sequence[np.ndarray]], scale: int = 4) -> bytes:
    """A grid of uint8 images as an enlarged PNG."""
    return png_bytes(grid(rows), scale)
