"""Activation functions, softmax and cross-entropy in NumPy, each with its derivative.

The multilayer-perceptron chapter derives these functions; this module holds the tested versions that later
code imports. Every activation ``f`` comes with ``f_grad``, its derivative with respect to the input
(elementwise), so a hand-written backward pass needs nothing else. They are written to be numerically
stable: ``sigmoid`` and ``softplus`` never evaluate ``exp`` of a large positive number, and ``logsumexp``,
``softmax`` and ``log_softmax`` subtract the row maximum first (the log-sum-exp trick), so logits of 1e4 are
fine. Where a derivative is undefined (the kinks of ``relu`` and ``step`` at 0) the value PyTorch uses is
returned, so the two agree everywhere. The step itself follows the book's convention (``book/notation.md``):
step(z) = 1 for z >= 0, so a threshold unit fires when its input reaches the threshold.

Every function keeps a floating input's dtype (float32 in, float32 out; integers become float64), so a
float32 network stays float32.

Bad input fails loudly with a ``ValueError``: NaN anywhere, infinities where they would turn into NaN
(softmax and friends), labels of the wrong shape or out of range, and axes the input does not have.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import ndtr

Activation = Callable[[np.ndarray], np.ndarray]

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _as_float(x, name: str = "x", allow_inf: bool = True) -> np.ndarray:
    """``x`` as a floating array (float64 unless it already is a float type); reject NaN (and maybe inf)."""
    a = np.asarray(x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN")
    if not allow_inf and np.isinf(a).any():
        raise ValueError(f"{name} contains inf; softmax-type functions need finite inputs")
    return a


def _check_axis(a: np.ndarray, axis: int) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ValueError(f"axis must be an integer, got {axis!r}")
    if a.ndim == 0:
        raise ValueError("expected an array with at least one dimension, got a scalar")
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"axis {axis} is out of range for an input with {a.ndim} dimension(s) {a.shape}")
    if a.shape[axis] == 0:
        raise ValueError(f"axis {axis} of the input {a.shape} is empty")
    return int(axis)


# --------------------------------------------------------------------------------------------------
# Elementwise activations and their derivatives
# --------------------------------------------------------------------------------------------------

def _like(out, x: np.ndarray) -> np.ndarray:
    """``out`` in ``x``'s dtype (some NumPy/SciPy kernels, e.g. ``ndtr`` on float16, answer in float64)."""
    return np.asarray(out).astype(x.dtype, copy=False)


def step(x) -> np.ndarray:
    """Heaviside step: 1 where x >= 0, else 0 (the perceptron's activation; step(0) = 1, the book's convention)."""
    x = _as_float(x)
    return (x >= 0).astype(x.dtype)


def step_grad(x) -> np.ndarray:
    """Derivative of the step: 0 everywhere it exists (which is why gradient descent cannot train it)."""
    x = _as_float(x)
    return np.zeros_like(x)


def sigmoid(x) -> np.ndarray:
    """Logistic sigmoid 1 / (1 + e^{-x}), computed from e^{-|x|} so it never overflows."""
    x = _as_float(x)
    z = np.exp(-np.abs(x))
    return _like(np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)), x)


def sigmoid_grad(x) -> np.ndarray:
    """sigma'(x) = sigma(x) (1 - sigma(x)); at most 1/4, at x = 0."""
    s = sigmoid(x)
    return _like(s * (1.0 - s), s)


def tanh(x) -> np.ndarray:
    """Hyperbolic tangent, a sigmoid rescaled to (-1, 1): tanh(x) = 2 sigma(2x) - 1."""
    return np.tanh(_as_float(x))


def tanh_grad(x) -> np.ndarray:
    """tanh'(x) = 1 - tanh(x)^2; at most 1, at x = 0."""
    t = tanh(x)
    return _like(1.0 - t * t, t)


def relu(x) -> np.ndarray:
    """Rectified linear unit max(x, 0)."""
    x = _as_float(x)
    return np.maximum(x, 0.0).astype(x.dtype)


def relu_grad(x) -> np.ndarray:
    """1 where x > 0, else 0 (PyTorch's choice at the kink x = 0)."""
    x = _as_float(x)
    return (x > 0).astype(x.dtype)


def leaky_relu(x, slope: float = 0.01) -> np.ndarray:
    """x for x > 0, slope * x otherwise: a ReLU whose negative side keeps a small gradient."""
    x = _as_float(x)
    return _like(np.where(x > 0, x, slope * x), x)


def leaky_relu_grad(x, slope: float = 0.01) -> np.ndarray:
    """1 for x > 0, ``slope`` otherwise (including at 0, as in PyTorch)."""
    x = _as_float(x)
    return np.where(x > 0, 1.0, slope).astype(x.dtype)


def elu(x, alpha: float = 1.0) -> np.ndarray:
    """Exponential linear unit: x for x > 0, alpha (e^x - 1) otherwise (smooth at 0 when alpha = 1)."""
    x = _as_float(x)
    return _like(np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))), x)


