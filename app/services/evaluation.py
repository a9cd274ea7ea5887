"""`aeseek eval`: the official retrieval protocol for a model and two baselines in one run.

Queries: the 10,000 MNIST test images; gallery: the 60,000 training images; relevant:
same label. Reported: P@1, P@10, P@100, mAP@100, mAP over the full ranking (index.evaluation) and reconstruction
MSE on [0, 1] pixels of the test images. Baselines in the same run: exact search on raw
pixels (784-d, no reconstruction error: it is the input) and PCA with as many components
as the model's code (fitted on the training images).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np
import torch

from app.services.feedback import rocchio
from app.services.workspace import Workspace, embed_images
from index.evaluation import RetrievalScores, evaluate_codes, exact_neighbours, full_ranking_map
from index.rerank import augment_database, expand_queries
from models.base import Autoencoder
from models.checkpoints import load_model, update_metrics
from models.data.preprocessing import decode_image, to_grayscale, to_mnist
from models.errors import AeseekError
from models.pca import PCA


@dataclass(frozen=True)
class EvalRow:
    """One method's results."""

    method: str
    dim: int
    p_at_1: float
    p_at_10: float
    p_at_100: float
    map_at_100: float
    map_full: float  # mAP over the whole ranking of the 60,000 (the hashing literature's figure)
    reconstruction_mse: float | None
    seconds: float

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form."""
        return dict(self.__dict__)


def reconstruction_mse(model: Autoencoder, images: np.ndarray, batch: int = 1000) -> float:
    """Mean squared error on [0, 1] pixels between images and their reconstructions."""
    total = 0.0
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        output = model.reconstruct(torch.from_numpy(chunk)).numpy()
        total += float(((output - chunk / 255.0) ** 2).sum())
    return total / (images.size)


def evaluate_model(
    workspace: Workspace,
    model: Autoencoder,
    name: str,
    baselines: bool = True,
    on_stage: Callable[[str], None] | None = None,
    rerank: bool = False,
) -> list[EvalRow]:
    """Rows for the model and, with `baselines`, raw pixels and PCA at the same dimension."""
    train, test = workspace.split("train"), workspace.split("test")
    note = on_stage or (lambda stage: None)
    rows = []

    note(f"{name}: embedding 70,000 images")
    started = time.perf_counter()
    gallery_codes, query_codes = embed_images(model, train.images), embed_images(model, test.images)
    scores = evaluate_codes(gallery_codes, train.labels, query_codes, test.labels)
    full = full_ranking_map(gallery_codes, train.labels, query_codes, test.labels)
    mse = reconstruction_mse(model, test.images)
    rows.append(
        EvalRow(
            name,
            gallery_codes.shape[1],
            **scores.as_dict(),
            map_full=full,
            reconstruction_mse=mse,
            seconds=time.perf_counter() - started,
        )
    )
    if rerank:  # the same codes, re-ranked without labels (index/rerank.py)
        note(f"{name}: database-side augmentation and query expansion")
        started = time.perf_counter()
        augmented = augment_database(gallery_codes)
        expanded = expand_queries(query_codes, augmented)
        scores = evaluate_codes(augmented, train.labels, expanded, test.labels)
        full = full_ranking_map(augmented, train.labels, expanded, test.labels)
        rows.append(
            EvalRow(
                f"{name} + re-ranking", gallery_codes.shape[1], **scores.as_dict(), map_full=full,
                reconstruction_mse=mse, seconds=time.perf_counter() - started,
            )
        )  # fmt: skip
    if not baselines:
        return rows

    train_pixels = train.images.reshape(len(train), -1).astype(np.float32) / 255.0
    test_pixels = test.images.reshape(len(test), -1).astype(np.float32) / 255.0
    note("raw pixels: exact 784-d search")
    started = time.perf_counter()
    scores = evaluate_codes(train_pixels, train.labels, test_pixels, test.labels)
    full = full_ranking_map(train_pixels, train.labels, test_pixels, test.labels)
    rows.append(
        EvalRow(
            "raw pixels", 784, **scores.as_dict(), map_full=full, reconstruction_mse=None,
            seconds=time.perf_counter() - started,
        )
    )  # fmt: skip

    dim = gallery_codes.shape[1]
    note(f"PCA-{dim}")
    started = time.perf_counter()
    pca = PCA.fit(train_pixels, dim)
    train_projected, test_projected = pca.project(train_pixels), pca.project(test_pixels)
    scores = evaluate_codes(train_projected, train.labels, test_projected, test.labels)
    full = full_ranking_map(train_projected, train.labels, test_projected, test.labels)
    pca_mse = pca.reconstruction_mse(test_pixels)
    rows.append(
        EvalRow(
            f"PCA-{dim}",
            dim,
            **scores.as_dict(),
            map_full=full,
            reconstruction_mse=pca_mse,
            seconds=time.perf_counter() - started,
        )
    )
    return rows


VALIDATION_QUERIES = 10_000
# The user-like set of the validation split is drawn with this seed (the test's uses 0).
VALIDATION_SEED = 1


def held_out_count(images: int) -> int:
    """How many of the training split's last images the validation split holds out as queries."""
    return max(1, min(VALIDATION_QUERIES, images // 6))


def validation_scores(model: Autoencoder, images: np.ndarray, labels: np.ndarray) -> RetrievalScores:
    """Scores on a split of the training set alone, for choosing settings without the test set: its
    last VALIDATION_QUERIES images (a sixth of a smaller set) query the ones before them."""
    held_out = held_out_count(len(images))
    codes = embed_images(model, images)
    return evaluate_codes(codes[:-held_out], labels[:-held_out], codes[-held_out:], labels[-held_out:])


def format_table(rows: list[EvalRow]) -> str:
    """A Markdown table of the rows."""
    lines = [
        "| method | dim | P@1 | P@10 | P@100 | mAP@100 | mAP (full ranking) | recon. MSE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        mse = "n/a" if row.reconstruction_mse is None else f"{row.reconstruction_mse:.4f}"
        lines.append(
            f"| {row.method} | {row.dim} | {row.p_at_1:.4f} | {row.p_at_10:.4f} | {row.p_at_100:.4f} "
            f"| {row.map_at_100:.4f} | {row.map_full:.4f} | {mse} |"
        )
    return "\n".join(lines)


def evaluate_and_record(
    workspace: Workspace,
    version: str,
    baselines: bool = False,
    on_stage: Callable[[str], None] | None = None,
    rerank: bool = False,
) -> list[EvalRow]:
    """Evaluate a saved model (and its variant's own extras) and merge the results into model.json."""
    model, record = load_model(workspace.models_dir / version)
    rows = evaluate_model(workspace, model, f"{record.variant} {version}", baselines, on_stage, rerank)
    train, test = workspace.split("train"), workspace.split("test")
    extras = model.extra_metrics(
        (torch.from_numpy(train.images), torch.from_numpy(train.labels)),
        (torch.from_numpy(test.images), torch.from_numpy(test.labels)),
    )
    update_metrics(workspace.models_dir / version, {"retrieval": rows[0].as_dict(), "evaluated": time.time(), **extras})
    return rows


def feedback_precision(
    gallery_codes: np.ndarray,
    gallery_labels: np.ndarray,
    query_codes: np.ndarray,
    query_labels: np.ndarray,
    rounds: int = 2,
    k: int = 10,
) -> list[float]:
    """P@k before relevance feedback and after each of `rounds` rounds, for a simulated user.

    The user marks the true labels among the k results shown: same label relevant, the rest not;
    the query moves by Rocchio (app/services/feedback.py) and results marked not relevant are
    never shown again (the route leaves them out the same way).
    """
    index = faiss.IndexFlatL2(gallery_codes.shape[1])
    index.add(np.ascontiguousarray(gallery_codes, dtype=np.float32))
    codes = np.ascontiguousarray(query_codes, dtype=np.float32).copy()
    refused: list[set[int]] = [set() for _ in range(len(codes))]
    precisions = []
    for round_number in range(rounds + 1):
        _, found = index.search(codes, k + k * round_number)  # room for everything refused so far
        shown = np.array([[i for i in row if i not in gone][:k] for row, gone in zip(found, refused, strict=True)])
        relevant = gallery_labels[shown] == query_labels[:, None]  # (Q, k)
        precisions.append(float(relevant.mean()))
        if round_number == rounds:
            break
        for row in range(len(codes)):
            kept, thrown = shown[row][relevant[row]], shown[row][~relevant[row]]
            codes[row] = rocchio(codes[row], gallery_codes[kept], gallery_codes[thrown])
            refused[row].update(thrown.tolist())
    return precisions


def robustness_precision(
    workspace: Workspace,
    models: list[tuple[str, Autoencoder]],
    uploads: list[tuple[str, int, bytes]],
    k: int = 10,
    groups: list[str] | None = None,
    gallery: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """P@k per source of labelled uploads (source, label, bytes) against the training gallery (or
    `gallery`, images and labels), for each model and for raw pixels, with the service's own decoding
    and preprocessing; with `groups` (one name per upload, empty for none), also P@k per named group."""
    if gallery is None:
        train = workspace.split("train")
        gallery = (train.images, train.labels)
    gallery_images, gallery_labels = gallery
    queries: list[np.ndarray | None] = []
    labels, sources = [], []
    for source, label, data in uploads:
        try:
            queries.append(to_mnist(to_grayscale(decode_image(data))))
        except AeseekError:
            queries.append(None)  # refused by the service (say, no ink): counts as a miss
        labels.append(label)
        sources.append(source)
    usable = [i for i, query in enumerate(queries) if query is not None]
    stacked = np.stack([query for query in queries if query is not None])
    label_array, source_array = np.array(labels), np.array(sources)
    pixels = gallery_images.reshape(len(gallery_images), -1).astype(np.float32) / 255.0
    candidates = [(name, embed_images(model, gallery_images), embed_images(model, stacked)) for name, model in models]
    candidates.append(("raw pixels", pixels, stacked.reshape(len(stacked), -1).astype(np.float32) / 255.0))
    group_array = np.array(groups or [])
    table: dict[str, dict[str, float]] = {}
    for name, gallery_codes, codes in candidates:
        hits = np.zeros(len(queries))
        found = exact_neighbours(gallery_codes, codes, k)
        hits[usable] = (gallery_labels[found] == label_array[usable, None]).mean(axis=1)
        table[name] = {source: float(hits[source_array == source].mean()) for source in dict.fromkeys(sources)}
        if groups:
            table[name] |= {group: float(hits[group_array == group].mean()) for group in dict.fromkeys(groups) if group}
    return table


@dataclass(frozen=True)
class HardQuery:
    """A protocol query the model answers worst: its test index and label, and its top neighbours."""

    query: int
    label: int
    precision: float
    neighbours: list[int]  # gallery (training set) indexes, nearest first
    neighbour_labels: list[int]


def hardest_queries(
    gallery_codes: np.ndarray,
    gallery_labels: np.ndarray,
    query_codes: np.ndarray,
    query_labels: np.ndarray,
    count: int = 12,
    k: int = 10,
) -> list[HardQuery]:
    """The `count` queries with the lowest P@k (ties: the nearest wrong neighbour closest), worst first."""
    found = exact_neighbours(gallery_codes, query_codes, k)
    hits = gallery_labels[found] == query_labels[:, None]
    precision = hits.mean(axis=1)
    # Among equally bad queries, those whose first neighbour is already wrong and confidently so come first.
    first_distance = np.linalg.norm(gallery_codes[found[:, 0]] - query_codes, axis=1)
    order = np.lexsort((first_distance, precision))[:count]
    return [
        HardQuery(int(q), int(query_labels[q]), float(precision[q]), found[q].tolist(),
                  gallery_labels[found[q]].tolist())
        for q in order
    ]  # fmt: skip
