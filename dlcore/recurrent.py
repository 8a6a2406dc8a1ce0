"""A vanilla recurrent network (Elman 1990) in numpy: forward pass and hand-derived backpropagation through time.

Chapter 7 (07_2_rnn_and_bptt) derives both passes; this module holds the tested version. Layout is the book's
(batch first, row vectors, ``W`` of shape ``(in, out)``)::

    a_t = x_t W_xh + h_{t-1} W_hh + b,      h_t = f(a_t),      f = tanh or relu,

for inputs ``x`` of shape ``(N, T, D)`` and hidden states of shape ``(N, H)``. One set of weights serves every
time step. :meth:`RNN.backward` runs the recursion of the chapter backwards in time (BPTT, Werbos 1990)::

    dh_t = dH_t + da_{t+1} W_hh^T,          da_t = dh_t * f'(a_t),

and sums the weight gradients over time: ``dW_xh = sum_t x_t^T da_t``, ``dW_hh = sum_t h_{t-1}^T da_t``,
``db = sum_t sum_n da_t``. The gradients are *added* to each parameter's ``.grad`` (as torch does until
``zero_grad``), so ``dlcore.optim`` can step ``rnn.parameters()``.

Relation to ``torch.nn.RNN(batch_first=True)``: torch stores ``weight_ih_l0 = W_xh^T`` (H, D) and
``weight_hh_l0 = W_hh^T`` (H, H) and two biases ``b_ih`` and ``b_hh`` that only ever appear as their sum.
This module keeps one bias ``b = b_ih + b_hh``: :meth:`RNN.copy_from_torch` adds them, :meth:`RNN.to_torch`
puts ``b`` in ``bias_ih_l0`` and zeros in ``bias_hh_l0``; the gradient of either torch bias equals ``db``.
The small functions :func:`check_sequence` and :func:`check_state` (input validation) and :func:`torch_weights`
(weight copying) are shared with the gated cells below.

The gated cells (chapter 7, 07_3_lstm_and_gru) follow in the second half of the module:

Chapter 7 derives both (07_3_lstm_and_gru). Layout is **batch first** and the book's weight layout
``W in R^{in x out}``: inputs ``x`` (N, T, D), states (N, H), and one step computes the pre-activations of all
gates with one matrix product each, ``a_t = x_t W_xh + h_{t-1} W_hh + biases``. The gate blocks sit side
by side in torch's order:

- LSTM, ``a_t`` has four blocks ``(i, f, g, o)``: ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``;
- GRU, three blocks ``(r, z, n)`` with torch's candidate, in which the reset gate multiplies ``h W_hn + b_hn``
  *after* the matrix product (Cho et al. 2014 reset ``h`` before it):
  ``n = tanh(x W_in + b_in + r * (h W_hn + b_hn))``, ``h_t = (1 - z) * n + z * h_{t-1}``.

Biases, as in ``dlcore.recurrent.RNN``: torch keeps two, ``bias_ih_l0`` and ``bias_hh_l0``. In the LSTM they
only ever appear as their sum, so ``LSTM`` keeps one bias ``b = b_ih + b_hh`` (4H,) like the RNN. In the GRU the
block ``b_hn`` sits inside ``r * (...)`` while ``b_in`` does not, so the two cannot be merged: ``GRU`` keeps
``b_ih`` and ``b_hh`` (3H,) each. torch stores ``weight_ih_l0 = W_xh^T`` (4H or 3H, D) and
``weight_hh_l0 = W_hh^T``; ``copy_from_torch`` / ``from_torch`` / ``to_torch`` transpose on the way in and out,
through the helpers ``torch_weights``, ``check_sequence`` and ``check_state`` shared with ``dlcore.recurrent``.

Parameters are ``dlcore.autograd.Tensor`` leaves listed by ``parameters()``; ``backward`` *adds* to their
``.grad`` (as torch does until ``zero_grad``), so ``dlcore.optim`` can step them. The tests match
``torch.nn.LSTM`` / ``torch.nn.GRU`` (float64) to 1e-10: outputs, final states and every gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcore.autograd import Tensor, accumulate_grad

__all__ = ["RNN", "LSTM", "GRU", "from_torch", "check_sequence", "check_state", "torch_weights"]

NONLINEARITIES = ("tanh", "relu")


# ----- shared helpers: input validation and torch weights -------------------------------------------------
def check_sequence(x: Any, input_size: int) -> np.ndarray:
    """``x`` as a float array of shape ``(batch, time, input_size)``, or a ``ValueError`` saying what is wrong."""
    if isinstance(x, Tensor):
        x = x.data
    x = np.asarray(x)
    layout = f"(batch, time, {input_size})"
    if x.ndim != 3 or x.shape[2] != input_size:
        raise ValueError(f"expected input of shape {layout}, got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected a floating-point input, got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"empty batch: expected input of shape {layout} with batch >= 1, got {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"empty sequence: expected input of shape {layout} with time >= 1, got {x.shape}")
    return x


def check_state(h: Any, batch: int, hidden_size: int, name: str = "h0", dtype=np.float64) -> np.ndarray:
    """A state ``h`` of shape ``(batch, hidden_size)`` as an array (zeros when ``h`` is ``None``)."""
    if h is None:
        return np.zeros((batch, hidden_size), dtype=dtype)
    if isinstance(h, Tensor):
        h = h.data
    h = np.asarray(h, dtype=dtype)
    if h.shape != (batch, hidden_size):
        raise ValueError(f"expected {name} of shape (batch, hidden) = ({batch}, {hidden_size}), got {h.shape}")
    return h


def torch_weights(module: Any, kind: str = "RNN") -> dict[str, np.ndarray]:
    """The weights of a one-layer, one-direction ``torch.nn.RNN/LSTM/GRU`` in the book's layout (float64 copies).

    Returns ``W_xh = weight_ih_l0.T`` (D, G*H), ``W_hh = weight_hh_l0.T`` (H, G*H) and the biases ``b_ih``,
    ``b_hh`` (G*H,) (zeros if the module has ``bias=False``); ``G`` = 1, 4, 3 gate blocks for RNN, LSTM, GRU,
    stacked in torch's order. Raises ``ValueError`` for the settings the numpy cells do not implement.
    """
    name = type(module).__name__
    if name != kind:
        raise ValueError(f"expected a torch.nn.{kind}, got {name}")
    if module.num_layers != 1 or module.bidirectional:
        raise ValueError(f"only a one-layer, one-direction {kind} can be copied, got num_layers="
                         f"{module.num_layers}, bidirectional={module.bidirectional}")
    if getattr(module, "proj_size", 0):
        raise ValueError("an LSTM with proj_size > 0 cannot be copied")

    def arr(t):
        return t.detach().cpu().double().numpy().copy()

    out = {"W_xh": arr(module.weight_ih_l0).T.copy(), "W_hh": arr(module.weight_hh_l0).T.copy()}
    g_h = module.weight_hh_l0.shape[0]
    for key in ("b_ih", "b_hh"):
        tname = "bias_ih_l0" if key == "b_ih" else "bias_hh_l0"
        out[key] = arr(getattr(module, tname)) if module.bias else np.zeros(g_h)
    return out


def _init_uniform(rng: np.random.Generator, shape: tuple[int, ...], hidden_size: int) -> np.ndarray:
    """torch's recurrent initialisation: every weight and bias uniform in (-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / np.sqrt(hidden_size)
    return rng.uniform(-bound, bound, size=shape)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ----- the vanilla RNN ----------------------------------------------------------------------------------
