"""Dropout, batch normalisation and layer normalisation with explicit forward and backward passes.

Chapter 5 derives each layer; this module holds the tested versions the later chapters import. Every layer
works in two ways:

- on **numpy arrays**, cs231n style: ``y = layer.forward(x)`` keeps what the backward pass needs, and
  ``dx = layer.backward(dy)`` returns the gradient with respect to the input and *accumulates* the
  gradients of the parameters into their ``.grad`` (as torch does until ``zero_grad``);
- on **``dlcore.autograd.Tensor``s**: ``layer.forward(x)`` (or ``layer(x)``) returns a ``Tensor`` whose
  recorded backward rule is the same hand-derived formula, so the layer slots into an autograd network and
  ``loss.backward()`` fills ``x.grad``, ``gamma.grad`` and ``beta.grad``.

Semantics follow ``torch.nn.Dropout``, ``torch.nn.BatchNorm1d`` and ``torch.nn.LayerNorm``: inverted dropout
(kept units scaled by 1/(1 - p), identity in evaluation mode, all zeros for p = 1); batch norm normalises with
the batch's biased variance while training and keeps running averages with torch's momentum convention and the
*unbiased* variance, which evaluation mode uses; layer norm normalises each example over its last axis and
behaves the same in both modes. Parameters ``gamma`` (torch's ``weight``) and ``beta`` (``bias``) are
``Tensor`` leaves listed by ``parameters()``, so ``dlcore.optim`` can step them.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from dlcore.autograd import Grads, Tensor, accumulate_grad


class _Layer:
    """What the three layers share: a train/eval switch, parameters, ``__call__`` = ``forward``."""

    training: bool = True

    def train(self, mode: bool = True) -> _Layer:
        """Switch to training mode (or to evaluation mode with ``mode=False``); returns the layer."""
        self.training = bool(mode)
        return self

    def eval(self) -> _Layer:
        """Switch to evaluation mode (``train(False)``); returns the layer."""
        return self.train(False)

    def parameters(self) -> list[Tensor]:
        """The learnable tensors, in torch's order (``gamma`` = weight, then ``beta`` = bias)."""
        return []

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` back to ``None``."""
        for p in self.parameters():
            p.zero_grad()

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):  # pragma: no cover - every layer overrides it
        raise NotImplementedError

    def _saved(self) -> Any:
        cache = getattr(self, "_cache", None)
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward "
                               "(or after a forward on a Tensor, whose backward is loss.backward())")
        return cache


def _as_input(x) -> tuple[np.ndarray, bool]:
    """The array inside ``x`` and whether ``x`` was an autograd ``Tensor``."""
    if isinstance(x, Tensor):
        return x.data, True
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected a floating-point array, got dtype {x.dtype}")
    return x, False



# ----- dropout -------------------------------------------------------------------------------------------
class Dropout(_Layer):
    """Inverted dropout: in training, zero each entry with probability ``p`` and scale the rest by 1/(1 - p).

    The scaling keeps every entry's expected value equal to its input, so evaluation mode can be the
    identity. ``rng`` (a ``np.random.Generator`` or an integer seed) makes the masks repeatable. As in torch,
    ``p = 0`` is the identity and ``p = 1`` gives all zeros (and zero gradients).
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None) -> None:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, got {p!r}")
        self.p = float(p)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self._cache: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def mask(self, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        """A fresh multiplier: 0 with probability p, 1/(1 - p) otherwise (all ones when p = 0)."""
        if self.p == 0.0:
            return np.ones(shape, dtype=dtype)
        if self.p == 1.0:
            return np.zeros(shape, dtype=dtype)
        keep = self.rng.random(shape) >= self.p  # kept with probability 1 - p
        return keep.astype(dtype) / np.asarray(1.0 - self.p, dtype=dtype)

    def forward(self, x):
        """``x * mask`` in training mode (a new mask each call), ``x`` itself in evaluation mode."""
        data, is_tensor = _as_input(x)
        m = self.mask(data.shape, data.dtype) if self.training else None
        if is_tensor:
            self._cache = None
            if m is None:
                return x
            return Tensor._make(data * m, (x,), lambda g: (g * m,), "dropout")
        self._cache = m if m is not None else np.ones((), dtype=data.dtype)
        return data * m if m is not None else data

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """The same mask as the last forward: dropped entries pass no gradient, kept ones are scaled."""
        return np.asarray(dy) * self._saved()


# ----- normalisation -------------------------------------------------------------------------------------
def _norm_backward(dy: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray,
                   axis: int) -> np.ndarray:
    """dL/dx for y = gamma * xhat + beta, xhat = (x - mean) * inv_std, statistics taken along ``axis``.

    With g = dy * gamma and m the number of entries averaged over, the chain rule through the mean and the
    (biased) variance collapses to  dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)).
    """
    g = dy * gamma
    return inv_std * (g - g.mean(axis=axis, keepdims=True)
                      - xhat * (g * xhat).mean(axis=axis, keepdims=True))


class _Norm(_Layer):
    def __init__(self, num_features: int, eps: float, dtype) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) \
                or num_features < 1:
            raise ValueError(f"num_features must be a positive integer, got {num_features!r}")
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0:
            raise ValueError(f"eps must be a non-negative number, got {eps!r}")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.gamma = Tensor(np.ones(self.num_features, dtype=dtype), requires_grad=True)
        self.beta = Tensor(np.zeros(self.num_features, dtype=dtype), requires_grad=True)
        self._cache = None

    def parameters(self) -> list[Tensor]:
        return [self.gamma, self.beta]

    def _output(self, x, data: np.ndarray, is_tensor: bool, xhat: np.ndarray, inv_std: np.ndarray,
                batch_stats: bool, op: str):
        """y = gamma * xhat + beta; on a Tensor input, record the hand-derived backward rule."""
        gamma = self.gamma.data
        y = xhat * gamma + self.beta.data
        lead = tuple(range(data.ndim - 1))  # parameter gradients sum over every axis but the features
        axis = self._stat_axis if batch_stats else None

        def grads(dy: np.ndarray) -> Grads:
            dx = _norm_backward(dy, xhat, inv_std, gamma, axis) if axis is not None else dy * gamma * inv_std
            return dx, (dy * xhat).sum(axis=lead), dy.sum(axis=lead)

        if is_tensor:
            self._cache = None
            return Tensor._make(y, (x, self.gamma, self.beta), grads, op)
        self._cache = grads
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dL/dx for the last forward; adds dL/dgamma and dL/dbeta to ``gamma.grad`` and ``beta.grad``."""
        dx, dgamma, dbeta = self._saved()(np.asarray(dy))
        accumulate_grad(self.gamma, dgamma)
        accumulate_grad(self.beta, dbeta)
        return dx


class BatchNorm1d(_Norm):
    """Batch normalisation of inputs of shape (batch, num_features), as ``torch.nn.BatchNorm1d``.

    Training mode normalises each feature with the batch's mean and biased variance and updates
    ``running = (1 - momentum) * running + momentum * batch_statistic`` (the running variance uses the
    unbiased batch variance; ``momentum=None`` gives the cumulative average, as torch). Evaluation mode
    normalises with the running statistics, so an example's output no longer depends on its batch.
    """

    _stat_axis = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 dtype=np.float64) -> None:
        super().__init__(num_features, eps, dtype)
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, numbers.Real)
                                     or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"momentum must be in [0, 1] or None, got {momentum!r}")
        self.momentum = momentum
        self.running_mean = np.zeros(self.num_features, dtype=dtype)
        self.running_var = np.ones(self.num_features, dtype=dtype)
        self.num_batches_tracked = 0

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.num_features}, eps={self.eps}, momentum={self.momentum})"

    def forward(self, x):
        """Normalise with batch statistics (training) or running statistics (evaluation)."""
        data, is_tensor = _as_input(x)
        if data.ndim != 2 or data.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}) expects input of shape "
                             f"(batch, {self.num_features}), got {data.shape}")
        if self.training:
            n = data.shape[0]
            if n < 2:
                raise ValueError(f"BatchNorm1d needs more than 1 example per batch in training mode, got "
                                 f"input of shape {data.shape} (a batch of one has zero variance); "
                                 "use eval() for single examples")
            mean = data.mean(axis=0)
            var = data.var(axis=0)  # biased (divide by n): what the normalisation uses
            self.num_batches_tracked += 1
            m = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * mean
            self.running_var = (1 - m) * self.running_var + m * var * (n / (n - 1))  # unbiased
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = (data - mean) * inv_std
        return self._output(x, data, is_tensor, xhat, inv_std, self.training, "batch_norm")


class LayerNorm(_Norm):
    """Layer normalisation over the last axis, as ``torch.nn.LayerNorm(num_features)``.

    Each example (each row, or each position of a sequence) is normalised with its own mean and biased
    variance, then scaled by ``gamma`` and shifted by ``beta``. No running statistics: the layer computes
    the same thing in training and evaluation mode, for any batch size, one example included.
    """

    _stat_axis = -1

    def __init__(self, num_features: int, eps: float = 1e-5, dtype=np.float64) -> None:
        super().__init__(num_features, eps, dtype)

    def __repr__(self) -> str:
        return f"LayerNorm({self.num_features}, eps={self.eps})"

    def forward(self, x):
        """Normalise every example over its last axis (of length ``num_features``)."""
        data, is_tensor = _as_input(x)
        if data.ndim < 1 or data.shape[-1] != self.num_features:
            raise ValueError(f"LayerNorm({self.num_features}) expects input whose last axis has length "
                             f"{self.num_features}, got shape {data.shape}")
        mean = data.mean(axis=-1, keepdims=True)
        inv_std = 1.0 / np.sqrt(data.var(axis=-1, keepdims=True) + self.eps)
        xhat = (data - mean) * inv_std
        return self._output(x, data, is_tensor, xhat, inv_std, True, "layer_norm")
