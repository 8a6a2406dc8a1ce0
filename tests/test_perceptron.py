"""Tests for dlcore.perceptron: the learning rule, Novikoff's bound, XOR, logistic regression's gradient."""

import warnings

import numpy as np
import pytest
import torch

from dlcore.perceptron import (
    NotConvergedWarning,
    Perceptron,
    logic_gate,
    logistic_grad,
    logistic_loss,
    make_separable,
    margin,
    mistake_bound,
    radius,
    to_signed,
)

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])


@pytest.mark.parametrize("seed", range(5))
def test_perceptron_converges_on_separable_data(seed):
    X, y, _, _ = make_separable(n=200, gamma=0.1, bias=0.2, seed=seed)
    p = Perceptron(max_epochs=1000).fit(X, y)
    assert p.converged_ and p.mistakes_[-1] == 0
    assert np.array_equal(p.predict(X), y)
    assert margin(p.w_, p.b_, X, y) > 0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shuffle", [False, True])
def test_number_of_mistakes_is_within_novikoff_bound(seed, shuffle):
    X, y, w_star, b_star = make_separable(n=300, gamma=0.05, bias=-0.3, dim=3, seed=seed)
    assert margin(w_star, b_star, X, y) >= 0.05
    p = Perceptron(max_epochs=10_000, shuffle=shuffle, seed=seed).fit(X, y)
    assert p.converged_
    assert p.n_updates_ == sum(p.mistakes_) == len(p.w_history_) - 1
    assert p.n_updates_ <= mistake_bound(w_star, b_star, X, y)


def test_bound_without_intercept_uses_plain_radius_and_margin():
    X, y, w_star, _ = make_separable(n=200, gamma=0.1, seed=3)
    p = Perceptron(max_epochs=10_000, fit_intercept=False).fit(X, y)
    assert p.b_ == 0.0 and p.converged_
    assert p.n_updates_ <= (radius(X) / margin(w_star, 0.0, X, y)) ** 2
    with pytest.raises(ValueError, match="through the origin"):
        mistake_bound(w_star, 0.5, X, y, fit_intercept=False)


def test_perceptron_never_converges_on_xor_and_reports_it():
    with pytest.warns(NotConvergedWarning, match="not be linearly separable"):
        p = Perceptron(max_epochs=500).fit(XOR_X, XOR_Y)
    assert not p.converged_
    assert len(p.mistakes_) == 500 and min(p.mistakes_) > 0
    assert p.score(XOR_X, XOR_Y) < 1.0


def test_learning_rate_only_rescales_weights_from_zero():
    X, y, _, _ = make_separable(n=100, gamma=0.1, seed=1)
    a = Perceptron(lr=1.0).fit(X, y)
    b = Perceptron(lr=0.01).fit(X, y)
    assert a.mistakes_ == b.mistakes_
    np.testing.assert_allclose(b.w_, 0.01 * a.w_, rtol=1e-12)


def test_labels_01_and_pm1_train_the_same_classifier_and_predict_in_their_convention():
    X, y, _, _ = make_separable(n=100, gamma=0.1, seed=2)
    y01 = (y + 1) // 2
    a = Perceptron().fit(X, y)
    b = Perceptron().fit(X, y01)
    np.testing.assert_array_equal(a.w_, b.w_)
    assert set(np.unique(a.predict(X))) == {-1, 1}
    assert set(np.unique(b.predict(X))) == {0, 1}
    np.testing.assert_array_equal(b.predict(X), y01)
    assert to_signed(np.array([True, False]))[1] == "01"


def test_fit_is_deterministic_given_the_seed():
    X, y, _, _ = make_separable(n=150, gamma=0.05, seed=4)
    runs = [Perceptron(shuffle=True, seed=7).fit(X, y) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].w_history_, runs[1].w_history_)
    other = Perceptron(shuffle=True, seed=8).fit(X, y)
    assert not np.array_equal(other.w_history_, runs[0].w_history_)
    X2, y2, _, _ = make_separable(n=150, gamma=0.05, seed=4)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


@pytest.mark.parametrize("gate,table", [
    ("and", {(0, 0): 0, (0, 1): 0, (1, 0): 0, (1, 1): 1}),
    ("or", {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 1}),
    ("not", {(0,): 1, (1,): 0}),
])
def test_logic_gates_reproduce_their_truth_tables(gate, table):
    w, b = logic_gate(gate)
    for x, out in table.items():
        assert int(np.dot(w, x) + b >= 0) == out
    with pytest.raises(ValueError, match="unknown gate"):
        logic_gate("xor")
    with pytest.raises(ValueError, match="unknown gate 3"):
        logic_gate(3)


