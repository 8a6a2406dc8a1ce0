"""Text for language models: splits, batches, evaluation, sampling and the n-gram baseline (chapter 7).

A character language model predicts the next id from the ids before it. This module holds the pieces every
such model shares, so that the RNN, LSTM and (next chapter) transformer notebooks measure and sample in
exactly the same way:

- :func:`split_ids` cuts an id array into a contiguous train part and a validation tail;
- :func:`lm_batch` draws random windows ``x`` and their one-step-shifted targets ``y`` (seeded, repeatable);
- :func:`evaluate_lm` scores a model in nats per character over the whole array (deterministic);
- :func:`sample_next` and :func:`generate` sample with a temperature (and optional top-k);
- :class:`NGramLM` and :func:`ngram_nll` are the add-alpha count baseline; :func:`perplexity` is ``exp(nll)``.

``CharTokenizer`` and ``load_text`` live in :mod:`dlcore.data` and are re-exported here.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dlcore.data import CharTokenizer, load_text
from dlcore.train import _model_device

__all__ = ["CharTokenizer", "load_text", "split_ids", "lm_batch", "evaluate_lm", "sample_next", "generate",
           "NGramLM", "ngram_nll", "perplexity"]


def _as_1d_ids(ids, name: str = "ids") -> np.ndarray:
    """``ids`` (list, numpy array or tensor) as a 1-D int64 numpy array, with a clear error otherwise."""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of token ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def split_ids(ids, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous split: the first ``1 - val_fraction`` of ``ids`` trains, the last part validates.

    Contiguous rather than shuffled because neighbouring characters are not independent: a random split
    would put half of every word in each part and let the validation score leak from the training text.
    """
    if not (0.0 < float(val_fraction) < 1.0):
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    arr = _as_1d_ids(ids)
    cut = int(round(len(arr) * (1.0 - val_fraction)))
    if cut < 1 or cut >= len(arr):
        raise ValueError(f"{len(arr)} ids are too few to split with val_fraction={val_fraction}")
    return arr[:cut], arr[cut:]


def lm_batch(ids, batch_size: int, seq_len: int, generator: torch.Generator | None = None,
             device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of ``batch_size`` random windows ``x`` (N, T) and targets ``y`` = ``x`` shifted by one.

    ``y[:, t]`` is the character that follows ``x[:, t]``, so a model that reads ``x`` left to right is
    trained to predict ``y`` at every position at once. Starts are drawn with ``generator`` (a seeded
    ``torch.Generator`` gives the same batches every run). Both tensors are int64, on ``device`` (cpu
    by default).
    """
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
    arr = _as_1d_ids(ids)
    if seq_len + 1 > len(arr):
        raise ValueError(f"seq_len={seq_len} needs at least {seq_len + 1} ids (inputs plus the shifted "
                         f"target), got {len(arr)}")
    data = torch.from_numpy(np.ascontiguousarray(arr))
    starts = torch.randint(0, len(arr) - seq_len, (batch_size,), generator=generator)
    window = data[starts[:, None] + torch.arange(seq_len + 1)]
    x, y = window[:, :-1], window[:, 1:]
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y


def _logits_of(out) -> torch.Tensor:
    """A model's logits, whether it returns ``logits`` or ``(logits, state)``."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _device_of(model, device) -> torch.device:
    return torch.device(device) if device is not None else _model_device(model)


@torch.no_grad()
def evaluate_lm(model, ids, seq_len: int = 128, batch_size: int = 64,
                device: torch.device | str | None = None) -> float:
    """Mean negative log-likelihood (nats per character) of ``ids`` under ``model``.

    The array is cut into non-overlapping windows of ``seq_len`` inputs (the last, shorter window
    included), so every character after the first is predicted exactly once, each window starting from a
    fresh state. ``model(x)`` returns logits (N, T, V) or ``(logits, state)``. Runs under ``no_grad`` in
    eval mode and restores the model's previous mode: calling it in a training loop changes nothing.
    """
    if seq_len < 1 or batch_size < 1:
        raise ValueError(f"seq_len and batch_size must be positive, got {seq_len} and {batch_size}")
    arr = _as_1d_ids(ids)
    if len(arr) < 2:
        raise ValueError(f"need at least 2 ids to score a next-character prediction, got {len(arr)}")
    dev = _device_of(model, device)
    data = torch.from_numpy(np.ascontiguousarray(arr))
    n_full = (len(arr) - 1) // seq_len
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    total, count = 0.0, 0
    try:
        def score(x: torch.Tensor, y: torch.Tensor) -> None:
            nonlocal total, count
            logits = _logits_of(model(x.to(dev)))
            if logits.ndim != 3 or logits.shape[:2] != x.shape:
                raise ValueError(f"model must return logits of shape (batch, time, vocab) = "
                                 f"({x.shape[0]}, {x.shape[1]}, V), got {tuple(logits.shape)}")
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(),
                                     y.to(dev).reshape(-1), reduction="sum").item()
            count += y.numel()

        offsets = torch.arange(seq_len + 1)
        for b in range(0, n_full, batch_size):
            starts = torch.arange(b, min(b + batch_size, n_full)) * seq_len
            window = data[starts[:, None] + offsets]
            score(window[:, :-1], window[:, 1:])
        rest = n_full * seq_len
        if rest < len(arr) - 1:
            tail = data[rest:]
            score(tail[None, :-1], tail[None, 1:])
    finally:
        if was_training:
            model.train()
    return total / count


