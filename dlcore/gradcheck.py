"""Finite-difference gradient checks: the one helper the notebooks and the tests share.

Chapter 0 derives the central difference (f(x + h) - f(x - h)) / 2h, whose error shrinks like h^2; chapter 4
uses it to test backpropagation. Both, and every dlcore test that checks a hand-written gradient, call the
functions here, so there is one tested version rather than a copy in each notebook.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import numpy as np


def numerical_gradient(f: Callable[[np.ndarray], Any], x: Any, h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function ``f`` at ``x`` (any shape), in float64.

    ``f`` receives a float64 copy of ``x`` with one entry nudged at a time, so the caller's array is never
    modified. Costs ``2 * x.size`` calls of ``f``: fine for checking a gradient, far too slow for training.
    """
    _check_step(h)
    x = np.array(x, dtype=np.float64)  # a copy
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = _scalar(f(x))
        x[i] = old - h
        f_minus = _scalar(f(x))
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_jacobian(F: Callable[[np.ndarray], Any], x: Any, h: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian ``J[i, j] = dF_i / dx_j`` of a function from R^n to R^m (flattened)."""
    _check_step(h)
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
    return float(np.max(_entry_errors(a, b, floor)))


def check_gradient(f: Callable[[np.ndarray], Any], x: Any, grad: Any, h: float = 1e-6,
                   tol: float = 1e-6, floor: float = 1e-12) -> float:
    """Assert that ``grad`` (an analytic gradient of ``f`` at ``x``) matches finite differences.

    Returns the relative error; raises ``AssertionError`` naming the worst entry when it exceeds ``tol``.
    Entries smaller than ``floor`` are measured against ``floor`` instead of their own size. Where a true
    gradient is exactly 0 the central difference still carries noise of about ``1e-16 * |f| / h + h**2``
    (about 1e-10 for the default h), so pass ``floor=1e-4`` there: noise 1e-10 / 1e-4 stays within tol 1e-6.
    """
    num = numerical_gradient(f, x, h)
    grad = np.asarray(grad, dtype=np.float64)
    err = relative_error(grad, num, floor)
    if not err <= tol:
        worst = np.unravel_index(int(np.argmax(_entry_errors(grad, num, floor))), num.shape)
        worst = tuple(int(i) for i in worst)  # (1, 0), not (np.int64(1), np.int64(0)), in the message
        raise AssertionError(f"gradient check failed: relative error {err:.2e} > {tol:.0e}; worst entry "
                             f"{worst}: analytic {grad[worst]:.6g}, finite difference {num[worst]:.6g}")
    return err


def _entry_errors(a: np.ndarray, b: np.ndarray, floor: float) -> np.ndarray:
    """``|a - b| / max(|a|, |b|, floor)`` entry by entry."""
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)


def _check_step(h: Any) -> None:
    if isinstance(h, bool) or not (isinstance(h, numbers.Real) and np.isfinite(h) and h > 0):
        raise ValueError(f"step h must be a positive finite number, got {h!r}")


def _scalar(value: Any) -> float:
    """``f``'s value as a float; ``value`` may be a number, a one-element array, or have a ``.data`` one."""
    arr = np.asarray(getattr(value, "data", value))
    if arr.size != 1:
        raise ValueError(f"f must return a scalar to take its gradient, got shape {arr.shape}")
    return float(arr.reshape(()))
