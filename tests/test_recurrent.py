"""dlcore.recurrent: the numpy RNN equals torch.nn.RNN forward and backward (BPTT) in float64.

The gated cells (second half of the file):
Forward outputs, final states and all gradients (inputs, initial states, every weight and bias) match torch to
1e-10 after copying the weights; finite differences agree; bad input gives clear errors; and three planted
bugs (two gate blocks swapped, the forget-gate path dropped from dc, Cho's GRU candidate instead of torch's)
each fail the torch comparison, so the comparison can tell right from wrong.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from _mutants import planted_bug

from dlcore import optim
from dlcore import recurrent as rg
from dlcore.autograd import Tensor
from dlcore.gradcheck import check_gradient
from dlcore.recurrent import RNN, check_sequence, check_state, torch_weights

TOL = 1e-10


def _pair(nonlinearity: str, D: int = 3, H: int = 5, seed: int = 0):
    """A float64 torch.nn.RNN and our RNN holding a copy of its weights (torch's two biases kept distinct)."""
    torch.manual_seed(seed)
    ref = torch.nn.RNN(D, H, nonlinearity=nonlinearity, batch_first=True, dtype=torch.float64)
    return ref, RNN.from_torch(ref)


def _max_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("with_dhT", [False, True])
def test_forward_and_every_gradient_match_torch(nonlinearity, with_h0, with_dhT):
    rng = np.random.default_rng(1)
    N, T, D, H = 4, 7, 3, 5
    ref, ours = _pair(nonlinearity, D, H)
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H)) if with_h0 else None
    dH = rng.standard_normal((N, T, H))
    dhT = rng.standard_normal((N, H)) if with_dhT else None

    H_all, h_T = ours.forward(x, h0)
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True) if with_h0 else None
    out, hn = ref(xt, h0t)
    assert _max_err(H_all, out.detach()) < TOL
    assert _max_err(h_T, hn[0].detach()) < TOL

    dx, dh0 = ours.backward(dH, dhT)
    loss = (out * torch.from_numpy(dH)).sum()
    if with_dhT:
        loss = loss + (hn[0] * torch.from_numpy(dhT)).sum()
    loss.backward()
    assert _max_err(dx, xt.grad) < TOL
    if with_h0:
        assert _max_err(dh0, h0t.grad[0]) < TOL
    assert _max_err(ours.W_xh.grad, ref.weight_ih_l0.grad.T) < TOL
    assert _max_err(ours.W_hh.grad, ref.weight_hh_l0.grad.T) < TOL
    assert _max_err(ours.b.grad, ref.bias_ih_l0.grad) < TOL
    assert _max_err(ours.b.grad, ref.bias_hh_l0.grad) < TOL   # the two torch biases get the same gradient


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_gradients_pass_finite_difference_check(nonlinearity):
    rng = np.random.default_rng(2)
    N, T, D, H = 2, 5, 3, 4
    rnn = RNN(D, H, rng=3, nonlinearity=nonlinearity)
    rnn.W_hh.data *= 2.0                              # larger recurrent weights: a stronger test of the carry
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    dH, dhT = rng.standard_normal((N, T, H)), rng.standard_normal((N, H))

    def loss(**over):
        state = {"x": x, "h0": h0, "W_xh": rnn.W_xh.data, "W_hh": rnn.W_hh.data, "b": rnn.b.data, **over}
        saved = [p.data for p in rnn.parameters()]
        rnn.W_xh.data, rnn.W_hh.data, rnn.b.data = state["W_xh"], state["W_hh"], state["b"]
        H_all, h_T = rnn.forward(state["x"], state["h0"])
        rnn.W_xh.data, rnn.W_hh.data, rnn.b.data = saved
        return float(np.sum(H_all * dH) + np.sum(h_T * dhT))

    rnn.forward(x, h0)
    dx, dh0 = rnn.backward(dH, dhT)
    grads = {"W_xh": rnn.W_xh.grad, "W_hh": rnn.W_hh.grad, "b": rnn.b.grad}
    check_gradient(lambda v: loss(x=v), x, dx, tol=1e-6, floor=1e-4)
    check_gradient(lambda v: loss(h0=v), h0, dh0, tol=1e-6, floor=1e-4)
    for name, g in grads.items():
        check_gradient(lambda v, name=name: loss(**{name: v}), getattr(rnn, name).data, g, tol=1e-6, floor=1e-4)