class RNN:
    """One-layer Elman RNN, ``h_t = f(x_t W_xh + h_{t-1} W_hh + b)``, batch first, numpy, hand-written BPTT.

    ``rng`` (a ``np.random.Generator`` or a seed) draws torch's default initialisation. ``parameters()``
    returns ``[W_xh, W_hh, b]`` as ``dlcore.autograd.Tensor`` leaves whose ``.grad`` :meth:`backward` fills.
    """

    def __init__(self, input_size: int, hidden_size: int, rng: np.random.Generator | int | None = None,
                 nonlinearity: str = "tanh", dtype=np.float64) -> None:
        self.input_size = _positive_int(input_size, "input_size")
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        D, H = self.input_size, self.hidden_size
        self.W_xh = Tensor(_init_uniform(rng, (D, H), H).astype(dtype), requires_grad=True)
        self.W_hh = Tensor(_init_uniform(rng, (H, H), H).astype(dtype), requires_grad=True)
        self.b = Tensor(_init_uniform(rng, (H,), H).astype(dtype), requires_grad=True)
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"RNN({self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r})"

    def parameters(self) -> list[Tensor]:
        """``[W_xh, W_hh, b]``: the one set of weights every time step shares."""
        return [self.W_xh, self.W_hh, self.b]

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` back to ``None``."""
        for p in self.parameters():
            p.zero_grad()

    def _f(self, a: np.ndarray) -> np.ndarray:
        return np.tanh(a) if self.nonlinearity == "tanh" else np.maximum(a, 0.0)

    def _df(self, h: np.ndarray) -> np.ndarray:
        """f'(a_t) written with the output h_t = f(a_t): 1 - h^2 for tanh; 1 where h > 0 for relu (relu'(0) = 0)."""
        return 1.0 - h * h if self.nonlinearity == "tanh" else (h > 0).astype(h.dtype)

    # ----- forward ------------------------------------------------------------------------------------
    def forward(self, x: Any, h0: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Run the recurrence over ``x`` (N, T, D) from ``h0`` (N, H; zeros if ``None``).

        Returns ``(H_all, h_T)``: every hidden state ``(N, T, H)`` and the last one ``(N, H)``. Keeps ``x``,
        ``h0`` and all T states for :meth:`backward`: BPTT's memory grows linearly with T.
        """
        x = check_sequence(x, self.input_size)
        N, T, _ = x.shape
        dtype = self.W_hh.dtype
        h = check_state(h0, N, self.hidden_size, "h0", dtype)
        W_hh, b = self.W_hh.data, self.b.data
        XW = (x.reshape(N * T, -1) @ self.W_xh.data).reshape(N, T, -1)  # the input part of every step at once
        H_all = np.empty((N, T, self.hidden_size), dtype=dtype)
        h_prev = h
        for t in range(T):
            h_prev = self._f(XW[:, t] + h_prev @ W_hh + b)
            H_all[:, t] = h_prev
        self._cache = (x, h, H_all)
        return H_all, H_all[:, -1].copy()

    __call__ = forward

    # ----- backward (BPTT) ----------------------------------------------------------------------------
    def backward(self, dH_all: Any = None, dh_T: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Backpropagation through time for the last :meth:`forward`.

        ``dH_all`` (N, T, H) is dL/dh_t from the layers above at every step (``None``: all zero), ``dh_T``
        (N, H) an extra gradient on the last state (e.g. from the next chunk; ``None``: zero). Adds dL/dW_xh,
        dL/dW_hh, dL/db to the parameters' ``.grad`` and returns ``(dx, dh0)``.
        """
        if self._cache is None:
            raise RuntimeError("RNN.backward called before forward")
        x, h0, H_all = self._cache
        N, T, Hs = H_all.shape
        dH_all = np.zeros_like(H_all) if dH_all is None else np.asarray(dH_all, dtype=H_all.dtype)
        if dH_all.shape != H_all.shape:
            raise ValueError(f"expected dH_all of shape (batch, time, hidden) = {H_all.shape}, got {dH_all.shape}")
        dh = check_state(dh_T, N, Hs, "dh_T", H_all.dtype)
        W_hh_T = self.W_hh.data.T
        dA = np.empty_like(H_all)
        dfA = self._df(H_all)
        for t in range(T - 1, -1, -1):
            dh = dh + dH_all[:, t]          # dL/dh_t: from above at step t, plus the carry from step t + 1
            dA[:, t] = dh * dfA[:, t]       # through the nonlinearity
            dh = dA[:, t] @ W_hh_T          # the carry into step t - 1
        H_prev = np.concatenate([h0[:, None], H_all[:, :-1]], axis=1)   # h_{t-1} for t = 0..T-1
        dA2 = dA.reshape(N * T, Hs)
        accumulate_grad(self.W_xh, x.reshape(N * T, -1).T @ dA2)      # sum over time and batch
        accumulate_grad(self.W_hh, H_prev.reshape(N * T, Hs).T @ dA2)
        accumulate_grad(self.b, dA2.sum(axis=0))
        dx = (dA2 @ self.W_xh.data.T).reshape(x.shape)
        return dx, dh

    # ----- torch interop --------------------------------------------------------------------------------
    def copy_from_torch(self, module: Any) -> RNN:
        """Copy a ``torch.nn.RNN(D, H)``'s weights (transposed; the two biases summed). Returns ``self``."""
        w = torch_weights(module, "RNN")
        if w["W_xh"].shape != self.W_xh.shape or w["W_hh"].shape != self.W_hh.shape:
            raise ValueError(f"torch RNN({w['W_xh'].shape[0]}, {w['W_hh'].shape[0]}) does not match "
                             f"{self!r}")
        if module.nonlinearity != self.nonlinearity:
            raise ValueError(f"torch RNN uses nonlinearity {module.nonlinearity!r}, this one {self.nonlinearity!r}")
        dtype = self.W_hh.dtype
        self.W_xh.data[...] = w["W_xh"].astype(dtype)
        self.W_hh.data[...] = w["W_hh"].astype(dtype)
        self.b.data[...] = (w["b_ih"] + w["b_hh"]).astype(dtype)
        return self

    @classmethod
    def from_torch(cls, module: Any) -> RNN:
        """A new float64 ``RNN`` holding a copy of ``module``'s weights."""
        return cls(module.input_size, module.hidden_size, nonlinearity=module.nonlinearity).copy_from_torch(module)

    def to_torch(self) -> Any:
        """A float64 ``torch.nn.RNN(batch_first=True)`` with these weights.

        ``b`` goes into ``bias_ih_l0``; ``bias_hh_l0`` is zero.
        """
        import torch

        module = torch.nn.RNN(self.input_size, self.hidden_size, nonlinearity=self.nonlinearity,
                              batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            module.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(self.W_xh.data.T)))
            module.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(self.W_hh.data.T)))
            module.bias_ih_l0.copy_(torch.from_numpy(np.asarray(self.b.data)))
            module.bias_hh_l0.zero_()
        return module



# ----- the gated cells: LSTM and GRU ----------------------------------------------------------------
State = tuple[np.ndarray, np.ndarray]


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function without overflow warnings for large negative inputs."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


class _GatedLayer:
    """What the LSTM and the GRU share: weights, initialisation, gradient checks, the torch copy."""

    n_gates: int = 1
    kind: str = ""

    def __init__(self, input_size: int, hidden_size: int, rng: np.random.Generator | int | None = None) -> None:
        self.input_size = _positive_int(input_size, "input_size")
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        D, H, G = self.input_size, self.hidden_size, self.n_gates * self.hidden_size
        bound = 1.0 / np.sqrt(H)  # torch's default: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))
        self.W_xh = Tensor(rng.uniform(-bound, bound, (D, G)), requires_grad=True)
        self.W_hh = Tensor(rng.uniform(-bound, bound, (H, G)), requires_grad=True)
        self._init_biases(rng, bound, G)
        self._cache: dict | None = None

    def __repr__(self) -> str:
        return f"{self.kind}({self.input_size}, {self.hidden_size})"

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` back to ``None``."""
        for p in self.parameters():
            p.zero_grad()

    def num_parameters(self) -> int:
        """The number of learnable numbers (the LSTM's single summed bias counts once)."""
        return sum(p.data.size for p in self.parameters())

    # ----- torch interop --------------------------------------------------------------------------
    def _torch_weights(self, module: Any) -> dict[str, np.ndarray]:
        w = torch_weights(module, self.kind)
        if w["W_xh"].shape != self.W_xh.shape or w["W_hh"].shape != self.W_hh.shape:
            raise ValueError(f"torch {self.kind}({module.input_size}, {module.hidden_size}) does not match {self!r}")
        self.W_xh.data[...] = w["W_xh"]
        self.W_hh.data[...] = w["W_hh"]
        return w

    @classmethod
    def from_torch(cls, module: Any) -> _GatedLayer:
        """A new float64 layer holding a copy of ``module``'s weights."""
        return cls(module.input_size, module.hidden_size).copy_from_torch(module)

    def to_torch(self, batch_first: bool = True) -> Any:
        """A float64 ``torch.nn.LSTM`` / ``GRU`` with these weights (transposed into torch's layout)."""
        import torch

        module = getattr(torch.nn, self.kind)(self.input_size, self.hidden_size, batch_first=batch_first,
                                              dtype=torch.float64)
        b_ih, b_hh = self._torch_biases()
        with torch.no_grad():
            module.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(self.W_xh.data.T)))
            module.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(self.W_hh.data.T)))
            module.bias_ih_l0.copy_(torch.from_numpy(b_ih))
            module.bias_hh_l0.copy_(torch.from_numpy(b_hh))
        return module

    # ----- checks ---------------------------------------------------------------------------------
    def _saved(self) -> dict:
        if self._cache is None:
            raise RuntimeError(f"{self.kind}.backward called before forward")
        return self._cache

    @staticmethod
    def _upstream(dH_all: Any, shape: tuple) -> np.ndarray:
        if dH_all is None:
            return np.zeros(shape)
        dH_all = np.asarray(dH_all, dtype=np.float64)
        if dH_all.shape != shape:
            raise ValueError(f"expected dH_all of shape (batch, time, hidden) = {shape}, got {dH_all.shape}")
        return dH_all

    def _weight_grads(self, x: np.ndarray, h_prev: np.ndarray, gx: np.ndarray, gh: np.ndarray) -> None:
        """Add dW_xh = sum_t x_t^T gx_t and dW_hh = sum_t h_{t-1}^T gh_t: one matrix product each."""
        D, H, G = self.input_size, self.hidden_size, self.n_gates * self.hidden_size
        accumulate_grad(self.W_xh, x.reshape(-1, D).T @ gx.reshape(-1, G))
        accumulate_grad(self.W_hh, h_prev.reshape(-1, H).T @ gh.reshape(-1, G))


