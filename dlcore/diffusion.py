"""Denoising diffusion (chapter 11): noise schedules, the forward process, the DDPM loss, DDPM and DDIM samplers.

Chapter 11 (11_1_ddpm) derives each piece; this module holds the tested version that 11_2 (digits with a U-Net)
and 11_3 (latent diffusion) import.

**Time convention.** The papers number diffusion steps ``t = 1 .. T``; this module (like most code) indexes them
``t = 0 .. T-1``: index ``t`` holds the paper's step ``t + 1``. So ``sched.betas[0]`` is the paper's ``beta_1``,
``sched.alpha_bars[t] = prod_{s <= t} (1 - betas[s])`` is the paper's ``alpha_bar_{t+1}``, and ``x_t`` in code
means "data after ``t + 1`` noising steps". ``x0`` always means clean data (the paper's ``x_0``). Timesteps
passed to models and functions are ``torch.long`` tensors of shape (N,) with values in ``[0, T)``; anything
else raises a ``ValueError``.

- :func:`linear_betas` (Ho et al. 2020) and :func:`cosine_betas` (Nichol & Dhariwal 2021) build ``betas``;
  :class:`Schedule` holds them with ``alphas``, ``alpha_bars`` and the square roots the formulas need
  (float64 on the CPU by default; ``.to(device)``), and :meth:`Schedule.posterior` gives the mean and variance
  of ``q(x_{t-1} | x_t, x_0)``.
- :func:`q_sample` draws ``x_t ~ q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)`` in closed form.
- :func:`ddpm_loss` is the simplified DDPM objective ``E ||eps - eps_theta(x_t, t)||^2`` (Ho et al. 2020) with
  optional class labels and label dropout for classifier-free guidance (Ho & Salimans 2022): a dropped label
  becomes the **null class** index ``num_classes``.
- :func:`ddpm_sample` is ancestral sampling with ``sigma_t^2 = beta_t``; :func:`ddim_sample` is DDIM (Song et
  al. 2021) on a subsequence of ``steps`` timesteps, deterministic for ``eta = 0``, and with ``eta = 1`` and
  ``steps = T`` it is ancestral sampling with the posterior variance ``beta_tilde_t``.
- :func:`guided_eps`: classifier-free guidance ``eps = (1 + w) eps(x, y) - w eps(x, null)``, the convention
  of Ho & Salimans (2022): ``w = 0`` is the plain conditional model (no extra evaluation).
- :class:`TimeEmbedding` (sinusoidal features, as for chapter 8's positions, then an MLP) and
  :class:`MLPDenoiser` (for 2-D points and latent vectors).

Every model follows one signature: ``model(x_t, t, y=None) -> eps`` with ``eps`` the shape of ``x_t``.
Random numbers come from an optional CPU ``torch.Generator`` (see :func:`dlcore.device.make_generator`) and are
moved to the model's device, so a seed gives the same numbers on every device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcore.train import _model_device

__all__ = ["linear_betas", "cosine_betas", "Schedule", "q_sample", "ddpm_loss", "ddpm_sample", "ddim_sample",
           "ddim_timesteps", "guided_eps", "TimeEmbedding", "MLPDenoiser"]

Denoiser = Callable[..., torch.Tensor]


# ---- schedules ------------------------------------------------------------------------------------------

def _check_T(T) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T (the number of diffusion steps) must be an integer >= 1, got {T!r}")
    return int(T)


def linear_betas(T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """``T`` noise variances rising linearly from ``beta_1`` to ``beta_T`` (Ho et al. 2020), float64, shape (T,).

    Ho et al. used ``T = 1000``; with fewer steps the same end points leave ``alpha_bar_T`` far from 0 (the last
    step is not pure noise), so for small ``T`` scale ``beta_T`` up (e.g. ``beta_T = 0.02 * 1000 / T``, capped
    below 1) or use :func:`cosine_betas`.
    """
    T = _check_T(T)
    if not (0.0 < beta_1 < 1.0 and 0.0 < beta_T < 1.0):
        raise ValueError(f"beta_1 and beta_T must lie in (0, 1), got beta_1={beta_1!r}, beta_T={beta_T!r}")
    return torch.linspace(beta_1, beta_T, T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """The cosine schedule of Nichol & Dhariwal (2021), float64, shape (T,).

    ``alpha_bar(t) = f(t) / f(0)`` with ``f(t) = cos^2(pi/2 * (t/T + s) / (1 + s))`` for the paper's
    ``t = 0 .. T``, and ``beta_t = 1 - alpha_bar(t) / alpha_bar(t-1)`` clipped at ``max_beta`` (the paper's 0.999,
    which stops the last step from being singular). ``s`` keeps ``beta_1`` from being tiny.
    """
    T = _check_T(T)
    if not s >= 0:
        raise ValueError(f"s must be >= 0, got {s!r}")
    if not 0.0 < max_beta < 1.0:
        raise ValueError(f"max_beta must lie in (0, 1), got {max_beta!r}")
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


@dataclass
class Schedule:
    """A noise schedule and every derived quantity the formulas need, all of shape (T,), indexed ``t = 0..T-1``.

    ``betas[t]`` (the paper's ``beta_{t+1}``), ``alphas = 1 - betas``, ``alpha_bars[t] = prod_{s<=t} alphas[s]``,
    ``alpha_bars_prev[t] = alpha_bars[t-1]`` (1 for ``t = 0``), ``sqrt_alpha_bars``,
    ``sqrt_one_minus_alpha_bars`` and ``posterior_variance[t] = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)``
    (the variance ``beta_tilde`` of ``q(x_{t-1} | x_t, x_0)``; 0 for ``t = 0``, where ``x_{t-1}`` is the data).

    Build it with ``Schedule(linear_betas(T))``; products are taken in float64 whatever the input dtype, and the
    tensors stay float64 (cast on use). ``.to(device)`` returns a copy on ``device``.
    """

    betas: torch.Tensor

    def __post_init__(self) -> None:
        b = torch.as_tensor(self.betas).detach()
        if b.ndim != 1 or len(b) < 1:
            raise ValueError(f"betas must be a non-empty 1-D tensor, got shape {tuple(b.shape)}")
        b64 = b.to(torch.float64)
        if not torch.isfinite(b64).all() or (b64 <= 0).any() or (b64 >= 1).any():
            raise ValueError("every beta must lie in the open interval (0, 1); got "
                             f"min {b64.min().item():.3g}, max {b64.max().item():.3g}")
        self.betas = b64.to(b.device)
        self.alphas = 1 - self.betas
        self.alpha_bars = torch.cumprod(self.alphas, 0)
        self.alpha_bars_prev = torch.cat([self.alpha_bars.new_ones(1), self.alpha_bars[:-1]])
        self.sqrt_alpha_bars = self.alpha_bars.sqrt()
        self.sqrt_one_minus_alpha_bars = (1 - self.alpha_bars).sqrt()
        self.posterior_variance = self.betas * (1 - self.alpha_bars_prev) / (1 - self.alpha_bars)

    @property
    def T(self) -> int:
        """The number of diffusion steps."""
        return len(self.betas)

    @property
    def device(self) -> torch.device:
        return self.betas.device

    def to(self, device) -> "Schedule":
        """A copy of the schedule with every tensor on ``device``."""
        return Schedule(self.betas.to(device))

    def check_t(self, t) -> torch.Tensor:
        """``t`` as a long tensor of shape (N,) with values in ``[0, T)``, or a ``ValueError`` that says why not."""
        t = torch.as_tensor(t)
        if t.dtype in (torch.bool,) or t.is_floating_point() or t.is_complex():
            raise ValueError(f"timesteps must be an integer (long) tensor, got dtype {t.dtype}")
        if t.ndim != 1:
            raise ValueError(f"timesteps must have shape (N,), got {tuple(t.shape)}")
        if len(t) and (int(t.min()) < 0 or int(t.max()) >= self.T):
            raise ValueError(f"timesteps must lie in [0, T) = [0, {self.T}) (index t holds the paper's step t+1), "
                             f"got values from {int(t.min())} to {int(t.max())}")
        return t.long()

    def gather(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` reshaped to (N, 1, ..., 1) to broadcast against ``like`` (N, ...), in ``like``'s dtype."""
        out = values.to(like.device)[t.to(like.device)].to(like.dtype)
        return out.reshape(len(t), *([1] * (like.ndim - 1)))

    def posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of ``q(x_{t-1} | x_t, x_0)`` (Ho et al. 2020, eq. 7), variance shaped to broadcast.

        ``mean = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0 + sqrt(alpha_t) (1 - alpha_bar_{t-1}) /
        (1 - alpha_bar_t) x_t`` and ``variance = beta_tilde_t``.
        """
        t = self.check_t(t)
        _check_batch(x0, t, "x0")
        if x_t.shape != x0.shape:
            raise ValueError(f"x_t and x0 must have the same shape, got {tuple(x_t.shape)} and {tuple(x0.shape)}")
        ab, ab_prev = self.gather(self.alpha_bars, t, x0), self.gather(self.alpha_bars_prev, t, x0)
        beta, alpha = self.gather(self.betas, t, x0), self.gather(self.alphas, t, x0)
        mean = ab_prev.sqrt() * beta / (1 - ab) * x0 + alpha.sqrt() * (1 - ab_prev) / (1 - ab) * x_t
        return mean, self.gather(self.posterior_variance, t, x0)


def _check_batch(x: torch.Tensor, t: torch.Tensor, name: str = "x") -> None:
    if x.ndim < 1 or x.shape[0] != len(t):
        raise ValueError(f"{name} must have the batch size of t along its first axis: {name} has shape "
                         f"{tuple(x.shape)}, t has shape {tuple(t.shape)}")


def q_sample(sched: Schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """``x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise``: a draw from ``q(x_t | x_0)`` in one step.

    ``x0`` has shape (N, ...), ``t`` is a long tensor (N,) in ``[0, T)``; ``noise`` (the shape of ``x0``)
    defaults to a standard normal draw from ``generator``.
    """
    t = sched.check_t(t)
    _check_batch(x0, t, "x0")
    if noise is None:
        noise = _randn(x0.shape, generator, x0.device, x0.dtype)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
    return sched.gather(sched.sqrt_alpha_bars, t, x0) * x0 + sched.gather(sched.sqrt_one_minus_alpha_bars, t,
                                                                          x0) * noise


def _randn(shape, generator, device, dtype=torch.float32) -> torch.Tensor:
    """Standard normal numbers drawn on the CPU (so a seed means the same numbers everywhere), moved to device."""
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)


def _null_class(model, null_class: int | None) -> int:
    if null_class is not None:
        return int(null_class)
    n = getattr(model, "num_classes", None)
    if n is None:
        raise ValueError("the null class is unknown: pass null_class= (the index num_classes of the unconditional "
                         "label) or give the model an attribute num_classes")
    return int(n)


def _check_labels(y, n: int, device) -> torch.Tensor:
    y = torch.as_tensor(y, device=device)
    if y.is_floating_point() or y.ndim != 1 or len(y) != n:
        raise ValueError(f"labels y must be an integer tensor of shape ({n},), got dtype {y.dtype}, "
                         f"shape {tuple(y.shape)}")
    return y.long()


def ddpm_loss(model: Denoiser, sched: Schedule, x0: torch.Tensor, generator: torch.Generator | None = None,
              y: torch.Tensor | None = None, p_uncond: float = 0.0, null_class: int | None = None) -> torch.Tensor:
    """The simplified DDPM loss: mean over the batch and every coordinate of ``(eps - model(x_t, t, y))^2``.

    For each example a timestep ``t ~ U{0, .., T-1}`` and noise ``eps ~ N(0, I)`` are drawn (from
    ``generator``), ``x_t = q_sample(sched, x0, t, eps)``, and the model predicts ``eps``. With labels ``y``
    and ``p_uncond > 0`` each label is replaced, with probability ``p_uncond``, by the null class (``null_class``,
    by default ``model.num_classes``), so that one network learns the conditional and the unconditional model
    that classifier-free guidance combines.
    """
    if x0.ndim < 2:
        raise ValueError(f"x0 must have shape (N, ...) with at least one feature axis, got {tuple(x0.shape)}")
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must lie in [0, 1], got {p_uncond!r}")
    if p_uncond > 0 and y is None:
        raise ValueError("p_uncond > 0 drops labels to the null class, but no labels y were given")
    n = len(x0)
    t = torch.randint(0, sched.T, (n,), generator=generator).to(x0.device)
    eps = _randn(x0.shape, generator, x0.device, x0.dtype)
    x_t = q_sample(sched, x0, t, eps)
    if y is not None:
        y = _check_labels(y, n, x0.device)
        if p_uncond > 0:
            drop = (torch.rand(n, generator=generator) < p_uncond).to(x0.device)
            y = torch.where(drop, torch.full_like(y, _null_class(model, null_class)), y)
    pred = model(x_t, t, y)
    if pred.shape != x0.shape:
        raise ValueError(f"the model must return eps of the shape of x_t {tuple(x0.shape)}, got "
                         f"{tuple(pred.shape)}")
    return F.mse_loss(pred, eps)


def guided_eps(model: Denoiser, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None, guidance: float = 0.0,
               null_class: int | None = None) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022): ``(1 + w) eps(x, t, y) - w eps(x, t, null)``, ``w = guidance``.

    ``w = 0`` returns the conditional prediction ``eps(x, t, y)`` (one model call; ``y=None`` is then the
    unconditional model); ``w > 0`` pushes samples towards what distinguishes class ``y`` and needs labels.
    In the other common convention, ``eps(null) + s (eps(y) - eps(null))``, the scale is ``s = 1 + w``. The two
    predictions are made in one batched call. ``null_class`` defaults to ``model.num_classes``.
    """
    if guidance == 0:
        return model(x, t, y)
    if y is None:
        raise ValueError(f"guidance={guidance!r} needs class labels y (guidance compares eps(x, y) with "
                         "eps(x, null)); pass y or set guidance=0")
    y = _check_labels(y, len(x), x.device)
    null = torch.full_like(y, _null_class(model, null_class))
    eps = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
    eps_c, eps_u = eps.chunk(2)
    return (1 + guidance) * eps_c - guidance * eps_u


