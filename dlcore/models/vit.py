"""The Vision Transformer (Dosovitskiy et al., 2021), sized for scikit-learn's 8x8 digits (chapter 8).

An image becomes a sequence, and the rest is the encoder of :mod:`dlcore.models.gpt` without the causal mask:

1. :func:`patchify` cuts an ``(N, C, H, W)`` image into non-overlapping ``p x p`` patches, read row by row
   (left to right, top to bottom), and flattens each into a vector of ``C*p*p`` numbers (channel first, then
   the patch's rows): ``(N, (H/p)*(W/p), C*p*p)``. :func:`unpatchify` puts them back exactly.
2. A linear layer embeds each patch vector in ``d_model`` dimensions (the same as a convolution with kernel
   and stride ``p``). A learned **class token** is put in front of the patches, and a learned position vector
   is added to every token (``pos="learned"``; ``pos="none"`` leaves positions out, which makes the encoder
   blind to where a patch came from: permuting the patches permutes the outputs, see the tests).
3. ``depth`` blocks :class:`dlcore.models.gpt.Block` with ``causal=False``: every token attends to every token.
4. A final LayerNorm, then a linear head on the class token's output gives ``(N, num_classes)`` logits.

nn.Linear stores the transpose of the book's ``W``: ``embed.weight`` has shape ``(d_model, C*p*p)``.
:func:`param_count` is the parameter count from the sizes alone, derived in the book.
"""
from __future__ import annotations

import torch
from torch import nn

from dlcore.models.gpt import Block

POS_KINDS = ("learned", "none")


def _check_patch(image_size: int, patch_size: int) -> int:
    if image_size < 1 or patch_size < 1:
        raise ValueError(f"image_size and patch_size must be positive, got {image_size} and {patch_size}")
    if image_size % patch_size != 0:
        raise ValueError(f"image_size ({image_size}) must be divisible by patch_size ({patch_size}): the "
                         f"patches tile the image without overlap or remainder")
    return (image_size // patch_size) ** 2


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(N, C, H, W)`` images -> ``(N, (H/p)*(W/p), C*p*p)`` flattened patches, row-major patch order.

    Patch ``i*(W/p) + j`` holds pixels ``[i*p:(i+1)*p, j*p:(j+1)*p]`` of every channel, flattened in the
    order (channel, row, column).
    """
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (batch, channels, height, width), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    p = int(patch_size)
    if p < 1 or h % p != 0 or w % p != 0:
        raise ValueError(f"image size {h}x{w} is not divisible by patch_size {patch_size}")
    x = images.reshape(n, c, h // p, p, w // p, p)           # (N, C, rows of patches, p, cols of patches, p)
    x = x.permute(0, 2, 4, 1, 3, 5)                          # (N, rows, cols, C, p, p)
    return x.reshape(n, (h // p) * (w // p), c * p * p)


def unpatchify(patches: torch.Tensor, patch_size: int, image_size: int, channels: int = 1) -> torch.Tensor:
    """The inverse of :func:`patchify` for square images: ``(N, P, C*p*p)`` -> ``(N, C, S, S)``."""
    num = _check_patch(image_size, patch_size)
    p, g = int(patch_size), int(image_size) // int(patch_size)
    if patches.ndim != 3 or patches.shape[1] != num or patches.shape[2] != channels * p * p:
        raise ValueError(f"expected patches of shape (batch, {num}, {channels * p * p}), got {tuple(patches.shape)}")
    n = patches.shape[0]
    x = patches.reshape(n, g, g, channels, p, p).permute(0, 3, 1, 4, 2, 5)   # (N, C, rows, p, cols, p)
    return x.reshape(n, channels, image_size, image_size)


def param_count(image_size: int = 8, patch_size: int = 2, in_channels: int = 1, num_classes: int = 10,
                d_model: int = 64, depth: int = 4, mlp_ratio: int = 2, pos: str = "learned") -> int:
    """Parameters of ``ViT(...)`` with the same arguments, from the sizes alone.

    With P patches of D = C·p² numbers, width d, MLP ratio r, depth L and K classes: patch embedding Dd + d,
    class token d, positions (P + 1)d (if learned), each block (4 + 2r)d² + (9 + r)d (weights, biases of
    q, k, v, output and the MLP, two LayerNorms), final LayerNorm 2d, head dK + K.
    """
    num = _check_patch(image_size, patch_size)
    d, r = d_model, mlp_ratio
    patch_dim = in_channels * patch_size ** 2
    pos_params = (num + 1) * d if pos == "learned" else 0
    block = (4 + 2 * r) * d * d + (9 + r) * d
    return patch_dim * d + d + d + pos_params + depth * block + 2 * d + d * num_classes + num_classes


class ViT(nn.Module):
    """A Vision Transformer for ``(N, in_channels, image_size, image_size)`` images -> ``(N, num_classes)``.

    ``pos="learned"`` (default) adds a learned position vector to the class token and to each patch;
    ``pos="none"`` adds none. Wrong input shapes raise a ``ValueError`` naming the expected shape.
    """

    def __init__(self, image_size: int = 8, patch_size: int = 2, in_channels: int = 1, num_classes: int = 10,
                 d_model: int = 64, depth: int = 4, n_heads: int = 4, mlp_ratio: int = 2, dropout: float = 0.0,
                 pos: str = "learned") -> None:
        super().__init__()
        if pos not in POS_KINDS:
            raise ValueError(f"pos must be one of {POS_KINDS}, got {pos!r}")
        if depth < 1 or num_classes < 1 or in_channels < 1:
            raise ValueError(f"depth, num_classes and in_channels must be positive, got {depth}, {num_classes}, "
                             f"{in_channels}")
        self.num_patches = _check_patch(image_size, patch_size)
        self.image_size, self.patch_size, self.in_channels = int(image_size), int(patch_size), int(in_channels)
        self.embed = nn.Linear(in_channels * patch_size ** 2, d_model)        # weight = W^T: (d, C p^2)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos = pos
        if pos == "learned":
            self.pos_emb = nn.Parameter(0.02 * torch.randn(1, self.num_patches + 1, d_model))
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, mlp_ratio, dropout, causal=False)
                                    for _ in range(depth))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def num_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def _check(self, x: torch.Tensor) -> None:
        want = (self.in_channels, self.image_size, self.image_size)
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != want:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected input of shape (batch, {want[0]}, {want[1]}, {want[2]}), got {got}")

    def embed_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: class token then the embedded patches, plus positions: (N, 1 + P, d)."""
        self._check(x)
        z = self.embed(patchify(x, self.patch_size))
        z = torch.cat([self.cls.expand(len(z), -1, -1), z], dim=1)
        if self.pos == "learned":
            z = z + self.pos_emb
        return self.drop(z)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The final (normalized) output of every token: (N, 1 + P, d); token 0 is the class token."""
        z = self.embed_tokens(x)
        for block in self.blocks:
            z = block(z)
        return self.ln(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(x)[:, 0])

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every block: a list of ``depth`` tensors (N, heads, 1 + P, 1 + P)."""
        z = self.embed_tokens(x)
        maps = []
        for block in self.blocks:
            maps.append(block.attn.weights(block.ln1(z)))
            z = block(z)
        return maps
