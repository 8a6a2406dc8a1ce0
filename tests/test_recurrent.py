"""dlcore.recurrent: the numpy RNN equals torch.nn.RNN forward and backward (BPTT) in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlcore import optim
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


@pytest.mark.parametrize("x_shape, message", [((4, 3), r"expected input of shape \(batch, time, 3\), got \(4, 3\)"),
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
