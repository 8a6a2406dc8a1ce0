"""Finite-difference gradient checks: the one helper the notebooks and the tests share.

Chapter 0 derives the central difference (f(x + h) - f(x - h)) / 2h, whose error shrinks like h^2; chapter 4
uses it to test backpropagation. Both, and every dlcore test that checks a hand-written gradient, call the
functions here, so there is one tested version rather than a copy in each notebook.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def numerical_gradient(f: Callable[[np.ndarray], Any], x: Any, h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function ``f`` at ``x`` (any shape), in float64.

    ``f`` receives a float64 copy of ``x`` with one entry nudged at a time, so the caller's array is never
    modified. Costs ``2 * x.size`` calls of ``f``: fine for checking a gradient, far too slow for training.
    """
    if not (isinstance(h, (int, float)) and np.isfinite(h) and h > 0):
        raise ValueError(f"step h must be a positive finite number, got {h!r}")
    x = np.array(x, dtype=np.float64)  # a copy
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = _scalar(f(x), "f")
        x[i] = old - h
        f_minus = _scalar(f(x), "f")
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_jacobian(F: Callable[[np.ndarray], Any], x: Any, h: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian ``J[i, j] = dF_i / dx_j`` of a function from R^n to R^m (flattened)."""
    if not (isinstance(h, (int, float)) and np.isfinite(h) and h > 0):
        raise ValueError(f"step h must be a positive finite number, got {h!r}")
    x = np.array(x, dtype=np.float64)
    flat = x.reshape(-1)
    cols = []
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + h
        plus = np.asarray(F(x), dtype=np.float64).reshape(-1)
        flat[j] = old - h
        minus = np.asarray(F(x), dtype=np.float64).reshape(-1)
        flat[j] = old
        cols.append((plus - minus) / (2 * h))
    return np.stack(cols, axis=1)


def relative_error(a: Any, b: Any, floor: float = 1e-12) -> float:
    """The largest ``|a - b| / max(|a|, |b|, floor)`` over all entries: 0 when equal, about 1 when unrelated."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare gradients of shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
    return float(np.max(np.abs(a - b) / scale))


def check_gradient(f: Callable[[np.ndarray], Any], x: Any, grad: Any, h: float = 1e-6,
                   tol: float = 1e-6) -> float:
    """Assert that ``grad`` (an analytic gradient of ``f`` at ``x``) matches finite differences.

    Returns the relative error; raises ``AssertionError`` naming the worst entry when it exceeds ``tol``.
    """
    num = numerical_gradient(f, x, h)
    grad = np.asarray(grad, dtype=np.float64)
    err = relative_error(grad, num)
    if not err <= tol:
        scale = np.maximum(np.maximum(np.abs(grad), np.abs(num)), 1e-12)
        worst = np.unravel_index(int(np.argmax(np.abs(grad - num) / scale)), num.shape)
        raise AssertionError(f"gradient check failed: relative error {err:.2e} > {tol:.0e}; worst entry "
                             f"{worst}: analytic {grad[worst]:.6g}, finite difference {num[worst]:.6g}")
    return err


def _scalar(value: Any, name: str) -> float:
    arr = np.asarray(getattr(value, "data", value), dtype=np.float64)
    if arr.size != 1:
        raise ValueError(f"{name} must return a scalar to take its gradient, got shape {arr.shape}")
    return float(arr.reshape(()))
