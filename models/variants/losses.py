"""The loss terms of the chapter's autoencoders (4.3.1.2, 4.3.7), each a function of tensors,
tested against independent computations in tests/models/variants/test_losses.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import jacrev, vmap


def reconstruction_loss(kind: str, logits: Tensor, target: Tensor) -> Tensor:
    """Per-image summed reconstruction loss, averaged over the batch."""
    if kind == "bce":
        total = F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    else:
        total = F.mse_loss(torch.sigmoid(logits), target, reduction="sum")
    return total / target.shape[0]


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over latent dims, one value per row.

    Kingma & Welling 2014, Appendix B: -1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2).
    The chapter's formula writes `+ sigma^2`, a sign typo that would reward huge variances.
    """
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def weight_decay(modules: Iterable[nn.Module]) -> Tensor:
    """sum_j w_j^2 over the weights (not biases) of the Linear layers: the L2 penalty of 4.3.7.1."""
    terms = [m.weight.pow(2).sum() for m in modules if isinstance(m, nn.Linear)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def sparsity_kl(activations: Tensor, target: float) -> Tensor:
    """sum_j KL(rho || rho_hat_j) with rho_hat_j the mean activation of unit j over the batch.

    Sparse autoencoders, 4.3.7.2 (Ng, "Sparse autoencoder" lecture notes, 2011):
    KL(rho || rho_hat) = rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)).
    Activations must lie in (0, 1) (sigmoid units); rho_hat is clamped away from 0 and 1.
    """
    rho_hat = activations.mean(dim=0).clamp(1e-6, 1 - 1e-6)
    rho = torch.full_like(rho_hat, target)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def contractive_sigmoid_layer(hidden: Tensor, weight: Tensor) -> Tensor:
    """||J_x(h)||_F^2 per row for one sigmoid layer h = sigmoid(W x + b), in closed form.

    Rifai et al. 2011, eq. 5: dh_j/dx_i = h_j (1 - h_j) W_ji, so the squared Frobenius norm
    is sum_j (h_j (1 - h_j))^2 sum_i W_ji^2.
    """
    return ((hidden * (1 - hidden)).pow(2) * weight.pow(2).sum(dim=1)).sum(dim=1)


def contractive_autograd(encoder: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """||J_x(h)||_F^2 per row for any differentiable encoder, by per-sample Jacobians."""
    jacobians = vmap(jacrev(lambda row: encoder(row.unsqueeze(0)).squeeze(0)))(x)  # (B, code, inputs)
    return jacobians.pow(2).flatten(1).sum(dim=1)


def info_nce_euclidean(first: Tensor, second: Tensor, temperature: float) -> Tensor:
    """InfoNCE over a batch of code pairs, with minus the squared Euclidean distance as the similarity.

    Row i of `first` and of `second` are two views of one image (a positive pair); every other row
    of the batch is a negative (Oord et al. 2018; the two-view form of SimCLR, Chen et al. 2020).
    The similarity is the search's own metric, so what the term pulls together the L2 index finds.
    """
    logits = -torch.cdist(first, second).pow(2) / temperature
    targets = torch.arange(len(first), device=first.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))
