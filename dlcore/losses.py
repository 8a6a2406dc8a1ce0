"""Loss functions from likelihoods, in NumPy, each with its gradient.

The training chapter derives every loss here as a negative log-likelihood: the mean squared error from a
Gaussian with fixed variance, binary cross-entropy from a Bernoulli, categorical cross-entropy from a
categorical distribution. Each ``loss`` has a ``loss_grad`` that returns the gradient with respect to its
first argument (the prediction or the logits), so a hand-written backward pass needs nothing else.

The classification losses take *logits*, never probabilities: the log-likelihood is computed from the logits
with the log-sum-exp trick (``dlcore.functional.log_softmax``) or the softplus identity
``-log sigma(z) = softplus(-z)``, so logits of 1e4 give exact, finite losses where ``log(softmax(z))``
would give ``-inf`` and then NaN. Their gradients are the famous ``p - y``.

``reduction`` follows PyTorch: ``"mean"`` (the default; a Python float), ``"sum"`` (a float), or ``"none"``
(one loss per element for ``mse`` and ``binary_cross_entropy_with_logits``, one per row for
``cross_entropy``, in the input's float dtype). With ``"none"`` the ``*_grad`` functions return the gradient
of the *sum* of those losses, which is what ``loss.backward(torch.ones_like(loss))`` gives in PyTorch.

Bad input fails with a ``ValueError`` that says what was expected: NaN or inf, shapes that do not match
(no silent broadcasting), labels out of range, targets that are not probabilities, an empty batch, an
unknown reduction, ``label_smoothing`` outside [0, 1).
"""

from __future__ import annotations

import numbers
from typing import Literal, Union

import numpy as np

from dlcore.functional import _as_float, _check_labels, log_softmax, one_hot, sigmoid, softmax

Reduction = Literal["mean", "sum", "none"]
LossValue = Union[float, np.ndarray]

__all__ = ["mse", "mse_grad", "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_grad",
           "cross_entropy", "cross_entropy_grad"]


# --------------------------------------------------------------------------------------------------
# Checks shared by the losses
# --------------------------------------------------------------------------------------------------

def _finite(x, name: str) -> np.ndarray:
    """``x`` as a floating array; NaN and inf rejected (a loss of inf has no useful gradient)."""
    a = _as_float(x, name=name)
    if np.isinf(a).any():
        raise ValueError(f"{name} contains inf; losses need finite inputs")
    return a


def _check_reduction(reduction: str) -> str:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _same_shape(pred: np.ndarray, target: np.ndarray, what: str, pname: str, tname: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{what} expects {tname} of the same shape as {pname} {pred.shape}, got {target.shape} "
                         f"(no broadcasting: reshape one of them)")
    if pred.size == 0:
        raise ValueError(f"{what} of an empty input is undefined")


def _reduce(per_item: np.ndarray, reduction: str) -> LossValue:
    if reduction == "mean":
        return float(per_item.mean())
    if reduction == "sum":
        return float(per_item.sum())
    return per_item


def _grad_scale(count: int, reduction: str) -> float:
    """The factor the mean brings into every gradient: 1/count for 'mean', 1 otherwise."""
    return 1.0 / count if reduction == "mean" else 1.0


# --------------------------------------------------------------------------------------------------
# Mean squared error: the negative log-likelihood of a Gaussian with fixed variance
# --------------------------------------------------------------------------------------------------