def test_gradients_accumulate_until_zero_grad():
    rng = np.random.default_rng(4)
    rnn = RNN(3, 4, rng=0)
    x, dH = rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 4))
    rnn.forward(x)
    rnn.backward(dH)
    once = [p.grad.copy() for p in rnn.parameters()]
    rnn.forward(x)
    rnn.backward(dH)
    for p, g in zip(rnn.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)
    rnn.zero_grad()
    assert all(p.grad is None for p in rnn.parameters())


def test_only_last_state_gradient_equals_dh_T_alone():
    rng = np.random.default_rng(5)
    rnn = RNN(2, 3, rng=1)
    x, dhT = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 3))
    rnn.forward(x)
    dx1, dh01 = rnn.backward(None, dhT)
    dH = np.zeros((3, 4, 3))
    dH[:, -1] = dhT
    dx2, dh02 = rnn.backward(dH)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-12)
    np.testing.assert_allclose(dh01, dh02, rtol=1e-12)


def test_to_torch_round_trip_gives_the_same_outputs():
    rng = np.random.default_rng(6)
    rnn = RNN(3, 4, rng=2, nonlinearity="relu")
    x = rng.standard_normal((2, 5, 3))
    module = rnn.to_torch()
    out, hn = module(torch.from_numpy(x))
    H_all, h_T = rnn.forward(x)
    assert _max_err(H_all, out.detach()) < TOL and _max_err(h_T, hn[0].detach()) < TOL
    back = RNN.from_torch(module)
    for a, b in zip(back.parameters(), rnn.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-15)


def test_parameters_are_stepped_by_dlcore_optim():
    rng = np.random.default_rng(7)
    rnn = RNN(2, 3, rng=3)
    x, target = rng.standard_normal((8, 6, 2)), rng.standard_normal((8, 3))
    opt = optim.SGD(rnn.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        _, h_T = rnn.forward(x)
        losses.append(0.5 * np.sum((h_T - target) ** 2) / len(x))
        rnn.backward(None, (h_T - target) / len(x))
        opt.step()
    assert losses[-1] < 0.8 * losses[0]


def test_default_init_is_torchs_uniform_range():
    rnn = RNN(10, 25, rng=0)
    for p in rnn.parameters():
        assert np.abs(p.data).max() <= 1 / 5 and p.data.dtype == np.float64
    np.testing.assert_array_equal(RNN(3, 4, rng=9).W_hh.data, RNN(3, 4, rng=9).W_hh.data)


@pytest.mark.parametrize("x_shape, message", [
    ((4, 3), r"expected input of shape \(batch, time, 3\), got \(4, 3\)"),
    ((2, 5, 4), r"expected input of shape \(batch, time, 3\), got \(2, 5, 4\)"),
    ((2, 0, 3), "empty sequence"),
    ((0, 4, 3), "empty batch")])
def test_bad_input_shapes_raise_clear_errors(x_shape, message):
    with pytest.raises(ValueError, match=message):
        RNN(3, 5, rng=0).forward(np.zeros(x_shape))


def test_bad_states_and_settings_raise_clear_errors():
    rnn = RNN(3, 5, rng=0)
    with pytest.raises(ValueError, match=r"expected h0 of shape \(batch, hidden\) = \(2, 5\), got \(2, 4\)"):
        rnn.forward(np.zeros((2, 4, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="floating-point"):
        rnn.forward(np.zeros((2, 4, 3), dtype=np.int64))
    with pytest.raises(RuntimeError, match="before forward"):
        RNN(3, 5).backward(np.zeros((2, 4, 5)))
    rnn.forward(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="dH_all"):
        rnn.backward(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="dh_T"):
        rnn.backward(None, np.zeros((2, 6)))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 5, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        RNN(3, 0)
    with pytest.raises(ValueError, match="does not match"):
        RNN(3, 4).copy_from_torch(torch.nn.RNN(3, 5, batch_first=True))
    with pytest.raises(ValueError, match="one-layer"):
        RNN.from_torch(torch.nn.RNN(3, 5, num_layers=2, batch_first=True))
    with pytest.raises(ValueError, match="expected a torch.nn.RNN"):
        RNN(3, 4).copy_from_torch(torch.nn.GRU(3, 4, batch_first=True))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4).copy_from_torch(torch.nn.RNN(3, 4, nonlinearity="relu", batch_first=True))


def test_shared_helpers():
    assert check_state(None, 2, 3).shape == (2, 3)
    assert check_sequence(np.zeros((1, 2, 3)), 3).shape == (1, 2, 3)
    lstm = torch.nn.LSTM(3, 4, batch_first=True, bias=False)
    w = torch_weights(lstm, "LSTM")
    assert w["W_xh"].shape == (3, 16) and w["W_hh"].shape == (4, 16)
    np.testing.assert_array_equal(w["b_ih"], np.zeros(16))
    np.testing.assert_array_equal(w["W_xh"], lstm.weight_ih_l0.detach().double().numpy().T)


def test_float32_rnn_keeps_float32_outputs_and_gradients():
    """dtype=float32 holds for parameters, states, dx, dh0 and every .grad, even for float64 inputs."""
    rng = np.random.default_rng(4)
    ours = RNN(3, 5, rng=0, dtype=np.float32)
    ref = RNN(3, 5, rng=0)  # the same draws in float64
    x, dH, dhT = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 5)), rng.normal(size=(2, 5))
    H_all, h_T = ours.forward(x)
    dx, dh0 = ours.backward(dH, dhT)
    assert all(a.dtype == np.float32 for a in (H_all, h_T, dx, dh0))
    assert all(p.data.dtype == np.float32 and p.grad.dtype == np.float32 for p in ours.parameters())
    assert _max_err(H_all, ref.forward(x)[0]) < 1e-5
    assert _max_err(dx, ref.backward(dH, dhT)[0]) < 1e-5
    _, dh0 = ours.backward(dH)  # no gradient at the last state: the zero start is float32 too
    assert dh0.dtype == np.float32


