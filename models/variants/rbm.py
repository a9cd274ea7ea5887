"""Restricted Boltzmann machines trained with contrastive divergence (Hinton 2002).

Bernoulli visible units; Bernoulli hidden units, or linear units with unit-variance
Gaussian noise for the top layer of a deep autoencoder (Hinton & Salakhutdinov 2006).
Training minimises F(v_data) - F(v_model) with v_model from a k-step Gibbs chain started
at the data and held constant: its gradient is exactly the CD-k update
<v h>_data - <v h>_model, so the shared Adam loop trains RBMs too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RBM(nn.Module):
    """An RBM with weights W (hidden, visible), visible bias b and hidden bias c."""

    def __init__(self, visible: int, hidden: int, gaussian_hidden: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(hidden, visible) * 0.01)
        self.visible_bias = nn.Parameter(torch.zeros(visible))
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))
        self.gaussian_hidden = gaussian_hidden

    def hidden_mean(self, v: Tensor) -> Tensor:
        """E[h | v]: sigmoid for Bernoulli units, the linear input for Gaussian ones."""
        pre = F.linear(v, self.weight, self.hidden_bias)
        return pre if self.gaussian_hidden else torch.sigmoid(pre)

    def sample_hidden(self, v: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A sample of h given v."""
        mean = self.hidden_mean(v)
        if self.gaussian_hidden:
            return mean + torch.randn(mean.shape, generator=generator)
        return torch.bernoulli(mean, generator=generator)

    def visible_mean(self, h: Tensor) -> Tensor:
        """P(v = 1 | h)."""
        return torch.sigmoid(F.linear(h, self.weight.t(), self.visible_bias))

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) up to a constant, one value per row.

        Bernoulli hidden: F(v) = -b.v - sum_j softplus(c_j + W_j v).
        Gaussian hidden (unit variance): F(v) = -b.v - 1/2 ||c + W v||^2 (+ const).
        """
        pre = F.linear(v, self.weight, self.hidden_bias)
        visible_term = v @ self.visible_bias
        if self.gaussian_hidden:
            return -visible_term - 0.5 * pre.pow(2).sum(dim=1)
        return -visible_term - F.softplus(pre).sum(dim=1)

    @torch.no_grad()
    def gibbs_chain(self, v: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        """v after `steps` rounds of h ~ p(h|v), v = P(v|h) (mean-field visible, as in H&S 2006)."""
        for _ in range(steps):
            v = self.visible_mean(self.sample_hidden(v, generator))
        return v

    def contrastive_divergence_loss(self, v: Tensor, steps: int = 1) -> Tensor:
        """Surrogate whose gradient is the CD-k update: mean F(v) - mean F(v_k)."""
        negative = self.gibbs_chain(v, steps)
        return self.free_energy(v).mean() - self.free_energy(negative).mean()

    @torch.no_grad()
    def reconstruction_error(self, v: Tensor) -> float:
        """Mean squared error of the one-step mean-field reconstruction v -> E[h] -> P(v|h)."""
        return float((self.visible_mean(self.hidden_mean(v)) - v).pow(2).mean())
