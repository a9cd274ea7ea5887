"""Turn an uploaded picture of a digit into the 28x28 image MNIST would have made of it.

MNIST's recipe (LeCun et al.): white ink on black, the digit's bounding box scaled so its
longer side is 20 px keeping the aspect ratio (with anti-aliasing), pasted into a 28x28
field so that its centre of mass sits at the centre. People upload dark ink on light paper
at any size, in any format, so before that recipe we undo EXIF rotation, flatten alpha onto
white, convert to grayscale, and invert when the background is light. Photos and scans also
carry what MNIST's clean scans did not (measured on the robustness set, docs/models.md): sensor
noise, which we cut at a floor above the paper and keep out of the digit's bounding box; and
thin or faint strokes, which we brighten until their core is saturated as MNIST's are. (Pens
much thinner or thicker than MNIST's are the model's job: it trains on such views.)
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from models.errors import (
    CorruptImageError,
    EmptyUploadError,
    ImageTooLargeError,
    NoInkError,
    UnsupportedImageError,
    UploadTooLargeError,
)

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "MPO"})
FIELD = 28
BOX = 20
# Below this contrast (on 0..255) between ink and background there is nothing to search for.
MIN_CONTRAST = 24.0
# Pixels brighter than this share of the ink's maximum count as ink for the bounding box.
INK_THRESHOLD = 0.1
# MNIST's centre of mass sits here (measured over the training set: see tests).
CENTRE = (14.0, 14.0)
# Large images are reduced to 256-511 pixels on their longer side while they are decoded (JPEG
# draft mode) or right after (Image.reduce, box averages): the digit ends up 20 px tall, so one
# that fills at least 8% of the picture's longer side loses nothing, and a 12 MP photo costs about
# what a phone crop does. 512 cost 34% more CPU per upload of the realistic mix for the same
# P@10 on user-like uploads (docs/performance.md).
WORKING_SIDE = 256
# Paper noise (estimated on the border, robustly) is cut this many standard deviations above the paper.
NOISE_FLOOR_SIGMAS = 3.0
# MNIST strokes have a saturated core: on the 20 px digit, the ink's brighter quarter is brought
# to full brightness when it is below SATURATED_LEVEL.
SATURATED_SHARE = 0.25
SATURATED_LEVEL = 230.0
FLAT_FIELD_MIN_SIDE = 64
FLAT_FIELD_CELLS = 12
FLAT_FIELD_UNEVEN = 12.0
REDUCIBLE_MODES = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "I", "F"})


@dataclass(frozen=True)
class DecodeLimits:
    """Largest image accepted, in pixels (width * height, after JPEG draft reduction) and in bytes."""

    max_pixels: int = 4 * 1024 * 1024
    max_bytes: int = 10 * 1024 * 1024


SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _sniff_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in SIGNATURES.items() if data.startswith(magic)), None)


def decode_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> Image.Image:
    """Decode an uploaded file into a fully loaded PIL image, refusing what cannot be used."""
    return load_pixels(open_image(data, limits))


def open_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> Image.Image:
    """Read an upload's header only (format, size), refusing what cannot be used; no pixel is decoded."""
    if not data:
        raise EmptyUploadError("the uploaded file is empty")
    if len(data) > limits.max_bytes:
        raise UploadTooLargeError(f"the upload is {len(data)} bytes; the limit is {limits.max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        looks_like = _sniff_format(data)
        if looks_like is not None:
            raise CorruptImageError(f"the file starts like a {looks_like} but its header is corrupt") from None
        raise UnsupportedImageError(
            "the file is not a recognised image; send PNG, JPEG, GIF, BMP, WebP or TIFF"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow's own guard (far above our default limit) fired while reading the header.
        declared = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(declared.group(1)):,} pixels" if declared else "too many pixels"
        raise ImageTooLargeError(
            f"the image declares {size}; the limit is {limits.max_pixels:,} pixels (AESEEK_MAX_IMAGE_PIXELS)"
        ) from None
    except (OSError, ValueError, SyntaxError) as error:
        raise CorruptImageError(f"the image header is corrupt ({error})") from None
    if image.format not in ALLOWED_FORMATS:
        raise UnsupportedImageError(f"{image.format} images are not accepted; send PNG, JPEG, GIF, BMP, WebP or TIFF")
    width, height = image.size
    if width == 0 or height == 0:
        raise CorruptImageError(f"the image is {width}x{height} pixels: it has no pixels")
    if image.format in ("JPEG", "MPO") and max(width, height) >= 2 * WORKING_SIDE:
        # The decoder scales by 1/2, 1/4 or 1/8 while decoding: the full-size pixels never exist.
        image.draft(image.mode, (max(1, width * WORKING_SIDE // max(width, height)),
                                 max(1, height * WORKING_SIDE // max(width, height))))  # fmt: skip
        width, height = image.size
    # Checked on the header, before any pixel is decoded: a decompression bomb costs nothing.
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} pixels; the limit is {limits.max_pixels:,} pixels (AESEEK_MAX_IMAGE_PIXELS)"
        )
    return image


def load_pixels(image: Image.Image) -> Image.Image:
    """Decode the pixels of an image from `open_image` (the first frame of an animation), reduced
    by an integer factor when its longer side is over twice WORKING_SIDE."""
    try:
        image.seek(0)  # animated images: the first frame is the query
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise CorruptImageError(f"the image data is truncated or corrupt ({error})") from None
    factor = max(image.size) // WORKING_SIDE
    if factor >= 2:
        if image.mode.startswith("I;16"):
            image = image.convert("I")  # 32-bit integers keep the 16-bit range (RGB would clip it to 255)
        elif image.mode not in REDUCIBLE_MODES:
            image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        image = image.reduce(factor)
    return image


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Upright float32 grayscale (H, W) on 0..255, alpha flattened onto white."""
    # A broken EXIF block is no reason to refuse the pixels.
    with contextlib.suppress(OSError, ValueError, SyntaxError, KeyError, TypeError):
        image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        if not np.isfinite(values).all():  # a float TIFF may hold NaN or infinities: no ink there
            values = np.where(np.isfinite(values), values, 0.0).astype(np.float32)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 1.0)
        return np.clip(values / top * 255.0, 0.0, 255.0)
    if image.mode == "LAB":
        return np.asarray(image.getchannel("L"), dtype=np.float32)  # the lightness channel is the grey
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    try:
        return np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.float32)
    except (ValueError, OSError) as error:  # a mode Pillow cannot turn into grey
        raise UnsupportedImageError(f"{image.mode} images cannot be read as grey ({error})") from None


def _border(values: np.ndarray) -> np.ndarray:
    return np.concatenate([values[0, :], values[-1, :], values[:, 0], values[:, -1]])


def _median(values: np.ndarray) -> float:
    # What np.median returns for finite values, without its generality (axes, NaN checks),
    # which made it a tenth of a search's CPU time on the server.
    ordered = np.sort(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """MNIST-style uint8 (28, 28) image from float grayscale: light ink on black, centred."""
    values = gray.astype(np.float32)
    if _median(_border(values)) > 127.5:
        values = 255.0 - values  # dark ink on light paper -> MNIST's light ink on black
    values = _flatten_background(values)
    border = _border(values)
    paper = _median(border)
    noise = 1.4826 * _median(np.abs(border - paper))  # the border's spread, robust to ink touching it
    if float(values.max()) - paper < MIN_CONTRAST:
        raise NoInkError("the image has no ink: it is blank or a single colour, nothing to search for")
    values = np.maximum(values - (paper + NOISE_FLOOR_SIGMAS * noise), 0.0)
    peak = float(values.max())
    if peak <= 0.0:
        raise NoInkError("the image has no ink above the paper's noise: nothing to search for")
    values *= 255.0 / peak
    # Saturated after the fit: a thin stroke is faint at 20 px even where it was dark at full size.
    return _paste_centred(_saturate(_fit_box(_crop_to_ink(values, ignore_specks=noise > 0.0))))


def _saturate(patch: np.ndarray) -> np.ndarray:
    """Where the brightest SATURATED_SHARE of the ink stays below SATURATED_LEVEL (a thin or
    faint stroke), scale that share up to 255, clipping above; brighter digits are left as they are."""
    ink = patch[patch > 0.2 * float(patch.max())]
    if ink.size == 0:  # nothing left after resampling: leave it for the caller's checks
        return patch
    rank = int(len(ink) * (1.0 - SATURATED_SHARE))
    top = float(np.partition(ink, rank)[rank])
    if top >= SATURATED_LEVEL:
        return patch
    return np.minimum(patch * (255.0 / top), 255.0)


def _crop_to_ink(values: np.ndarray, ignore_specks: bool = False) -> np.ndarray:
    """The bounding box of the ink; with `ignore_specks`, only ink pixels with an inked neighbour
    both above or below and left or right count (noise left above the floor comes in specks;
    strokes at upload resolution are wider than a pixel)."""
    ink = values > INK_THRESHOLD * 255.0
    if ignore_specks:
        padded = np.pad(ink, 1)
        vertical = padded[:-2, 1:-1] | padded[2:, 1:-1]
        horizontal = padded[1:-1, :-2] | padded[1:-1, 2:]
        solid = ink & vertical & horizontal
        ink = solid if solid.any() else ink
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return values[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _flatten_background(values: np.ndarray) -> np.ndarray:
    """Subtract the paper's own brightness where it varies (a photo's uneven light).

    Only for uploads larger than FLAT_FIELD_MIN_SIDE whose four edges differ by FLAT_FIELD_UNEVEN
    or more (evenly lit paper is left exactly as it was). The paper level is estimated on a
    coarse grid of FLAT_FIELD_CELLS cells on the longer side, as the lowest cell within each 3x3
    neighbourhood (strokes are thinner than two cells, so some paper is always near), then
    smoothed back up to full size."""
    height, width = values.shape
    if max(height, width) < FLAT_FIELD_MIN_SIDE:
        return values
    sides = [_median(side) for side in (values[0, :], values[-1, :], values[:, 0], values[:, -1])]
    if max(sides) - min(sides) < FLAT_FIELD_UNEVEN:
        return values  # evenly lit paper (a scan, a screenshot): nothing to correct
    scale = FLAT_FIELD_CELLS / max(height, width)
    cells = Image.fromarray(values, mode="F").resize(
        (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX
    )
    grid = np.pad(np.asarray(cells, dtype=np.float32), 1, mode="edge")
    rows, cols = grid.shape[0] - 2, grid.shape[1] - 2
    lowest = np.min([grid[r : r + rows, c : c + cols] for r in range(3) for c in range(3)], axis=0)
    background = Image.fromarray(lowest, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.maximum(values - np.asarray(background, dtype=np.float32), 0.0)


def _fit_box(crop: np.ndarray) -> np.ndarray:
    height, width = crop.shape
    scale = BOX / max(height, width)
    if scale == 1.0:
        return crop
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(crop, mode="F").resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 255.0)


def _paste_centred(patch: np.ndarray) -> np.ndarray:
    height, width = patch.shape
    total = float(patch.sum())
    com_row = float((patch.sum(axis=1) * np.arange(height)).sum() / total)
    com_col = float((patch.sum(axis=0) * np.arange(width)).sum() / total)
    top = round(CENTRE[0] - com_row)
    left = round(CENTRE[1] - com_col)
    canvas = np.zeros((FIELD, FIELD), dtype=np.float32)
    # Clip the paste to the field: a lopsided digit may be shifted partly outside.
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + height, FIELD), min(left + width, FIELD)
    canvas[r0:r1, c0:c1] = patch[r0 - top : r1 - top, c0 - left : c1 - left]
    return np.rint(canvas).astype(np.uint8)
