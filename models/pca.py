"""Principal component analysis: the linear baseline every autoencoder is compared with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PCA:
    """The top principal components of a set of rows, largest variance first."""

    mean: np.ndarray
    components: np.ndarray  # (features, dim)

    @classmethod
    def fit(cls, rows: np.ndarray, dim: int) -> PCA:
        """Fit on rows (N, features) by eigen-decomposition of the covariance (small for 784 pixels)."""
        data = rows.astype(np.float64)
        mean = data.mean(axis=0)
        _, eigenvectors = np.linalg.eigh(np.cov((data - mean).T))
        return cls(mean, eigenvectors[:, ::-1][:, :dim].copy())

    def project(self, rows: np.ndarray) -> np.ndarray:
        """Codes (N, dim) of rows."""
        return ((rows - self.mean) @ self.components).astype(np.float32)

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        """Rows projected onto the components and mapped back to feature space."""
        return (self.project(rows) @ self.components.T + self.mean).astype(np.float32)


def pca_reconstruction_mse(train_pixels: np.ndarray, test_pixels: np.ndarray, dim: int) -> float:
    """Test MSE of PCA-`dim` fitted on the training rows, on [0, 1] pixels (clipped)."""
    pca = PCA.fit(train_pixels, dim)
    return float(((np.clip(pca.reconstruct(test_pixels), 0.0, 1.0) - test_pixels) ** 2).mean())
