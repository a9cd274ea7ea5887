"""A realistic mix of uploads, made from MNIST test digits the way people send digits.

Sizes from 28 to 600 px and a few phone photos, PNG, JPEG, WebP and GIF, grey and colour,
dark ink on light paper (scans, screenshots) and light on dark (crops of MNIST itself): what
`aeseek bench serve` measures by default. Deterministic for a seed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
PHONE_SIZE = (3024, 4032)


@dataclass(frozen=True)
class Upload:
    """One file as a user would send it."""

    name: str
    data: bytes
    width: int
    height: int


def _encode(image: Image.Image, fmt: str, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode).save(
            buffer, format="JPEG", quality=int(rng.integers(75, 95))
        )
    elif fmt == "GIF":
        image.convert("P" if image.mode == "RGB" else "L").save(buffer, format="GIF")
    else:
        image.save(buffer, format=fmt, **({"quality": 90} if fmt == "WEBP" else {}))
    return buffer.getvalue()


def _paper(digit: np.ndarray, side: int, colour: bool, rng: np.random.Generator) -> Image.Image:
    """The digit as ink on paper, `side` px on its longer side, off-centre, lit unevenly."""
    height = side
    width = int(side * rng.uniform(0.6, 1.0))
    ink_size = int(min(width, height) * rng.uniform(0.4, 0.8))
    ink = Image.fromarray(255 - digit).resize((ink_size, ink_size), Image.Resampling.BICUBIC)
    paper_level = int(rng.integers(200, 250))
    page = Image.new("L", (width, height), paper_level)
    left = int(rng.integers(0, max(width - ink_size, 1)))
    top = int(rng.integers(0, max(height - ink_size, 1)))
    page.paste(Image.fromarray(np.minimum(np.asarray(ink), paper_level).astype(np.uint8)), (left, top))
    shading = np.linspace(0, rng.uniform(0, 30), width, dtype=np.float32)[None, :]
    noisy = np.asarray(page, dtype=np.float32) - shading + rng.normal(0, 3, (height, width)).astype(np.float32)
    page = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    if colour:
        tint = rng.uniform(0.85, 1.0, 3)
        rgb = np.asarray(page, dtype=np.float32)[..., None] * tint
        page = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")
    return page


def upload_mix(digits: np.ndarray, count: int = 120, phones: int = 3, seed: int = 0) -> list[Upload]:
    """`count` uploads: a sixth plain 28x28 MNIST PNGs, the rest scans and crops of 60-600 px, plus `phones`
    photos at phone size; formats and colour drawn at random."""
    rng = np.random.default_rng(seed)
    uploads = []
    for index in range(count + phones):
        digit = digits[index % len(digits)]
        fmt = FORMATS[int(rng.integers(0, len(FORMATS)))]
        if index >= count:
            image = _paper(digit, PHONE_SIZE[1], colour=True, rng=rng).resize(PHONE_SIZE)
            fmt, kind = "JPEG", "phone"
        elif index % 6 == 0:
            image, fmt, kind = Image.fromarray(digit), "PNG", "mnist"
        else:
            side = int(rng.integers(60, 601))
            image, kind = _paper(digit, side, colour=bool(rng.integers(0, 2)), rng=rng), "scan"
        data = _encode(image, fmt, rng)
        uploads.append(Upload(f"{index:03d}-{kind}.{fmt.lower()}", data, image.width, image.height))
    return uploads
