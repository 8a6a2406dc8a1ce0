"""A small convolutional variational autoencoder and a plain autoencoder for 8x8 digits (chapter 9).

- :class:`ConvVAE`: encoder ``q(z|x) = N(mu, diag(exp(logvar)))`` and a Bernoulli decoder ``p(x|z)`` whose
  ``decode`` returns **logits** ``(N, 1, 8, 8)`` (Kingma & Welling, 2014; Rezende et al., 2014).
- :class:`ConvAutoencoder`: the same encoder/decoder bodies without noise: ``encode(x) -> z``.
- :func:`reparameterize`: ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``, differentiable in mu
  and logvar.
- :func:`kl_normal`: closed-form ``KL(N(mu, diag exp(logvar)) || N(0, I))`` per example, shape ``(N,)``.
- :func:`elbo_loss`: the negative ELBO, ``recon + beta * kl``, averaged over the batch.

Inputs are images ``(N, 1, 8, 8)`` with intensities in [0, 1] (``dlcore.data.load_digits(flatten=False)``).
The Bernoulli decoder's binary cross-entropy also accepts grey levels: for a target ``x`` in [0, 1] it is the
cross-entropy between two Bernoulli distributions with means ``x`` and ``sigmoid(logit)``, minimized exactly at
``sigmoid(logit) = x``; it differs from the Bernoulli negative log-likelihood only by the target's own entropy,
a constant that does not depend on the model.

Sizes (``hidden = h``): encoder conv 1->h (8x8), conv h->2h stride 2 (4x4), linear 2h*16 -> 2*latent;
decoder linear latent -> 2h*16, transposed conv 2h->h stride 2 (8x8), conv h->1 (logits).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvVAE", "ConvAutoencoder", "reparameterize", "kl_normal", "elbo_loss"]


def _check_images(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (1, 8, 8):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (batch, 1, 8, 8), got {shape}; "
                         "use dlcore.data.load_digits(flatten=False) or x.reshape(-1, 1, 8, 8)")


def _check_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    if mu.ndim != 2 or mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must both have shape (batch, latent_dim), got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")


def _check_sizes(latent_dim: int, hidden: int) -> None:
    if int(latent_dim) < 1 or int(hidden) < 1:
        raise ValueError(f"latent_dim and hidden must be >= 1, got {latent_dim!r} and {hidden!r}")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``; gradients flow to mu and logvar.

    ``eps`` is drawn on the generator's device (CPU for :func:`dlcore.device.make_generator`) and moved to
    mu's device, so a CPU generator gives the same draws whatever device the model runs on.
    """
    _check_gaussian(mu, logvar)
    dev = generator.device if generator is not None else mu.device
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=dev).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` per row, shape ``(N,)``.

    Closed form: ``0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)``.
    """
    _check_gaussian(mu, logvar)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def elbo_loss(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
              beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The negative ELBO of a Bernoulli-decoder VAE: returns ``(loss, recon, kl)``, three scalars.

    ``recon`` is the binary cross-entropy with logits **summed over pixels** and **averaged over the batch**;
    ``kl`` is :func:`kl_normal` averaged over the batch; ``loss = recon + beta * kl``. With ``beta = 1`` the loss
    is the negative ELBO per example (in nats), up to the target-entropy constant for grey-level targets.
    """
    if logits.shape != x.shape or logits.ndim < 2:
        raise ValueError(f"logits and x must have the same shape (batch, ...), got {tuple(logits.shape)} and "
                         f"{tuple(x.shape)}")
    _check_gaussian(mu, logvar)
    if mu.shape[0] != x.shape[0]:
        raise ValueError(f"mu has {mu.shape[0]} rows but x has {x.shape[0]} examples")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"x must hold intensities in [0, 1], got values in [{float(x.min()):.3g}, "
                         f"{float(x.max()):.3g}]; scale the images first")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta!r}")
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
    kl = kl_normal(mu, logvar).mean()
    return recon + beta * kl, recon, kl


class _Encoder(nn.Module):
    def __init__(self, out_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, hidden, 3, padding=1), nn.ReLU(),                        # 8x8
            nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1), nn.ReLU(),     # 4x4
            nn.Flatten(), nn.Linear(2 * hidden * 16, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Decoder(nn.Module):
    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.fc = nn.Linear(latent_dim, 2 * hidden * 16)
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1), nn.ReLU(),   # 4x4 -> 8x8
            nn.Conv2d(hidden, 1, 3, padding=1))                                          # logits

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, 2 * self.hidden, 4, 4))


class ConvVAE(nn.Module):
    """A convolutional VAE for ``(N, 1, 8, 8)`` digits in [0, 1] with a ``latent_dim``-dimensional latent.

    ``encode(x) -> (mu, logvar)``, ``decode(z) -> logits (N, 1, 8, 8)``, ``forward(x, generator) -> (logits,
    mu, logvar)`` (one reparameterized draw), ``sample(n, generator) -> images in [0, 1]`` (the decoder's
    Bernoulli means ``sigmoid(logits)`` at ``z ~ N(0, I)``).
    """

    def __init__(self, latent_dim: int = 2, hidden: int = 32) -> None:
        super().__init__()
        _check_sizes(latent_dim, hidden)
        self.latent_dim, self.hidden = int(latent_dim), int(hidden)
        self.encoder = _Encoder(2 * self.latent_dim, self.hidden)
        self.decoder = _Decoder(self.latent_dim, self.hidden)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images(x)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (batch, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar, generator)), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n!r}")
        p = next(self.parameters())
        dev = generator.device if generator is not None else p.device
        z = torch.randn(int(n), self.latent_dim, generator=generator, dtype=p.dtype, device=dev).to(p.device)
        return torch.sigmoid(self.decode(z))


class ConvAutoencoder(nn.Module):
    """A deterministic convolutional autoencoder with the same bodies: ``encode(x) -> z (N, latent_dim)``,
    ``decode(z) -> logits (N, 1, 8, 8)``, ``forward(x) -> logits``."""

    def __init__(self, latent_dim: int = 2, hidden: int = 32) -> None:
        super().__init__()
        _check_sizes(latent_dim, hidden)
        self.latent_dim, self.hidden = int(latent_dim), int(hidden)
        self.encoder = _Encoder(self.latent_dim, self.hidden)
        self.decoder = _Decoder(self.latent_dim, self.hidden)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (batch, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
