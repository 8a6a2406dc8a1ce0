"""A small residual network (He et al. 2016) for 1-D signals and 2-D images, and its plain counterpart.

A residual block computes ``relu(x + F(x))`` where ``F`` is two 3-wide convolutions with batch norm:
``conv -> batch norm -> relu -> conv -> batch norm``. When ``F`` changes the shape (more channels, or a
stride that halves the length), the skip path becomes a 1x1 convolution with the same stride plus batch
norm (a *projection* shortcut), so that the two paths can be added. With ``residual=False`` the block
drops the skip path and computes ``relu(F(x))``: the same layers, the same parameters on the main path,
no shortcut. That is the *plain* network of the degradation experiment in chapter 6.

:class:`ResNet` stacks a stem convolution, stages of blocks (each stage after the first starts with a
stride-2 block that halves the spatial size and changes the width), global average pooling and a linear
head. ``dim=1`` builds it from ``Conv1d`` (inputs ``(batch, channels, length)``; with one input channel
``(batch, length)`` is accepted too), ``dim=2`` from ``Conv2d`` (inputs ``(batch, channels, height,
width)``, in either memory format: call ``model.to(memory_format=torch.channels_last)`` and pass
channels-last images for the faster layout on GPUs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}
_AXES = {1: "length", 2: "height, width"}


def _check_dim(dim) -> int:
    if dim not in (1, 2) or isinstance(dim, bool):
        raise ValueError(f"dim must be 1 (signals, Conv1d) or 2 (images, Conv2d), got {dim!r}")
    return dim


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dim: int = 2) -> nn.Sequential:
    """A convolution without bias (batch norm's shift replaces it) followed by batch norm; 'same' padding."""
    conv = _CONV[dim](in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
    return nn.Sequential(conv, _NORM[dim](out_channels))


class ResidualBlock(nn.Module):
    """``relu(shortcut(x) + F(x))`` with ``F = conv3-bn-relu-conv3-bn`` (``relu(F(x))`` if not ``residual``).

    ``out_channels`` defaults to ``in_channels``. The shortcut is the identity when ``F`` keeps the shape
    (same channels, ``stride=1``), else a 1x1 convolution with stride ``stride`` and batch norm.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1, dim: int = 2,
                 residual: bool = True) -> None:
        super().__init__()
        dim = _check_dim(dim)
        out_channels = in_channels if out_channels is None else out_channels
        _check_positive("in_channels", in_channels)
        _check_positive("out_channels", out_channels)
        _check_positive("stride", stride)
        self.dim, self.residual = dim, bool(residual)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.f1 = conv_bn(in_channels, out_channels, 3, stride, dim)     # the residual function F, first half
        self.f2 = conv_bn(out_channels, out_channels, 3, 1, dim)         # second half (no relu before the sum)
        if not self.residual:
            self.shortcut = None
        elif stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = conv_bn(in_channels, out_channels, 1, stride, dim)   # projection shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (batch, {self.in_channels}, {_AXES[self.dim]}), "
                             f"got {tuple(x.shape)}")
        out = self.f2(F.relu(self.f1(x)))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    """A small ResNet: stem (conv3-bn-relu), stages of :class:`ResidualBlock`, global average pooling, linear.

    ``widths[i]`` is the number of channels of stage ``i``; ``blocks_per_stage`` is one number for every
    stage or one per stage. Every stage after the first halves the spatial size in its first block.
    ``residual=False`` gives the plain network of the same depth (every block without its skip path).
    """

    def __init__(self, in_channels: int, num_classes: int, widths: Sequence[int] = (16, 32, 64),
                 blocks_per_stage: int | Sequence[int] = 2, dim: int = 2, residual: bool = True) -> None:
        super().__init__()
        self.dim = _check_dim(dim)
        self.in_channels = _check_positive("in_channels", in_channels)
        _check_positive("num_classes", num_classes)
        widths = tuple(widths)
        if not widths:
            raise ValueError("widths must name at least one stage, e.g. widths=(16, 32)")
        for w in widths:
            _check_positive("every width", w)
        blocks = ((blocks_per_stage,) * len(widths) if isinstance(blocks_per_stage, int)
                  else tuple(blocks_per_stage))
        if len(blocks) != len(widths):
            raise ValueError(f"blocks_per_stage has {len(blocks)} entries but widths has {len(widths)} stages")
        for b in blocks:
            _check_positive("blocks per stage", b)
        self.widths, self.blocks_per_stage, self.residual = widths, blocks, bool(residual)

        self.stem = nn.Sequential(conv_bn(in_channels, widths[0], 3, 1, dim), nn.ReLU())
        stages, c_in = [], widths[0]
        for i, (width, n_blocks) in enumerate(zip(widths, blocks)):
            stage = [ResidualBlock(c_in, width, stride=1 if i == 0 else 2, dim=dim, residual=residual)]
            stage += [ResidualBlock(width, width, dim=dim, residual=residual) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*stage))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.pool = _POOL[dim](1)                    # global average pooling: one number per channel
        self.head = nn.Linear(widths[-1], num_classes)

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.dim == 1 and x.ndim == 2 and self.in_channels == 1:
            return x.unsqueeze(1)                    # (batch, length) signals: one channel
        if x.ndim != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (batch, {self.in_channels}, {_AXES[self.dim]}), "
                             f"got {tuple(x.shape)}")
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled feature vector, shape (batch, widths[-1]), that the linear head classifies."""
        x = self.stages(self.stem(self._check_input(x)))
        return self.pool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
