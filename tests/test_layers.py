"""dlcore.layers: Dropout, BatchNorm1d and LayerNorm against torch.nn (float64) and dlcore.gradcheck.

Forward outputs, input gradients and parameter gradients are compared with torch for random shapes
(hypothesis); running statistics after several steps and evaluation mode too. Dropout is random, so its
tests bound the statistics (fraction zeroed, mean) by five standard deviations of the sampling noise.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcore.autograd import Tensor
from dlcore.gradcheck import check_gradient
from dlcore.layers import BatchNorm1d, Dropout, LayerNorm

RTOL, ATOL = 1e-8, 1e-10  # float64: far inside the 1e-6


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _inputs(shape, seed):
    """Random input with a per-feature shift and scale (so normalisation has work to do), and dy."""
    rng = _rng(seed)
    d = shape[-1]
    x = rng.standard_normal(shape) * rng.uniform(0.2, 5.0, d) + rng.uniform(-3, 3, d)
    return x, rng.standard_normal(shape)


def _paired(ours, theirs, seed):
    """Give our layer and torch's the same random gamma and beta (torch's weight and bias)."""
    rng = _rng(seed + 100)
    ours.gamma.data[:] = rng.uniform(0.5, 2.0, ours.num_features)
    ours.beta.data[:] = rng.standard_normal(ours.num_features)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.gamma.data))
        theirs.bias.copy_(torch.tensor(ours.beta.data))


def _compare_step(ours, theirs, x, dy, grads=True):
    """One forward and backward through both layers: outputs, dx, dgamma, dbeta equal."""
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    y = ours.forward(x)
    assert y.shape == x.shape and y.dtype == np.float64
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=RTOL, atol=ATOL)
    if grads:
        yt.backward(torch.tensor(dy))
        dx = ours.backward(dy)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(ours.gamma.grad, theirs.weight.grad.numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(ours.beta.grad, theirs.bias.grad.numpy(), rtol=RTOL, atol=ATOL)


def _gradcheck_layer(make, x, seed=3):
    """Finite differences of L = sum(w * layer(x)) for x, gamma and beta against layer.backward."""
    layer = make()
    w = _rng(seed).standard_normal(x.shape)
    layer.forward(x)
    dx = layer.backward(w)
    gamma, beta = layer.gamma.data.copy(), layer.beta.data.copy()

    def loss(x_=x, g=gamma, b=beta):
        fresh = make()
        fresh.gamma.data[:], fresh.beta.data[:] = g, b
        return float((fresh.forward(x_) * w).sum())

    check_gradient(lambda v: loss(x_=v), x, dx)
    check_gradient(lambda v: loss(g=v), gamma, layer.gamma.grad)
    check_gradient(lambda v: loss(b=v), beta, layer.beta.grad)


# ----- Dropout -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), True, "0.5", None])
def test_dropout_rejects_p_outside_unit_interval(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropout(p)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_zeroes_a_fraction_p_and_preserves_the_mean(p):
    n = 200_000
    x = np.full(n, 2.0)
    y = Dropout(p, rng=_rng(1)).forward(x)
    assert abs((y == 0).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    # each entry is 2 * Bernoulli(1 - p) / (1 - p): mean 2, standard deviation 2 * sqrt(p / (1 - p))
    assert abs(y.mean() - 2.0) < 5 * 2 * math.sqrt(p / (1 - p) / n)
    np.testing.assert_allclose(y[y != 0], 2.0 / (1 - p), rtol=1e-15)  # kept entries scaled by 1/(1 - p)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_has_the_statistics_of_torch_dropout(p):
    n = 200_000
    x = _rng(2).uniform(1.0, 2.0, n)  # no zeros in the input
    ours = Dropout(p, rng=_rng(3)).forward(x)
    torch.manual_seed(0)
    theirs = torch.nn.Dropout(p)(torch.tensor(x)).numpy()
    sd = math.sqrt(2 * p * (1 - p) / n)  # standard deviation of the difference of two zeroed fractions
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 5 * sd
    np.testing.assert_allclose(ours[ours != 0] / x[ours != 0], 1 / (1 - p), rtol=1e-12)
    np.testing.assert_allclose(theirs[theirs != 0] / x[theirs != 0], 1 / (1 - p), rtol=1e-6)


def test_dropout_backward_uses_the_forward_mask():
    x = _rng(4).uniform(1.0, 2.0, (50, 30))
    layer = Dropout(0.4, rng=5)
    y = layer.forward(x)
    dy = _rng(6).standard_normal(x.shape)
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, dy * (y / x), rtol=1e-12)
    assert np.all((dx == 0) == (y == 0))


def test_dropout_gradient_passes_finite_differences():
    x = _rng(7).standard_normal((6, 4))
    w = _rng(8).standard_normal(x.shape)
    layer = Dropout(0.5, rng=9)
    layer.forward(x)
    dx = layer.backward(w)
    # a fresh layer with the same seed draws the same mask, so the function is deterministic
    check_gradient(lambda v: float((Dropout(0.5, rng=9).forward(v) * w).sum()), x, dx, floor=1e-4)


def test_dropout_eval_mode_is_the_identity_with_identity_backward():
    x = _rng(10).standard_normal((8, 3))
    layer = Dropout(0.5, rng=0).eval()
    assert not layer.training
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.ones_like(x))
    assert layer.train().training


def test_dropout_p0_is_identity_and_p1_gives_zeros_like_torch():
    x = _rng(11).standard_normal((5, 4))
    np.testing.assert_array_equal(Dropout(0.0, rng=0).forward(x), x)
    layer = Dropout(1.0, rng=0)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, torch.nn.Dropout(1.0)(torch.tensor(x)).numpy())
    assert np.all(y == 0) and np.all(layer.backward(np.ones_like(x)) == 0)


def test_dropout_masks_are_repeatable_with_a_seed_and_fresh_each_call():
    x = np.ones((20, 20))
    a, b = Dropout(0.5, rng=12), Dropout(0.5, rng=np.random.default_rng(12))
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))
    assert not np.array_equal(first, a.forward(x))


def test_dropout_on_a_tensor_records_the_mask_for_autograd():
    x = Tensor(_rng(13).uniform(1.0, 2.0, (10, 6)), requires_grad=True)
    y = Dropout(0.3, rng=14)(x)
    assert isinstance(y, Tensor) and repr(y).endswith("grad_fn=<dropout>)")
    dropped = y.data == 0
    assert dropped.any() and not dropped.all()                      # a mask was applied, not the identity
    np.testing.assert_allclose(y.data[~dropped], x.data[~dropped] / 0.7, rtol=1e-12)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.data / x.data, rtol=1e-12)


def test_dropout_keeps_float32():
    x = np.ones((4, 4), dtype=np.float32)
    assert Dropout(0.5, rng=0).forward(x).dtype == np.float32


def test_backward_before_forward_raises():
    for layer in (Dropout(0.5), BatchNorm1d(3), LayerNorm(3)):
        with pytest.raises(RuntimeError, match="before forward"):
            layer.backward(np.ones((2, 3)))


# ----- BatchNorm1d ---------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 16), d=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_batchnorm_forward_and_backward_match_torch(n, d, seed):
    ours, theirs = BatchNorm1d(d), torch.nn.BatchNorm1d(d).double()
    _paired(ours, theirs, seed)
    x, dy = _inputs((n, d), seed)
    _compare_step(ours, theirs, x, dy)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None, 0.0, 1.0])
def test_batchnorm_running_statistics_match_torch_after_several_steps(momentum):
    ours, theirs = BatchNorm1d(4, momentum=momentum), torch.nn.BatchNorm1d(4, momentum=momentum).double()
    _paired(ours, theirs, 0)
    for step in range(5):
        x, dy = _inputs((3 + step, 4), step)  # batch sizes differ, so the n/(n - 1) correction matters
        _compare_step(ours, theirs, x, dy)
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=RTOL, atol=ATOL)
    assert ours.num_batches_tracked == int(theirs.num_batches_tracked) == 5


def test_batchnorm_eval_mode_matches_torch_and_uses_running_statistics():
    ours, theirs = BatchNorm1d(3), torch.nn.BatchNorm1d(3).double()
    _paired(ours, theirs, 1)
    for step in range(4):
        _compare_step(ours, theirs, *_inputs((8, 3), step))
    ours.eval(), theirs.eval()
    running = ours.running_mean.copy(), ours.running_var.copy()
    x, dy = _inputs((5, 3), 9)
    ours.zero_grad(), theirs.zero_grad()
    _compare_step(ours, theirs, x, dy)
    np.testing.assert_array_equal(ours.running_mean, running[0])  # evaluation leaves them alone
    np.testing.assert_array_equal(ours.running_var, running[1])
    # each example's output depends on that example only: a batch of one is allowed, and gives row 0
    np.testing.assert_allclose(ours.forward(x[:1]), ours.forward(x)[:1], rtol=1e-14)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_backward_passes_finite_differences(training):
    x, _ = _inputs((6, 3), 20)

    def make():
        layer = BatchNorm1d(3)
        layer.running_mean[:], layer.running_var[:] = [0.5, -1.0, 2.0], [2.0, 0.5, 3.0]
        layer.gamma.data[:], layer.beta.data[:] = [1.5, -0.7, 0.9], [0.1, 0.2, -0.3]
        return layer.train(training)

    _gradcheck_layer(make, x)


def test_batchnorm_parameter_gradients_accumulate_until_zero_grad():
    layer = BatchNorm1d(3)
    x, dy = _inputs((5, 3), 21)
    layer.forward(x)
    layer.backward(dy)
    once = layer.gamma.grad.copy(), layer.beta.grad.copy()
    layer.forward(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.gamma.grad, 2 * once[0], rtol=1e-14)
    np.testing.assert_allclose(layer.beta.grad, 2 * once[1], rtol=1e-14)
    layer.zero_grad()
    assert layer.gamma.grad is None and layer.beta.grad is None
    assert layer.parameters() == [layer.gamma, layer.beta]
    assert all(p.is_leaf and p.requires_grad for p in layer.parameters())


@pytest.mark.parametrize("cls", [BatchNorm1d, LayerNorm])
def test_tensor_input_gives_the_same_gradients_through_autograd(cls):
    x, dy = _inputs((6, 4), 22)
    by_hand = cls(4)
    by_hand.forward(x)
    dx = by_hand.backward(dy)
    layer = cls(4)
    xt = Tensor(x.copy(), requires_grad=True)
    y = layer(xt)
    assert isinstance(y, Tensor)
    (y * Tensor(dy)).sum().backward()
    np.testing.assert_allclose(xt.grad, dx, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(layer.gamma.grad, by_hand.gamma.grad, rtol=1e-14)
    np.testing.assert_allclose(layer.beta.grad, by_hand.beta.grad, rtol=1e-14)


def test_batchnorm_rejects_a_batch_of_one_in_training_as_torch_does():
    with pytest.raises(ValueError, match="more than 1"):
        BatchNorm1d(3).forward(np.ones((1, 3)))
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(3)(torch.ones(1, 3))
    assert BatchNorm1d(3).eval().forward(np.ones((1, 3))).shape == (1, 3)


@pytest.mark.parametrize("shape", [(4, 5), (4,), (2, 3, 4)])
def test_batchnorm_rejects_inputs_of_the_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        BatchNorm1d(3).forward(np.ones(shape))


@pytest.mark.parametrize("kwargs", [dict(num_features=0), dict(num_features=2.5), dict(num_features=3, eps=-1),
                                    dict(num_features=3, momentum=1.5), dict(num_features=3, momentum="x")])
def test_batchnorm_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        BatchNorm1d(**kwargs)


def test_layers_reject_integer_input():
    with pytest.raises(ValueError, match="floating-point"):
        BatchNorm1d(2).forward(np.ones((3, 2), dtype=int))


# ----- LayerNorm -----------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(lead=st.lists(st.integers(1, 5), min_size=1, max_size=2), d=st.integers(1, 8),
       seed=st.integers(0, 10_000))
def test_layernorm_forward_and_backward_match_torch(lead, d, seed):
    ours, theirs = LayerNorm(d), torch.nn.LayerNorm(d).double()
    _paired(ours, theirs, seed)
    x, dy = _inputs((*lead, d), seed)
    _compare_step(ours, theirs, x, dy)


def test_layernorm_is_the_same_in_train_and_eval_and_per_example():
    layer = LayerNorm(5)
    x, _ = _inputs((7, 5), 30)
    y = layer.forward(x)
    np.testing.assert_array_equal(layer.eval().forward(x), y)
    np.testing.assert_allclose(layer.train().forward(x[2:3]), y[2:3], rtol=1e-14)


def test_layernorm_backward_passes_finite_differences():
    x, _ = _inputs((4, 5), 31)

    def make():
        layer = LayerNorm(5)
        layer.gamma.data[:] = [1.5, -0.7, 0.9, 1.1, 0.3]
        layer.beta.data[:] = [0.1, 0.2, -0.3, 0.0, 1.0]
        return layer

    _gradcheck_layer(make, x)


@pytest.mark.parametrize("shape", [(4, 3), (5,), ()])
def test_layernorm_rejects_a_wrong_feature_count(shape):
    with pytest.raises(ValueError, match="last axis has length 4"):
        LayerNorm(4).forward(np.ones(shape))


# ----- defaults, dtypes, messages, edge settings --------------------------------------------------------
def test_dropout_default_p_is_torchs():
    assert Dropout().p == torch.nn.Dropout().p == 0.5


def test_dropout_on_a_tensor_in_eval_mode_returns_the_tensor_itself():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    assert Dropout(0.5, rng=0).eval()(x) is x


@pytest.mark.parametrize("p, training", [(0.0, True), (1.0, True), (0.5, False)])
def test_dropout_keeps_float32_at_p0_p1_and_in_eval_mode_forward_and_backward(p, training):
    layer = Dropout(p, rng=0).train(training)
    x = np.ones((4, 4), dtype=np.float32)
    assert layer.forward(x).dtype == np.float32
    assert layer.backward(np.ones((4, 4), dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("make", [lambda: BatchNorm1d(3, dtype=np.float32), lambda: LayerNorm(3, dtype=np.float32)])
def test_float32_layers_keep_float32_parameters_statistics_and_gradients(make):
    layer = make()
    assert layer.gamma.dtype == np.float32 and layer.beta.dtype == np.float32
    if isinstance(layer, BatchNorm1d):
        assert layer.running_mean.dtype == np.float32 and layer.running_var.dtype == np.float32
    x = _rng(0).standard_normal((5, 3)).astype(np.float32)
    layer.forward(x)
    layer.backward(np.ones((5, 3)))                                # a float64 dy must not promote the grads
    assert layer.gamma.grad.dtype == np.float32 and layer.beta.grad.dtype == np.float32


@pytest.mark.parametrize("layer, op", [(Dropout(0.5, rng=0), "dropout"), (BatchNorm1d(3), "batch_norm"),
                                       (LayerNorm(3), "layer_norm")])
def test_tensor_forward_records_its_op_and_leaves_no_numpy_backward(layer, op):
    y = layer(Tensor(_rng(1).uniform(1.0, 2.0, (4, 3)), requires_grad=True))
    assert repr(y).endswith(f"grad_fn=<{op}>)")
    name = type(layer).__name__
    with pytest.raises(RuntimeError, match=rf"^{name}\.backward called before forward \(or after a forward on a "
                                           r"Tensor, whose backward is loss\.backward\(\)\)$"):
        layer.backward(np.ones((4, 3)))


@pytest.mark.parametrize("make, match", [
    (lambda: BatchNorm1d(0), r"^num_features must be a positive integer, got 0$"),
    (lambda: LayerNorm(True), r"^num_features must be a positive integer, got True$"),
    (lambda: BatchNorm1d(3, eps=-1.0), r"^eps must be a non-negative number, got -1\.0$"),
    (lambda: LayerNorm(3, eps=True), r"^eps must be a non-negative number, got True$"),
    (lambda: LayerNorm(3, eps="0.1"), r"^eps must be a non-negative number, got '0\.1'$"),
    (lambda: BatchNorm1d(3, momentum=1.5), r"^momentum must be in \[0, 1\] or None, got 1\.5$"),
    (lambda: BatchNorm1d(3).forward(np.ones((1, 3))), r"a batch of one has zero variance\); "
                                                       r"use eval\(\) for single examples$"),
])
def test_bad_settings_give_messages_that_say_what_is_wrong(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_eps_zero_is_allowed_as_in_torch():
    """torch accepts eps = 0 for LayerNorm and for BatchNorm1d in eval mode (it refuses it in BatchNorm training)."""
    x, dy = _inputs((6, 3), 40)
    for ours, theirs in [(BatchNorm1d(3, eps=0.0).eval(), torch.nn.BatchNorm1d(3, eps=0.0).double().eval()),
                         (LayerNorm(3, eps=0.0), torch.nn.LayerNorm(3, eps=0.0).double())]:
        _paired(ours, theirs, 40)
        _compare_step(ours, theirs, x, dy)


def test_layernorm_normalises_a_single_vector_like_torch():
    ours, theirs = LayerNorm(5), torch.nn.LayerNorm(5).double()
    _paired(ours, theirs, 41)
    x, dy = _inputs((5,), 41)
    _compare_step(ours, theirs, x, dy)
