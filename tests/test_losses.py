"""dlcore.losses: every loss and its gradient equal to torch.nn.functional in float64, also at logits of 1e4."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcore import functional as fn
from dlcore import losses
from dlcore.gradcheck import check_gradient

RTOL, ATOL = 1e-6, 1e-12  # relative, with an absolute floor for entries that are exactly 0 in one library
REDUCTIONS = ["mean", "sum", "none"]
SEEDS = st.integers(0, 2**31 - 1)
SCALES = st.sampled_from([1e-3, 1.0, 5.0, 30.0, 1e4])  # 1e4: exp overflows, softmax underflows to 0 and 1


def torch_value_and_grad(f, x: np.ndarray, *args, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's loss and its gradient w.r.t. ``x`` (of the sum, when reduction='none')."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = f(t, *args, **kwargs)
    (g,) = torch.autograd.grad(out.sum(), t)
    return out.detach().numpy(), g.numpy()


def assert_close(ours, ref) -> None:
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), ref, rtol=RTOL, atol=ATOL)


def soft_targets(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    p = rng.dirichlet(np.full(k, 0.5), size=n)
    return p / p.sum(axis=1, keepdims=True)


# ---- equal to torch.nn.functional ----------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), SCALES, st.sampled_from(REDUCTIONS), SEEDS)
def test_mse_and_its_gradient_match_torch(shape, scale, reduction, seed):
    rng = np.random.default_rng(seed)
    pred, target = rng.normal(size=shape) * scale, rng.normal(size=shape) * scale
    ref, gref = torch_value_and_grad(F.mse_loss, pred, torch.tensor(target), reduction=reduction)
    assert_close(losses.mse(pred, target, reduction=reduction), ref)
    assert_close(losses.mse_grad(pred, target, reduction=reduction), gref)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), SCALES, st.booleans(),
       st.sampled_from(REDUCTIONS), SEEDS)
def test_binary_cross_entropy_with_logits_and_gradient_match_torch(shape, scale, hard, reduction, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape) * scale
    y = rng.integers(0, 2, size=shape).astype(float) if hard else rng.uniform(size=shape)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ours = losses.binary_cross_entropy_with_logits(logits, y, reduction=reduction)
        gours = losses.binary_cross_entropy_with_logits_grad(logits, y, reduction=reduction)
    ref, gref = torch_value_and_grad(F.binary_cross_entropy_with_logits, logits, torch.tensor(y),
                                     reduction=reduction)
    assert_close(ours, ref)
    assert_close(gours, gref)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), SCALES, st.sampled_from([0.0, 0.05, 0.1, 0.5, 0.9]),
       st.sampled_from(REDUCTIONS), SEEDS)
def test_cross_entropy_with_labels_and_smoothing_matches_torch(n, k, scale, eps, reduction, seed):
    rng = np.random.default_rng(seed)
    logits, y = rng.normal(size=(n, k)) * scale, rng.integers(0, k, size=n)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ours = losses.cross_entropy(logits, y, label_smoothing=eps, reduction=reduction)
        gours = losses.cross_entropy_grad(logits, y, label_smoothing=eps, reduction=reduction)
    ref, gref = torch_value_and_grad(F.cross_entropy, logits, torch.tensor(y), label_smoothing=eps,
                                     reduction=reduction)
    assert_close(ours, ref)
    assert_close(gours, gref)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), SCALES, st.sampled_from([0.0, 0.1, 0.3]),
       st.sampled_from(REDUCTIONS), SEEDS)
def test_cross_entropy_with_probability_targets_matches_torch(n, k, scale, eps, reduction, seed):
    rng = np.random.default_rng(seed)
    logits, t = rng.normal(size=(n, k)) * scale, soft_targets(rng, n, k)
    ours = losses.cross_entropy(logits, t, label_smoothing=eps, reduction=reduction)
    gours = losses.cross_entropy_grad(logits, t, label_smoothing=eps, reduction=reduction)
    ref, gref = torch_value_and_grad(F.cross_entropy, logits, torch.tensor(t), label_smoothing=eps,
                                     reduction=reduction)
    assert_close(ours, ref)
    assert_close(gours, gref)


def test_every_loss_is_exact_and_finite_at_logits_of_1e4():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4 - 1], [0.0, 0.0, 0.0]])
    y = np.array([1, 0, 2])  # two rows are confidently wrong by 2e4 in the logit
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ce = losses.cross_entropy(logits, y, reduction="none")
        ce_s = losses.cross_entropy(logits, y, label_smoothing=0.1, reduction="none")
        g = losses.cross_entropy_grad(logits, y)
        yb = (np.arange(9).reshape(3, 3) % 2).astype(float)
        bce = losses.binary_cross_entropy_with_logits(logits, yb, reduction="none")
        gb = losses.binary_cross_entropy_with_logits_grad(logits, yb)
    assert_close(ce, F.cross_entropy(torch.tensor(logits), torch.tensor(y), reduction="none").numpy())
    assert_close(ce_s, F.cross_entropy(torch.tensor(logits), torch.tensor(y), reduction="none",
                                       label_smoothing=0.1).numpy())
    assert_close(bce, F.binary_cross_entropy_with_logits(torch.tensor(logits), torch.tensor(yb),
                                                         reduction="none").numpy())
    assert ce[0] == 2e4 and np.isclose(ce[1], 2e4 + np.log1p(np.exp(-1.0)), rtol=1e-15)  # exact, by hand
    assert bce[0, 0] == 1e4 and bce[0, 1] == 1e4  # confidently wrong: the loss is the logit's size
    right = losses.binary_cross_entropy_with_logits(np.array([1e4, -1e4]), np.array([1.0, 0.0]), reduction="none")
    assert right.tolist() == [0.0, 0.0]  # confidently right: exactly 0, not log(0) = -inf times 0
    assert np.isfinite(g).all() and np.isfinite(gb).all()


@pytest.mark.parametrize("s", [5.0, 20.0, 30.0, 300.0])
def test_confident_correct_losses_keep_their_relative_accuracy(s):
    """A loss of about e^-s must not be computed as (s + tiny) - s, which rounds the answer away."""
    logits, y = np.array([[s, 0.0, -s]]), np.array([0])
    ref = F.cross_entropy(torch.tensor(logits), torch.tensor(y)).item()
    ref_b = F.binary_cross_entropy_with_logits(torch.tensor([s], dtype=torch.float64),
                                             torch.tensor([1.0], dtype=torch.float64)).item()
    np.testing.assert_allclose(losses.cross_entropy(logits, y), ref, rtol=1e-6, atol=0)
    np.testing.assert_allclose(losses.binary_cross_entropy_with_logits(np.array([s]), np.array([1.0])), ref_b,
                               rtol=1e-6, atol=0)


def test_functional_cross_entropy_is_the_losses_one():
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(5, 4)) * 3, rng.integers(0, 4, size=5)
    assert fn.cross_entropy(logits, y) == losses.cross_entropy(logits, y)
    np.testing.assert_array_equal(fn.cross_entropy_grad(logits, y), losses.cross_entropy_grad(logits, y))


# ---- gradients against finite differences ----------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_every_gradient_matches_finite_differences(reduction):
    rng = np.random.default_rng(1)
    x, t = rng.normal(size=(4, 3)) * 2, rng.normal(size=(4, 3))
    yb, yc, soft = rng.uniform(size=(4, 3)), np.array([0, 2, 1, 1]), soft_targets(rng, 4, 3)

    def total(f, *args, **kw):  # the gradient with reduction='none' is that of the sum
        return lambda z: np.sum(f(z, *args, reduction=reduction, **kw))

    check_gradient(total(losses.mse, t), x, losses.mse_grad(x, t, reduction=reduction))
    check_gradient(total(losses.binary_cross_entropy_with_logits, yb), x,
                   losses.binary_cross_entropy_with_logits_grad(x, yb, reduction=reduction))
    for y in (yc, soft):
        for eps in (0.0, 0.2):
            check_gradient(total(losses.cross_entropy, y, label_smoothing=eps), x,
                           losses.cross_entropy_grad(x, y, label_smoothing=eps, reduction=reduction))


# ---- properties the chapter derives -----------------------------------------------------------------------

def test_mean_is_the_sum_divided_by_the_count_and_none_holds_the_terms():
    rng = np.random.default_rng(2)
    x, t, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)
    assert np.isclose(losses.mse(x, t), losses.mse(x, t, reduction="sum") / 24)
    assert np.isclose(losses.cross_entropy(x, y), losses.cross_entropy(x, y, reduction="sum") / 6)
    assert losses.cross_entropy(x, y, reduction="none").shape == (6,)
    assert losses.mse(x, t, reduction="none").shape == (6, 4)
    np.testing.assert_allclose(losses.cross_entropy_grad(x, y, reduction="sum"),
                               6 * losses.cross_entropy_grad(x, y), rtol=1e-12)


def test_cross_entropy_gradient_is_softmax_minus_target():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    np.testing.assert_allclose(losses.cross_entropy_grad(x, y, reduction="sum"),
                               fn.softmax(x) - fn.one_hot(y, 3), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(losses.binary_cross_entropy_with_logits_grad(x, (x > 0) * 1.0, reduction="sum"),
                               fn.sigmoid(x) - (x > 0), rtol=1e-12, atol=1e-15)


def test_one_hot_probability_targets_equal_integer_labels():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    for eps in (0.0, 0.3):
        assert np.isclose(losses.cross_entropy(x, fn.one_hot(y, 3), eps), losses.cross_entropy(x, y, eps),
                          rtol=1e-14)


@pytest.mark.parametrize("k, eps", [(2, 0.1), (10, 0.1), (10, 0.01), (100, 0.3)])
def test_smoothed_loss_is_minimised_at_a_finite_logit_gap(k, eps):
    """With label smoothing eps the optimum puts the true logit log((1 - eps + eps/k) / (eps/k)) above the rest."""
    gap = np.log((1 - eps + eps / k) / (eps / k))
    logits = np.zeros((1, k))
    logits[0, 0] = gap
    np.testing.assert_allclose(losses.cross_entropy_grad(logits, np.array([0]), eps), 0.0, atol=1e-15)
    for d in (-0.01, 0.01):  # and it is a minimum: moving the gap either way raises the loss
        moved = logits.copy()
        moved[0, 0] += d
        assert losses.cross_entropy(moved, np.array([0]), eps) > losses.cross_entropy(logits, np.array([0]), eps)


def test_bce_equals_two_class_cross_entropy_with_logits_zero_and_z():
    rng = np.random.default_rng(5)
    z, y = rng.normal(size=7) * 5, rng.integers(0, 2, size=7)
    two_class = np.stack([np.zeros(7), z], axis=1)  # softmax([0, z])[1] = sigmoid(z)
    assert np.isclose(losses.binary_cross_entropy_with_logits(z, y.astype(float)),
                      losses.cross_entropy(two_class, y), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_losses_keep_the_input_float_dtype(dtype):
    x = np.linspace(-3, 3, 12, dtype=dtype).reshape(4, 3)
    y, yb = np.array([0, 1, 2, 0]), (x > 0).astype(dtype)
    for g in (losses.mse_grad(x, x * 0), losses.binary_cross_entropy_with_logits_grad(x, yb),
              losses.cross_entropy_grad(x, y, 0.1), losses.mse(x, x * 0, reduction="none"),
              losses.cross_entropy(x, y, reduction="none")):
        assert g.dtype == dtype
    assert isinstance(losses.cross_entropy(x, y), float) and isinstance(losses.mse(x, x), float)


# ---- bad input ----------------------------------------------------------------------------------------------

Z23 = np.zeros((2, 3))


@pytest.mark.parametrize("call, match", [
    (lambda: losses.mse(Z23, np.zeros(3)), r"same shape as pred \(2, 3\), got \(3,\)"),
    (lambda: losses.mse(np.zeros(0), np.zeros(0)), "empty"),
    (lambda: losses.mse(Z23, Z23 + np.nan), "^target contains NaN"),
    (lambda: losses.mse(Z23 + np.inf, Z23), "^pred contains inf"),
    (lambda: losses.mse(Z23, Z23, reduction="avg"), "reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: losses.binary_cross_entropy_with_logits(Z23, np.zeros((3, 2))), "same shape as logits"),
    (lambda: losses.binary_cross_entropy_with_logits(Z23, Z23 + 2), r"must lie in \[0, 1\]"),
    (lambda: losses.binary_cross_entropy_with_logits(Z23, Z23 - 1), r"must lie in \[0, 1\]"),
    (lambda: losses.binary_cross_entropy_with_logits_grad(Z23, Z23, reduction=None), "reduction"),
    (lambda: losses.cross_entropy(Z23, np.array([0, 3])), r"labels must lie in \[0, 2\]"),
    (lambda: losses.cross_entropy(Z23, np.array([-1, 0])), "labels must lie"),
    (lambda: losses.cross_entropy(Z23, np.array([0, 1, 2])), "expected 2 labels"),
    (lambda: losses.cross_entropy(Z23, np.zeros((2, 4))), r"probabilities of shape \(n, k\) = \(2, 3\)"),
    (lambda: losses.cross_entropy(Z23, np.array([[0, 1, 0], [1, 0, 0]])), "floating point"),
    (lambda: losses.cross_entropy(Z23, np.full((2, 3), 0.5)),
     "^probability targets must be non-negative and each row must sum to 1$"),
    (lambda: losses.cross_entropy(Z23, np.array([[1.5, -0.5, 0.0]] * 2)), "non-negative"),
    (lambda: losses.cross_entropy(Z23, np.array([0, 1]), label_smoothing=-0.1), r"in \[0, 1\), got -0.1"),
    (lambda: losses.cross_entropy(Z23, np.array([0, 1]), label_smoothing=1.0), r"in \[0, 1\), got 1.0"),
    (lambda: losses.cross_entropy(Z23, np.array([0, 1]), label_smoothing=True), "label_smoothing"),
    (lambda: losses.cross_entropy(Z23, np.array([0, 1]), label_smoothing="0.1"), "label_smoothing"),
    (lambda: losses.cross_entropy_grad(Z23, np.array([0, 1]), reduction="avg"), "reduction"),
    (lambda: losses.cross_entropy(np.zeros((2, 0)), np.array([0, 0])),
     r"^expected logits with at least one class, got shape \(n, 0\)$"),
    (lambda: losses.cross_entropy(np.zeros(3), np.array([0])), r"logits of shape \(n, k\)"),
    (lambda: losses.cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int)), "empty batch"),
])
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: losses.mse(Z23, np.zeros(3)), r"^mse expects target of the same shape as pred \(2, 3\), got \(3,\)"),
    (lambda: losses.binary_cross_entropy_with_logits(Z23, np.zeros((3, 2))),
     r"^binary cross-entropy expects targets of the same shape as logits \(2, 3\), got \(3, 2\)"),
    (lambda: losses.binary_cross_entropy_with_logits(Z23 + np.inf, Z23), r"^logits contains inf"),
    (lambda: losses.binary_cross_entropy_with_logits_grad(Z23, Z23 - np.inf), r"^targets contains inf"),
    (lambda: losses.cross_entropy(Z23, np.array([[np.inf, 0.0, 0.0]] * 2)), r"^targets contains inf"),
])
def test_error_messages_name_the_loss_and_the_bad_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_bce_and_soft_target_losses_keep_the_logits_dtype_whatever_the_targets_dtype(dtype):
    x = np.linspace(-3, 3, 12, dtype=dtype).reshape(4, 3)
    yb = (x > 0).astype(np.float64)                          # float64 targets must not promote the result
    assert losses.binary_cross_entropy_with_logits(x, yb, reduction="none").dtype == dtype
    soft = fn.softmax(np.arange(12.0).reshape(4, 3) / 4, axis=1).astype(dtype)   # float16/32 probabilities
    assert losses.cross_entropy(x, soft, reduction="none").dtype == dtype
    np.testing.assert_allclose(losses.cross_entropy_grad(x.astype(np.float64), soft.astype(np.float64)),
                               losses.cross_entropy_grad(x, soft), rtol=1e-2, atol=1e-3)


def test_row_sum_tolerance_of_probability_targets_is_10_k_eps_of_their_dtype():
    """float32 rows of k = 10 probabilities may sum to 1 +- 10 k eps (rounding), not beyond."""
    k, eps = 10, float(np.finfo(np.float32).eps)
    logits = np.zeros((1, k), dtype=np.float32)

    def row(excess_in_eps: int) -> np.ndarray:
        t = np.zeros((1, k), dtype=np.float32)
        t[0, 0] = np.float32(1 + excess_in_eps * eps)        # exact: float32 steps by eps just above 1
        assert float(t.sum()) - 1 == excess_in_eps * eps
        return t

    for ok in (50, 100):                                     # 100 eps = the tolerance itself, inclusive
        assert np.isfinite(losses.cross_entropy(logits, row(ok)))
    with pytest.raises(ValueError, match="sum to 1"):
        losses.cross_entropy(logits, row(105))
