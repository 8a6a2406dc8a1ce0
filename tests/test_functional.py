"""dlcore.functional: activations, derivatives, softmax and cross-entropy against PyTorch in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcore import functional as fn

# moderate values, values near the kinks, and large magnitudes where naive formulas overflow
XS = np.concatenate([np.linspace(-6, 6, 121), [-1000.0, -700.0, -50.0, -30.0, -1e-9, 0.0, 1e-9,
                                               30.0, 50.0, 700.0, 1000.0]])

TORCH_REF = {
    # the book's convention: step(0) = 1 (heaviside's second argument is its value at 0)
    "step": lambda t: torch.heaviside(t, torch.ones((), dtype=t.dtype)),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.01),
    "elu": lambda t: F.elu(t, 1.0),
    "gelu": lambda t: F.gelu(t, approximate="none"),
    "silu": F.silu,
    "softplus": F.softplus,
}


def torch_value_and_grad(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = torch.tensor(x, dtype=torch.float64, requires_grad=name != "step")
    out = TORCH_REF[name](t)
    if name == "step":  # heaviside has no autograd formula; its derivative is 0 wherever it exists
        return out.numpy(), np.zeros_like(x)
    (g,) = torch.autograd.grad(out.sum(), t)
    return out.detach().numpy(), g.numpy()


def test_registry_covers_every_activation():
    assert set(fn.ACTIVATIONS) == set(TORCH_REF)


@pytest.mark.parametrize("name", sorted(TORCH_REF))
def test_activation_value_matches_torch_including_large_inputs(name):
    f, _ = fn.get_activation(name)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow even at |x| = 1000
        ours = f(XS)
    ref, _ = torch_value_and_grad(name, XS)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TORCH_REF))
def test_activation_derivative_matches_torch_autograd(name):
    _, f_grad = fn.get_activation(name)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ours = f_grad(XS)
    _, ref = torch_value_and_grad(name, XS)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TORCH_REF))
def test_activation_derivative_matches_finite_differences_away_from_kinks(name):
    f, f_grad = fn.get_activation(name)
    x = np.linspace(-5, 5, 200)
    x = x[np.abs(x) > 1e-2]  # step, relu, leaky relu have a kink at 0
    h = 1e-6
    numeric = (f(x + h) - f(x - h)) / (2 * h)
    np.testing.assert_allclose(f_grad(x), numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_slope_matches_torch(slope):
    t = torch.tensor(XS, requires_grad=True)
    out = F.leaky_relu(t, slope)
    (g,) = torch.autograd.grad(out.sum(), t)
    np.testing.assert_allclose(fn.leaky_relu(XS, slope), out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(fn.leaky_relu_grad(XS, slope), g.numpy(), rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_elu_alpha_matches_torch(alpha):
    t = torch.tensor(XS, requires_grad=True)
    out = F.elu(t, alpha)
    (g,) = torch.autograd.grad(out.sum(), t)
    np.testing.assert_allclose(fn.elu(XS, alpha), out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fn.elu_grad(XS, alpha), g.numpy(), rtol=1e-10, atol=1e-12)


def test_sigmoid_and_softplus_do_not_overflow_at_1000():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = fn.sigmoid(np.array([-1000.0, 1000.0]))
        sp = fn.softplus(np.array([-1000.0, 1000.0]))
    assert np.array_equal(s, [0.0, 1.0])
    assert sp[0] == 0.0 and sp[1] == 1000.0


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_every_op_keeps_the_input_float_dtype(dtype):
    x = np.linspace(-3, 3, 7, dtype=dtype)
    for name, (f, f_grad) in fn.ACTIVATIONS.items():
        for shaped in (x, x[3], x.reshape(7, 1)):  # arrays, 0-d values and columns alike
            assert f(shaped).dtype == dtype, name
            assert f_grad(shaped).dtype == dtype, name
    x2 = x.reshape(1, 7)
    for f in (fn.softmax, fn.log_softmax, fn.logsumexp):
        assert f(x2).dtype == dtype, f.__name__
    y = np.array([3])
    assert fn.cross_entropy_grad(x2, y).dtype == dtype
    assert isinstance(fn.cross_entropy(x2, y), float)


def test_float32_gelu_matches_float64_to_float32_precision():
    x = np.linspace(-6, 6, 101)
    out = fn.gelu(x.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, fn.gelu(x), rtol=1e-6, atol=1e-6)


def test_step_is_one_at_zero_and_logic_gates_compute_with_it():
    """The book's convention: step(z) = 1 for z >= 0 (see book/notation.md), as in the perceptron chapter."""
    assert fn.step(np.array([-1e-12, 0.0, 1e-12])).tolist() == [0.0, 1.0, 1.0]
    assert fn.step(0) == 1.0 and fn.step(-0.0) == 1.0
    from dlcore.perceptron import logic_gate

    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    w, b = logic_gate("and")
    assert fn.step(X @ w + b).tolist() == [0.0, 0.0, 0.0, 1.0]  # (1, 1) sits exactly on z = 0
    w, b = logic_gate("or")
    assert fn.step(X @ w + b).tolist() == [0.0, 1.0, 1.0, 1.0]
    w, b = logic_gate("not")
    assert fn.step(np.array([[0.0], [1.0]]) @ w + b).tolist() == [1.0, 0.0]