class LSTM(_GatedLayer):
    """One LSTM layer, as ``torch.nn.LSTM(input_size, hidden_size, batch_first=True)``, numpy, hand-written BPTT.

    ``forward(x, state=None) -> (H_all (N, T, H), (h_T, c_T))``; ``backward(dH_all, dstate=None) ->
    (dx, (dh0, dc0))`` with ``dstate = (dh_T, dc_T)`` the gradients arriving at the final state (or None).
    ``parameters()`` returns ``[W_xh, W_hh, b]`` (``b = b_ih + b_hh``, gate blocks i, f, g, o).
    """

    n_gates = 4
    kind = "LSTM"

    def _init_biases(self, rng: np.random.Generator, bound: float, G: int) -> None:
        # the sum of torch's two uniform biases, so that a fresh layer has torch's bias distribution
        self.b = Tensor(rng.uniform(-bound, bound, G) + rng.uniform(-bound, bound, G), requires_grad=True)

    def parameters(self) -> list[Tensor]:
        """``[W_xh, W_hh, b]``: the one set of weights every time step shares."""
        return [self.W_xh, self.W_hh, self.b]

    def copy_from_torch(self, module: Any) -> LSTM:
        """Copy a ``torch.nn.LSTM(D, H)``'s weights (transposed; the two biases summed). Returns ``self``."""
        w = self._torch_weights(module)
        self.b.data[...] = w["b_ih"] + w["b_hh"]
        return self

    def _torch_biases(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.b.data, dtype=np.float64), np.zeros_like(self.b.data, dtype=np.float64)

    def forward(self, x: Any, state: State | None = None) -> tuple[np.ndarray, State]:
        """Run the whole sequence from ``state = (h0, c0)`` (zeros if None); keep what backward needs."""
        x = check_sequence(x, self.input_size).astype(np.float64)
        N, T, _ = x.shape
        H = self.hidden_size
        if state is None:
            state = (None, None)
        elif not (isinstance(state, tuple) and len(state) == 2):
            raise ValueError("the LSTM state must be a pair (h0, c0) of arrays of shape (batch, hidden) or None")
        h = check_state(state[0], N, H, "h0")
        c = check_state(state[1], N, H, "c0")
        Ax = x @ self.W_xh.data + self.b.data  # the input part of every step's pre-activation at once
        W_hh = self.W_hh.data
        hs, cs = np.empty((N, T + 1, H)), np.empty((N, T + 1, H))
        gates = np.empty((N, T, 4 * H))  # i, f, o after the sigmoid; g after tanh
        hs[:, 0], cs[:, 0] = h, c
        for t in range(T):
            a = Ax[:, t] + h @ W_hh
            i, f, g, o = (_sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]),
                          _sigmoid(a[:, 3 * H:]))
            c = f * c + i * g
            h = o * np.tanh(c)
            gates[:, t] = np.concatenate([i, f, g, o], axis=1)
            hs[:, t + 1], cs[:, t + 1] = h, c
        self._cache = dict(x=x, hs=hs, cs=cs, gates=gates)
        return hs[:, 1:].copy(), (h.copy(), c.copy())

    __call__ = forward

    def backward(self, dH_all: Any = None, dstate: State | None = None) -> tuple[np.ndarray, State]:
        """BPTT: returns dL/dx and dL/d(h0, c0); adds dL/dW_xh, dL/dW_hh, dL/db to the ``.grad``s."""
        k = self._saved()
        x, hs, cs, gates = k["x"], k["hs"], k["cs"], k["gates"]
        N, T, _ = x.shape
        H = self.hidden_size
        dH_all = self._upstream(dH_all, (N, T, H))
        dstate = (None, None) if dstate is None else dstate
        dh = check_state(dstate[0], N, H, "dh_T").copy()
        dc = check_state(dstate[1], N, H, "dc_T").copy()
        W_hhT = self.W_hh.data.T
        da_all = np.empty((N, T, 4 * H))
        for t in reversed(range(T)):
            i, f, g, o = (gates[:, t, :H], gates[:, t, H:2 * H], gates[:, t, 2 * H:3 * H], gates[:, t, 3 * H:])
            dh = dh + dH_all[:, t]
            tc = np.tanh(cs[:, t + 1])
            dc = dc + dh * o * (1.0 - tc ** 2)  # h_t = o * tanh(c_t)
            da = np.concatenate([dc * g * i * (1.0 - i),            # di * sigma'
                                 dc * cs[:, t] * f * (1.0 - f),     # df * sigma'
                                 dc * i * (1.0 - g ** 2),           # dg * tanh'
                                 dh * tc * o * (1.0 - o)], axis=1)  # do * sigma'
            da_all[:, t] = da
            dc = dc * f  # the additive path: dc_{t-1} = dc_t * f_t (plus what flows through h_{t-1})
            dh = da @ W_hhT
        self._weight_grads(x, hs[:, :-1], da_all, da_all)
        accumulate_grad(self.b, da_all.sum(axis=(0, 1)))
        dx = da_all @ self.W_xh.data.T
        return dx, (dh, dc)


