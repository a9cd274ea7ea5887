"""A robustness set: labelled digits as people upload them, from three sources, made here by script.

* `rerendered`: MNIST test digits re-rendered as uploads: 60-600 px, PNG/JPEG/WebP/GIF, ink
  thinner or thicker, slightly rotated and sheared, off-centre, JPEG artefacts, light or dark
  paper, uneven lighting and noise as in a phone photo of paper.
* `typed`: the digits 0-9 typed in the TrueType fonts Debian ships (DejaVu), on paper, at
  several sizes and slight angles.
* `drawn`: digits drawn with a 22 px round brush on a 280x280 white pad, as the web page's
  canvas does, along stroke paths of each digit with random jitter.

Deterministic for a seed. `aeseek eval --robustness` searches the gallery with each image, the
way the service does (decode, preprocess, encode), and reports P@10 per source, and for the
re-rendered digits per pen (a 3x3 erosion, none, or a 3x3 dilation of the 28x28 digit).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SOURCES = ("rerendered", "typed", "drawn")
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype"))
# Stroke paths of each digit on a unit square (x right, y down): what a hand draws, roughly.
STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [
        [
            (0.5, 0.1),
            (0.25, 0.25),
            (0.2, 0.5),
            (0.25, 0.75),
            (0.5, 0.9),
            (0.75, 0.75),
            (0.8, 0.5),
            (0.75, 0.25),
            (0.5, 0.1),
        ]
    ],
    1: [[(0.35, 0.25), (0.55, 0.1), (0.55, 0.9)]],
    2: [[(0.25, 0.3), (0.4, 0.12), (0.65, 0.12), (0.75, 0.3), (0.65, 0.5), (0.25, 0.88), (0.8, 0.88)]],
    3: [[(0.25, 0.15), (0.7, 0.15), (0.45, 0.45), (0.7, 0.55), (0.72, 0.78), (0.5, 0.9), (0.25, 0.82)]],
    4: [[(0.65, 0.9), (0.65, 0.1), (0.2, 0.62), (0.82, 0.62)]],
    5: [[(0.75, 0.12), (0.3, 0.12), (0.27, 0.45), (0.6, 0.42), (0.75, 0.62), (0.62, 0.86), (0.25, 0.85)]],
    6: [[(0.7, 0.12), (0.4, 0.3), (0.25, 0.65), (0.4, 0.88), (0.68, 0.82), (0.72, 0.6), (0.5, 0.5), (0.28, 0.62)]],
    7: [[(0.2, 0.12), (0.8, 0.12), (0.45, 0.9)]],
    8: [
        [(0.5, 0.5), (0.28, 0.3), (0.5, 0.1), (0.72, 0.3), (0.5, 0.5), (0.25, 0.7), (0.5, 0.9), (0.75, 0.7), (0.5, 0.5)]
    ],
    9: [[(0.72, 0.35), (0.5, 0.5), (0.28, 0.35), (0.5, 0.12), (0.72, 0.3), (0.7, 0.9)]],
}


PENS = {-1: "thinner pen", 0: "MNIST's pen", 1: "thicker pen"}


@dataclass(frozen=True)
class Sample:
    """One labelled upload; `group` names a finer part of its source (the pen of a re-rendered digit)."""

    source: str
    label: int
    data: bytes
    group: str = ""


def _encode(image: Image.Image, rng: np.random.Generator) -> bytes:
    fmt = ("PNG", "JPEG", "WEBP", "GIF")[int(rng.integers(0, 4))]
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=int(rng.integers(30, 92)))
    elif fmt == "GIF":
        image.convert("L").save(buffer, format="GIF")
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


def _photo_of_paper(ink: np.ndarray, side: int, rng: np.random.Generator, dark_paper: bool = False) -> Image.Image:
    """Ink values (0 = none, 255 = full) on paper `side` px tall: off-centre, uneven light, noise."""
    width = int(side * rng.uniform(0.7, 1.0))
    size = int(min(width, side) * rng.uniform(0.45, 0.8))
    glyph = np.asarray(Image.fromarray(ink).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    canvas = np.zeros((side, width), dtype=np.float32)
    top, left = int(rng.integers(0, side - size + 1)), int(rng.integers(0, width - size + 1))
    canvas[top : top + size, left : left + size] = glyph
    paper, ink_level = (40.0, 230.0) if dark_paper else (float(rng.uniform(190, 250)), float(rng.uniform(10, 60)))
    page = paper + (ink_level - paper) * canvas / 255.0
    light = np.linspace(0.0, rng.uniform(0, 40), width, dtype=np.float32)[None, :] * rng.choice([-1, 1])
    page = page + light + rng.normal(0, rng.uniform(1, 6), page.shape).astype(np.float32)
    image = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.2))))


def rerendered(digits: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator) -> list[Sample]:
    """MNIST test digits as uploads (see the module docstring)."""
    samples = []
    for index in range(count):
        digit = Image.fromarray(digits[index % len(digits)])
        thickness = int(rng.integers(-1, 2))
        if thickness:
            digit = digit.filter(ImageFilter.MaxFilter(3) if thickness > 0 else ImageFilter.MinFilter(3))
        shear = float(rng.uniform(-0.2, 0.2))
        digit = digit.transform(digit.size, Image.Transform.AFFINE, (1, shear, -shear * 14, 0, 1, 0))
        digit = digit.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BILINEAR)
        page = _photo_of_paper(np.asarray(digit), int(rng.integers(60, 601)), rng, dark_paper=rng.random() < 0.2)
        pen = f"rerendered, {PENS[thickness]}"
        samples.append(Sample("rerendered", int(labels[index % len(digits)]), _encode(page, rng), pen))
    return samples


def _fonts() -> list[Path]:
    found = sorted({path for directory in FONT_DIRS if directory.is_dir() for path in directory.rglob("*.ttf")})
    return [path for path in found if "Math" not in path.name]


def typed(count: int, rng: np.random.Generator) -> list[Sample]:
    """Digits typed in the fonts Debian ships (Pillow's own scalable font where none is installed)."""
    fonts: list[ImageFont.FreeTypeFont | ImageFont.ImageFont] = [
        ImageFont.truetype(str(path), 200) for path in _fonts()
    ] or [ImageFont.load_default(size=200)]
    samples = []
    for index in range(count):
        label, font = index % 10, fonts[(index // 10) % len(fonts)]
        glyph = Image.new("L", (260, 260), 0)
        ImageDraw.Draw(glyph).text((130, 130), str(label), fill=255, font=font, anchor="mm")
        glyph = glyph.rotate(float(rng.uniform(-6, 6)), resample=Image.Resampling.BILINEAR)
        page = _photo_of_paper(np.asarray(glyph), int(rng.integers(60, 401)), rng)
        samples.append(Sample("typed", label, _encode(page, rng)))
    return samples


def drawn(count: int, rng: np.random.Generator) -> list[Sample]:
    """Digits drawn on a 280x280 pad with a 22 px round brush along jittered stroke paths."""
    samples = []
    for index in range(count):
        label = index % 10
        pad = Image.new("L", (280, 280), 255)
        draw = ImageDraw.Draw(pad)
        scale, shift = rng.uniform(0.7, 1.0), rng.uniform(-0.08, 0.08, 2)
        for stroke in STROKES[label]:
            points = [
                (float((0.5 + (x - 0.5) * scale + shift[0] + rng.normal(0, 0.02)) * 280),
                 float((0.5 + (y - 0.5) * scale + shift[1] + rng.normal(0, 0.02)) * 280))
                for x, y in stroke
            ]  # fmt: skip
            draw.line(points, fill=0, width=int(rng.integers(16, 28)), joint="curve")
        buffer = io.BytesIO()
        pad.save(buffer, format="PNG")  # what the page's canvas.toBlob sends
        samples.append(Sample("drawn", label, buffer.getvalue()))
    return samples


def robustness_set(digits: np.ndarray, labels: np.ndarray, per_source: int = 300, seed: int = 0) -> list[Sample]:
    """Every source's samples, `per_source` each (fewer typed ones where few fonts are installed)."""
    rng = np.random.default_rng(seed)
    return [*rerendered(digits, labels, per_source, rng), *typed(per_source, rng), *drawn(per_source, rng)]
