"""Database-side augmentation and query expansion: label-free re-ranking that helps noisy clusters."""

import numpy as np

from index.evaluation import evaluate_codes
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