@pytest.mark.parametrize("gate", ["and", "or"])
def test_predict_uses_the_books_step_convention_on_the_boundary(gate):
    """A score of exactly 0 is the positive class, as step(0) = 1 in dlcore.functional (book/notation.md)."""
    from dlcore.functional import step

    w, b = logic_gate(gate)
    p = Perceptron().fit(XOR_X, [int(np.dot(w, x) + b >= 0) for x in XOR_X])
    p.w_, p.b_ = w, b  # the hand-set unit: (1, 1) sits exactly on the AND boundary, (0, 1) on the OR one
    scores = p.decision_function(XOR_X)
    assert 0.0 in scores
    np.testing.assert_array_equal(p.predict(XOR_X), step(scores).astype(np.int64))
    np.testing.assert_array_equal(p.predict(XOR_X), step(XOR_X @ w + b))
    assert p.score(XOR_X, step(XOR_X @ w + b).astype(int)) == 1.0
    p.label_style_ = "pm1"
    np.testing.assert_array_equal(p.predict(XOR_X), 2 * step(scores).astype(np.int64) - 1)


def test_boundary_points_count_as_mistakes_during_training():
    """The rule updates on y (w . x + b) <= 0, so from w = 0 the very first example triggers an update."""
    with pytest.warns(NotConvergedWarning):
        p = Perceptron(max_epochs=1).fit(np.array([[1.0, 0.0]]), np.array([1]))
    assert p.mistakes_ == [1] and p.n_updates_ == 1
    np.testing.assert_array_equal(p.w_history_[0], [0.0, 0.0])


def test_perceptron_learns_or_from_its_truth_table():
    p = Perceptron().fit(XOR_X, np.array([0, 1, 1, 1]))
    assert p.converged_
    np.testing.assert_array_equal(p.predict(XOR_X), [0, 1, 1, 1])


@pytest.mark.parametrize("seed", range(3))
def test_logistic_grad_matches_torch_autograd_in_float64(seed):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(50, 4)) * 3, rng.integers(0, 2, 50)
    w, b = rng.normal(size=4), float(rng.normal())
    gw, gb = logistic_grad(w, b, X, y)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(X) @ wt + bt, torch.tensor(y, dtype=torch.float64))
    loss.backward()
    assert np.isclose(logistic_loss(w, b, X, y), loss.item(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-10, atol=1e-13)
    assert np.isclose(gb, bt.grad.item(), rtol=1e-10, atol=1e-13)


def test_logistic_grad_matches_finite_differences():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 2, 30)
    w, b, h = rng.normal(size=3), 0.3, 1e-6
    gw, gb = logistic_grad(w, b, X, y)
    def loss(dw, db):
        return logistic_loss(w + dw, b + db, X, y)

    fd = [(loss(h * e, 0.0) - loss(-h * e, 0.0)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(gw, fd, rtol=1e-6, atol=1e-9)
    assert np.isclose(gb, (loss(0.0, h) - loss(0.0, -h)) / (2 * h), atol=1e-9)


def test_logistic_loss_is_stable_for_huge_scores():
    X, y = np.array([[1000.0], [-1000.0]]), np.array([1, 0])
    assert logistic_loss(np.array([1.0]), 0.0, X, y) == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(logistic_loss(np.array([-1.0]), 0.0, X, y))


def test_bad_inputs_raise_clear_errors():
    X, y = XOR_X, XOR_Y
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        Perceptron().fit(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        Perceptron().fit(X, y[:3])
    with pytest.raises(ValueError, match="NaN or infinite"):
        Perceptron().fit(np.array([[np.nan, 0.0], [1.0, 1.0]]), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\{-1, \+1\} or all in \{0, 1\}"):
        Perceptron().fit(X, np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match=r"\{-1, \+1\} or all in \{0, 1\}"):
        Perceptron().fit(X, np.array([-1, 0, 1, 1]))
    with pytest.raises(ValueError, match="max_epochs"):
        Perceptron(max_epochs=0)
    with pytest.raises(ValueError, match="lr"):
        Perceptron(lr=-1.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        Perceptron().predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotConvergedWarning)
        p = Perceptron(max_epochs=2).fit(X, y)
    with pytest.raises(ValueError, match="2 features"):
        p.predict(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="does not separate"):
        mistake_bound(np.array([1.0, 1.0]), -1.0, X, y)
    with pytest.raises(ValueError, match="zero"):
        margin(np.zeros(2), 0.0, X, y)
    with pytest.raises(ValueError, match=r"weights w of shape \(2,\)"):
        margin(np.zeros(3), 0.0, X, y)
    with pytest.raises(ValueError, match="gamma"):
        make_separable(gamma=1.5)
