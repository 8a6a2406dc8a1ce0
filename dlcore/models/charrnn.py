"""A character-level recurrent language model (chapter 7).

:class:`CharRNN` reads a batch of character ids ``(N, T)`` and returns next-character logits ``(N, T, V)``
together with the recurrent state after the last step, so a long text can be processed in windows that
carry the state across (truncated backpropagation through time) and a sampler can generate one character
at a time (``dlcore.text.generate``). The recurrent layer is torch's ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``
with ``batch_first=True``; on CUDA these run cuDNN's fused kernels. The design follows Karpathy's char-rnn
(2015) and Graves (2013), "Generating sequences with recurrent neural networks".

Layouts: ids and logits are batch first; the state is torch's ``(num_layers, N, H)`` tensor (a pair
``(h, c)`` of them for the LSTM), because that is what the torch layers take and return.

Inputs: with ``embed_dim=None`` each character enters as a one-hot vector of length ``V`` (as in char-rnn),
so the first layer's input weights ``W_xh`` (V x gH) play the role of an embedding table; with an integer
``embed_dim`` a learned ``nn.Embedding(V, embed_dim)`` comes first.

:func:`param_count` counts parameters from the sizes alone and :func:`hidden_for_params` inverts it, so
models with different cells can be compared at (nearly) the same number of parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
"""Weight blocks per layer: torch stacks the LSTM's (i, f, g, o) and the GRU's (r, z, n) blocks."""


def _check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise ValueError(f"cell must be 'rnn', 'lstm' or 'gru', got {cell!r}")
    return cell


def param_count(cell: str, vocab_size: int, hidden_size: int, num_layers: int = 1,
                embed_dim: int | None = None) -> int:
    """Number of parameters of ``CharRNN(vocab_size, hidden_size, cell, num_layers, embed_dim)``.

    A layer with ``g`` weight blocks (1 for the RNN, 4 for the LSTM, 3 for the GRU), input width ``D`` and
    hidden width ``H`` has ``g*H*(D + H)`` weights and ``2*g*H`` biases (torch keeps two biases, ``b_ih``
    and ``b_hh``); the output layer has ``H*V + V``; an embedding adds ``V*embed_dim``.
    """
    g = GATES[_check_cell(cell)]
    d_in = vocab_size if embed_dim is None else embed_dim
    total = 0 if embed_dim is None else vocab_size * embed_dim
    for layer in range(num_layers):
        d = d_in if layer == 0 else hidden_size
        total += g * hidden_size * (d + hidden_size) + 2 * g * hidden_size
    return total + hidden_size * vocab_size + vocab_size


def hidden_for_params(cell: str, vocab_size: int, target_params: int, num_layers: int = 1,
                      embed_dim: int | None = None) -> int:
    """The hidden width whose :func:`param_count` comes closest to ``target_params``.

    Used to compare cells fairly: an LSTM has four weight blocks per layer and a vanilla RNN one, so at the
    same width the LSTM has about four times the parameters; at the same parameter count it is narrower.
    """
    _check_cell(cell)
    if target_params < param_count(cell, vocab_size, 1, num_layers, embed_dim):
        raise ValueError(f"target_params={target_params} is smaller than the smallest {cell} model "
                         f"({param_count(cell, vocab_size, 1, num_layers, embed_dim)} parameters)")
    lo, hi = 1, 1
    while param_count(cell, vocab_size, hi, num_layers, embed_dim) < target_params:
        hi *= 2
    while hi - lo > 1:  # param_count grows with the width: bisect for the crossing
        mid = (lo + hi) // 2
        if param_count(cell, vocab_size, mid, num_layers, embed_dim) < target_params:
            lo = mid
        else:
            hi = mid
    return min((lo, hi), key=lambda h: abs(param_count(cell, vocab_size, h, num_layers, embed_dim)
                                           - target_params))


class CharRNN(nn.Module):
    """Embedding (or one-hot) -> ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (batch first) -> linear head.

    ``forward(idx, state=None)`` takes int64 ids ``(N, T)`` and returns ``(logits, state)`` with logits
    ``(N, T, vocab_size)``. Passing the returned state into the next call continues the sequence exactly:
    two calls on consecutive chunks give the same logits as one call on their concatenation.
    ``dropout`` acts between stacked layers and before the output layer. ``forget_bias`` (LSTM only) sets
    the summed forget-gate bias ``b_ih + b_hh`` of every layer to that value at initialization (Jozefowicz
    et al. 2015 recommend 1), instead of torch's default uniform draw around 0.
    """

    def __init__(self, vocab_size: int, hidden_size: int = 256, cell: str = "lstm", num_layers: int = 1,
                 embed_dim: int | None = None, dropout: float = 0.0, forget_bias: float | None = None) -> None:
        super().__init__()
        _check_cell(cell)
        for name, value in (("vocab_size", vocab_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if embed_dim is not None and (isinstance(embed_dim, bool) or not isinstance(embed_dim, int)
                                      or embed_dim < 1):
            raise ValueError(f"embed_dim must be None (one-hot inputs) or a positive integer, got {embed_dim!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.vocab_size, self.hidden_size, self.cell, self.num_layers = vocab_size, hidden_size, cell, num_layers
        self.embed_dim = embed_dim
        self.embed = nn.Embedding(vocab_size, embed_dim) if embed_dim is not None else None
        d_in = vocab_size if embed_dim is None else embed_dim
        self.rnn = CELLS[cell](d_in, hidden_size, num_layers=num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0)
        if forget_bias is not None:
            if cell != "lstm":
                raise ValueError(f"forget_bias applies to the LSTM only, got cell={cell!r}")
            with torch.no_grad():  # torch's gate order (i, f, g, o): the f block is rows H:2H of each bias
                for layer in range(num_layers):
                    getattr(self.rnn, f"bias_ih_l{layer}")[hidden_size:2 * hidden_size] = float(forget_bias)
                    getattr(self.rnn, f"bias_hh_l{layer}")[hidden_size:2 * hidden_size] = 0.0
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)  # stores W_hy^T: weight (V, H)

    def _check_state(self, state, n: int):
        want = (self.num_layers, n, self.hidden_size)
        parts = state if self.cell == "lstm" else (state,)
        if self.cell == "lstm" and not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise ValueError("an LSTM state must be a pair (h, c) of tensors of shape "
                             f"(num_layers, batch, hidden) = {want}")
        for part in parts:
            if not isinstance(part, torch.Tensor) or tuple(part.shape) != want:
                got = tuple(part.shape) if isinstance(part, torch.Tensor) else type(part).__name__
                raise ValueError(f"expected a state of shape (num_layers, batch, hidden) = {want}, got {got}")
        return tuple(state) if self.cell == "lstm" else state

    def forward(self, idx: torch.Tensor, state=None):
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2:
            got = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"expected ids of shape (batch, time), got {got}")
        if idx.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"expected integer character ids, got dtype {idx.dtype}")
        if idx.shape[0] == 0 or idx.shape[1] == 0:
            raise ValueError(f"empty batch or sequence: ids of shape {tuple(idx.shape)}")
        if state is not None:
            state = self._check_state(state, idx.shape[0])
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= self.vocab_size:
            raise ValueError(f"character ids must lie in [0, {self.vocab_size}), got range [{lo}, {hi}]")
        idx = idx.long()
        if self.embed is not None:
            x = self.embed(idx)
        else:
            x = F.one_hot(idx, self.vocab_size).to(self.head.weight.dtype)
        out, state = self.rnn(x, state)
        return self.head(self.drop(out)), state

    def extra_repr(self) -> str:
        return f"cell={self.cell!r}, parameters={sum(p.numel() for p in self.parameters()):,}"
