"""Two small convolutional networks for the book's offline data sets (chapter 6).

- :class:`LeNet`: a LeNet-style 2-D network (LeCun et al., 1998) sized for scikit-learn's 8x8 digits,
  input ``(N, 1, 8, 8)``: conv32 - conv32 - maxpool - conv64 - maxpool - fc128 - fc10, 3x3 kernels with
  padding 1 (so a convolution keeps the size and each pooling halves it: 8 -> 4 -> 2).
- :class:`CNN1D`: the small 1-D network of the MNIST-1D paper (Greydanus, 2020), input ``(N, 40)`` or
  ``(N, 1, 40)``: three strided convolutions (40 -> 19 -> 10 -> 5 positions) and one linear layer,
  optionally with batch norm after each convolution.
- :func:`random_shift`: shift each image of a batch by up to ``max_shift`` pixels (zero fill), the
  augmentation the digits recipe uses.

Both models check their input shape and raise a ``ValueError`` that names the expected shape.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _shape(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(x.shape)


class LeNet(nn.Module):
    """A LeNet-style CNN for ``(N, 1, 8, 8)`` digit images; returns ``(N, num_classes)`` logits.

    ``channels`` are the widths of the three convolutions, ``hidden`` the width of the fully connected
    layer. The defaults give 62,250 parameters.
    """

    def __init__(self, num_classes: int = 10, channels: Sequence[int] = (32, 32, 64), hidden: int = 128) -> None:
        super().__init__()
        if len(channels) != 3 or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be three positive widths, got {tuple(channels)!r}")
        if num_classes < 1 or hidden < 1:
            raise ValueError(f"num_classes and hidden must be >= 1, got {num_classes!r} and {hidden!r}")
        c1, c2, c3 = (int(c) for c in channels)
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(),    # 8x8
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),   # 8x8
            nn.MaxPool2d(2),                              # 4x4
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),   # 4x4
            nn.MaxPool2d(2),                              # 2x2
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c3 * 2 * 2, hidden), nn.ReLU(),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 8, 8):
            raise ValueError(f"expected input of shape (batch, 1, 8, 8), got {_shape(x)}")
        return self.classifier(self.features(x))


class CNN1D(nn.Module):
    """A small 1-D CNN for MNIST-1D signals ``(N, 40)`` or ``(N, 1, 40)``; returns ``(N, num_classes)`` logits.

    Each convolution has stride ``stride`` and padding 1, followed by batch norm (if ``batch_norm``) and a
    ReLU. With the defaults (the MNIST-1D paper's network) the lengths go 40 -> 19 -> 10 -> 5 and the
    model has 5,210 parameters.
    """

    def __init__(self, num_classes: int = 10, channels: Sequence[int] = (25, 25, 25),
                 kernel_sizes: Sequence[int] = (5, 3, 3), stride: int = 2, length: int = 40,
                 batch_norm: bool = False) -> None:
        super().__init__()
        if len(channels) == 0 or len(channels) != len(kernel_sizes):
            raise ValueError(f"channels and kernel_sizes must be non-empty and of equal length, got "
                             f"{tuple(channels)!r} and {tuple(kernel_sizes)!r}")
        if stride < 1 or length < 1 or num_classes < 1:
            raise ValueError(f"stride, length and num_classes must be >= 1, got {stride!r}, {length!r}, "
                             f"{num_classes!r}")
        self.length = int(length)
        layers: list[nn.Module] = []
        c_in, n = 1, self.length
        for c, k in zip(channels, kernel_sizes):
            layers.append(nn.Conv1d(c_in, int(c), int(k), stride=stride, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(c)))
            layers.append(nn.ReLU())
            n = (n + 2 - int(k)) // stride + 1
            if n < 1:
                raise ValueError(f"the signal of length {length} shrinks to nothing after kernel {k}: "
                                 "use fewer layers, smaller kernels or a smaller stride")
            c_in = int(c)
        self.features = nn.Sequential(*layers)
        self.out_length = n
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c_in * n, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2 and x.shape[1] == self.length:
            x = x[:, None, :]
        elif not (x.ndim == 3 and tuple(x.shape[1:]) == (1, self.length)):
            raise ValueError(f"expected input of shape (batch, {self.length}) or (batch, 1, {self.length}), "
                             f"got {_shape(x)}")
        return self.classifier(self.features(x))


def random_shift(x: torch.Tensor, max_shift: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift every image of ``x`` (N, C, H, W) by its own random offset in ``[-max_shift, max_shift]``
    along each axis, filling the uncovered border with zeros. The shape is unchanged."""
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (batch, channels, height, width), got {_shape(x)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift!r}")
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    m = max_shift
    padded = nn.functional.pad(x, (m, m, m, m))
    offs = torch.randint(0, 2 * m + 1, (n, 2), generator=generator)
    rows = (offs[:, 0:1] + torch.arange(h)).to(x.device)          # (n, h): which padded rows each image keeps
    cols = (offs[:, 1:2] + torch.arange(w)).to(x.device)
    idx = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]   # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()