def test_tensor_inputs_and_states_equal_arrays():
    rng = np.random.default_rng(5)
    rnn = RNN(3, 4, rng=0)
    x, h0 = rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 4))
    np.testing.assert_array_equal(rnn.forward(Tensor(x), Tensor(h0))[0], rnn.forward(x, h0)[0])
    assert check_sequence(np.zeros((1, 2, 3), dtype=np.float32), 3).dtype == np.float32


def test_every_parameter_requires_grad():
    for layer in (RNN(2, 3), rg.LSTM(2, 3), rg.GRU(2, 3)):
        assert all(p.requires_grad is True for p in layer.parameters()), layer


def test_sizes_must_be_positive_integers():
    assert RNN(1, 1, rng=0).forward(np.ones((1, 1, 1)))[0].shape == (1, 1, 1)
    for bad in (2.5, True, 0):
        with pytest.raises(ValueError, match=rf"^input_size must be a positive integer, got {bad!r}$"):
            RNN(bad, 3)
        with pytest.raises(ValueError, match=rf"^input_size must be a positive integer, got {bad!r}$"):
            rg.GRU(bad, 3)
    with pytest.raises(ValueError, match=r"^hidden_size must be a positive integer"):
        RNN(3, 0)


def test_error_messages_name_the_offending_argument():
    with pytest.raises(ValueError, match=r"^expected h0 of shape"):
        check_state(np.zeros((2, 2)), 1, 2)  # the default name
    rnn = RNN(3, 5, rng=0)
    with pytest.raises(RuntimeError, match=r"^RNN\.backward called before forward$"):
        rnn.backward()
    rnn.forward(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"^expected dh_T of shape"):
        rnn.backward(None, np.zeros((2, 6)))
    with pytest.raises(ValueError, match=r"^torch RNN\(5, 4\) does not match RNN\(3, 4"):
        RNN(3, 4).copy_from_torch(torch.nn.RNN(5, 4))  # only the input size differs


def test_torch_weights_defaults_to_rnn_and_refuses_projections():
    ref = torch.nn.RNN(3, 4)
    np.testing.assert_array_equal(torch_weights(ref)["W_hh"], ref.weight_hh_l0.detach().numpy().T)
    np.testing.assert_array_equal(rg.from_torch(ref).W_xh.data, ref.weight_ih_l0.detach().numpy().T)
    with pytest.raises(ValueError, match=r"^an LSTM with proj_size > 0 cannot be copied$"):
        rg.LSTM(3, 4).copy_from_torch(torch.nn.LSTM(3, 4, proj_size=2))


