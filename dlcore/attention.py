"""Attention from scratch (chapter 8): scaled dot-product attention, masks, multi-head attention, positions.

Chapter 8 (08_1_attention) derives each piece; this module holds the tested version that the GPT and ViT models
import. Layout is **batch first** and the book's row-vector convention: for inputs ``X`` of shape (N, T, d_model)
the queries are ``Q = X W_q`` with ``W_q`` of shape (d_model, d_k), and attention computes::

    A = softmax(Q K^T / sqrt(d_k) + M)      (rows sum to one)
    out = A V

where ``M`` is 0 where a query may attend to a key and -inf where it may not (Vaswani et al. 2017).

- :func:`scaled_dot_product_attention` writes this out with explicit matrix products (it does *not* call
  ``torch.nn.functional.scaled_dot_product_attention``, whose numbers it matches) and returns the weights too.
- Masks: a **boolean** mask means ``True = may attend`` (torch's ``F.scaled_dot_product_attention`` convention;
  note that ``nn.MultiheadAttention``'s ``attn_mask`` uses the opposite, ``True = blocked``); a **float** mask is
  added to the scores. :func:`causal_mask` and :func:`padding_mask` build the two common ones.
- :class:`MultiHeadAttention` splits ``d_model`` into ``n_heads`` heads of size ``d_model // n_heads``. Its
  projections are ``nn.Linear`` layers, which store ``weight = W^T`` (out, in): ``q_proj.weight`` is ``W_q^T``.
  :meth:`MultiHeadAttention.copy_from_torch` copies the weights of a ``torch.nn.MultiheadAttention``
  (whose ``in_proj_weight`` stacks ``[W_q^T; W_k^T; W_v^T]``) so that the two give the same numbers.
- Positions: :func:`sinusoidal_positions` (Vaswani et al. 2017) and rotary embeddings, :func:`rope_cache` and
  :func:`apply_rope` (Su et al. 2021), in the "rotate-half" convention (GPT-NeoX, LLaMA): feature ``i`` is paired
  with feature ``i + d/2`` and the pair is rotated by the angle ``t * base**(-2i/d)`` at position ``t``.

Causal masks are aligned **bottom-right**: with ``Tq`` queries and ``Tk >= Tq`` keys, query ``i`` sits at position
``Tk - Tq + i`` and may attend to keys ``0 .. Tk - Tq + i``. For ``Tq == Tk`` (training) this is the usual
lower-triangular mask and equals torch's ``is_causal=True``; for ``Tq < Tk`` (generation with a KV cache, new
queries after cached keys) it is the mask a decoder needs, whereas torch's ``is_causal`` aligns top-left
(query ``i`` sees keys ``0 .. i``); ``torch.nn.attention.bias.causal_lower_right`` is torch's bottom-right mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["scaled_dot_product_attention", "causal_mask", "padding_mask", "MultiHeadAttention",
           "sinusoidal_positions", "rope_cache", "apply_rope", "rotate_half"]


def causal_mask(T: int, device: torch.device | str | None = None, k_len: int | None = None) -> torch.Tensor:
    """Boolean (T, k_len) mask, ``True`` where query ``i`` may attend to key ``j`` (``j <= i + k_len - T``).

    ``k_len`` defaults to ``T`` (the lower-triangular mask); a longer ``k_len`` aligns the mask bottom-right, for
    ``T`` new queries that follow ``k_len - T`` cached keys.
    """
    k_len = T if k_len is None else k_len
    if T < 0 or k_len < T:
        raise ValueError(f"causal_mask needs 0 <= T <= k_len, got T={T}, k_len={k_len}")
    return torch.ones(T, k_len, dtype=torch.bool, device=device).tril(diagonal=k_len - T)


def padding_mask(lengths, T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean key-padding mask of shape (N, 1, 1, T): ``True`` for the first ``lengths[n]`` keys of sequence n.

    The two singleton axes broadcast over heads and queries, so the result can be passed as ``mask`` to
    :func:`scaled_dot_product_attention` (scores of shape (N, heads, Tq, T)) or to :class:`MultiHeadAttention`.
    """
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.dim() != 1 or (lengths < 1).any() or (lengths > T).any():
        raise ValueError(f"lengths must be a 1-D sequence of integers in [1, {T}], got {lengths.tolist()}")
    keep = torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]
    return keep[:, None, None, :]


