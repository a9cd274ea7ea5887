"""Reader and writer of the IDX format the official MNIST files use (LeCun et al.).

An IDX file is a big-endian header, `0x00 0x00 <type code> <ndim>`, one uint32 per
dimension, then the values in row-major order. MNIST uses type 0x08 (unsigned byte):
images are 3-d (N, 28, 28) with magic 0x00000803, labels 1-d (N,) with magic 0x00000801.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from models.errors import DatasetError

UNSIGNED_BYTE = 0x08


def parse_idx(data: bytes, *, expected_ndim: int | None = None) -> np.ndarray:
    """Parse IDX bytes of unsigned bytes into an array, validating magic and sizes."""
    if len(data) < 4:
        raise DatasetError(f"IDX data is {len(data)} bytes, shorter than its 4-byte magic number")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise DatasetError(f"not an IDX file: magic number starts with 0x{zero:04x}, expected 0x0000")
    if type_code != UNSIGNED_BYTE:
        raise DatasetError(f"IDX type code 0x{type_code:02x} is not supported (MNIST uses 0x08)")
    if expected_ndim is not None and ndim != expected_ndim:
        raise DatasetError(f"IDX file has {ndim} dimensions, expected {expected_ndim}")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetError(f"IDX header declares {ndim} dimensions but the file ends at byte {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    count = int(np.prod(shape, dtype=np.int64))
    body = len(data) - header_size
    if body != count:
        raise DatasetError(f"IDX shape {shape} needs {count} value bytes, the file has {body}")
    # A writable copy: torch.from_numpy warns on (and must not write into) read-only buffers.
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def encode_idx(array: np.ndarray) -> bytes:
    """Serialise a uint8 array as IDX bytes."""
    if array.dtype != np.uint8:
        raise ValueError(f"only uint8 arrays can be written as IDX, got {array.dtype}")
    header = struct.pack(">HBB", 0, UNSIGNED_BYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def read_idx_file(path: Path, *, expected_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file, gzip-compressed (`.gz`) or raw."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DatasetError(f"{path}: corrupt gzip stream ({error})") from error
    try:
        return parse_idx(raw, expected_ndim=expected_ndim)
    except DatasetError as error:
        raise DatasetError(f"{path}: {error}") from error
