"""The one PCA: exact at full rank, components by variance, the explained shares, reconstruction error."""

import numpy as np

from models.pca import PCA


def test_full_rank_pca_reconstructs_exactly() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(100, 5))
    pca = PCA.fit(data, 5)
    assert pca.project(data).shape == (100, 5)
    assert np.allclose(pca.reconstruct(data[:10]), data[:10], atol=1e-4)


def test_components_are_ordered_by_explained_variance() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(500, 4)) * np.array([5.0, 1.0, 3.0, 0.5])
    variances = PCA.fit(data, 4).project(data).var(axis=0)
    assert np.all(np.diff(variances) <= 1e-6)
    assert variances[0] > 20


def test_more_components_never_reconstruct_worse() -> None:
    rng = np.random.default_rng(2)
    data = rng.uniform(size=(300, 12))
    errors = [PCA.fit(data, dim).reconstruction_mse(data) for dim in (1, 4, 8, 12)]
    assert errors == sorted(errors, reverse=True)


def test_explained_shares_match_the_variance_along_each_axis() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(2000, 3)) * np.array([4.0, 2.0, 1.0])
    pca = PCA.fit(data, 2)
    projected_variance = pca.project(data).var(axis=0, ddof=1)
    total = data.var(axis=0, ddof=1).sum()
    assert np.allclose(pca.explained, projected_variance / total, rtol=1e-4)
    assert np.allclose(pca.explained, [16 / 21, 4 / 21], atol=0.03)