def elu_grad(x, alpha: float = 1.0) -> np.ndarray:
    """1 for x > 0, alpha e^x otherwise."""
    x = _as_float(x)
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0))).astype(x.dtype)


def gelu(x) -> np.ndarray:
    """Gaussian error linear unit, exact form x Phi(x) = x (1 + erf(x / sqrt 2)) / 2.

    Phi is the standard normal CDF, evaluated with ``scipy.special.ndtr``, which stays accurate in the far
    tails where 1 + erf(.) would cancel.
    """
    x = _as_float(x)
    return _like(x * ndtr(x), x)


def gelu_grad(x) -> np.ndarray:
    """d/dx [x Phi(x)] = Phi(x) + x phi(x), with phi the standard normal density."""
    x = _as_float(x)
    return _like(ndtr(x) + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x), x)


def silu(x) -> np.ndarray:
    """SiLU / Swish: x sigma(x)."""
    x = _as_float(x)
    return _like(x * sigmoid(x), x)


def silu_grad(x) -> np.ndarray:
    """d/dx [x sigma(x)] = sigma(x) (1 + x (1 - sigma(x)))."""
    x = _as_float(x)
    s = sigmoid(x)
    return _like(s * (1.0 + x * (1.0 - s)), x)


def softplus(x) -> np.ndarray:
    """log(1 + e^x), a smooth ReLU, computed as max(x, 0) + log1p(e^{-|x|}) so it never overflows."""
    x = _as_float(x)
    return _like(np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))), x)


def softplus_grad(x) -> np.ndarray:
    """The derivative of softplus is the sigmoid."""
    return sigmoid(x)


ACTIVATIONS: dict[str, tuple[Activation, Activation]] = {
    "step": (step, step_grad),
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "leaky_relu": (leaky_relu, leaky_relu_grad),
    "elu": (elu, elu_grad),
    "gelu": (gelu, gelu_grad),
    "silu": (silu, silu_grad),
    "softplus": (softplus, softplus_grad),
}
"""Every elementwise activation by name, as a pair (function, derivative)."""

_ALIASES = {"swish": "silu"}


def get_activation(name: str) -> tuple[Activation, Activation]:
    """The pair ``(f, f_grad)`` for an activation name (case-insensitive; ``"swish"`` means ``"silu"``)."""
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))} "
                         f"(and the alias 'swish')")
    return ACTIVATIONS[key]


# --------------------------------------------------------------------------------------------------
# Softmax, log-sum-exp and cross-entropy
# --------------------------------------------------------------------------------------------------

def logsumexp(x, axis: int = -1) -> np.ndarray:
    """log(sum(exp(x))) along ``axis``, computed as m + log(sum(exp(x - m))) with m the maximum."""
    x = _as_float(x, allow_inf=False)
    axis = _check_axis(x, axis)
    m = x.max(axis=axis, keepdims=True)
    out = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    return np.squeeze(out, axis=axis)


def softmax(x, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along ``axis``; subtracting the maximum changes nothing and avoids overflow."""
    x = _as_float(x, allow_inf=False)
    axis = _check_axis(x, axis)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis: int = -1) -> np.ndarray:
    """x - logsumexp(x) along ``axis``: the log-probabilities, accurate even where softmax underflows to 0.

    Computed as (x - m) - log(sum(exp(x - m))), m the maximum, rather than x - (m + log(...)): for a
    confident row the second form subtracts two nearly equal large numbers and loses the small answer.
    """
    x = _as_float(x, allow_inf=False)
    axis = _check_axis(x, axis)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _check_labels(y, k: int, n: int | None = None) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"expected labels of shape (n,), got {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"expected {n} labels (one per row of logits), got {y.shape[0]}")
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must lie in [0, {k - 1}], got values from {y.min()} to {y.max()}")
    return y


def one_hot(y, k: int) -> np.ndarray:
    """Integer labels of shape (n,) as an (n, k) float array with a single 1 per row."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"number of classes k must be a positive integer, got {k!r}")
    y = _check_labels(y, int(k))
    out = np.zeros((y.shape[0], int(k)))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


def cross_entropy(logits, y) -> float:
    """Mean negative log-likelihood of integer labels ``y`` (n,) under softmax(logits) (n, k).

    The chapter-3 name for :func:`dlcore.losses.cross_entropy` (which adds label smoothing, probability
    targets and ``reduction``); one implementation, imported late because ``losses`` builds on this module.
    """
    from dlcore import losses

    return losses.cross_entropy(logits, y)


def cross_entropy_grad(logits, y) -> np.ndarray:
    """Gradient of :func:`cross_entropy` with respect to the logits: (softmax(logits) - one_hot(y)) / n."""
    from dlcore import losses

    return losses.cross_entropy_grad(logits, y)
