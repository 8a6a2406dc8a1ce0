"""Generative adversarial networks: the two losses, PacGAN packing, and small batched MLPs for 2-D data.

Chapter 10 derives these from the minimax game of Goodfellow et al. (2014)

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))],

with ``D(x) = sigmoid(logit)``. Every loss here takes the discriminator's *logits*, never probabilities, and
uses the softplus identities ``-log sigmoid(a) = softplus(-a)`` and ``-log(1 - sigmoid(a)) = softplus(a)``, so
a logit of -1e4 gives an exact, finite loss where ``log(1 - sigmoid(a))`` would give ``-inf``.

- ``discriminator_loss``: ``mean softplus(-real) + mean softplus(fake)``, the binary cross-entropy of "real"
  (label 1) on real data plus that of "fake" (label 0) on generated data: the negated value of the game, so
  minimising it is the discriminator's ascent.
- ``generator_loss(kind="saturating")``: ``-mean softplus(fake) = mean log(1 - D(G(z)))``, the game's own
  term; its gradient with respect to a logit is ``-sigmoid(a)``, which vanishes when the discriminator
  confidently rejects the fakes (``D(G(z)) -> 0``).
- ``generator_loss(kind="nonsaturating")`` (the default): ``mean softplus(-fake) = -mean log D(G(z))``, the
  heuristic of the same paper; its gradient ``sigmoid(a) - 1`` tends to ``-1`` there.
- ``pack(x, m)``: PacGAN (Lin et al., 2018) shows the discriminator ``m`` samples at once by concatenating
  them: ``(N, d) -> (N // m, m * d)``; row ``i`` is ``x[i*m], ..., x[i*m + m - 1]`` side by side.
- ``BatchedMLP``: ``S`` independent MLPs evaluated with one ``torch.baddbmm`` per layer, so that several seeds
  of a tiny GAN train as one model while every seed keeps its own weights, initialisation and data. Weights
  follow the book's convention ``W`` in ``R^{d_in x d_out}`` and ``Z = X W + b``.

Bad input fails with a ``ValueError`` that says what was expected.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["discriminator_loss", "generator_loss", "pack", "BatchedMLP", "mlp"]

GENERATOR_LOSSES = ("nonsaturating", "saturating")


def _check_logits(name: str, t) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of logits, got {type(t).__name__}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor of logits, got dtype {t.dtype}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    # A NaN logit means training diverged: say so on the CPU, where the check is cheap. On an accelerator the
    # check would force a device-to-host sync on every call, so it is skipped there.
    if t.device.type == "cpu" and not torch.isfinite(t.detach()).all():
        raise ValueError(f"{name} contains NaN or inf (training has probably diverged: lower the learning rate)")
    return t


def discriminator_loss(d_real_logits: torch.Tensor, d_fake_logits: torch.Tensor) -> torch.Tensor:
    """``-E[log D(x)] - E[log(1 - D(G(z)))]`` from logits: ``mean softplus(-real) + mean softplus(fake)``.

    The two means are taken separately, so real and fake batches may differ in size. The minimum over the
    discriminator at fixed generator is ``log 4 - 2 JS(p_data || p_g)`` (chapter 10).
    """
    real = _check_logits("d_real_logits", d_real_logits)
    fake = _check_logits("d_fake_logits", d_fake_logits)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(d_fake_logits: torch.Tensor, kind: str = "nonsaturating") -> torch.Tensor:
    """The generator's loss from the discriminator's logits on generated samples.

    ``kind="nonsaturating"``: ``-E[log D(G(z))] = mean softplus(-fake)`` (gradient per logit ``sigmoid(a) - 1``).
    ``kind="saturating"``: ``E[log(1 - D(G(z)))] = -mean softplus(fake)`` (gradient per logit ``-sigmoid(a)``,
    which vanishes as ``D(G(z)) -> 0``). Both are means over the batch and are minimised by the generator.
    """
    fake = _check_logits("d_fake_logits", d_fake_logits)
    if kind == "nonsaturating":
        return F.softplus(-fake).mean()
    if kind == "saturating":
        return -F.softplus(fake).mean()
    raise ValueError(f"kind must be one of {GENERATOR_LOSSES}, got {kind!r}")


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN packing: ``(..., N, d) -> (..., N // m, m * d)``, consecutive groups of ``m`` rows side by side.

    Leading dimensions (for example a seed dimension of ``BatchedMLP``) are kept. ``m = 1`` returns ``x``.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"m (samples per pack) must be an integer >= 1, got {m!r}")
    if x.dim() < 2:
        raise ValueError(f"x must have shape (..., N, d), got {tuple(x.shape)}")
    n, d = x.shape[-2], x.shape[-1]
    if n % m:
        raise ValueError(f"the number of samples N={n} must be divisible by m={m} to pack them")
    return x.reshape(*x.shape[:-2], n // m, m * d)


class BatchedMLP(nn.Module):
    """``n_models`` independent MLPs with layer sizes ``sizes`` (ReLU between layers, none after the last).

    Input ``(n_models, N, sizes[0])`` -> output ``(n_models, N, sizes[-1])``. Layer ``l`` of model ``s`` has
    ``W[s]`` in ``R^{d_in x d_out}`` and ``b[s]``; it computes ``X W + b`` with ``torch.baddbmm``. Each model
    is initialised like ``nn.Linear`` (uniform in ``+-1/sqrt(d_in)``) from its own seed ``seeds[s]``, so
    model ``s`` is the same whether it trains alone or next to others.
    """

    def __init__(self, sizes: Sequence[int], seeds: Sequence[int]):
        super().__init__()
        sizes = list(sizes)
        seeds = list(seeds)
        if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"sizes must list at least two positive integers, got {sizes!r}")
        if len(seeds) < 1:
            raise ValueError("seeds must name at least one model")
        self.sizes, self.seeds = sizes, seeds
        Ws, bs = [[] for _ in sizes[1:]], [[] for _ in sizes[1:]]
        for seed in seeds:
            g = torch.Generator().manual_seed(int(seed))
            for l, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                bound = 1.0 / math.sqrt(d_in)
                Ws[l].append((torch.rand(d_in, d_out, generator=g) * 2 - 1) * bound)
                bs[l].append((torch.rand(1, d_out, generator=g) * 2 - 1) * bound)
        self.weights = nn.ParameterList([nn.Parameter(torch.stack(w)) for w in Ws])
        self.biases = nn.ParameterList([nn.Parameter(torch.stack(b)) for b in bs])

    @property
    def n_models(self) -> int:
        return len(self.seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[0] != self.n_models or x.shape[2] != self.sizes[0]:
            raise ValueError(f"expected input of shape ({self.n_models}, N, {self.sizes[0]}), "
                             f"got {tuple(x.shape)}")
        last = len(self.weights) - 1
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, W)
            if l < last:
                x = torch.relu(x)
        return x


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """A single MLP ``Linear -> ReLU -> ... -> Linear`` with layer sizes ``sizes`` (e.g. ``[2, 128, 1]``)."""
    sizes = list(sizes)
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"sizes must list at least two positive integers, got {sizes!r}")
    layers: list[nn.Module] = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])
