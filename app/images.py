"""PNG encoding of uint8 images for HTTP responses."""

from __future__ import annotations

import base64
import io

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