def sample_next(logits: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None,
                top_k: int | None = None) -> torch.Tensor:
    """One id per row of ``logits`` (N, V), drawn from softmax(logits / temperature).

    ``temperature`` 1 samples the model's own distribution; below 1 sharpens it, above 1 flattens it, and
    0 is the limit: argmax (greedy). ``top_k`` keeps only the ``k`` largest logits per row. ``-inf``
    logits are allowed (masked symbols); NaN, ``+inf``, a row with nothing finite, or a negative or
    non-finite temperature raise ``ValueError``. With ``generator`` (a CPU ``torch.Generator``) the draw
    is repeatable; logits on another device are sampled on the generator's device.
    """
    if not isinstance(logits, torch.Tensor):
        logits = torch.as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (batch, vocab), got {tuple(logits.shape)}")
    t = float(temperature)
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if torch.isnan(logits).any() or torch.isposinf(logits).any():
        raise ValueError("logits contain NaN or +inf")
    if not torch.isfinite(logits).any(dim=1).all():
        raise ValueError("every row of logits needs at least one finite entry")
    if top_k is not None:
        if int(top_k) < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k}")
        if top_k < logits.shape[1]:
            kth = torch.topk(logits, int(top_k), dim=1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
    if t == 0.0:
        return logits.argmax(dim=1)
    # subtract the row maximum first: (logits - max) / t stays <= 0, so a tiny t gives -inf, never NaN
    z = (logits - logits.max(dim=1, keepdim=True).values) / t
    probs = torch.softmax(z.double(), dim=1)
    if generator is not None and generator.device != probs.device:
        return torch.multinomial(probs.to(generator.device), 1, generator=generator)[:, 0].to(logits.device)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.no_grad()
def generate(model, prompt_ids, steps: int, temperature: float = 1.0, generator: torch.Generator | None = None,
             top_k: int | None = None) -> torch.Tensor:
    """Extend ``prompt_ids`` by ``steps`` sampled ids with a stateful model; returns (1, T + steps).

    ``model(idx, state)`` returns ``(logits, state)``. The prompt is fed once (its last logits give the
    first new id); after that each new id goes in alone with the carried state, so a step costs one
    token's work instead of re-reading the whole text. Eval mode during generation, previous mode restored.
    """
    prompt = prompt_ids.detach().cpu() if isinstance(prompt_ids, torch.Tensor) else torch.as_tensor(
        np.asarray(prompt_ids))
    if prompt.ndim == 2 and prompt.shape[0] == 1:
        prompt = prompt[0]
    prompt = torch.as_tensor(_as_1d_ids(prompt, "prompt_ids"))
    if prompt.numel() == 0:
        raise ValueError("generate needs a non-empty prompt (at least one id to condition on)")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    dev = _device_of(model, None)
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    try:
        out = [prompt.to(dev)[None, :]]
        if steps == 0:
            return out[0]
        logits, state = model(out[0], None)
        for i in range(steps):
            nxt = sample_next(logits[:, -1, :], temperature, generator, top_k).to(dev)
            out.append(nxt[:, None])
            if i < steps - 1:
                logits, state = model(nxt[:, None], state)
        return torch.cat(out, dim=1)
    finally:
        if was_training:
            model.train()


class NGramLM:
    """An ``n``-gram count model with add-``alpha`` smoothing: p(w | c) = (N(c, w) + alpha) / (N(c) + alpha V).

    The context ``c`` is the previous ``n - 1`` ids (none for a unigram); N(c) counts ``c`` only where a
    next id follows it. The formula is the posterior mean of p(. | c) under a symmetric Dirichlet(alpha)
    prior. A context never seen in training gets the uniform distribution 1/V, the add-alpha formula at
    N(c) = 0: there is no backoff to shorter contexts and no interpolation between orders. Counts are kept
    sparse (sorted codes), so a 5-gram over a 100-symbol vocabulary costs memory for the contexts seen, not V^4 rows.
    """

    def __init__(self, n: int, vocab_size: int, alpha: float = 1.0) -> None:
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0 (alpha = 0 gives probability 0 to unseen pairs), got {alpha}")
        if vocab_size ** (n - 1) * vocab_size >= 2 ** 62:
            raise ValueError(f"n={n} with vocab_size={vocab_size} overflows the int64 context codes")
        self.n, self.V, self.alpha = int(n), int(vocab_size), float(alpha)

    def _codes(self, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Context codes (base-V number of the previous n-1 ids) and targets, for positions n-1..end."""
        k = self.n - 1
        targets = arr[k:]
        ctx = np.zeros(len(targets), dtype=np.int64)
        for j in range(k):
            ctx = ctx * self.V + arr[j:len(arr) - k + j]
        return ctx, targets

    def _check(self, ids, name: str) -> np.ndarray:
        arr = _as_1d_ids(ids, name)
        if len(arr) < self.n:
            raise ValueError(f"{name} needs at least n={self.n} ids, got {len(arr)}")
        if arr.min() < 0 or arr.max() >= self.V:
            raise ValueError(f"{name} must lie in [0, {self.V}), got range [{arr.min()}, {arr.max()}]")
        return arr

    def fit(self, ids) -> "NGramLM":
        """Count every (context, next id) pair of ``ids``; returns ``self``."""
        ctx, tgt = self._codes(self._check(ids, "ids"))
        self.joint_codes_, self.joint_counts_ = np.unique(ctx * self.V + tgt, return_counts=True)
        self.ctx_codes_, self.ctx_counts_ = np.unique(ctx, return_counts=True)
        return self

    @staticmethod
    def _lookup(keys: np.ndarray, counts: np.ndarray, query: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
        return np.where(keys[pos] == query, counts[pos], 0)

    def log_prob(self, ids) -> np.ndarray:
        """ln p(ids[t] | ids[t-n+1:t]) for every t >= n-1 (an array of len(ids) - n + 1 values)."""
        if not hasattr(self, "joint_codes_"):
            raise ValueError("call fit(train_ids) before scoring")
        ctx, tgt = self._codes(self._check(ids, "ids"))
        n_cw = self._lookup(self.joint_codes_, self.joint_counts_, ctx * self.V + tgt)
        n_c = self._lookup(self.ctx_codes_, self.ctx_counts_, ctx)
        return np.log(n_cw + self.alpha) - np.log(n_c + self.alpha * self.V)

    def nll(self, ids) -> float:
        """Mean negative log-likelihood in nats per predicted character."""
        return float(-self.log_prob(ids).mean())

    def next_log_probs(self, context: Sequence[int]) -> np.ndarray:
        """ln p(. | context) over the vocabulary (V,), from the last n-1 ids of ``context``."""
        if not hasattr(self, "joint_codes_"):
            raise ValueError("call fit(train_ids) before scoring")
        k = self.n - 1
        ctx_ids = _as_1d_ids(context, "context")
        if len(ctx_ids) < k:
            raise ValueError(f"an {self.n}-gram needs a context of {k} ids, got {len(ctx_ids)}")
        if k and (ctx_ids[len(ctx_ids) - k:].min() < 0 or ctx_ids[len(ctx_ids) - k:].max() >= self.V):
            raise ValueError(f"context ids must lie in [0, {self.V}), got {ctx_ids[len(ctx_ids) - k:].tolist()}")
        code = 0
        for i in ctx_ids[len(ctx_ids) - k:]:
            code = code * self.V + int(i)
        n_cw = self._lookup(self.joint_codes_, self.joint_counts_, code * self.V + np.arange(self.V))
        n_c = self._lookup(self.ctx_codes_, self.ctx_counts_, np.array([code]))[0]
        return np.log(n_cw + self.alpha) - np.log(n_c + self.alpha * self.V)


def ngram_nll(train_ids, val_ids, n: int, vocab_size: int, alpha: float = 1.0) -> float:
    """Validation NLL (nats per character) of an add-``alpha`` ``n``-gram fitted on ``train_ids``.

    The targets scored are ``val_ids[n-1:]`` (the first n-1 characters lack a full context).
    """
    return NGramLM(n, vocab_size, alpha).fit(train_ids).nll(val_ids)


def perplexity(nll):
    """exp(nll): the effective number of equally likely choices per character (nll in nats)."""
    if isinstance(nll, torch.Tensor):
        return torch.exp(nll)
    if isinstance(nll, np.ndarray):
        return np.exp(nll)
    return math.exp(nll)