def _check_mask(mask: torch.Tensor, scores_shape: torch.Size) -> None:
    """A clear error when ``mask`` cannot broadcast to the scores (..., Tq, Tk)."""
    try:
        shape = torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        shape = None
    if shape != scores_shape:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the attention scores of shape "
                         f"{tuple(scores_shape)} (..., queries, keys)")


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, causal: bool = False,
                                 dropout_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(d) + M) v``, written out; returns ``(out, weights)``.

    Shapes: ``q`` (..., Tq, d), ``k`` (..., Tk, d), ``v`` (..., Tk, dv); ``out`` (..., Tq, dv) and ``weights``
    (..., Tq, Tk), whose rows sum to one. ``mask`` is boolean (``True`` = may attend) or a float added to the
    scores; it must broadcast to (..., Tq, Tk). ``causal=True`` also blocks keys after each query (aligned
    bottom-right, see the module docstring). A query whose every key is blocked gets NaN weights and output, as
    in ``nn.MultiheadAttention`` and the reference code in the docs of ``F.scaled_dot_product_attention`` (torch's
    own kernel returns zeros for such a row instead); keep at least one key per query. ``dropout_p`` (training
    only; pass 0 at evaluation) drops attention weights after the softmax; the returned ``weights`` are the ones
    before dropout.
    """
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(f"q, k, v need shape (..., T, d), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys must have the same head dimension, got q (..., {q.shape[-1]}) "
                         f"and k (..., {k.shape[-1]})")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"keys and values must have the same length, got k (..., {k.shape[-2]}, d) and "
                         f"v (..., {v.shape[-2]}, dv)")
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)                      # (..., Tq, Tk)
    if mask is not None:
        _check_mask(mask, scores.shape)
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.to(scores.dtype)
    if causal:
        Tq, Tk = scores.shape[-2:]
        scores = scores.masked_fill(~causal_mask(Tq, scores.device, k_len=Tk), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    attn = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return attn @ v, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017): h heads of size d_model // h, then an output projection.

    ``forward(x_q, x_kv=None, mask=None, causal=False, need_weights=False)``: self-attention when ``x_kv`` is
    None, cross-attention otherwise. ``x_q`` (N, Tq, d_model), ``x_kv`` (N, Tk, d_model); ``mask`` broadcasts
    to (N, n_heads, Tq, Tk) (a (Tq, Tk) mask serves every sequence and head; :func:`padding_mask` gives
    (N, 1, 1, Tk)). Returns ``out`` (N, Tq, d_model), and also the weights (N, n_heads, Tq, Tk) if
    ``need_weights``. Dropout (``dropout``) acts on the attention weights in training mode only.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, dropout: float = 0.0,
                 device=None, dtype=None) -> None:
        super().__init__()
        if d_model <= 0 or n_heads <= 0 or d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be a positive multiple of n_heads ({n_heads})")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        kw = dict(bias=bias, device=device, dtype=dtype)
        self.q_proj = nn.Linear(d_model, d_model, **kw)     # weight = W_q^T, shape (d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model, **kw)
        self.v_proj = nn.Linear(d_model, d_model, **kw)
        self.out_proj = nn.Linear(d_model, d_model, **kw)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, d_model) -> (N, n_heads, T, d_head)."""
        N, T, _ = x.shape
        return x.view(N, T, self.n_heads, self.d_head).transpose(1, 2)

    def forward(self, x_q: torch.Tensor, x_kv: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                causal: bool = False, need_weights: bool = False):
        x_kv = x_q if x_kv is None else x_kv
        for name, x in (("x_q", x_q), ("x_kv", x_kv)):
            if x.dim() != 3 or x.shape[-1] != self.d_model:
                raise ValueError(f"expected {name} of shape (batch, time, {self.d_model}), got {tuple(x.shape)}")
        if x_q.shape[0] != x_kv.shape[0]:
            raise ValueError(f"x_q and x_kv must have the same batch size, got {x_q.shape[0]} and {x_kv.shape[0]}")
        q, k, v = self._split(self.q_proj(x_q)), self._split(self.k_proj(x_kv)), self._split(self.v_proj(x_kv))
        p = self.dropout if self.training else 0.0
        heads, weights = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal, dropout_p=p)
        N, Tq = x_q.shape[:2]
        out = self.out_proj(heads.transpose(1, 2).reshape(N, Tq, self.d_model))   # concatenate the heads
        return (out, weights) if need_weights else out

    @torch.no_grad()
    def copy_from_torch(self, ref: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of a ``torch.nn.MultiheadAttention`` (same d_model, heads and bias); returns self.

        torch keeps the three input projections stacked in ``in_proj_weight`` (3 d_model, d_model) =
        ``[W_q^T; W_k^T; W_v^T]`` and their biases in ``in_proj_bias``; ``nn.Linear`` stores the same ``W^T``.
        """
        if ref.embed_dim != self.d_model or ref.num_heads != self.n_heads:
            raise ValueError(f"torch module has d_model={ref.embed_dim}, heads={ref.num_heads}; "
                             f"this one d_model={self.d_model}, heads={self.n_heads}")
        if ref.in_proj_weight is None or ref.bias_k is not None or ref.add_zero_attn:
            raise ValueError("only nn.MultiheadAttention with equal q/k/v sizes, no bias_k/v and no zero_attn")
        if (ref.in_proj_bias is None) != (self.q_proj.bias is None):
            raise ValueError("bias mismatch between the torch module and this one")
        for i, lin in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            lin.weight.copy_(ref.in_proj_weight[i * self.d_model:(i + 1) * self.d_model])
            if lin.bias is not None:
                lin.bias.copy_(ref.in_proj_bias[i * self.d_model:(i + 1) * self.d_model])
        self.out_proj.weight.copy_(ref.out_proj.weight)
        if self.out_proj.bias is not None:
            self.out_proj.bias.copy_(ref.out_proj.bias)
        return self

    @classmethod
    def from_torch(cls, ref: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A new module with the sizes, dtype, device and weights of ``ref``."""
        w = ref.in_proj_weight
        mha = cls(ref.embed_dim, ref.num_heads, bias=ref.in_proj_bias is not None, dropout=ref.dropout,
                  device=w.device, dtype=w.dtype)
        return mha.copy_from_torch(ref)


def sinusoidal_positions(T: int, d: int, base: float = 10000.0, dtype: torch.dtype = torch.float32,
                         device=None) -> torch.Tensor:
    """Sinusoidal position codes (Vaswani et al. 2017), shape (T, d):
    ``P[t, 2i] = sin(t / base**(2i/d))``, ``P[t, 2i+1] = cos(t / base**(2i/d))``, for even ``d``."""
    if d <= 0 or d % 2:
        raise ValueError(f"sinusoidal positions need an even, positive d, got {d}")
    t = torch.arange(T, dtype=torch.float64, device=device)[:, None]
    freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=device) / d)      # (d/2,)
    P = torch.empty(T, d, dtype=torch.float64, device=device)
    P[:, 0::2] = torch.sin(t * freq)
    P[:, 1::2] = torch.cos(t * freq)
    return P.to(dtype)


