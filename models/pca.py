"""Principal component analysis, the one implementation: the linear baseline and the latent map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PCA:
    """The top principal components of a set of rows, largest variance first."""

    mean: np.ndarray  # (features,)
    components: np.ndarray  # (features, dim)
    explained: np.ndarray  # (dim,) share of the total variance along each component

    @classmethod
    def fit(cls, rows: np.ndarray, dim: int) -> PCA:
        """Fit on rows (N, features) by eigen-decomposition of the covariance (small: 784 pixels or a code)."""
        data = rows.astype(np.float64)
        mean = data.mean(axis=0)
        covariance = np.atleast_2d(np.cov((data - mean).T))
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = slice(None, None, -1)  # eigh sorts ascending
        variance, vectors = eigenvalues[order], eigenvectors[:, order]
        total = float(variance.sum())
        explained = variance[:dim] / total if total > 0 else np.zeros(min(dim, len(variance)))
        return cls(mean, vectors[:, :dim].copy(), np.clip(explained, 0.0, 1.0))

    def project(self, rows: np.ndarray) -> np.ndarray:
        """Codes (N, dim) of rows."""
        return ((rows - self.mean) @ self.components).astype(np.float32)

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        """Rows projected onto the components and mapped back to feature space."""
        return (self.project(rows) @ self.components.T + self.mean).astype(np.float32)

    def reconstruction_mse(self, pixels: np.ndarray) -> float:
        """Mean squared error of the reconstructions of [0, 1] pixel rows, clipped to [0, 1]."""
        return float(((np.clip(self.reconstruct(pixels), 0.0, 1.0) - pixels) ** 2).mean())
