"""Weight initialization: the variance-preserving scales of Glorot & Bengio (2010) and He et al. (2015).

The training chapter derives them. A layer with ``fan_in`` inputs computes ``z_j = sum_i w_ij x_i``; with
independent, zero-mean weights and inputs, ``Var(z_j) = fan_in * Var(w) * Var(x)``. Keeping the activations'
variance constant from layer to layer asks for ``Var(w) = gain**2 / fan_in``, where the gain undoes what the
nonlinearity removes (ReLU keeps half of the second moment, hence ``gain**2 = 2``: He initialization).
The backward pass asks for ``Var(w) = 1 / fan_out``; Glorot's compromise is ``2 / (fan_in + fan_out)``.

- :func:`calculate_gain` the gains, equal to ``torch.nn.init.calculate_gain``;
- :func:`xavier_std`, :func:`he_std` the standard deviations;
- :func:`xavier_normal`, :func:`he_normal` NumPy samplers that return a ``(fan_in, fan_out)`` matrix, the
  book's layout ``Z = X @ W + b``;
- :func:`torch_fans` the fans of a PyTorch weight. ``nn.Linear`` stores ``weight = W.T`` with shape
  ``(out, in)``, so its fan-in is ``weight.shape[1]``; a convolution's weight ``(out, in, *kernel)`` has
  fan-in ``in * prod(kernel)``;
- :func:`init_` re-initialises every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` of a model in place ("normal",
  "xavier" or "he"), biases zero, with ``torch.nn.init`` underneath.

Bad input (an unknown nonlinearity or scheme, a fan below 1, a missing ``std``) raises a ``ValueError``.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch
import torch.nn as nn

LINEAR_NAMES = ("linear", "conv1d", "conv2d", "conv3d",
                "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
NONLINEARITIES = LINEAR_NAMES + ("sigmoid", "tanh", "relu", "leaky_relu", "selu")
SCHEMES = ("normal", "xavier", "he")
LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _check_fan(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive whole number (a count of units), got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def _check_positive(value, name: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value}")
    return float(value)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain that multiplies ``1/sqrt(fan_in)`` (He) or Glorot's std for a nonlinearity, as PyTorch's.

    ``relu``: sqrt(2) (ReLU zeroes half of a symmetric input, halving its second moment); ``leaky_relu``
    with negative slope ``param`` (default 0.01): sqrt(2 / (1 + param**2)); ``tanh``: 5/3; ``sigmoid``,
    ``linear`` and the convolutions: 1; ``selu``: 3/4.
    """
    if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; expected one of {', '.join(NONLINEARITIES)}")
    if param is not None and nonlinearity != "leaky_relu":
        raise ValueError(f"param is the negative slope of leaky_relu; {nonlinearity!r} takes none")
    if nonlinearity in LINEAR_NAMES or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4.0
    slope = 0.01 if param is None else param
    if isinstance(slope, bool) or not isinstance(slope, Real) or not math.isfinite(slope):
        raise ValueError(f"the negative slope of leaky_relu must be a finite number, got {param!r}")
    return math.sqrt(2.0 / (1.0 + slope**2))


def xavier_std(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """Glorot/Xavier standard deviation ``gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _check_fan(fan_in, "fan_in"), _check_fan(fan_out, "fan_out")
    return _check_positive(gain, "gain") * math.sqrt(2.0 / (fan_in + fan_out))


def he_std(fan_in: int, nonlinearity: str = "relu", param: float | None = None) -> float:
    """He/Kaiming standard deviation ``calculate_gain(nonlinearity, param) / sqrt(fan_in)``."""
    return calculate_gain(nonlinearity, param) / math.sqrt(_check_fan(fan_in, "fan_in"))


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {rng!r}")
    return rng


def xavier_normal(fan_in: int, fan_out: int, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """A ``(fan_in, fan_out)`` weight matrix with entries N(0, xavier_std(fan_in, fan_out, gain)**2)."""
    std = xavier_std(fan_in, fan_out, gain)
    return _check_rng(rng).normal(0.0, std, size=(fan_in, fan_out))


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator, nonlinearity: str = "relu",
              param: float | None = None) -> np.ndarray:
    """A ``(fan_in, fan_out)`` weight matrix with entries N(0, he_std(fan_in, nonlinearity, param)**2)."""
    std = he_std(fan_in, nonlinearity, param)
    _check_fan(fan_out, "fan_out")
    return _check_rng(rng).normal(0.0, std, size=(fan_in, fan_out))


def torch_fans(weight: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a PyTorch weight: ``(out, in)`` for nn.Linear, ``(out, in, *kernel)`` for conv."""
    if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
        raise ValueError(f"expected a weight with at least 2 dimensions (out, in, ...), got "
                         f"{tuple(weight.shape) if isinstance(weight, torch.Tensor) else weight!r}")
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def init_(model: nn.Module, scheme: str, std: float | None = None, gain: float = 1.0,
          nonlinearity: str = "relu", param: float | None = None) -> nn.Module:
    """Re-initialise, in place, every nn.Linear and nn.Conv1d/2d/3d in ``model``; biases become 0.

    ``scheme``: ``"normal"`` draws N(0, std**2) (``std`` required); ``"xavier"`` draws
    N(0, xavier_std(fan_in, fan_out, gain)**2); ``"he"`` draws N(0, he_std(fan_in, nonlinearity, param)**2).
    Fans come from :func:`torch_fans` (so nn.Linear's fan-in is ``weight.shape[1]``). Returns ``model``.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if scheme == "normal":
        if std is None:
            raise ValueError("scheme='normal' needs std, e.g. init_(model, 'normal', std=0.01)")
        std = _check_positive(std, "std", allow_zero=True)
    elif std is not None:
        raise ValueError(f"std is only used by scheme='normal'; scheme={scheme!r} computes its own")
    if scheme == "he":
        calculate_gain(nonlinearity, param)  # validate before touching the model
    gain = _check_positive(gain, "gain")
    if scheme != "xavier" and gain != 1.0:
        raise ValueError(f"gain is used by scheme='xavier' only; scheme={scheme!r} ignores it")
    layers = [m for m in model.modules() if isinstance(m, LAYER_TYPES)]
    if not layers:
        raise ValueError(f"found no nn.Linear or nn.Conv layer in {type(model).__name__} to initialise")
    with torch.no_grad():
        for layer in layers:
            if scheme == "normal":
                nn.init.normal_(layer.weight, 0.0, std)
            elif scheme == "xavier":
                nn.init.xavier_normal_(layer.weight, gain=gain)
            else:
                a = 0.0 if nonlinearity != "leaky_relu" else (0.01 if param is None else param)
                nn.init.kaiming_normal_(layer.weight, a=a, mode="fan_in", nonlinearity=nonlinearity)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return model
