"""A small, readable decoder-only transformer (GPT) and its counts (chapter 8).

- :class:`GPTConfig`: the sizes (vocabulary, context, width, heads, layers, MLP ratio) and the choices
  (positional information ``pos``, ``bias``, ``dropout``, attention kernel ``attn``).
- :class:`Block`: one pre-LayerNorm transformer block, ``x + attn(ln1(x))`` then ``x + mlp(ln2(x))``
  (Xiong et al., 2020). ``block(x)`` returns a tensor, so encoders (ViT, BERT) use it with ``causal=False``.
- :class:`GPT`: token embedding (+ learned or sinusoidal positions) -> blocks -> final LayerNorm -> head.
  ``forward(idx, state=None) -> (logits, state)``: the state is the **KV cache**, so
  ``dlcore.text.generate`` drives it like a recurrent model.
- :func:`param_count` and :func:`flops_per_token`: the formulas derived in the book, checked in the tests
  against ``num_params()`` and ``torch.utils.flop_counter.FlopCounterMode``.
- :func:`generate`: sampling with or without the KV cache (identical ids under a seeded generator).

Conventions. Batch first, ``(N, T, d)``. Attention uses one fused projection ``qkv = nn.Linear(d, 3d)``;
nn.Linear stores the transpose of the book's ``W`` (``qkv.weight`` is ``[W_q W_k W_v]ᵀ``: the three (d, d)
matrices side by side, transposed, shape (3d, d)). Heads split the last dimension: head ``h`` uses columns
``h*d_head:(h+1)*d_head``.

Design choices (they fix the parameter count):
- The head is **untied** from the token embedding (its own ``d x V`` matrix, plus ``V`` biases when
  ``bias=True``). Tying would remove ``V*d`` parameters; untied keeps the count and the code simple.
- ``bias`` switches the biases of every Linear layer (q/k/v, output projection, MLP, head). LayerNorms
  always have a gain and a bias (``2d`` each).
- ``dropout`` is applied to the embeddings and to the output of each residual branch (attention and MLP),
  not to the attention weights, so the explicit kernel (``attn="manual"``) and torch's fused one
  (``attn="sdpa"``) compute the same function in training as well.
- ``pos="learned"`` adds a trained ``(context, d)`` table; ``"sinusoidal"`` adds the fixed table of Vaswani
  et al. (2017) (a buffer, not a parameter); ``"rope"`` rotates each head's queries and keys (Su et al.,
  2021) and adds nothing to the input; ``"none"`` gives no positional information (the causal mask alone
  still lets a decoder infer some).

Initialisation follows GPT-2 (Radford et al., 2019) as nanoGPT reads it: every Linear and Embedding weight
N(0, 0.02²), biases 0, and the two projections that write into the residual stream (attention output,
second MLP layer) N(0, (0.02/√(2L))²), the paper's scaling "by 1/√N, N the number of residual layers",
N = 2L. (GPT-2's released code drew the position table with std 0.01; here all tables use 0.02.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dlcore.attention import apply_rope, rope_cache, scaled_dot_product_attention, sinusoidal_positions
from dlcore.text import sample_next

POS_KINDS = ("learned", "sinusoidal", "rope", "none")
ATTN_KINDS = ("sdpa", "manual")

KV = tuple[torch.Tensor, torch.Tensor]
"""One layer's cache: keys and values of every position seen so far, each (N, heads, T_past, d_head)."""


def _check_pos(pos: str) -> str:
    if pos not in POS_KINDS:
        raise ValueError(f"pos must be one of {POS_KINDS}, got {pos!r}")
    return pos


def _check_attn(attn: str) -> str:
    if attn not in ATTN_KINDS:
        raise ValueError(f"attn must be 'sdpa' (torch's fused kernel) or 'manual' (dlcore.attention), got {attn!r}")
    return attn


def _check_heads(d_model: int, n_heads: int, pos: str) -> int:
    if n_heads < 1 or d_model % n_heads != 0:
        raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads}): each head gets "
                         f"d_model / n_heads columns")
    d_head = d_model // n_heads
    if pos == "rope" and d_head % 2 != 0:
        raise ValueError(f"rotary positions rotate pairs of coordinates, so the head size must be even; "
                         f"got d_model / n_heads = {d_head}")
    return d_head