class GRU(_GatedLayer):
    """One GRU layer, as ``torch.nn.GRU(input_size, hidden_size, batch_first=True)`` (torch's candidate).

    ``forward(x, h0=None) -> (H_all (N, T, H), h_T)``; ``backward(dH_all, dh_T=None) -> (dx, dh0)``.
    ``parameters()`` returns ``[W_xh, W_hh, b_ih, b_hh]`` (gate blocks r, z, n): two biases, because
    ``b_hn`` is multiplied by the reset gate and ``b_in`` is not.
    """

    n_gates = 3
    kind = "GRU"

    def _init_biases(self, rng: np.random.Generator, bound: float, G: int) -> None:
        self.b_ih = Tensor(rng.uniform(-bound, bound, G), requires_grad=True)
        self.b_hh = Tensor(rng.uniform(-bound, bound, G), requires_grad=True)

    def parameters(self) -> list[Tensor]:
        """``[W_xh, W_hh, b_ih, b_hh]``: torch's order (weight_ih, weight_hh, bias_ih, bias_hh)."""
        return [self.W_xh, self.W_hh, self.b_ih, self.b_hh]

    def copy_from_torch(self, module: Any) -> GRU:
        """Copy a ``torch.nn.GRU(D, H)``'s weights (transposed; both biases as they are). Returns ``self``."""
        w = self._torch_weights(module)
        self.b_ih.data[...] = w["b_ih"]
        self.b_hh.data[...] = w["b_hh"]
        return self

    def _torch_biases(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.b_ih.data, dtype=np.float64), np.asarray(self.b_hh.data, dtype=np.float64)

    def forward(self, x: Any, h0: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Run the whole sequence from ``h0`` (zeros if None); keep what backward needs."""
        x = check_sequence(x, self.input_size).astype(np.float64)
        N, T, _ = x.shape
        H = self.hidden_size
        h = check_state(h0, N, H, "h0")
        Ax = x @ self.W_xh.data + self.b_ih.data
        W_hh, b_hh = self.W_hh.data, self.b_hh.data
        hs = np.empty((N, T + 1, H))
        gates = np.empty((N, T, 3 * H))  # r, z, n after their nonlinearities
        hn_all = np.empty((N, T, H))      # h_{t-1} W_hn + b_hn, which r multiplies
        hs[:, 0] = h
        for t in range(T):
            ah = h @ W_hh + b_hh
            r = _sigmoid(Ax[:, t, :H] + ah[:, :H])
            z = _sigmoid(Ax[:, t, H:2 * H] + ah[:, H:2 * H])
            n = np.tanh(Ax[:, t, 2 * H:] + r * ah[:, 2 * H:])
            h = (1.0 - z) * n + z * h
            gates[:, t] = np.concatenate([r, z, n], axis=1)
            hn_all[:, t] = ah[:, 2 * H:]
            hs[:, t + 1] = h
        self._cache = dict(x=x, hs=hs, gates=gates, hn=hn_all)
        return hs[:, 1:].copy(), h.copy()

    __call__ = forward

    def backward(self, dH_all: Any = None, dh_T: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """BPTT: returns dL/dx and dL/dh0; adds dL/dW_xh, dL/dW_hh, dL/db_ih, dL/db_hh to the ``.grad``s."""
        k = self._saved()
        x, hs, gates, hn_all = k["x"], k["hs"], k["gates"], k["hn"]
        N, T, _ = x.shape
        H = self.hidden_size
        dH_all = self._upstream(dH_all, (N, T, H))
        dh = check_state(dh_T, N, H, "dh_T").copy()
        W_hhT = self.W_hh.data.T
        gx_all, gh_all = np.empty((N, T, 3 * H)), np.empty((N, T, 3 * H))
        for t in reversed(range(T)):
            r, z, n = gates[:, t, :H], gates[:, t, H:2 * H], gates[:, t, 2 * H:]
            h_prev = hs[:, t]
            dh = dh + dH_all[:, t]
            dan = dh * (1.0 - z) * (1.0 - n ** 2)       # through n = tanh(a_n)
            daz = dh * (h_prev - n) * z * (1.0 - z)     # h_t = n + z (h_{t-1} - n)
            dar = dan * hn_all[:, t] * r * (1.0 - r)    # a_n = x W_in + b_in + r * hn
            gx = np.concatenate([dar, daz, dan], axis=1)
            gh = np.concatenate([dar, daz, dan * r], axis=1)
            gx_all[:, t], gh_all[:, t] = gx, gh
            dh = dh * z + gh @ W_hhT
        self._weight_grads(x, hs[:, :-1], gx_all, gh_all)
        accumulate_grad(self.b_ih, gx_all.sum(axis=(0, 1)))
        accumulate_grad(self.b_hh, gh_all.sum(axis=(0, 1)))
        dx = gx_all @ self.W_xh.data.T
        return dx, dh


def from_torch(module: Any) -> RNN | LSTM | GRU:
    """A numpy ``RNN``, ``LSTM`` or ``GRU`` with the weights of a one-layer torch ``nn.RNN``/``nn.LSTM``/``nn.GRU``."""
    name = type(module).__name__
    classes = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}
    if name not in classes:
        raise ValueError(f"expected a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, got {name}")
    return classes[name].from_torch(module)
