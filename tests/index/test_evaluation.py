import numpy as np
import pytest

from index.evaluation import evaluate_codes, scores_from_neighbours


def test_scores_on_a_hand_checked_ranking() -> None:
    query_labels = np.array([1])
    # Relevant at ranks 1, 3 and 100; everything else irrelevant.
    labels = np.zeros((1, 100), dtype=int)
    labels[0, [0, 2, 99]] = 1
    scores = scores_from_neighbours(labels, query_labels)
    assert scores.p_at_1 == 1.0
    assert scores.p_at_10 == pytest.approx(0.2)
    assert scores.p_at_100 == pytest.approx(0.03)
    assert scores.map_at_100 == pytest.approx((1 / 1 + 2 / 3 + 3 / 100) / 3)


def test_query_without_relevant_neighbours_scores_zero() -> None:
    scores = scores_from_neighbours(np.zeros((1, 100), dtype=int), np.array([5]))
    assert scores.map_at_100 == 0.0 and scores.p_at_10 == 0.0


def test_separable_clusters_retrieve_perfectly() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 200)
    gallery = rng.normal(size=(600, 2)) * 0.1 + labels[:, None] * 10
    queries = rng.normal(size=(30, 2)) * 0.1 + np.repeat(np.arange(3), 10)[:, None] * 10
    scores = evaluate_codes(gallery, labels, queries, np.repeat(np.arange(3), 10))
    assert scores.p_at_100 == 1.0 and scores.map_at_100 == 1.0
