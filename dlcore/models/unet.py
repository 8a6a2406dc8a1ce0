"""A small U-Net (Ronneberger et al. 2015) that predicts the noise of a diffusion model (chapter 11).

The network maps a noisy image ``x_t``, its timestep ``t`` and optionally a class label ``y`` to a tensor
of the same shape as ``x_t``: the predicted noise ``eps``. Its parts:

- **Embedding.** The timestep goes through :class:`dlcore.diffusion.TimeEmbedding`: a sinusoidal code (the
  same sines and cosines as the positions of chapter 8) and a two-layer MLP. With ``num_classes``
  set, a learned label embedding is *added* to it. The label table has ``num_classes + 1`` rows: row
  ``num_classes`` is the **null class** ("no label"), which classifier-free guidance uses for the
  unconditional prediction; ``y=None`` means the null class for every example.
- **Residual blocks** (:class:`ResBlock`): ``GroupNorm -> SiLU -> conv3x3``, then the embedding, projected to
  the block's channels, is added to every pixel (a per-channel shift that tells the block how noisy its
  input is), then ``GroupNorm -> SiLU -> conv3x3`` again, plus a skip path (identity or a 1x1 convolution).
- **Down and up.** Level ``i`` has ``base * channel_mults[i]`` channels; between levels a stride-2
  convolution halves the image (8 -> 4 with two levels) and on the way back nearest-neighbour upsampling
  plus a 3x3 convolution doubles it. Every up block receives the down block's output at the same
  resolution, concatenated along channels: the *skip connections* that give the U its name and let fine
  detail bypass the coarse bottleneck.

Shapes: ``x`` is ``(batch, in_channels, image_size, image_size)``, ``t`` an integer tensor ``(batch,)``,
``y`` an integer tensor ``(batch,)`` with values in ``0..num_classes`` (``num_classes`` = null). The output
convolution starts at zero, so an untrained network predicts ``eps = 0`` (the DDPM loss starts at 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcore.diffusion import TimeEmbedding


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _norm(channels: int) -> nn.GroupNorm:
    """Group norm with up to 8 groups (fewer when the channel count is not a multiple of 8).

    A group holds at least two channels where it can: with one channel per group the norm would subtract each
    channel's mean and so erase the per-channel embedding shift that :class:`ResBlock` adds just before it.
    """
    groups = math.gcd(8, channels)
    if groups == channels > 1:                            # 2, 4 or 8 channels: halve to 2 channels a group
        groups //= 2
    return nn.GroupNorm(groups, channels)


class ResBlock(nn.Module):
    """``skip(x) + conv(SiLU(norm(conv(SiLU(norm(x))) + proj(emb))))``: a residual block told the noise level.

    ``proj`` is a linear map from the embedding (width ``emb_dim``) to one shift per output channel.
    """

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1, self.conv1 = _norm(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, out_channels)
        self.norm2, self.conv2 = _norm(out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = (nn.Identity() if in_channels == out_channels
                     else nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb_proj(emb)[:, :, None, None]          # the same shift at every pixel of a channel
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    """Noise predictor ``model(x_t, t, y=None) -> eps`` for small square images (see the module docstring).

    ``channel_mults=(1, 2)`` gives two levels (8x8 with ``base`` channels, 4x4 with ``2 * base``);
    ``(1, 2, 2)`` adds a 2x2 level. ``image_size`` must be divisible by ``2 ** (len(channel_mults) - 1)``.
    ``num_classes=None`` builds an unconditional model; otherwise labels ``0..num_classes-1`` are classes
    and ``num_classes`` is the null class used for classifier-free guidance.
    """

    def __init__(self, in_channels: int = 1, base: int = 32, channel_mults: Sequence[int] = (1, 2),
                 time_dim: int = 64, num_classes: int | None = None, image_size: int = 8) -> None:
        super().__init__()
        self.in_channels = _check_positive("in_channels", in_channels)
        _check_positive("base", base)
        self.time_dim = _check_positive("time_dim", time_dim)
        if time_dim % 2:
            raise ValueError(f"time_dim must be even (sines and cosines in pairs), got {time_dim}")
        self.image_size = _check_positive("image_size", image_size)
        mults = tuple(channel_mults)
        if not mults:
            raise ValueError("channel_mults must name at least one level, e.g. channel_mults=(1, 2)")
        for m in mults:
            _check_positive("every channel multiplier", m)
        if num_classes is not None:
            _check_positive("num_classes", num_classes)
        factor = 2 ** (len(mults) - 1)
        if image_size % factor:
            raise ValueError(f"image_size {image_size} must be divisible by 2**{len(mults) - 1} = {factor} "
                             f"for {len(mults)} levels (channel_mults={mults}); use fewer levels or pad the images")
        self.channel_mults, self.num_classes = mults, num_classes
        self.null_class = num_classes                     # the label index that means "no label"
        chans = [base * m for m in mults]
        self.channels = tuple(chans)

        self.time_embed = TimeEmbedding(time_dim)
        self.label_embed = nn.Embedding(num_classes + 1, time_dim) if num_classes is not None else None
        self.stem = nn.Conv2d(in_channels, chans[0], 3, padding=1)
        self.down = nn.ModuleList()
        c_prev = chans[0]
        for c in chans:
            self.down.append(ResBlock(c_prev, c, time_dim))
            c_prev = c
        self.downsample = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1) for c in chans[:-1])
        self.mid = ResBlock(chans[-1], chans[-1], time_dim)
        self.up = nn.ModuleList(ResBlock((chans[i + 1] if i + 1 < len(chans) else chans[i]) + chans[i], chans[i],
                                         time_dim) for i in range(len(chans)))
        self.upsample = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for c in chans[1:])
        self.out_norm = _norm(chans[0])
        self.out = nn.Conv2d(chans[0], in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)                  # start by predicting eps = 0
        nn.init.zeros_(self.out.bias)

    def _check(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        s, c = self.image_size, self.in_channels
        if x.ndim != 4 or x.shape[1] != c or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(f"expected x of shape (batch, {c}, {s}, {s}), got {tuple(x.shape)}")
        n = x.shape[0]
        if not torch.is_tensor(t) or t.shape != (n,):
            shape = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
            raise ValueError(f"expected timesteps t of shape ({n},), one per image, got {shape}")
        if t.is_floating_point() or t.is_complex():
            raise ValueError(f"timesteps t must be integers (a LongTensor), got dtype {t.dtype}")
        if n and int(t.min()) < 0:
            raise ValueError(f"timesteps must be >= 0, got {int(t.min())}")
        if y is None:
            if self.label_embed is None:
                return None
            return torch.full((n,), self.null_class, dtype=torch.long, device=x.device)
        if self.label_embed is None:
            raise ValueError("labels y were given but the model is unconditional: build UNet(num_classes=...)")
        if not torch.is_tensor(y) or y.shape != (n,) or y.is_floating_point():
            shape = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
            raise ValueError(f"expected integer labels y of shape ({n},), got {shape}")
        if n and (int(y.min()) < 0 or int(y.max()) > self.num_classes):
            raise ValueError(f"labels must lie in 0..{self.num_classes} ({self.num_classes} = null class), got "
                             f"values from {int(y.min())} to {int(y.max())}")
        return y

    def embed(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The conditioning vector every residual block sees: time embedding (+ label embedding).

        As in :meth:`forward`, ``y=None`` means the null class for a class-conditional model; an unconditional
        model has no label embedding and ignores ``y``.
        """
        emb = self.time_embed(t)
        if self.label_embed is not None:
            if y is None:
                y = torch.full(t.shape, self.null_class, dtype=torch.long, device=t.device)
            emb = emb + self.label_embed(y)
        return emb

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = self._check(x, t, y)
        emb = self.embed(t, y)
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, emb)
        for i in reversed(range(len(self.up))):
            h = self.up[i](torch.cat([h, skips[i]], dim=1), emb)
            if i > 0:
                h = self.upsample[i - 1](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