def test_derivatives_at_the_kink_follow_pytorch():
    zero = np.zeros(1)
    assert fn.relu_grad(zero)[0] == 0.0           # relu'(0) = 0
    assert fn.leaky_relu_grad(zero, 0.2)[0] == 0.2
    assert fn.step_grad(zero)[0] == 0.0
    assert fn.elu_grad(zero, 2.0)[0] == 2.0
    assert fn.relu(np.array([-0.5, 0.0, 0.5])).tolist() == [0.0, 0.0, 0.5]


def test_activations_accept_integer_input():
    out = fn.relu([-2, 0, 3])
    assert out.dtype == np.float64 and out.tolist() == [0.0, 0.0, 3.0]


def test_activations_accept_infinities():
    x = np.array([-np.inf, np.inf])
    assert fn.relu(x).tolist() == [0.0, np.inf]
    assert fn.sigmoid(x).tolist() == [0.0, 1.0]
    assert fn.tanh(x).tolist() == [-1.0, 1.0]
    assert fn.step(x).tolist() == [0.0, 1.0]


def test_swish_is_an_alias_of_silu():
    assert fn.get_activation("swish") is fn.ACTIVATIONS["silu"]
    assert fn.get_activation("ReLU") is fn.ACTIVATIONS["relu"]


def test_unknown_activation_lists_the_known_names():
    with pytest.raises(ValueError, match="unknown activation 'mish'; known: elu, gelu, leaky_relu, relu, sigmoid, "
                                         "silu, softplus, step, tanh"):
        fn.get_activation("mish")


def test_activations_reject_nan():
    with pytest.raises(ValueError, match="^x contains NaN$"):
        fn.relu(np.array([0.0, np.nan]))


def test_activations_reject_non_numeric_input():
    with pytest.raises(ValueError, match="numeric"):
        fn.sigmoid(np.array(["a", "b"]))


# ---- softmax family --------------------------------------------------------------------------------------

def test_softmax_matches_torch_for_large_logits():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7)) * 1e4
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p, lp, lse = fn.softmax(x), fn.log_softmax(x), fn.logsumexp(x)
    t = torch.tensor(x)
    np.testing.assert_allclose(p, torch.softmax(t, -1).numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(lp, torch.log_softmax(t, -1).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lse, torch.logsumexp(t, -1).numpy(), rtol=1e-10)
    assert np.isfinite(lp).all()


@pytest.mark.parametrize("axis", [0, 1, -1, 2, -3])
def test_softmax_family_matches_torch_along_any_axis(axis):
    x = np.random.default_rng(1).normal(size=(3, 4, 5)) * 3
    t = torch.tensor(x)
    np.testing.assert_allclose(fn.softmax(x, axis), torch.softmax(t, axis).numpy(), rtol=1e-12)
    np.testing.assert_allclose(fn.log_softmax(x, axis), torch.log_softmax(t, axis).numpy(), rtol=1e-12)
    np.testing.assert_allclose(fn.logsumexp(x, axis), torch.logsumexp(t, axis).numpy(), rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), st.floats(1e-3, 1e4), st.integers(0, 2**31 - 1))
def test_softmax_rows_sum_to_one(n, k, scale, seed):
    x = np.random.default_rng(seed).normal(size=(n, k)) * scale
    p = fn.softmax(x)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def test_softmax_is_shift_invariant():
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(fn.softmax(x), fn.softmax(x + 1000.0), rtol=1e-12)


