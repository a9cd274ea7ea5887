"""Generate the bad-input corpus in tests/data/bad_inputs/: `python -m tests.data.make_bad_inputs`.

Every file is made here from code (no hand-edited binaries); manifest.json names, for each,
the upload filename and content type to send and the status and error code expected. The
test suite checks the committed files are exactly what this script makes, then sends each
one to the real service.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CORPUS = Path(__file__).parent / "bad_inputs"


@dataclass(frozen=True)
class Case:
    """One upload and what the service must answer."""

    file: str
    upload_name: str
    content_type: str
    status: int
    code: str | None  # None: the upload is fine (status 200)
    why: str


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _digit(size: int = 96) -> Image.Image:
    """A synthetic dark '7' on white paper, drawn from code."""
    canvas = np.full((size, size), 255, dtype=np.uint8)
    s = size // 8
    canvas[2 * s : 3 * s, 2 * s : 6 * s] = 0
    for row in range(3 * s, 7 * s):
        col = 6 * s - (row - 3 * s) // 2
        canvas[row, col - s // 2 : col + s // 2] = 0
    return Image.fromarray(canvas)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_with(width: int, height: int, idat: bytes, bit_depth: int = 8) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def build() -> dict[str, tuple[bytes, Case]]:
    """Every case: file name -> (bytes, expectations)."""
    digit = _digit()
    png = _encode(digit, "PNG")
    jpeg = _encode(digit.convert("RGB"), "JPEG", quality=90)
    gif = _encode(digit.convert("P"), "GIF")
    tiff = _encode(digit, "TIFF")
    webp = _encode(digit, "WEBP", lossless=True)
    bmp = _encode(digit, "BMP")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr(zipfile.ZipInfo("digit.png", date_time=(2026, 1, 1, 0, 0, 0)), png)
    crc_broken = bytearray(png)
    crc_broken[29] ^= 0xFF  # inside IHDR's CRC
    rgba_clear = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    palette = digit.convert("P")
    frames = [digit.convert("P"), Image.new("P", digit.size, 0)]
    exif = Image.Exif()
    exif[0x0112] = 6
    sixteen = Image.fromarray((255 - np.asarray(digit)).astype(np.uint16) * 257)
    cases: list[tuple[str, bytes, str, str, int, str | None, str]] = [
        ("empty.png", b"", "q.png", "image/png", 400, "empty_file", "zero bytes"),
        (
            "text.png",
            b"hello, this is not an image\n",
            "q.png",
            "image/png",
            415,
            "unsupported_image",
            "text named .png",
        ),
        (
            "page.png",
            b"<!doctype html><html><body><img></body></html>",
            "q.png",
            "image/png",
            415,
            "unsupported_image",
            "HTML named .png",
        ),
        (
            "document.png",
            b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n",
            "q.png",
            "image/png",
            415,
            "unsupported_image",
            "PDF bytes named .png",
        ),
        (
            "vector.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
            "q.svg",
            "image/svg+xml",
            415,
            "unsupported_image",
            "SVG is not a raster format",
        ),
        ("archive.png", zipped.getvalue(), "q.png", "image/png", 415, "unsupported_image", "ZIP named .png"),
        ("truncated.png", png[: len(png) // 2], "q.png", "image/png", 400, "corrupt_image", "PNG cut in half"),
        ("truncated.jpg", jpeg[: len(jpeg) // 2], "q.jpg", "image/jpeg", 400, "corrupt_image", "JPEG cut in half"),
        ("truncated.gif", gif[: len(gif) // 2], "q.gif", "image/gif", 400, "corrupt_image", "GIF cut in half"),
        ("truncated.tiff", tiff[: len(tiff) // 2], "q.tiff", "image/tiff", 400, "corrupt_image", "TIFF cut in half"),
        ("truncated.webp", webp[: len(webp) // 2], "q.webp", "image/webp", 400, "corrupt_image", "WebP cut in half"),
        ("truncated.bmp", bmp[:40], "q.bmp", "image/bmp", 400, "corrupt_image", "BMP header only"),
        (
            "bad-zlib.png",
            _png_with(16, 16, b"\x78\x9c" + b"\xde\xad\xbe\xef" * 8),
            "q.png",
            "image/png",
            400,
            "corrupt_image",
            "valid PNG chunks around a corrupt zlib stream",
        ),
        ("bad-crc.png", bytes(crc_broken), "q.png", "image/png", 400, "corrupt_image", "PNG header CRC broken"),
        (
            "zero-width.png",
            _png_with(0, 16, zlib.compress(b"")),
            "q.png",
            "image/png",
            400,
            "corrupt_image",
            "PNG declaring 0 x 16 pixels",
        ),
        (
            "bomb.png",
            _png_with(50_000, 50_000, zlib.compress(b"\x00" * 4096)),
            "q.png",
            "image/png",
            413,
            "image_too_large",
            "decompression bomb: 50,000 x 50,000 declared",
        ),
        (
            "tall-strip.png",
            _png_with(20_000, 1_000, zlib.compress(b"\x00" * 4096)),
            "q.png",
            "image/png",
            413,
            "image_too_large",
            "20 million pixels declared, over the limit",
        ),
        (
            "one-pixel-white.png",
            _encode(Image.new("L", (1, 1), 255), "PNG"),
            "q.png",
            "image/png",
            422,
            "no_ink",
            "1x1 image",
        ),
        (
            "one-pixel-black.png",
            _encode(Image.new("L", (1, 1), 0), "PNG"),
            "q.png",
            "image/png",
            422,
            "no_ink",
            "1x1 black image",
        ),
        (
            "all-white.png",
            _encode(Image.new("L", (64, 64), 255), "PNG"),
            "q.png",
            "image/png",
            422,
            "no_ink",
            "blank paper",
        ),
        (
            "all-black.jpg",
            _encode(Image.new("RGB", (64, 64), 0), "JPEG"),
            "q.jpg",
            "image/jpeg",
            422,
            "no_ink",
            "black frame",
        ),
        (
            "constant-grey.png",
            _encode(Image.new("L", (64, 64), 128), "PNG"),
            "q.png",
            "image/png",
            422,
            "no_ink",
            "constant image: no NaN from 0/0 normalisation",
        ),
        (
            "transparent.png",
            _encode(rgba_clear, "PNG"),
            "q.png",
            "image/png",
            422,
            "no_ink",
            "fully transparent: white after flattening",
        ),
        (
            "animated.gif",
            _encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
            "q.gif",
            "image/gif",
            200,
            None,
            "animated GIF: the first frame is the query",
        ),
        ("cmyk.jpg", _encode(digit.convert("CMYK"), "JPEG"), "q.jpg", "image/jpeg", 200, None, "CMYK JPEG"),
        ("sixteen-bit.png", _encode(sixteen, "PNG"), "q.png", "image/png", 200, None, "16-bit grayscale PNG"),
        (
            "palette-transparent.png",
            _encode(palette, "PNG", transparency=255),
            "q.png",
            "image/png",
            200,
            None,
            "palette image with a transparent colour",
        ),
        (
            "exif-rotated.jpg",
            _encode(digit.rotate(90, expand=True).convert("RGB"), "JPEG", exif=exif.tobytes()),
            "q.jpg",
            "image/jpeg",
            200,
            None,
            "EXIF orientation 6",
        ),
        ("rgba-ink.png", _encode(digit.convert("RGBA"), "PNG"), "q.png", "image/png", 200, None, "RGBA"),
        ("wrong-extension.gif", png, "q.gif", "image/gif", 200, None, "a PNG named .gif: content decides"),
        (
            "huge-canvas.png",
            _encode(_digit(2000), "PNG", optimize=True),
            "q.png",
            "image/png",
            200,
            None,
            "2000x2000 scan of one digit",
        ),
    ]
    return {
        name: (data, Case(name, upload, content_type, status, code, why))
        for name, data, upload, content_type, status, code, why in cases
    }


def write(directory: Path = CORPUS) -> None:
    """Write every case and the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    corpus = build()
    for name, (data, _) in corpus.items():
        (directory / name).write_bytes(data)
    manifest = [asdict(case) for _, case in corpus.values()]
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    write()
    print(f"wrote {len(build())} files to {CORPUS}")
