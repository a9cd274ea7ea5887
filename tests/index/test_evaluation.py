import numpy as np
import pytest

from index.evaluation import evaluate_codes, full_ranking_map, scores_from_neighbours


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


def test_full_ranking_map_matches_a_brute_force_ranking() -> None:
    rng = np.random.default_rng(4)
    gallery, labels = rng.normal(size=(80, 3)), rng.integers(0, 4, 80)
    queries, query_labels = rng.normal(size=(7, 3)), rng.integers(0, 4, 7)
    expected = []
    for query, label in zip(queries, query_labels, strict=True):
        order = np.argsort(((gallery - query) ** 2).sum(axis=1), kind="stable")
        hits = np.flatnonzero(labels[order] == label) + 1
        expected.append(np.mean(np.arange(1, len(hits) + 1) / hits))
    assert full_ranking_map(gallery, labels, queries, query_labels, chunk=3) == pytest.approx(np.mean(expected))


def test_full_ranking_map_is_one_for_separable_clusters_and_chance_for_noise() -> None:
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(4), 100)
    clusters = rng.normal(size=(400, 2)) * 0.1 + labels[:, None] * 10
    assert full_ranking_map(clusters, labels, clusters[::10], labels[::10]) == pytest.approx(1.0)
    noise = rng.normal(size=(400, 8))
    queries = rng.normal(size=(100, 8))  # codes that say nothing of the label: about 1 in 4 is relevant
    assert abs(full_ranking_map(noise, labels, queries, labels[::4]) - 0.25) < 0.1