def _sampling_setup(model, sched: Schedule, shape, y, guidance, device):
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"shape must be (N, ...) with positive sizes, got {shape}")
    if not guidance >= 0:                                # also rejects NaN
        raise ValueError(f"guidance must be a number >= 0, got {guidance!r}")
    if guidance != 0 and y is None:
        raise ValueError(f"guidance={guidance!r} needs class labels y; pass y or set guidance=0")
    device = torch.device(device) if device is not None else _model_device(model)
    if y is not None:
        y = _check_labels(y, shape[0], device)
    return shape, y, device


@torch.no_grad()
def ddpm_sample(model: Denoiser, sched: Schedule, shape: Sequence[int], generator: torch.Generator | None = None,
                y: torch.Tensor | None = None, guidance: float = 0.0, null_class: int | None = None,
                clip: float | None = None, return_trajectory: bool = False, device=None) -> torch.Tensor:
    """Ancestral sampling (Ho et al. 2020, algorithm 2) with ``sigma_t^2 = beta_t``; returns ``x_0`` of ``shape``.

    Starting from ``x ~ N(0, I)`` at ``t = T-1``, each step is
    ``x <- (x - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sqrt(beta_t) z`` with fresh noise ``z``
    except at the last step (``t = 0``). ``eps`` is :func:`guided_eps` (``y``, ``guidance``). With ``clip``, the
    step instead predicts ``x0`` from ``eps``, clamps it to ``[-clip, clip]`` and uses the posterior mean of
    :meth:`Schedule.posterior` (for data known to be bounded, e.g. images scaled to ``[-1, 1]``).
    ``return_trajectory=True`` returns every state, shape ``(T + 1, *shape)`` from ``x_T`` (pure noise) to
    ``x_0`` (on the CPU). The model runs in whatever mode it is in; call ``model.eval()`` first.
    """
    shape, y, device = _sampling_setup(model, sched, shape, y, guidance, device)
    x = _randn(shape, generator, device)
    traj = [x.cpu()] if return_trajectory else None
    for i in reversed(range(sched.T)):
        t = torch.full((shape[0],), i, dtype=torch.long, device=device)
        eps = guided_eps(model, x, t, y, guidance, null_class)
        if clip is None:
            beta, ab, alpha = (float(v[i]) for v in (sched.betas, sched.alpha_bars, sched.alphas))
            mean = (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(alpha)
        else:
            x0 = ((x - float(sched.sqrt_one_minus_alpha_bars[i]) * eps) / float(sched.sqrt_alpha_bars[i]))
            mean, _ = sched.posterior(x0.clamp(-clip, clip), x, t)
        if i > 0:
            x = mean + math.sqrt(float(sched.betas[i])) * _randn(shape, generator, device, mean.dtype)
        else:
            x = mean
        if traj is not None:
            traj.append(x.cpu())
    return torch.stack(traj) if traj is not None else x


def ddim_timesteps(T: int, steps: int) -> torch.Tensor:
    """The ``steps`` timesteps DDIM visits, increasing from 0 to ``T - 1`` (evenly spaced, rounded), long (steps,).

    ``steps = T`` gives every timestep; ``steps = 1`` gives ``[T - 1]`` (one jump from noise to data).
    """
    T = _check_T(T)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= T:
        raise ValueError(f"steps must be an integer in [1, T] = [1, {T}], got {steps!r}")
    if steps == 1:
        return torch.tensor([T - 1])
    return torch.from_numpy(np.round(np.linspace(0, T - 1, steps)).astype(np.int64))


@torch.no_grad()
def ddim_sample(model: Denoiser, sched: Schedule, shape: Sequence[int], steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None, y: torch.Tensor | None = None, guidance: float = 0.0,
                null_class: int | None = None, clip: float | None = None, return_trajectory: bool = False,
                device=None) -> torch.Tensor:
    """DDIM sampling (Song, Meng & Ermon 2021) on the timesteps of :func:`ddim_timesteps`; returns ``x_0``.

    From timestep ``t`` to the previous visited one ``s`` (``alpha_bar_s = 1`` after the last):
    ``x0_hat = (x - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)`` (clamped to ``[-clip, clip]`` if ``clip``),
    ``sigma = eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_s)`` and
    ``x <- sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s - sigma^2) eps + sigma z``.
    ``eta = 0`` is deterministic given the starting noise; ``eta = 1`` with ``steps = T`` is ancestral sampling
    with the posterior variance ``beta_tilde_t``. ``return_trajectory=True`` returns ``(steps + 1, *shape)``.
    """
    if not eta >= 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")
    seq = ddim_timesteps(sched.T, steps)
    shape, y, device = _sampling_setup(model, sched, shape, y, guidance, device)
    x = _randn(shape, generator, device)
    traj = [x.cpu()] if return_trajectory else None
    for k in reversed(range(len(seq))):
        i = int(seq[k])
        ab = float(sched.alpha_bars[i])
        ab_prev = float(sched.alpha_bars[int(seq[k - 1])]) if k > 0 else 1.0
        t = torch.full((shape[0],), i, dtype=torch.long, device=device)
        eps = guided_eps(model, x, t, y, guidance, null_class)
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)     # keep eps consistent with the clamped x0
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma ** 2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * _randn(shape, generator, device, x.dtype)
        if traj is not None:
            traj.append(x.cpu())
    return torch.stack(traj) if traj is not None else x