# ================================================================ the gated cells: LSTM and GRU


def _torch_module(kind: str, D: int, H: int, seed: int):
    torch.manual_seed(seed)
    m = getattr(torch.nn, kind)(D, H, batch_first=True).double()
    with torch.no_grad():  # spread the biases so that no gate sits near 1/2 by accident
        for p in m.parameters():
            p.uniform_(-0.8, 0.8)
    return m


def _compare_with_torch(module=rg, kind: str = "LSTM", N: int = 3, T: int = 5, D: int = 4, H: int = 6,
                        seed: int = 0) -> dict[str, float]:
    """Max abs difference to torch of every output and gradient, for random inputs, states and upstream grads."""
    rng = np.random.default_rng(seed)
    tm = _torch_module(kind, D, H, seed)
    ours = getattr(module, kind)(D, H).copy_from_torch(tm)
    x = rng.normal(size=(N, T, D))
    h0, c0 = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    G, Gh, Gc = rng.normal(size=(N, T, H)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    xt = torch.tensor(x, requires_grad=True)
    h0t, c0t = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    if kind == "LSTM":
        Yt, (hTt, cTt) = tm(xt, (h0t[None], c0t[None]))
        loss = (Yt * torch.tensor(G)).sum() + (hTt[0] * torch.tensor(Gh)).sum() + (cTt[0] * torch.tensor(Gc)).sum()
        Y, (hT, cT) = ours.forward(x, (h0, c0))
        dx, (dh0, dc0) = ours.backward(G, (Gh, Gc))
    else:
        Yt, hTt = tm(xt, h0t[None])
        loss = (Yt * torch.tensor(G)).sum() + (hTt[0] * torch.tensor(Gh)).sum()
        Y, hT = ours.forward(x, h0)
        dx, dh0 = ours.backward(G, Gh)
    loss.backward()
    diff = lambda a, b: float(np.max(np.abs(np.asarray(a) - b.detach().numpy())))  # noqa: E731
    out = {"output": diff(Y, Yt), "h_T": diff(hT, hTt[0]), "dx": diff(dx, xt.grad), "dh0": diff(dh0, h0t.grad)}
    if kind == "LSTM":
        out.update({"c_T": diff(cT, cTt[0]), "dc0": diff(dc0, c0t.grad)})
    out["dweight_ih_l0"] = diff(ours.W_xh.grad.T, tm.weight_ih_l0.grad)
    out["dweight_hh_l0"] = diff(ours.W_hh.grad.T, tm.weight_hh_l0.grad)
    if kind == "LSTM":  # one summed bias: its gradient equals that of either torch bias
        out["dbias_ih_l0"] = diff(ours.b.grad, tm.bias_ih_l0.grad)
        out["dbias_hh_l0"] = diff(ours.b.grad, tm.bias_hh_l0.grad)
    else:
        out["dbias_ih_l0"] = diff(ours.b_ih.grad, tm.bias_ih_l0.grad)
        out["dbias_hh_l0"] = diff(ours.b_hh.grad, tm.bias_hh_l0.grad)
    return out


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_and_all_gradients_match_torch(kind, seed):
    errs = _compare_with_torch(kind=kind, seed=seed, N=2 + seed, T=3 + 2 * seed)
    assert all(e < TOL for e in errs.values()), errs  # not max(): max() skips a NaN that is not first


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_single_step_and_default_zero_state_match_torch(kind):
    tm = _torch_module(kind, 3, 2, seed=5)
    ours = rg.from_torch(tm)
    x = np.random.default_rng(5).normal(size=(4, 1, 3))
    Y, state = ours.forward(x)
    Yt, _ = tm(torch.tensor(x))
    assert np.max(np.abs(Y - Yt.detach().numpy())) < TOL
    ours.backward(np.ones_like(Y))  # dstate None: no gradient arrives at the final state


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gated_gradients_pass_finite_difference_check(kind):
    rng = np.random.default_rng(3)
    layer = getattr(rg, kind)(3, 4, rng=rng)
    x = rng.normal(size=(2, 4, 3))
    G = rng.normal(size=(2, 4, 4))

    def loss_of_x(xv):
        return float((layer.forward(xv)[0] * G).sum())

    def loss_of_W(W):
        old = layer.W_hh.data
        layer.W_hh.data = W
        try:
            return float((layer.forward(x)[0] * G).sum())
        finally:
            layer.W_hh.data = old

    layer.forward(x)
    dx, _ = layer.backward(G)
    check_gradient(loss_of_x, x, dx, tol=1e-6)
    check_gradient(loss_of_W, layer.W_hh.data.copy(), layer.W_hh.grad, tol=1e-6)


def test_parameter_gradients_accumulate_and_zero_grad_clears():
    layer = rg.LSTM(2, 3, rng=0)
    x = np.random.default_rng(0).normal(size=(2, 3, 2))
    layer.forward(x)
    layer.backward(np.ones((2, 3, 3)))
    once = layer.W_xh.grad.copy()
    layer.forward(x)
    layer.backward(np.ones((2, 3, 3)))
    assert np.allclose(layer.W_xh.grad, 2 * once)
    layer.zero_grad()
    assert all(p.grad is None for p in layer.parameters())
    assert all(isinstance(p, Tensor) and p.requires_grad for p in layer.parameters())


def test_parameter_counts_are_4x_and_3x_a_vanilla_rnn():
    D, H = 5, 7
    rnn = D * H + H * H + 2 * H  # torch.nn.RNN keeps two biases as well
    assert sum(p.numel() for p in torch.nn.LSTM(D, H).parameters()) == 4 * rnn
    assert rg.LSTM(D, H).num_parameters() == 4 * (rnn - H)  # one summed bias instead of two
    assert rg.GRU(D, H).num_parameters() == 3 * rnn == sum(p.numel() for p in torch.nn.GRU(D, H).parameters())


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_to_torch_round_trip(kind):
    layer = getattr(rg, kind)(3, 4, rng=1)
    tm = layer.to_torch()
    x = np.random.default_rng(1).normal(size=(2, 5, 3))
    assert np.max(np.abs(layer.forward(x)[0] - tm(torch.tensor(x))[0].detach().numpy())) < TOL
    back = rg.from_torch(tm)
    for a, b in zip(layer.parameters(), back.parameters()):
        assert np.array_equal(a.data, b.data)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bad_input_gives_clear_errors(kind):
    layer = getattr(rg, kind)(3, 4)
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, time, 3\), got \(2, 5\)"):
        layer.forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, time, 3\), got \(2, 5, 2\)"):
        layer.forward(np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="empty sequence"):
        layer.forward(np.zeros((2, 0, 3)))
    bad_h = np.zeros((2, 5))
    with pytest.raises(ValueError, match=r"expected h0 of shape \(batch, hidden\) = \(2, 4\), got \(2, 5\)"):
        layer.forward(np.zeros((2, 5, 3)), (bad_h, np.zeros((2, 4))) if kind == "LSTM" else bad_h)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        getattr(rg, kind)(3, 4).backward(np.zeros((2, 5, 4)))
    layer.forward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"expected dH_all of shape \(batch, time, hidden\) = \(2, 5, 4\)"):
        layer.backward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        getattr(rg, kind)(3, 0)


