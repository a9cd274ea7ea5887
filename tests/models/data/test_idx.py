import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from models.data.idx import encode_idx, parse_idx, read_idx_file
from models.errors import DatasetError


def synthetic_images(count: int = 5) -> np.ndarray:
    return np.arange(count * 28 * 28, dtype=np.int64).reshape(count, 28, 28).astype(np.uint8)


def test_round_trip_images_and_labels() -> None:
    images = synthetic_images()
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    assert np.array_equal(parse_idx(encode_idx(images), expected_ndim=3), images)
    assert np.array_equal(parse_idx(encode_idx(labels), expected_ndim=1), labels)


def test_header_is_the_official_layout() -> None:
    data = encode_idx(synthetic_images(2))
    assert struct.unpack(">IIII", data[:16]) == (0x00000803, 2, 28, 28)
    assert len(data) == 16 + 2 * 784


def test_reads_gzip_and_raw_files(tmp_path: Path) -> None:
    images = synthetic_images()
    raw, packed = tmp_path / "a-idx3-ubyte", tmp_path / "b-idx3-ubyte.gz"
    raw.write_bytes(encode_idx(images))
    packed.write_bytes(gzip.compress(encode_idx(images)))
    assert np.array_equal(read_idx_file(raw), images)
    assert np.array_equal(read_idx_file(packed), images)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "shorter than its 4-byte magic"),
        (b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00", "not an IDX file"),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00\x00\x00\x00", "type code 0x0d"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "file ends at byte 8"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x01\x02", "needs 5 value bytes, the file has 2"),
    ],
)
def test_malformed_headers_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_idx(data)


def test_dimension_count_is_checked() -> None:
    with pytest.raises(DatasetError, match="has 1 dimensions, expected 3"):
        parse_idx(encode_idx(np.zeros(4, dtype=np.uint8)), expected_ndim=3)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(encode_idx(synthetic_images()))[:40])
    with pytest.raises(DatasetError, match=r"broken\.gz"):
        read_idx_file(path)


def test_only_uint8_is_written() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_idx(np.zeros(3, dtype=np.float32))