@pytest.mark.parametrize("f", [fn.softmax, fn.log_softmax, fn.logsumexp])
def test_softmax_family_rejects_non_finite(f):
    with pytest.raises(ValueError, match="inf"):
        f(np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match="NaN"):
        f(np.array([[0.0, np.nan]]))


@pytest.mark.parametrize("axis", [2, -3, 1.0, None])
def test_softmax_family_rejects_bad_axis(axis):
    for f in (fn.softmax, fn.log_softmax, fn.logsumexp):
        with pytest.raises(ValueError, match="axis"):
            f(np.zeros((2, 3)), axis=axis)


def test_softmax_rejects_scalars_and_empty_axes():
    with pytest.raises(ValueError, match="^expected an array with at least one dimension, got a scalar$"):
        fn.softmax(3.0)
    with pytest.raises(ValueError, match="empty"):
        fn.softmax(np.zeros((2, 0)))


# ---- one-hot and cross-entropy -----------------------------------------------------------------------------

def test_one_hot_matches_torch():
    y = np.array([0, 2, 1, 2])
    np.testing.assert_array_equal(fn.one_hot(y, 4), F.one_hot(torch.tensor(y), 4).numpy())
    np.testing.assert_array_equal(fn.one_hot(np.zeros(3, dtype=int), 1), np.ones((3, 1)))  # a single class


@pytest.mark.parametrize("y, k, match", [
    (np.array([0, 3]), 3, r"labels must lie in \[0, 2\]"),
    (np.array([-1, 0]), 3, "labels must lie"),
    (np.array([[0, 1]]), 3, r"shape \(n,\)"),
    (np.array([0.0, 1.0]), 3, "integers"),
    (np.array([0, 1]), 0, "positive integer"),
    (np.array([0, 1]), 2.5, "positive integer"),
])
def test_one_hot_rejects_bad_labels(y, k, match):
    with pytest.raises(ValueError, match=match):
        fn.one_hot(y, k)


def test_cross_entropy_and_gradient_match_torch():
    rng = np.random.default_rng(2)
    logits, y = rng.normal(size=(8, 5)) * 4, rng.integers(0, 5, size=8)
    t = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(t, torch.tensor(y))
    (g,) = torch.autograd.grad(loss, t)
    assert abs(fn.cross_entropy(logits, y) - loss.item()) < 1e-12
    np.testing.assert_allclose(fn.cross_entropy_grad(logits, y), g.numpy(), rtol=1e-10, atol=1e-14)


def test_cross_entropy_is_finite_for_huge_wrong_logits():
    logits = np.array([[1e4, -1e4], [0.0, 0.0]])
    y = np.array([1, 0])
    loss = fn.cross_entropy(logits, y)
    ref = F.cross_entropy(torch.tensor(logits), torch.tensor(y)).item()
    assert np.isfinite(loss) and abs(loss - ref) < 1e-9


def test_cross_entropy_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    logits, y = rng.normal(size=(4, 3)), np.array([0, 2, 1, 1])
    g = fn.cross_entropy_grad(logits, y)
    h = 1e-6
    num = np.zeros_like(logits)
    for idx in np.ndindex(logits.shape):
        e = np.zeros_like(logits)
        e[idx] = h
        num[idx] = (fn.cross_entropy(logits + e, y) - fn.cross_entropy(logits - e, y)) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("logits, y, match", [
    (np.zeros((3, 4)), np.array([0, 1]), "expected 3 labels"),
    (np.zeros((2, 4)), np.array([0, 4]), r"\[0, 3\]"),
    (np.zeros((2, 4)), np.array([[0], [1]]), r"shape \(n,\)"),
    (np.zeros((2, 4)), np.array([0.0, 1.0]), "integers"),
    (np.zeros(4), np.array([0]), r"logits of shape \(n, k\)"),
    (np.array([[0.0, np.inf]]), np.array([0]), "^logits contains inf"),
    (np.array([[0.0, np.nan]]), np.array([0]), "^logits contains NaN"),
    (np.zeros((0, 3)), np.zeros(0, dtype=int), "^cross-entropy of an empty batch is undefined$"),
])
def test_cross_entropy_rejects_bad_input(logits, y, match):
    with pytest.raises(ValueError, match=match):
        fn.cross_entropy(logits, y)
    with pytest.raises(ValueError, match=match):
        fn.cross_entropy_grad(logits, y)