@dataclass
class GPTConfig:
    """Sizes and choices of a :class:`GPT`. ``context`` is the longest sequence the model accepts."""
    vocab_size: int
    context: int
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    dropout: float = 0.0
    pos: str = "learned"
    mlp_ratio: int = 4
    bias: bool = True
    attn: str = "sdpa"

    def __post_init__(self) -> None:
        if self.vocab_size < 1 or self.context < 1 or self.n_layers < 1 or self.mlp_ratio < 1:
            raise ValueError(f"vocab_size, context, n_layers and mlp_ratio must be positive, got {self}")
        _check_pos(self.pos)
        _check_attn(self.attn)
        _check_heads(self.d_model, self.n_heads, self.pos)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class SelfAttention(nn.Module):
    """Multi-head self-attention with an optional causal mask, rotary positions and a KV cache."""

    def __init__(self, d_model: int, n_heads: int, causal: bool = True, pos: str = "none", bias: bool = True,
                 attn: str = "sdpa") -> None:
        super().__init__()
        self.d_head = _check_heads(d_model, n_heads, _check_pos(pos))
        self.n_heads, self.causal, self.rope, self.attn = n_heads, causal, pos == "rope", _check_attn(attn)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self._rope_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _rope(self, length: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self._rope_cache
        if c is None or c[0].shape[0] < length or c[0].dtype != like.dtype or c[0].device != like.device:
            c = self._rope_cache = rope_cache(max(length, 64), self.d_head, dtype=like.dtype, device=like.device)
        return c

    def heads(self, x: torch.Tensor, past: KV | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries of the new positions and keys/values of all positions, each (N, heads, T, d_head)."""
        n, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (z.view(n, t, self.n_heads, self.d_head).transpose(1, 2) for z in (q, k, v))
        t0 = 0 if past is None else past[0].shape[2]
        if self.rope:  # rotate by absolute position; the cache keeps keys already rotated
            cos, sin = self._rope(t0 + t, q)
            q, k = apply_rope(q, cos, sin, offset=t0), apply_rope(k, cos, sin, offset=t0)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        return q, k, v

    def mask(self, tq: int, tk: int, device) -> torch.Tensor | None:
        """Boolean (tq, tk) mask, True = may attend; query i sits at absolute position tk - tq + i."""
        if not self.causal:
            return None
        return torch.arange(tk, device=device)[None, :] <= torch.arange(tk - tq, tk, device=device)[:, None]

    def forward(self, x: torch.Tensor, past: KV | None = None) -> tuple[torch.Tensor, KV]:
        n, t, d = x.shape
        q, k, v = self.heads(x, past)
        tk = k.shape[2]
        if self.attn == "manual":
            out, _ = scaled_dot_product_attention(q, k, v, mask=self.mask(t, tk, x.device))
        elif self.causal and tk == t:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # a causal mask offset by the cached length (is_causal aligns it top-left, which is wrong here)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask(t, tk, x.device) if self.causal
                                                 and t > 1 else None)
        return self.proj(out.transpose(1, 2).reshape(n, t, d)), (k, v)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights (N, heads, T, T) of a full sequence, for figures."""
        q, k, v = self.heads(x)
        _, w = scaled_dot_product_attention(q, k, v, mask=self.mask(q.shape[2], k.shape[2], x.device))
        return w


class Block(nn.Module):
    """Pre-LayerNorm transformer block: ``x = x + attn(ln1(x))``; ``x = x + mlp(ln2(x))``.

    The MLP is ``Linear(d, mlp_ratio*d) -> GELU -> Linear(mlp_ratio*d, d)``. ``block(x)`` maps (N, T, d) to
    (N, T, d); :meth:`step` also takes and returns the layer's KV cache.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int = 4, dropout: float = 0.0, causal: bool = True,
                 pos: str = "none", bias: bool = True, attn: str = "sdpa") -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, causal=causal, pos=pos, bias=bias, attn=attn)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model, bias=bias), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model, bias=bias))
        self.drop = nn.Dropout(dropout)

    def step(self, x: torch.Tensor, past: KV | None = None) -> tuple[torch.Tensor, KV]:
        """The block on new positions ``x`` given the cache ``past`` of earlier ones; returns (y, new cache)."""
        a, kv = self.attn(self.ln1(x), past)
        x = x + self.drop(a)
        return x + self.drop(self.mlp(self.ln2(x))), kv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[-1] != self.ln1.normalized_shape[0]:
            raise ValueError(f"expected input of shape (batch, time, {self.ln1.normalized_shape[0]}), "
                             f"got {tuple(x.shape)}")
        return self.step(x)[0]


class GPT(nn.Module):
    """Decoder-only transformer language model; ``forward(idx, state=None) -> (logits (N, T, V), state)``.

    ``state`` is the KV cache, one ``(k, v)`` pair per layer, covering every position fed so far. Feeding a
    sequence in pieces with the returned state gives the same logits as feeding it whole (up to rounding).
    A total length above ``config.context`` raises ``ValueError``.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = c = config
        self.tok = nn.Embedding(c.vocab_size, c.d_model)
        if c.pos == "learned":
            self.pos_emb = nn.Embedding(c.context, c.d_model)
        elif c.pos == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_positions(c.context, c.d_model).float(), persistent=False)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.d_model, c.n_heads, c.mlp_ratio, c.dropout, True, c.pos, c.bias, c.attn)
                                    for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=c.bias)
        self.apply(self._init)
        for b in self.blocks:  # residual-stream writers: smaller, so the stream's variance does not grow with L
            nn.init.normal_(b.attn.proj.weight, std=0.02 / math.sqrt(2 * c.n_layers))
            nn.init.normal_(b.mlp[2].weight, std=0.02 / math.sqrt(2 * c.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def num_params(self) -> int:
        """Number of trainable parameters (the sinusoidal table is a buffer and does not count)."""
        return sum(p.numel() for p in self.parameters())

    def _embed(self, idx: torch.Tensor, t0: int) -> torch.Tensor:
        c = self.config
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2:
            shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"expected idx of shape (batch, time) holding token ids, got {shape}")
        t = idx.shape[1]
        if t == 0:
            raise ValueError("idx has no positions (time dimension 0)")
        if t0 + t > c.context:
            raise ValueError(f"sequence of length {t0 + t} (cached {t0} + new {t}) exceeds the model's context "
                             f"of {c.context} tokens")
        x = self.tok(idx)
        if c.pos == "learned":
            x = x + self.pos_emb(torch.arange(t0, t0 + t, device=idx.device))
        elif c.pos == "sinusoidal":
            x = x + self.pos_table[t0:t0 + t].to(x.dtype)
        return self.drop(x)

    def forward(self, idx: torch.Tensor, state: list[KV] | None = None) -> tuple[torch.Tensor, list[KV]]:
        t0 = 0 if state is None else state[0][0].shape[2]
        x = self._embed(idx, t0)
        new_state = []
        for i, block in enumerate(self.blocks):
            x, kv = block.step(x, None if state is None else state[i])
            new_state.append(kv)
        return self.head(self.ln_f(x)), new_state

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every layer for a full sequence: a list of (N, heads, T, T) tensors."""
        x = self._embed(idx, 0)
        maps = []
        for block in self.blocks:
            maps.append(block.attn.weights(block.ln1(x)))
            x = block.step(x)[0]
        return maps


def param_count(config: GPTConfig) -> int:
    """Parameters of ``GPT(config)``, from the sizes alone.

    With d = d_model, r = mlp_ratio, V = vocab_size, L = n_layers and b = 1 if ``bias`` else 0, a block has
    (4 + 2r) d² weights (q, k, v, output: 4d²; MLP: 2rd²), b·(3d + d + rd + d) biases and 4d LayerNorm
    parameters; around the blocks: the token table Vd, the learned positions context·d (if any), the final
    LayerNorm 2d and the untied head dV + bV. For r = 4 and bias: 12Ld² + 13Ld + 2Vd + V + 2d (+ context·d).
    """
    d, r, v, L, b = config.d_model, config.mlp_ratio, config.vocab_size, config.n_layers, int(config.bias)
    block = (4 + 2 * r) * d * d + b * (5 + r) * d + 4 * d
    pos = config.context * d if config.pos == "learned" else 0
    return v * d + pos + L * block + 2 * d + d * v + b * v


def flops_per_token(config: GPTConfig, seq_len: int | None = None) -> int:
    """Forward-pass matmul FLOPs per token (2 per multiply-add) for sequences of ``seq_len`` (default: context).

    Weight matmuls: 2 per weight of the blocks and the head, 2·(L(4 + 2r)d² + dV). Attention: per layer and
    token, the scores q·k against ``seq_len`` keys (2·seq_len·d over all heads) and the weighted sum of
    ``seq_len`` values (2·seq_len·d): 4·L·seq_len·d. This counts the full T x T score matrix, as FlopCounterMode
    counts it and as PaLM's MFU (6N + 12·L·T·d per trained token) does; a causal model needs only the lower
    triangle, on average (T + 1)/2 keys per query, and Kaplan et al. (2020) count that half, 2·L·T·d. Embedding lookups,
    LayerNorm, softmax, GELU and bias additions are not matmuls and are left out. A training step costs
    about 3x this (the backward pass does two matmuls for every forward one).
    """
    t = config.context if seq_len is None else int(seq_len)
    d, r, v, L = config.d_model, config.mlp_ratio, config.vocab_size, config.n_layers
    return 2 * (L * (4 + 2 * r) * d * d + d * v) + 4 * L * t * d


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, steps: int, temperature: float = 1.0, top_k: int | None = None,
             generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """Extend ``idx`` (N, T) by ``steps`` sampled ids; returns (N, T + steps).

    With ``use_cache`` each step feeds only the newest id and the KV cache (O(T) work per token); without,
    each step recomputes the whole sequence (O(T²) in attention, O(T) in the weight matmuls). Once the text
    is longer than the context, both recompute on the last ``context`` ids (a cache cannot be shifted: every
    position would change), so the two give identical ids under the same seeded ``generator``.
    """
    if not isinstance(idx, torch.Tensor) or idx.ndim != 2:
        raise ValueError(f"expected idx of shape (batch, time), got {getattr(idx, 'shape', type(idx).__name__)}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    ctx = model.config.context
    was_training = model.training
    model.eval()
    try:
        out = idx
        state = None
        for _ in range(steps):
            if use_cache and state is not None and out.shape[1] <= ctx:
                logits, state = model(out[:, -1:], state)
            else:
                logits, state = model(out[:, -ctx:], None)
            nxt = sample_next(logits[:, -1, :], temperature, generator, top_k).to(out.device)
            out = torch.cat([out, nxt[:, None]], dim=1)
        return out
    finally:
        model.train(was_training)
