"""dlcore.autograd: every op's value and gradient against torch (float64) and central finite differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlcore import autograd as ag
from dlcore.autograd import Tensor, no_grad


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _compare_with_torch(f_ours, f_torch, *arrays, rtol=1e-6, atol=1e-10, seed=0):
    """Run f on dlcore and torch tensors; compare outputs and input gradients of sum(w * f)."""
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = f_ours(*ours), f_torch(*theirs)
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=rtol, atol=atol)
    w = _rng(seed + 1).standard_normal(out.shape)
    (out * w).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for t, tt in zip(ours, theirs, strict=True):
        assert t.grad.shape == t.shape
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=rtol, atol=atol)
    return ours, w


def _finite_difference_check(f_ours, *arrays, eps=1e-6, rtol=1e-5, atol=1e-7):
    """Central differences of L = sum(w * f(inputs)) against the autograd gradient."""
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = f_ours(*ours)
    w = _rng(7).standard_normal(out.shape)
    (out * w).sum().backward()

    def loss(xs):
        return float((f_ours(*[Tensor(x) for x in xs]).data * w).sum())

    for i, a in enumerate(arrays):
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(ours[i].grad, numeric, rtol=rtol, atol=atol)


R = _rng(42)
POS = lambda *s: R.uniform(0.5, 2.0, size=s)  # noqa: E731  (inputs where log, sqrt, division are safe)
N = lambda *s: R.standard_normal(s)  # noqa: E731

W43 = N(4, 3)  # a fixed weight, so that reshape's gradient depends on where each element went

# name: (ours, torch, inputs)
OPS = {
    "add_broadcast": (lambda a, b: a + b, lambda a, b: a + b, (N(3, 1, 4), N(2, 1))),
    "sub_broadcast": (lambda a, b: a - b, lambda a, b: a - b, (N(4,), N(3, 4))),
    "mul_broadcast": (lambda a, b: a * b, lambda a, b: a * b, (N(2, 3), N(1, 3))),
    "div_broadcast": (lambda a, b: a / b, lambda a, b: a / b, (N(2, 3), POS(3))),
    "scalar_ops": (lambda a: 2.0 - a * 3.0 + 1.0 / (a * a + 1.0),
                   lambda a: 2.0 - a * 3.0 + 1.0 / (a * a + 1.0), (N(3, 2),)),
    "neg": (lambda a: -a, lambda a: -a, (N(3),)),
    "pow": (lambda a: a**3, lambda a: a**3, (N(2, 3),)),
    "pow_fractional": (lambda a: a**0.5, lambda a: a**0.5, (POS(4),)),
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, (N(3, 4), N(4, 2))),
    "matmul_batched_broadcast": (lambda a, b: a @ b, lambda a, b: a @ b, (N(2, 3, 4), N(4, 5))),
    "matmul_vector_matrix": (lambda a, b: a @ b, lambda a, b: a @ b, (N(4,), N(4, 3))),
    "matmul_matrix_vector": (lambda a, b: a @ b, lambda a, b: a @ b, (N(3, 4), N(4,))),
    "matmul_vector_vector": (lambda a, b: a @ b, lambda a, b: a @ b, (N(4,), N(4,))),
    "sum_all": (lambda a: a.sum(), lambda a: a.sum(), (N(3, 4),)),
    "sum_axis": (lambda a: a.sum(axis=1), lambda a: a.sum(dim=1), (N(3, 4, 2),)),
    "sum_axes_keepdims": (lambda a: a.sum(axis=(0, 2), keepdims=True),
                          lambda a: a.sum(dim=(0, 2), keepdim=True), (N(3, 4, 2),)),
    "mean_all": (lambda a: a.mean(), lambda a: a.mean(), (N(3, 4),)),
    "mean_axis": (lambda a: a.mean(axis=-1), lambda a: a.mean(dim=-1), (N(3, 4),)),
    "max_all": (lambda a: a.max(), lambda a: a.amax(), (N(3, 4),)),
    "max_axis": (lambda a: a.max(axis=0), lambda a: a.amax(dim=0), (N(3, 4),)),
    "max_axis_keepdims": (lambda a: a.max(axis=1, keepdims=True), lambda a: a.amax(dim=1, keepdim=True),
                          (N(3, 4),)),
    "reshape": (lambda a: a.reshape(4, 3) * W43, lambda a: a.reshape(4, 3) * torch.tensor(W43), (N(2, 6),)),
    "transpose": (lambda a: a.T, lambda a: a.T, (N(2, 3),)),
    "transpose_axes": (lambda a: a.transpose(2, 0, 1), lambda a: a.permute(2, 0, 1), (N(2, 3, 4),)),
    "index_slice": (lambda a: a[1:, ::2], lambda a: a[1:, ::2], (N(3, 5),)),
    "index_repeated": (lambda a: a[np.array([0, 2, 0, 0])], lambda a: a[torch.tensor([0, 2, 0, 0])],
                       (N(3, 2),)),
    "index_pairs": (lambda a: a[np.arange(3), np.array([1, 0, 1])],
                    lambda a: a[torch.arange(3), torch.tensor([1, 0, 1])], (N(3, 2),)),
    "concatenate": (lambda a, b: ag.concatenate([a, b, a], axis=1), lambda a, b: torch.cat([a, b, a], dim=1),
                    (N(2, 3), N(2, 1))),
    "exp": (lambda a: a.exp(), lambda a: a.exp(), (N(3, 2),)),
    "log": (lambda a: a.log(), lambda a: a.log(), (POS(3, 2),)),
    "tanh": (lambda a: a.tanh(), lambda a: a.tanh(), (N(3, 2),)),
    "sigmoid": (lambda a: a.sigmoid(), lambda a: a.sigmoid(), (3 * N(3, 2),)),
    "relu": (lambda a: a.relu(), lambda a: a.relu(), (N(4, 3),)),
    "gelu": (lambda a: a.gelu(), lambda a: F.gelu(a), (2 * N(4, 3),)),
    "log_softmax": (lambda a: a.log_softmax(axis=-1), lambda a: F.log_softmax(a, dim=-1), (3 * N(4, 5),)),
    "log_softmax_axis0": (lambda a: a.log_softmax(axis=0), lambda a: F.log_softmax(a, dim=0), (N(4, 5),)),
}
TARGETS = np.array([1, 0, 4, 4])
LOSSES = {
    "cross_entropy": (lambda a: ag.cross_entropy(a, TARGETS),
                      lambda a: F.cross_entropy(a, torch.tensor(TARGETS)), (2 * N(4, 5),)),
}


@pytest.mark.parametrize("name", sorted(OPS | LOSSES))
def test_op_value_and_gradient_match_torch(name):
    f, ft, inputs = (OPS | LOSSES)[name]
    _compare_with_torch(f, ft, *inputs)


@pytest.mark.parametrize("name", sorted(OPS | LOSSES))
def test_op_gradient_matches_central_finite_differences(name):
    f, _, inputs = (OPS | LOSSES)[name]
    _finite_difference_check(f, *inputs)


def test_log_softmax_and_cross_entropy_are_stable_for_huge_logits():
    x = np.array([[1000.0, 0.0, -1000.0], [5e4, 5e4, 0.0]])
    ours = Tensor(x, requires_grad=True)
    loss = ag.cross_entropy(ours, np.array([0, 1]))
    loss.backward()
    tx = torch.tensor(x, requires_grad=True)
    tloss = F.cross_entropy(tx, torch.tensor([0, 1]))
    tloss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(ours.grad).all()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad, tx.grad.numpy(), atol=1e-12)
    assert np.isfinite(Tensor(x).log_softmax().data).all()


def test_mlp_forward_backward_matches_torch():
    rng = _rng(3)
    X, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    shapes = [(5, 8), (8,), (8, 3), (3,)]
    init = [rng.standard_normal(s) * 0.5 for s in shapes]
    ps = [Tensor(a.copy(), requires_grad=True) for a in init]
    ts = [torch.tensor(a, requires_grad=True) for a in init]
    loss = ag.cross_entropy((Tensor(X) @ ps[0] + ps[1]).tanh() @ ps[2] + ps[3], y)
    tloss = F.cross_entropy(torch.tanh(torch.tensor(X) @ ts[0] + ts[1]) @ ts[2] + ts[3], torch.tensor(y))
    loss.backward()
    tloss.backward()
    assert abs(loss.item() - tloss.item()) < 1e-12
    for p, t in zip(ps, ts, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----- PyTorch's gradient semantics -------------------------------------------------------------------
def test_grad_accumulates_across_backward_calls_until_zero_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3.0)
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_fan_out_node_sums_gradients_from_every_use():
    x = Tensor(np.array([0.5, -1.5]), requires_grad=True)
    h = x.tanh()
    loss = (h * h + h * 2.0 + h.exp()).sum()
    loss.backward()
    t = torch.tensor([0.5, -1.5], dtype=torch.float64, requires_grad=True)
    th = t.tanh()
    (th * th + th * 2.0 + th.exp()).sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-12)


def test_only_leaves_get_grad_unless_retain_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    k = x * 3.0
    k.retain_grad()
    (h + k).sum().backward()
    assert h.grad is None and not h.is_leaf and x.is_leaf
    np.testing.assert_allclose(k.grad, [1.0, 1.0])


def test_constants_get_no_grad_and_no_graph():
    c = Tensor([1.0, 2.0])
    x = Tensor([3.0, 4.0], requires_grad=True)
    (c * x).sum().backward()
    assert c.grad is None and not (c * c).requires_grad


def test_no_grad_records_nothing():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf
    assert (x * 2.0).requires_grad  # recording is back on after the block


def test_float32_is_kept_through_forward_and_backward():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    w = Tensor(np.ones((3, 4), np.float32), requires_grad=True)
    loss = ag.cross_entropy((x @ w + 1.0).relu() * 0.5, np.array([0, 3]))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_backward_with_explicit_grad_for_non_scalar():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).backward(np.array([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(x.grad, [2.0, 0.0, 12.0])


def test_retain_graph_allows_a_second_backward():
    x = Tensor([1.0, 2.0], requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    tl = (t.exp() * t).sum()
    tl.backward(retain_graph=True)
    tl.backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy())


def test_deep_chain_does_not_hit_recursion_limit():
    x = Tensor([0.1], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0])


# ----- clear errors -----------------------------------------------------------------------------------
def test_backward_on_non_scalar_without_grad_raises():
    y = Tensor([1.0, 2.0], requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        y.backward()


def test_backward_twice_through_freed_graph_raises():
    x = Tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_backward_on_tensor_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_backward_with_wrongly_shaped_grad_raises():
    y = Tensor([1.0, 2.0], requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"grad has shape \(3,\)"):
        y.backward(np.ones(3))


def test_incompatible_elementwise_shapes_raise():
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(ValueError, match="cannot be broadcast"):
        Tensor(np.ones((2, 3))) * np.ones((3, 2))


def test_incompatible_matmul_shapes_raise():
    with pytest.raises(ValueError, match=r"inner dimensions 3 and 4 differ"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))


def test_cross_entropy_rejects_bad_targets():
    with pytest.raises(ValueError, match="integer targets"):
        ag.cross_entropy(Tensor(np.ones((4, 3))), np.array([0, 1]))
    with pytest.raises(ValueError, match="integer class indices"):
        ag.cross_entropy(Tensor(np.ones((2, 3))), np.array([0.0, 1.0]))


def test_tensor_exponent_raises_type_error():
    with pytest.raises(TypeError, match="number exponent"):
        Tensor([1.0]) ** Tensor([2.0])
