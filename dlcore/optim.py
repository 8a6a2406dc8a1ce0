"""Optimizers and learning-rate schedules from scratch, with ``torch.optim``'s exact update rules.

An optimizer turns gradients into parameter updates. Each class here holds a list of parameters (objects
with a ``.data`` and a ``.grad`` NumPy array, such as :class:`dlcore.autograd.Tensor` leaves), keeps the
state its rule needs (a velocity, running averages of the gradient and of its square), and updates
``.data`` *in place* when you call :meth:`Optimizer.step`. The arithmetic follows PyTorch's
single-tensor implementations line by line (``torch/optim/sgd.py``, ``rmsprop.py``, ``adam.py``), so that
the training chapter can check each rule against ``torch.optim`` step by step:

- :class:`SGD`: ``g = grad + wd * p``; with momentum ``mu`` the buffer starts as ``b = g`` and then follows
  ``b = mu * b + (1 - dampening) * g``; the step uses ``b`` (heavy ball) or ``g + mu * b`` (Nesterov);
  ``p -= lr * step``.
- :class:`RMSprop`: ``v = alpha * v + (1 - alpha) * g**2``; ``p -= lr * g / (sqrt(v) + eps)``.
- :class:`Adam`: ``m = b1 * m + (1 - b1) * g``, ``v = b2 * v + (1 - b2) * g**2``, both divided by
  ``1 - b**t`` (bias correction); ``p -= lr * m_hat / (sqrt(v_hat) + eps)``. Its ``weight_decay`` adds
  ``wd * p`` to the gradient (L2 regularization, *coupled* to the adaptive scaling).
- :class:`AdamW`: the same, but weight decay shrinks the parameter directly, ``p *= 1 - lr * wd``, before
  the Adam step (*decoupled* weight decay, Loshchilov & Hutter 2019).

As in PyTorch, a parameter whose ``.grad`` is ``None`` is skipped (no update, no state change), and
``zero_grad()`` sets every gradient to ``None``. The learning rate is the attribute ``lr``; a schedule sets
it before each step. The schedules are pure functions of the step number ``t`` (the number of optimizer
steps already taken), equal to ``torch.optim.lr_scheduler``'s ``StepLR``, ``CosineAnnealingLR`` and
``LinearLR`` followed by ``CosineAnnealingLR`` in a ``SequentialLR``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "clip_grad_norm_", "step_lr", "cosine_lr",
           "warmup_cosine_lr"]


class Parameter(Protocol):
    """What an optimizer needs of a parameter: its values and (possibly ``None``) gradient."""

    data: np.ndarray
    grad: np.ndarray | None


def _check_number(name: str, value: float, low: float = 0.0, high: float | None = None,
                  low_open: bool = False) -> float:
    """``value`` as a float, or a ``ValueError`` that names the hyperparameter and its valid range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if not math.isfinite(value) or too_low or (high is not None and value >= high):
        lo = f"> {low:g}" if low_open else f">= {low:g}"
        hi = f" and < {high:g}" if high is not None else ""
        raise ValueError(f"{name} must be {lo}{hi}, got {value!r}")
    return value


def _check_betas(betas: tuple[float, float]) -> tuple[float, float]:
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    return (_check_number("betas[0]", b1, 0.0, 1.0), _check_number("betas[1]", b2, 0.0, 1.0))