def rope_cache(T: int, d_head: int, base: float = 10000.0, dtype: torch.dtype = torch.float32,
               device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary-embedding tables ``(cos, sin)``, each (T, d_head), for :func:`apply_rope` (rotate-half layout).

    Angle ``theta[t, i] = t * base**(-2i/d_head)`` for ``i < d_head/2``; both halves of each row repeat it.
    """
    if d_head <= 0 or d_head % 2:
        raise ValueError(f"rotary embeddings need an even, positive head size, got {d_head}")
    inv_freq = base ** (-torch.arange(0, d_head, 2, dtype=torch.float64, device=device) / d_head)
    angles = torch.arange(T, dtype=torch.float64, device=device)[:, None] * inv_freq          # (T, d/2)
    angles = torch.cat([angles, angles], dim=-1)                                             # (T, d)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``(x1, x2) -> (-x2, x1)`` on the two halves of the last axis: a 90-degree turn of each pair (i, i+d/2)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """Rotate queries or keys ``x`` (..., T, d_head) by their positions: ``x * cos + rotate_half(x) * sin``.

    Row ``t`` of ``x`` is at position ``offset + t`` and uses row ``offset + t`` of the tables from
    :func:`rope_cache` (pass ``offset`` = number of cached tokens when generating with a KV cache). Each pair
    ``(x_i, x_{i+d/2})`` turns by ``theta[t, i]``, so norms are kept and ``<R_m q, R_n k>`` depends on ``m - n``.
    """
    T, d = x.shape[-2], x.shape[-1]
    if cos.shape != sin.shape or cos.dim() != 2 or cos.shape[-1] != d:
        raise ValueError(f"rope tables must both be (T, {d}) for inputs with head size {d}, "
                         f"got cos {tuple(cos.shape)} and sin {tuple(sin.shape)}")
    if offset < 0 or offset + T > cos.shape[0]:
        raise ValueError(f"rope tables cover {cos.shape[0]} positions; positions {offset}..{offset + T - 1} "
                         f"were asked for (make the cache longer)")
    cos = cos[offset:offset + T].to(x.dtype)
    sin = sin[offset:offset + T].to(x.dtype)
    return x * cos + rotate_half(x) * sin