def test_lstm_state_errors_and_copy_errors():
    with pytest.raises(ValueError, match=r"expected c0 of shape"):
        rg.LSTM(3, 4).forward(np.zeros((2, 5, 3)), (np.zeros((2, 4)), np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r"pair \(h0, c0\)"):
        rg.LSTM(3, 4).forward(np.zeros((2, 5, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="expected a torch.nn.LSTM, got GRU"):
        rg.LSTM(3, 4).copy_from_torch(torch.nn.GRU(3, 4))
    with pytest.raises(ValueError, match="only a one-layer, one-direction LSTM can be copied"):
        rg.LSTM(3, 4).copy_from_torch(torch.nn.LSTM(3, 4, num_layers=2))
    with pytest.raises(ValueError, match=r"torch GRU\(3, 5\) does not match GRU\(3, 4\)"):
        rg.GRU(3, 4).copy_from_torch(torch.nn.GRU(3, 5))
    with pytest.raises(ValueError, match="expected a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU"):
        rg.from_torch(torch.nn.Linear(3, 4))


def test_gated_default_init_is_torchs_uniform_range_and_seeded():
    H = 50
    bound = 1 / np.sqrt(H)
    lstm, gru = rg.LSTM(4, H, rng=0), rg.GRU(4, H, rng=0)
    for p in [lstm.W_xh, lstm.W_hh, *gru.parameters()]:  # each U(-bound, bound)
        assert np.abs(p.data).max() <= bound and p.data.min() < -bound / 2 and p.data.max() > bound / 2
        assert len(np.unique(p.data)) == p.data.size
    b = lstm.b.data  # b_ih + b_hh: the sum of two uniforms, in (-2 bound, 2 bound), variance 2 bound^2 / 3
    assert np.abs(b).max() < 2 * bound and len(np.unique(b)) == b.size
    assert abs(b.mean()) < 0.1 * bound and b.std() == pytest.approx(np.sqrt(2 / 3) * bound, rel=0.1)
    for kind in ("LSTM", "GRU"):
        a, c = getattr(rg, kind)(3, 4, rng=7), getattr(rg, kind)(3, 4, rng=7)
        assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_no_upstream_gradient_equals_a_zero_one(kind):
    rng = np.random.default_rng(6)
    layer = getattr(rg, kind)(3, 4, rng=0)
    x, dhT = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 4))
    dstate = (dhT, dhT) if kind == "LSTM" else dhT
    layer.forward(x)
    dx_none, _ = layer.backward(None, dstate)
    dx_zero, _ = layer.backward(np.zeros((2, 5, 4)), dstate)
    np.testing.assert_array_equal(dx_none, dx_zero)


def test_gated_error_messages_name_the_offending_argument():
    lstm, gru = rg.LSTM(3, 4), rg.GRU(3, 4)
    lstm.forward(np.zeros((2, 5, 3)))
    gru.forward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"^expected dh_T of shape"):
        lstm.backward(None, (np.zeros((2, 5)), None))
    with pytest.raises(ValueError, match=r"^expected dc_T of shape"):
        lstm.backward(None, (None, np.zeros((2, 5))))
    with pytest.raises(ValueError, match=r"^expected dh_T of shape"):
        gru.backward(None, np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"^the LSTM state must be a pair"):
        lstm.forward(np.zeros((2, 5, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"^torch GRU\(5, 4\) does not match GRU\(3, 4\)"):
        gru.copy_from_torch(torch.nn.GRU(5, 4))  # only the input size differs


# ------------------------------------------------------------------------------------------ planted bugs
def _mutant(old: str, new: str) -> types.ModuleType:
    """A copy of dlcore.recurrent with one piece of source text replaced (which must occur exactly once)."""
    return planted_bug(rg, old, new)


PLANTED_BUGS = {
    # gate blocks f and i swapped in the LSTM forward
    "lstm_swap_i_f": ("LSTM", "i, f, g, o = (_sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H])",
                      "f, i, g, o = (_sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H])"),
    # the forget-gate path dropped from dc (the cell gradient no longer flows back to c_{t-1})
    "lstm_drop_forget_path": ("LSTM", "dc = dc * f  #", "dc = dc * 0  #"),
    # Cho et al.'s candidate (reset before the matmul) where torch applies it after
    "gru_cho_candidate": ("GRU", "n = np.tanh(Ax[:, t, 2 * H:] + r * ah[:, 2 * H:])",
                          "n = np.tanh(Ax[:, t, 2 * H:] + (r * h) @ W_hh[:, 2 * H:] + b_hh[2 * H:])"),
    # GRU update gate used the wrong way round: h_t = z * n + (1 - z) * h_{t-1}
    "gru_flip_z": ("GRU", "h = (1.0 - z) * n + z * h", "h = z * n + (1.0 - z) * h"),
}


def test_unmutated_copy_passes():
    mod = _mutant("State = tuple", "State = tuple")
    assert all(e < TOL for e in _compare_with_torch(mod, "LSTM").values())
    assert all(e < TOL for e in _compare_with_torch(mod, "GRU").values())


@pytest.mark.parametrize("bug", sorted(PLANTED_BUGS))
def test_planted_bugs_fail_the_torch_comparison(bug):
    kind, old, new = PLANTED_BUGS[bug]
    errs = _compare_with_torch(_mutant(old, new), kind)
    assert max(errs.values()) > 1e-3, (bug, errs)