class Optimizer:
    """Base class: holds the parameters, the learning rate, per-parameter state, and ``zero_grad``.

    A subclass implements :meth:`_update` for one parameter; :meth:`step` checks each gradient's shape and
    skips parameters without a gradient (``grad is None``), as ``torch.optim`` does.
    """

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list: pass the model's parameters, "
                             "e.g. SGD(model.parameters(), lr=0.1)")
        for i, p in enumerate(params):
            if not hasattr(p, "data") or not hasattr(p, "grad"):
                raise ValueError(f"parameter {i} ({type(p).__name__}) has no .data and .grad; "
                                 "pass dlcore.autograd.Tensor leaves (requires_grad=True)")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter appears more than once in the list; each would be updated twice")
        self.params: list[Parameter] = params
        self.lr = lr
        self.state: list[dict[str, Any]] = [{} for _ in params]

    @property
    def lr(self) -> float:
        """The learning rate of the next step (a schedule sets it; it must be >= 0)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check_number("lr (learning rate)", value)

    def zero_grad(self) -> None:
        """Forget the gradients (set them to ``None``, PyTorch's default) before the next backward pass."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        for i, p in enumerate(self.params):   # check every shape first, so a bad one updates nothing
            if p.grad is not None and np.shape(p.grad) != np.shape(p.data):
                raise ValueError(f"parameter {i}: gradient of shape {np.shape(p.grad)} does not match the "
                                 f"parameter's shape {np.shape(p.data)}")
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p, np.asarray(p.grad), state)

    def _update(self, p: Parameter, grad: np.ndarray, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in self.hyperparameters().items())
        n = len(self.params)
        return f"{type(self).__name__}({n} parameter{'' if n == 1 else 's'}, {hyper})"

    def hyperparameters(self) -> dict[str, Any]:
        """The settings of this optimizer (for printing and checkpoints)."""
        return {"lr": self.lr}


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (heavy-ball or Nesterov) momentum and L2 weight decay.

    ``momentum`` is PyTorch's convention: the velocity sums gradients, ``b = mu * b + g``, and the step is
    ``lr * b`` (not ``lr * (1 - mu) * ...``), so the effective step size on a constant gradient is
    ``lr / (1 - mu)``.
    """

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, dampening: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = _check_number("momentum", momentum)
        self.weight_decay = _check_number("weight_decay", weight_decay)
        self.dampening = _check_number("dampening", dampening)
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0 (Nesterov's step looks "
                             "ahead along the velocity, so there must be one)")
        self.nesterov = bool(nesterov)

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay, "dampening": self.dampening}

    def _update(self, p: Parameter, grad: np.ndarray, state: dict[str, Any]) -> None:
        g = grad + self.weight_decay * p.data if self.weight_decay else grad
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.array(g, copy=True)  # the first step uses g itself
            else:
                buf = state["momentum_buffer"]
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            buf = state["momentum_buffer"]
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012): divide each coordinate's gradient by a running RMS of its past values.

    ``alpha`` is the smoothing constant of the running average of squared gradients; ``eps`` is added to
    its square root (outside the root, as in PyTorch). ``momentum`` and ``centered`` follow PyTorch too.
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, lr)
        self.alpha = _check_number("alpha", alpha, 0.0, 1.0)
        self.eps = _check_number("eps", eps, low_open=True)
        self.weight_decay = _check_number("weight_decay", weight_decay)
        self.momentum = _check_number("momentum", momentum)
        self.centered = bool(centered)

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered}

    def _update(self, p: Parameter, grad: np.ndarray, state: dict[str, Any]) -> None:
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            if self.momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if self.centered:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        g = grad + self.weight_decay * p.data if self.weight_decay else grad
        v = state["square_avg"]
        v *= self.alpha
        v += (1 - self.alpha) * g * g
        if self.centered:
            state["grad_avg"] += (1 - self.alpha) * (g - state["grad_avg"])
            avg = np.sqrt(v - state["grad_avg"] ** 2) + self.eps
        else:
            avg = np.sqrt(v) + self.eps
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += g / avg
            p.data -= self.lr * buf
        else:
            p.data -= self.lr * g / avg


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): momentum on the gradient, RMSprop scaling, and bias correction of both.

    ``weight_decay`` here is L2 regularization: ``wd * p`` is added to the gradient *before* the adaptive
    scaling, so parameters with large gradient history are decayed less. Use :class:`AdamW` for decay that
    acts on every weight alike.
    """

    decoupled = False

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.betas = _check_betas(betas)
        self.eps = _check_number("eps", eps, low_open=True)
        self.weight_decay = _check_number("weight_decay", weight_decay)

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}

    def _update(self, p: Parameter, grad: np.ndarray, state: dict[str, Any]) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t, (b1, b2) = state["step"], self.betas
        g = grad
        if self.weight_decay:
            if self.decoupled:
                p.data *= 1 - self.lr * self.weight_decay   # AdamW: shrink the weight itself
            else:
                g = grad + self.weight_decay * p.data       # Adam: L2 term joins the gradient
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - b1) * (g - m)                # m = b1 m + (1 - b1) g, written as torch's lerp
        v *= b2
        v += (1 - b2) * g * g
        step_size = self.lr / (1 - b1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + self.eps
        p.data -= step_size * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): ``p *= 1 - lr * wd``, then the Adam step.

    The decay no longer passes through Adam's per-coordinate scaling, so every weight shrinks by the same
    factor per step, which is what "weight decay" promised in the first place. PyTorch's default
    ``weight_decay`` for AdamW is ``1e-2``, and so is ours.
    """

    decoupled = True

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)


# ----- gradient clipping ---------------------------------------------------------------------------------
def clip_grad_norm_(params: Iterable[Parameter] | Parameter, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Rescale all gradients together so that their joint norm is at most ``max_norm``; return the norm before.

    The total norm is the ``norm_type``-norm of the per-parameter gradient norms (the norm of all gradients
    concatenated into one vector); parameters whose ``.grad`` is ``None`` are skipped. Every gradient is
    multiplied in place by ``min(1, max_norm / (total_norm + 1e-6))``, so the direction of the step is kept
    and only its length is capped (Pascanu et al. 2013). Equal to ``torch.nn.utils.clip_grad_norm_``,
    including its ``1e-6`` and its behaviour on a non-finite norm (the gradients become NaN unless
    ``error_if_nonfinite=True``, which raises ``RuntimeError`` instead).
    """
    if hasattr(params, "data") and hasattr(params, "grad"):
        params = [params]
    params = list(params)   # a generator such as model.parameters() is read twice below
    max_norm = _check_number("max_norm", max_norm, low_open=True)
    norm_type = float(norm_type)
    if not (norm_type == math.inf or norm_type > 0):
        raise ValueError(f"norm_type must be positive or inf, got {norm_type!r}")
    grads = [np.asarray(p.grad) for p in params if p.grad is not None]
    if not grads:
        return 0.0
    if norm_type == math.inf:
        norms = np.array([np.max(np.abs(g)) if g.size else 0.0 for g in grads])
        total = float(np.max(norms))
    else:
        norms = np.array([np.sum(np.abs(g) ** norm_type) ** (1.0 / norm_type) for g in grads])
        total = float(np.sum(norms ** norm_type) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is non-finite ({total}), so "
                           "it cannot be clipped; pass error_if_nonfinite=False to get NaN gradients instead")
    coef = min(max_norm / (total + 1e-6), 1.0)   # NaN stays NaN, as torch's clamp leaves it
    with np.errstate(invalid="ignore"):             # inf * 0 = NaN on a non-finite norm, silently, as in torch
        _scale_grads(params, coef)
    return total


