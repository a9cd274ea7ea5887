"""Database-side augmentation and query expansion: label-free re-ranking that helps noisy clusters."""

import numpy as np

from index.backend import IndexSpec
from index.evaluation import evaluate_codes, exact_neighbours
from index.gallery import Gallery, GalleryItem
from index.rerank import augment_database, expand_queries


def test_reranking_helps_noisy_clusters_and_keeps_shapes() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 8)) * 2.0
    labels = rng.integers(0, 10, 3000)
    gallery = centres[labels] + rng.normal(size=(3000, 8)) * 1.6  # clusters that overlap
    query_labels = rng.integers(0, 10, 500)
    queries = centres[query_labels] + rng.normal(size=(500, 8)) * 1.6
    plain = evaluate_codes(gallery, labels, queries, query_labels)
    augmented = augment_database(gallery)
    expanded = expand_queries(queries, augmented)
    assert augmented.shape == gallery.shape and expanded.shape == queries.shape
    reranked = evaluate_codes(augmented, labels, expanded, query_labels)
    assert reranked.p_at_10 > plain.p_at_10 and reranked.map_at_100 > plain.map_at_100


def test_a_gallery_built_with_reranking_answers_as_the_evaluation_reranks() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(10, 8)) * 2.0
    labels = rng.integers(0, 10, 2000)
    codes = (centres[labels] + rng.normal(size=(2000, 8)) * 1.6).astype(np.float32)
    items = [GalleryItem(i, "train", i, int(label)) for i, label in enumerate(labels)]
    images = np.zeros((2000, 28, 28), dtype=np.uint8)
    queries = (centres[labels[:50]] + rng.normal(size=(50, 8)) * 1.6).astype(np.float32)

    def build(rerank: int) -> Gallery:
        spec = IndexSpec(rerank_neighbours=rerank)
        return Gallery.build(codes, items, images, model_version="v", model_variant="conv", gallery="t", spec=spec)

    served = [[n.item.id for n in row] for row in build(10).search(queries, 10)]
    augmented = augment_database(codes)
    expected = exact_neighbours(augmented, expand_queries(queries, augmented), 10).tolist()
    assert served == expected  # the service re-ranks exactly as `aeseek eval --rerank` measures
    plain = [[n.item.label for n in row] for row in build(0).search(queries, 10)]
    reranked = [[n.item.label for n in row] for row in build(10).search(queries, 10)]
    truth = labels[:50, None]
    assert (np.array(reranked) == truth).mean() > (np.array(plain) == truth).mean()
