"""A DCGAN-style generator and discriminator for 8x8 digits (chapter 10), optionally class-conditional.

The architecture follows the guidelines of Radford et al. (2016, "DCGAN"), shrunk to 8x8 images:

- no pooling: the generator upsamples with strided transposed convolutions (2 -> 4 -> 8), the
  discriminator downsamples with strided convolutions (8 -> 4 -> 2);
- batch norm in the generator (every layer but the output) and in the discriminator's hidden layer
  (never on the discriminator's input);
- ReLU in the generator, LeakyReLU (slope 0.2) in the discriminator;
- no fully connected hidden layers: one linear "project and reshape" at the generator's input and one
  linear read-out of the discriminator's last feature map;
- weights drawn from N(0, 0.02^2), batch-norm scales from N(1, 0.02^2), biases zero.

The generator ends in a sigmoid, so images lie in [0, 1] like ``dlcore.data.load_digits`` (DCGAN's tanh
output on [-1, 1] is the same function rescaled: sigmoid(a) = (1 + tanh(a / 2)) / 2).

Conditional variants (Mirza & Osindero, 2014) take integer labels ``y``: the generator concatenates a
learned label embedding to the noise; the discriminator turns the label into an extra 8x8 input channel.
Both raise a ``ValueError`` that names the problem for a wrong shape, a missing label or a label out of range.
"""
from __future__ import annotations

import torch
from torch import nn

IMAGE_SHAPE = (1, 8, 8)


def dcgan_init_(module: nn.Module) -> None:
    """Initialise ``module`` in place as in Radford et al. (2016): N(0, 0.02) weights, N(1, 0.02) BN scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _check_labels(y, n: int, num_classes: int | None, who: str) -> torch.Tensor | None:
    if num_classes is None:
        if y is not None:
            raise ValueError(f"this {who} is unconditional (num_classes=None) but got labels y; "
                             f"build it with num_classes=10 to condition on the class")
        return None
    if y is None:
        raise ValueError(f"this {who} is conditional (num_classes={num_classes}): pass integer labels y of "
                         f"shape ({n},)")
    y = torch.as_tensor(y)
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.shape != (n,):
        raise ValueError(f"labels y must be an integer tensor of shape ({n},), got dtype {y.dtype} and shape "
                         f"{tuple(y.shape)}")
    if n > 0 and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values from {int(y.min())} to "
                         f"{int(y.max())}")
    return y.long()


class Generator(nn.Module):
    """Noise ``z`` of shape ``(N, latent_dim)`` (and labels ``y`` if conditional) to images ``(N, 1, 8, 8)`` in [0, 1].

    ``z -> linear to (2*hidden, 2, 2) -> BN, ReLU -> convT to (hidden, 4, 4) -> BN, ReLU -> convT to
    (1, 8, 8) -> sigmoid``. The transposed convolutions have kernel 4, stride 2, padding 1 (each doubles
    the side). With ``num_classes`` set, a label embedding of ``embed_dim`` numbers joins ``z``.
    """

    def __init__(self, latent_dim: int = 32, hidden: int = 64, num_classes: int | None = None,
                 embed_dim: int = 16) -> None:
        super().__init__()
        if latent_dim < 1 or hidden < 1 or embed_dim < 1:
            raise ValueError(f"latent_dim, hidden and embed_dim must be >= 1, got {latent_dim}, {hidden}, "
                             f"{embed_dim}")
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"num_classes must be None (unconditional) or >= 2, got {num_classes!r}")
        self.latent_dim, self.hidden, self.num_classes = int(latent_dim), int(hidden), num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes is not None else None
        d_in = self.latent_dim + (embed_dim if num_classes is not None else 0)
        self.project = nn.Sequential(nn.Linear(d_in, 2 * hidden * 2 * 2, bias=False),
                                     nn.BatchNorm1d(2 * hidden * 2 * 2), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1, bias=False),   # 2x2 -> 4x4
            nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.ConvTranspose2d(hidden, 1, 4, stride=2, padding=1),                      # 4x4 -> 8x8
            nn.Sigmoid(),
        )
        dcgan_init_(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected noise of shape (batch, {self.latent_dim}), got {tuple(z.shape)}")
        y = _check_labels(y, z.shape[0], self.num_classes, "generator")
        h = z if y is None else torch.cat([z, self.embed(y.to(z.device))], dim=1)
        h = self.project(h).reshape(-1, 2 * self.hidden, 2, 2)
        return self.net(h)

    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` images in eval mode (batch norm uses its running statistics), without gradients.

        ``generator`` (a CPU ``torch.Generator``) makes the noise repeatable; the model's mode is restored.
        """
        p = next(self.parameters())
        device = device if device is not None else p.device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device=device, dtype=p.dtype)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self(z, y if y is None else torch.as_tensor(y).to(device))
        finally:
            self.train(was_training)


class Discriminator(nn.Module):
    """Images ``(N, 1, 8, 8)`` (and labels ``y`` if conditional) to logits ``(N,)``: large means "real".

    ``conv to (hidden, 4, 4) -> LeakyReLU -> conv to (2*hidden, 2, 2) -> BN, LeakyReLU -> linear to 1``,
    convolutions with kernel 4, stride 2, padding 1. With ``num_classes`` set, each label's embedding
    (64 numbers) is reshaped to an 8x8 map and stacked with the image as a second input channel.
    Set ``batch_norm=False`` to drop the hidden batch norm (e.g. for a gradient penalty or packing).
    """

    def __init__(self, hidden: int = 64, num_classes: int | None = None, batch_norm: bool = True,
                 slope: float = 0.2) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"num_classes must be None (unconditional) or >= 2, got {num_classes!r}")
        self.hidden, self.num_classes = int(hidden), num_classes
        self.embed = nn.Embedding(num_classes, 64) if num_classes is not None else None
        c_in = 1 if num_classes is None else 2
        self.net = nn.Sequential(
            nn.Conv2d(c_in, hidden, 4, stride=2, padding=1), nn.LeakyReLU(slope),               # 8 -> 4
            nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1, bias=not batch_norm),         # 4 -> 2
            nn.BatchNorm2d(2 * hidden) if batch_norm else nn.Identity(), nn.LeakyReLU(slope),
            nn.Flatten(), nn.Linear(2 * hidden * 2 * 2, 1),
        )
        dcgan_init_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"expected images of shape (batch, 1, 8, 8), got {tuple(x.shape)}; reshape flat "
                             f"digits with x.reshape(-1, 1, 8, 8)")
        y = _check_labels(y, x.shape[0], self.num_classes, "discriminator")
        if y is not None:
            x = torch.cat([x, self.embed(y.to(x.device)).reshape(-1, 1, 8, 8)], dim=1)
        return self.net(x).squeeze(1)