def _scale_grads(params: list[Parameter], coef: float) -> None:
    for p in params:
        if p.grad is None:
            continue
        if isinstance(p.grad, np.ndarray) and p.grad.flags.writeable and np.issubdtype(p.grad.dtype, np.floating):
            p.grad *= coef
        else:
            p.grad = np.asarray(p.grad, dtype=np.float64) * coef


# ----- learning-rate schedules: pure functions of the step --------------------------------------------------

def _check_step(t: int) -> int:
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"step t must be a non-negative integer, got {t!r}")
    return int(t)


def _check_count(name: str, n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def step_lr(t: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """Learning rate after ``t`` steps of a step schedule: ``base_lr * gamma ** (t // step_size)``.

    The rate drops by the factor ``gamma`` every ``step_size`` steps (``torch.optim.lr_scheduler.StepLR``).
    """
    t = _check_step(t)
    base_lr = _check_number("base_lr", base_lr)
    step_size = _check_count("step_size", step_size)
    gamma = _check_number("gamma", gamma)
    return base_lr * gamma ** (t // step_size)


def cosine_lr(t: int, base_lr: float, total_steps: int, min_lr: float = 0.0) -> float:
    """Cosine annealing from ``base_lr`` at ``t = 0`` to ``min_lr`` at ``t = total_steps``.

    ``min_lr + (base_lr - min_lr) * (1 + cos(pi * t / total_steps)) / 2`` (Loshchilov & Hutter 2017 without
    restarts; ``CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)``). After ``total_steps`` the rate stays
    at ``min_lr``; PyTorch's scheduler would instead start rising again along the cosine.
    """
    t = _check_step(t)
    base_lr = _check_number("base_lr", base_lr)
    total_steps = _check_count("total_steps", total_steps)
    min_lr = _check_number("min_lr", min_lr)
    if t >= total_steps:
        return min_lr
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * t / total_steps)) / 2


def warmup_cosine_lr(t: int, base_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0,
                     start_factor: float | None = None) -> float:
    """Linear warmup for ``warmup_steps`` steps, then cosine annealing to ``min_lr`` at ``total_steps``.

    During warmup the rate grows linearly from ``start_factor * base_lr`` (default ``1 / warmup_steps``:
    never exactly zero, so no step is wasted) to ``base_lr`` at ``t = warmup_steps``; from there it follows
    :func:`cosine_lr` over the remaining ``total_steps - warmup_steps`` steps. This equals
    ``SequentialLR([LinearLR(start_factor, total_iters=warmup_steps),
    CosineAnnealingLR(T_max=total_steps - warmup_steps, eta_min=min_lr)], milestones=[warmup_steps])``.
    Warmup keeps the first updates small while Adam's second-moment estimate rests on few gradients.
    """
    t = _check_step(t)
    base_lr = _check_number("base_lr", base_lr)
    warmup_steps = _check_count("warmup_steps", warmup_steps)
    total_steps = _check_count("total_steps", total_steps)
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
    start = 1.0 / warmup_steps if start_factor is None else _check_number("start_factor", start_factor,
                                                                          low_open=True)
    if start > 1:
        raise ValueError(f"start_factor must be in (0, 1], got {start_factor!r}")
    if t < warmup_steps:
        return base_lr * (start + (1.0 - start) * t / warmup_steps)
    return cosine_lr(t - warmup_steps, base_lr, total_steps - warmup_steps, min_lr)