# ---- networks -------------------------------------------------------------------------------------------

class TimeEmbedding(nn.Module):
    """Embed integer timesteps: sinusoidal features (as chapter 8's positions), then Linear-SiLU-Linear to ``dim``.

    Feature ``i < dim/2`` is ``sin(t * base^(-2i/dim))`` and feature ``dim/2 + i`` the matching cosine
    (Vaswani et al. 2017; Ho et al. 2020 embed the timestep the same way). ``dim`` must be even.
    Input: t of shape (N,) (long or float); output (N, dim).
    """

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even integer >= 2, got {dim!r}")
        self.dim, self.base = dim, base
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def sinusoidal(self, t: torch.Tensor) -> torch.Tensor:
        """The fixed (N, dim) sinusoidal features of ``t``, before the MLP."""
        if t.ndim != 1:
            raise ValueError(f"t must have shape (N,), got {tuple(t.shape)}")
        half = self.dim // 2
        freqs = self.base ** (-torch.arange(half, device=t.device, dtype=torch.float32) / half)
        angles = t.float()[:, None] * freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoidal(t))


class MLPDenoiser(nn.Module):
    """An MLP ``eps_theta(x_t, t, y)`` for vectors (2-D points, latent codes): ``model(x_t, t, y=None) -> eps``.

    The input layer maps ``x_t`` (N, dim) to ``hidden`` units and adds the time embedding (and, with
    ``num_classes``, a learned class embedding) projected to ``hidden``: that is the first of ``depth`` hidden
    layers of width ``hidden`` (``depth - 1`` linear layers follow it), each followed by SiLU, then a linear
    layer back to ``dim``. With ``num_classes = K`` the class embedding has ``K + 1``
    rows: row ``K`` is the null class used for unconditional prediction (``y=None`` means all-null).
    """

    def __init__(self, dim: int = 2, hidden: int = 128, time_dim: int = 32, num_classes: int | None = None,
                 depth: int = 3):
        super().__init__()
        for name, v in (("dim", dim), ("hidden", hidden), ("depth", depth)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes < 1):
            raise ValueError(f"num_classes must be None or a positive integer, got {num_classes!r}")
        self.dim, self.num_classes = dim, num_classes
        self.time = TimeEmbedding(time_dim)
        self.inp = nn.Linear(dim, hidden)
        self.cond = nn.Linear(time_dim, hidden)
        self.label = nn.Embedding(num_classes + 1, time_dim) if num_classes is not None else None
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.SiLU(), nn.Linear(hidden, hidden)]
        self.body = nn.Sequential(*layers, nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (N, {self.dim}), got {tuple(x.shape)}")
        if t.ndim != 1 or len(t) != len(x) or t.is_floating_point():
            raise ValueError(f"t must be an integer tensor of shape ({len(x)},), got dtype {t.dtype}, "
                             f"shape {tuple(t.shape)}")
        emb = self.time(t)
        if self.label is not None:
            if y is None:
                y = torch.full((len(x),), self.num_classes, dtype=torch.long, device=x.device)
            y = _check_labels(y, len(x), x.device)
            if int(y.min()) < 0 or int(y.max()) > self.num_classes:
                raise ValueError(f"labels must lie in [0, {self.num_classes}] ({self.num_classes} = null class)")
            emb = emb + self.label(y)
        elif y is not None:
            raise ValueError("this MLPDenoiser is unconditional (num_classes=None) but labels y were given")
        return self.body(self.inp(x) + self.cond(emb))
