"""Property tests: random shapes (broadcasting, size-1 dims), negative axes, ties and zeros, random graphs with
fan-out; every value and gradient equal to torch's (float64)."""

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

from dlcore import autograd as ag
from dlcore.autograd import Tensor

# Each op as (ours, torch). Unary ops keep values bounded so that long chains do not overflow.
UNARY = {
    "tanh": (lambda a: a.tanh(), torch.tanh),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid),
    "relu": (lambda a: a.relu(), torch.relu),
    "gelu": (lambda a: a.gelu(), F.gelu),
    "exp_tanh": (lambda a: a.tanh().exp(), lambda a: a.tanh().exp()),
    "log1p_square": (lambda a: (a * a + 1.0).log(), lambda a: (a * a + 1.0).log()),
    "square": (lambda a: a**2 * 0.5, lambda a: a**2 * 0.5),
    "neg": (lambda a: -a, lambda a: -a),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0)),
}


def _reduce(kind: str, axis: int):
    """Reductions that keep the reduced axis (size 1), so results still broadcast with the rest."""
    if kind == "sum":
        return lambda a: a.sum(axis=axis, keepdims=True), lambda a: a.sum(dim=axis, keepdim=True)
    if kind == "mean":
        return lambda a: a.mean(axis=axis, keepdims=True), lambda a: a.mean(dim=axis, keepdim=True)
    return lambda a: a.max(axis=axis, keepdims=True), lambda a: a.amax(dim=axis, keepdim=True)


def _values(rng: np.random.Generator, shape, ties: bool) -> np.ndarray:
    """Random normal values, or (ties=True) halves in [-1, 1]: many exact zeros and tied maxima."""
    return rng.integers(-2, 3, size=shape) / 2 if ties else rng.standard_normal(shape)


def _check_grads(ours, theirs, rtol=1e-6, atol=1e-9):
    for t, tt in zip(ours, theirs, strict=True):
        assert t.grad is not None and t.grad.shape == t.shape
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=rtol, atol=atol)


@settings(max_examples=50, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=4),
       op=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**16))
def test_broadcast_binary_ops_sum_gradient_back_to_input_shape(shapes, op, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(s) for s in shapes.input_shapes)
    f, ft = BINARY[op]
    ours = [Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)]
    theirs = [torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)]
    out, tout = f(*ours), ft(*theirs)
    assert out.shape == tuple(tout.shape) == shapes.result_shape
    w = rng.standard_normal(out.shape)
    (out * w).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    _check_grads(ours, theirs)


@settings(max_examples=50, deadline=None)
@given(shape=array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4), data=st.data(),
       seed=st.integers(0, 2**16), ties=st.booleans())
def test_reductions_over_random_axes_match_torch(shape, data, seed, ties):
    """Axes drawn from -ndim..ndim-1 (negative ones too), each axis at most once; ties share the max's gradient."""
    ndim = len(shape)
    kind = data.draw(st.sampled_from(["sum", "mean", "max"]))
    axes = data.draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim,
                              unique_by=lambda a: a % ndim))
    keepdims = data.draw(st.booleans())
    x = _values(np.random.default_rng(seed), shape, ties)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    axis = tuple(axes)
    if kind == "max":
        out, tout = ours.max(axis=axis, keepdims=keepdims), theirs.amax(dim=axis, keepdim=keepdims)
    else:
        out = getattr(ours, kind)(axis=axis, keepdims=keepdims)
        tout = getattr(theirs, kind)(dim=axis, keepdim=keepdims)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12)
    (out * out).sum().backward()
    (tout * tout).sum().backward()
    _check_grads([ours], [theirs])


@settings(max_examples=50, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=1, max_dims=3, min_side=1, max_side=3),
       data=st.data(), seed=st.integers(0, 2**16), ties=st.booleans())
def test_random_graphs_with_fan_out_match_torch(shapes, data, seed, ties):
    """Build a random graph: each new node applies a random op to random earlier nodes (reuse = fan-out)."""
    rng = np.random.default_rng(seed)
    inputs = [_values(rng, s, ties) for s in shapes.input_shapes]
    ours = [Tensor(a, requires_grad=True) for a in inputs]
    theirs = [torch.tensor(a, requires_grad=True) for a in inputs]
    pool, tpool = list(ours), list(theirs)
    n_nodes = data.draw(st.integers(1, 10))
    for _ in range(n_nodes):
        kind = data.draw(st.sampled_from(["unary", "binary", "binary", "reduce"]))
        i = data.draw(st.integers(0, len(pool) - 1))
        if kind == "unary":
            f, ft = UNARY[data.draw(st.sampled_from(sorted(UNARY)))]
            pool.append(f(pool[i]))
            tpool.append(ft(tpool[i]))
        elif kind == "binary":
            j = data.draw(st.integers(0, len(pool) - 1))  # may equal i: x * x, x - x
            f, ft = BINARY[data.draw(st.sampled_from(sorted(BINARY)))]
            pool.append(f(pool[i], pool[j]))
            tpool.append(ft(tpool[i], tpool[j]))
        else:
            axis = data.draw(st.integers(-pool[i].ndim, pool[i].ndim - 1))
            f, ft = _reduce(data.draw(st.sampled_from(["sum", "mean", "max"])), axis)
            pool.append(f(pool[i]))
            tpool.append(ft(tpool[i]))
    # The loss uses several nodes, so inputs and intermediates feed the loss along many paths.
    used = data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=4))
    used.append(len(pool) - 1)
    loss = sum((pool[k] * 1.0).sum() for k in used)
    tloss = sum(tpool[k].sum() for k in used)
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-9)
    loss.backward()
    tloss.backward()
    for t, tt in zip(ours, theirs, strict=True):
        if tt.grad is None:  # an input the loss does not depend on gets no gradient, in both
            assert t.grad is None
            continue
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-6, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(2, 6), scale=st.floats(0.1, 1e3), seed=st.integers(0, 2**16))
def test_cross_entropy_matches_torch_at_any_logit_scale(n, k, scale, seed):
    rng = np.random.default_rng(seed)
    x, y = scale * rng.standard_normal((n, k)), rng.integers(0, k, n)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    loss, tloss = ag.cross_entropy(ours, y), F.cross_entropy(theirs, torch.tensor(y))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-9, atol=1e-12)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-6, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(shape=array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4), data=st.data(),
       seed=st.integers(0, 2**16))
def test_transpose_with_any_signed_axes_matches_torch_permute(shape, data, seed):
    """Any permutation, each axis written as a or a - ndim at random: value and gradient equal torch.permute."""
    ndim = len(shape)
    perm = data.draw(st.permutations(range(ndim)))
    axes = [a - ndim if data.draw(st.booleans()) else a for a in perm]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = ours.transpose(*axes), theirs.permute(tuple(axes))
    np.testing.assert_array_equal(out.data, tout.detach().numpy())
    w = rng.standard_normal(out.shape)
    (out * w).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())


@settings(max_examples=50, deadline=None)
@given(shape=array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4), op=st.sampled_from(sorted(UNARY)),
       seed=st.integers(0, 2**16))
def test_unary_ops_at_zeros_and_ties_match_torch(shape, op, seed):
    """Halves in [-1, 1]: relu's kink at exactly 0 (gradient 0, as torch) and the other ops at 0."""
    x = _values(np.random.default_rng(seed), shape, ties=True)
    f, ft = UNARY[op]
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = f(ours), ft(theirs)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, atol=1e-15)
    out.sum().backward()
    tout.sum().backward()
    _check_grads([ours], [theirs], rtol=1e-12, atol=1e-15)