def _mse_inputs(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred = _finite(pred, "pred")
    target = _finite(target, "target").astype(pred.dtype, copy=False)
    _same_shape(pred, target, "mse", "pred", "target")
    return pred, target


def mse(pred, target, reduction: Reduction = "mean") -> LossValue:
    """Squared error (pred - target)^2, averaged over every element by default (``F.mse_loss``).

    Up to constants, the negative log-likelihood of ``target`` under a Gaussian with mean ``pred`` and a
    fixed variance: minimising it is maximum likelihood for that model.
    """
    reduction = _check_reduction(reduction)
    pred, target = _mse_inputs(pred, target)
    return _reduce((pred - target) ** 2, reduction)


def mse_grad(pred, target, reduction: Reduction = "mean") -> np.ndarray:
    """Gradient of :func:`mse` with respect to ``pred``: 2 (pred - target), divided by the count for 'mean'."""
    reduction = _check_reduction(reduction)
    pred, target = _mse_inputs(pred, target)
    return (2.0 * _grad_scale(pred.size, reduction) * (pred - target)).astype(pred.dtype, copy=False)


# --------------------------------------------------------------------------------------------------
# Binary cross-entropy: the negative log-likelihood of a Bernoulli with p = sigmoid(logit)
# --------------------------------------------------------------------------------------------------

def _bce_inputs(logits, y) -> tuple[np.ndarray, np.ndarray]:
    logits = _finite(logits, "logits")
    y = _finite(y, "targets").astype(logits.dtype, copy=False)
    _same_shape(logits, y, "binary cross-entropy", "logits", "targets")
    if y.min() < 0 or y.max() > 1:
        raise ValueError(f"binary cross-entropy targets must lie in [0, 1] (probabilities of the class 1), "
                         f"got values from {y.min()} to {y.max()}")
    return logits, y


def binary_cross_entropy_with_logits(logits, y, reduction: Reduction = "mean") -> LossValue:
    """-[y log sigma(z) + (1 - y) log(1 - sigma(z))] for logits z and targets y in [0, 1].

    The same quantity is softplus(z) - y z, which never takes the log of an underflowed sigmoid. It is
    evaluated as max(z, 0) - y z + log(1 + e^{-|z|}), so that the large terms cancel exactly before the small
    one is added (softplus(30) - 30 would round 9.4e-14 to a few digits). Equal to
    ``F.binary_cross_entropy_with_logits``.
    """
    reduction = _check_reduction(reduction)
    logits, y = _bce_inputs(logits, y)
    return _reduce(np.maximum(logits, 0) - y * logits + np.log1p(np.exp(-np.abs(logits))), reduction)


def binary_cross_entropy_with_logits_grad(logits, y, reduction: Reduction = "mean") -> np.ndarray:
    """Gradient with respect to the logits: sigma(z) - y, divided by the count for 'mean'."""
    reduction = _check_reduction(reduction)
    logits, y = _bce_inputs(logits, y)
    return (_grad_scale(logits.size, reduction) * (sigmoid(logits) - y)).astype(logits.dtype, copy=False)


# --------------------------------------------------------------------------------------------------
# Categorical cross-entropy: the negative log-likelihood of a categorical with p = softmax(logits)
# --------------------------------------------------------------------------------------------------

def _check_smoothing(label_smoothing) -> float:
    if (isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real)
            or not 0.0 <= label_smoothing < 1.0):
        raise ValueError(f"label_smoothing must be a number in [0, 1), got {label_smoothing!r}")
    return float(label_smoothing)


def _ce_inputs(logits, y, label_smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Validated float logits (n, k) and the target distribution (n, k) after label smoothing."""
    eps = _check_smoothing(label_smoothing)
    logits = _as_float(logits, name="logits", allow_inf=False)
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (n, k), got {logits.shape}")
    if logits.shape[0] == 0:
        raise ValueError("cross-entropy of an empty batch is undefined")
    n, k = logits.shape
    if k == 0:
        raise ValueError("expected logits with at least one class, got shape (n, 0)")
    y_arr = np.asarray(y)
    if y_arr.ndim == 1:  # integer class labels
        target = one_hot(_check_labels(y_arr, k, n=n), k)
    elif y_arr.shape == logits.shape:  # a probability distribution per row ("soft" targets)
        if not np.issubdtype(y_arr.dtype, np.floating):
            raise ValueError(f"probability targets must be floating point, got dtype {y_arr.dtype} "
                             f"(pass integer labels of shape (n,) instead)")
        target = _finite(y_arr, "targets")
        tol = max(1e-6, 10 * k * float(np.finfo(target.dtype).eps))
        if target.min() < 0 or np.abs(target.sum(axis=1) - 1).max() > tol:
            raise ValueError("probability targets must be non-negative and each row must sum to 1")
    else:
        raise ValueError(f"expected labels of shape (n,) = ({n},) or probabilities of shape (n, k) = {logits.shape}, "
                         f"got {y_arr.shape}")
    target = target.astype(logits.dtype, copy=False)
    if eps > 0:
        target = (1.0 - eps) * target + eps / k  # mix with the uniform distribution, as PyTorch does
    return logits, target


def cross_entropy(logits, y, label_smoothing: float = 0.0, reduction: Reduction = "mean") -> LossValue:
    """Cross-entropy of targets ``y`` under softmax(logits): -sum_j t_j log p_j, one term per row.

    ``logits`` (n, k); ``y`` integer labels (n,) or probabilities (n, k). ``label_smoothing`` = eps replaces
    the target t by (1 - eps) t + eps / k. The log-probabilities come from ``log_softmax`` (log-sum-exp),
    so any finite logits are fine. Equal to ``F.cross_entropy(logits, y, label_smoothing=eps)``.
    """
    reduction = _check_reduction(reduction)
    logits, target = _ce_inputs(logits, y, label_smoothing)
    per_row = -(target * log_softmax(logits, axis=1)).sum(axis=1)
    return _reduce(per_row, reduction)


def cross_entropy_grad(logits, y, label_smoothing: float = 0.0, reduction: Reduction = "mean") -> np.ndarray:
    """Gradient of :func:`cross_entropy` with respect to the logits: softmax(logits) - t, divided by n for 'mean'.

    t is the (smoothed) target distribution; the formula needs each row of t to sum to 1, which is checked.
    """
    reduction = _check_reduction(reduction)
    logits, target = _ce_inputs(logits, y, label_smoothing)
    p = softmax(logits, axis=1)
    return (_grad_scale(logits.shape[0], reduction) * (p - target)).astype(logits.dtype, copy=False)
