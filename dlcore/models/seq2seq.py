"""An encoder-decoder (sequence to sequence) network without attention, and a task to train it on (chapter 7).

- :class:`Seq2Seq`: embedding -> recurrent encoder; its final state starts a recurrent decoder that reads the
  previous target token and predicts the next one (Sutskever et al., 2014; Cho et al., 2014). Batch first.
- :func:`greedy_decode`: generate ``length`` tokens, feeding back each argmax.
- :func:`make_reversal`: the toy task, a random digit string and its reverse (seeded).
- :func:`shift_right`: the decoder's teacher-forcing input, ``bos`` followed by the target without its last token.
- :func:`sequence_accuracy`: exact-string and per-token accuracy of predictions.

The model is split so that an attention decoder can be added beside it (next chapter): :meth:`Seq2Seq.encode`
returns *all* encoder states ``(N, S, H)`` as well as the final state, and :meth:`Seq2Seq.decode_step` takes
them as an argument (and ignores them here). A subclass with attention overrides ``decode_step`` (and
``decode``, which by default runs the fused recurrent kernel over the whole teacher-forced input); greedy
decoding only calls ``encode`` and ``decode_step``, so it works unchanged for such a subclass.
"""
from __future__ import annotations

import torch
from torch import nn

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _check_ids(x: torch.Tensor, name: str, vocab_size: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected {name} of shape (batch, time) holding token ids, got {shape}")
    if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise ValueError(f"{name} must hold integer token ids, got dtype {x.dtype}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} is an empty sequence (time length 0); give at least one token")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab_size):
        raise ValueError(f"{name} holds token ids outside [0, {vocab_size}): min {int(x.min())}, "
                         f"max {int(x.max())}")


class Seq2Seq(nn.Module):
    """A recurrent encoder-decoder: ``forward(src, tgt_in)`` returns logits ``(N, T, vocab_size)``.

    ``vocab_size`` counts every token the model reads or writes (for the reversal task: 10 digits and one
    beginning-of-sequence token, so 11). Source and target have separate embeddings of size ``embed_dim``
    (default ``hidden_size``). ``cell`` is ``'rnn'``, ``'lstm'`` or ``'gru'``; one layer each.
    The encoder's final state ``h_S`` is the decoder's initial state: the only path from source to target.
    """

    def __init__(self, vocab_size: int, hidden_size: int = 128, cell: str = "gru",
                 embed_dim: int | None = None) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell must be 'rnn', 'lstm' or 'gru', got {cell!r}")
        if int(vocab_size) < 2 or int(hidden_size) < 1:
            raise ValueError(f"vocab_size must be >= 2 and hidden_size >= 1, got {vocab_size!r} and {hidden_size!r}")
        embed_dim = hidden_size if embed_dim is None else int(embed_dim)
        self.vocab_size, self.hidden_size, self.cell = int(vocab_size), int(hidden_size), cell
        rnn = _CELLS[cell]
        self.src_embed = nn.Embedding(vocab_size, embed_dim)
        self.encoder = rnn(embed_dim, hidden_size, batch_first=True)
        self.tgt_embed = nn.Embedding(vocab_size, embed_dim)
        self.decoder = rnn(embed_dim, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)   # weight = W^T, shape (vocab, hidden)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, State]:
        """Run the encoder over ``src`` (N, S): all states ``(N, S, H)`` and the final state (torch layout)."""
        _check_ids(src, "src", self.vocab_size)
        return self.encoder(self.src_embed(src.long()))

    def decode(self, tgt_in: torch.Tensor, state: State, enc_states: torch.Tensor) -> tuple[torch.Tensor, State]:
        """Teacher-forced decoding of the whole input ``tgt_in`` (N, T) at once: logits (N, T, V) and the state.

        ``enc_states`` is unused without attention (kept so that subclasses share the signature).
        """
        h_all, state = self.decoder(self.tgt_embed(tgt_in.long()), state)
        return self.out(h_all), state

    def decode_step(self, y_prev: torch.Tensor, state: State,
                    enc_states: torch.Tensor) -> tuple[torch.Tensor, State]:
        """One decoder step: previous tokens ``y_prev`` (N,) -> logits (N, V) and the new state."""
        logits, state = self.decode(y_prev.reshape(-1, 1), state, enc_states)
        return logits[:, 0], state

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits ``(N, T, V)`` for the next target token at every position of ``tgt_in``."""
        _check_ids(src, "src", self.vocab_size)
        _check_ids(tgt_in, "tgt_in", self.vocab_size)
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src and tgt_in must have the same batch size, got {src.shape[0]} and {tgt_in.shape[0]}")
        enc_states, state = self.encode(src)
        logits, _ = self.decode(tgt_in, state, enc_states)
        return logits

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, length: int, bos: int) -> torch.Tensor:
        """Generate ``length`` tokens (N, length) for ``src``, starting from ``bos``, feeding back each argmax."""
        if int(length) < 1:
            raise ValueError(f"length must be >= 1, got {length!r}")
        if not 0 <= int(bos) < self.vocab_size:
            raise ValueError(f"bos must be a token id in [0, {self.vocab_size}), got {bos!r}")
        was_training = self.training
        self.eval()
        try:
            enc_states, state = self.encode(src)
            y = torch.full((src.shape[0],), int(bos), dtype=torch.long, device=src.device)
            out = []
            for _ in range(int(length)):
                logits, state = self.decode_step(y, state, enc_states)
                y = logits.argmax(-1)
                out.append(y)
        finally:
            self.train(was_training)
        return torch.stack(out, dim=1)


def greedy_decode(model: Seq2Seq, src: torch.Tensor, length: int, bos: int) -> torch.Tensor:
    """``model.greedy_decode(src, length, bos)``: the argmax token at each step, fed back as the next input."""
    return model.greedy_decode(src, length, bos)


def shift_right(tgt: torch.Tensor, bos: int) -> torch.Tensor:
    """The teacher-forcing input for target ``tgt`` (N, T): ``bos`` then ``tgt[:, :-1]``."""
    if tgt.ndim != 2 or tgt.shape[1] == 0:
        raise ValueError(f"expected tgt of shape (batch, time) with time >= 1, got {tuple(tgt.shape)}")
    first = torch.full_like(tgt[:, :1], int(bos))
    return torch.cat([first, tgt[:, :-1]], dim=1)


def make_reversal(n: int, length: int, num_symbols: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random strings of ``length`` symbols in ``{0, ..., num_symbols - 1}`` and their reverses.

    Returns ``(src, tgt)``, int64 tensors of shape (n, length) with ``tgt = src.flip(1)``; the same seed gives
    the same strings. Token id ``num_symbols`` is free for a beginning-of-sequence marker.
    """
    if int(n) < 1 or int(length) < 1:
        raise ValueError(f"n and length must be >= 1, got n={n!r}, length={length!r}")
    if int(num_symbols) < 2:
        raise ValueError(f"num_symbols must be >= 2, got {num_symbols!r}")
    gen = torch.Generator().manual_seed(int(seed))
    src = torch.randint(0, int(num_symbols), (int(n), int(length)), generator=gen)
    return src, src.flip(1)


def sequence_accuracy(pred: torch.Tensor, tgt: torch.Tensor) -> tuple[float, float]:
    """``(exact, per_token)``: the fraction of rows equal to ``tgt`` everywhere, and of equal tokens."""
    if pred.shape != tgt.shape:
        raise ValueError(f"pred and tgt must have the same shape, got {tuple(pred.shape)} and {tuple(tgt.shape)}")
    eq = pred == tgt
    return eq.all(dim=1).float().mean().item(), eq.float().mean().item()
