"""dlcore.autograd: every op's value and gradient against torch (float64) and dlcore.gradcheck.

Inputs are passed to ``Tensor`` as they are, never copied first: ``Tensor(a)`` shares ``a``'s memory, so an op
that wrote into its input would corrupt the test's array, and every comparison checks that it did not.
Besides random points, the tables hold the places where bugs hide: exact zeros, ties for the maximum, the
kink of relu, negative axes.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlcore import autograd as ag
from dlcore.autograd import Tensor, no_grad
from dlcore.gradcheck import check_gradient


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _torch_shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _compare_with_torch(f_ours, f_torch, *arrays, rtol=1e-10, atol=1e-12, seed=0):
    """Run f on dlcore and torch tensors; compare outputs, input gradients of sum(w * f), and aliasing."""
    before = [a.copy() for a in arrays]  # only to check afterwards that nothing wrote into the inputs
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = f_ours(*ours), f_torch(*theirs)
    assert out.shape == tuple(tout.shape) and out.dtype == np.float64
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=rtol, atol=atol)
    for a, tt in zip(arrays, theirs, strict=True):  # a view where torch gives a view, a new array elsewhere
        assert np.shares_memory(out.data, a) == _torch_shares_memory(tout, tt)
    w = _rng(seed + 1).standard_normal(out.shape)
    (out * w).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for t, tt in zip(ours, theirs, strict=True):
        assert t.grad.shape == t.shape and t.grad.dtype == np.float64
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=rtol, atol=atol)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)
    return ours, w


def _gradcheck(f_ours, *arrays, tol=1e-5):
    """dlcore.gradcheck's central differences of L = sum(w * f(inputs)) against the autograd gradient."""
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    out = f_ours(*ours)
    w = _rng(7).standard_normal(out.shape)
    (out * w).sum().backward()
    for i, a in enumerate(arrays):
        def loss(v, i=i):
            args = [Tensor(v if j == i else b) for j, b in enumerate(arrays)]
            return float((f_ours(*args).data * w).sum())

        check_gradient(loss, a, ours[i].grad, tol=tol)


R = _rng(42)
POS = lambda *s: R.uniform(0.5, 2.0, size=s)  # noqa: E731  (inputs where log, sqrt, division are safe)
N = lambda *s: R.standard_normal(s)  # noqa: E731

W43 = N(4, 3)  # a fixed weight, so that reshape's gradient depends on where each element went
C34 = N(3, 4)  # a numpy array on the left of an operator
C31 = N(3, 1)
ZEROS = np.array([[0.0, -1.5, 0.0], [2.0, 0.0, -0.5]])  # exact zeros: the kink of relu, x ** p at 0
TIES = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0]])  # ties for the max

# name: (ours, torch, inputs). Smooth at these inputs: checked against torch and finite differences.
OPS = {
    "add_broadcast": (lambda a, b: a + b, lambda a, b: a + b, (N(3, 1, 4), N(2, 1))),
    "sub_broadcast": (lambda a, b: a - b, lambda a, b: a - b, (N(4,), N(3, 4))),
    "sub_broadcast_first": (lambda a, b: a - b, lambda a, b: a - b, (N(3, 4), N(4,))),
    "mul_broadcast": (lambda a, b: a * b, lambda a, b: a * b, (N(2, 3), N(1, 3))),
    "div_broadcast": (lambda a, b: a / b, lambda a, b: a / b, (N(2, 3), POS(3))),
    "div_broadcast_first": (lambda a, b: a / b, lambda a, b: a / b, (POS(3), N(2, 3) + 3.0)),
    "scalar_ops": (lambda a: 2.0 - a * 3.0 + 1.0 / (a * a + 1.0),
                   lambda a: 2.0 - a * 3.0 + 1.0 / (a * a + 1.0), (N(3, 2),)),
    "radd_float": (lambda a: 2.5 + a, lambda a: 2.5 + a, (N(3, 2),)),
    "rsub_float": (lambda a: 2.5 - a, lambda a: 2.5 - a, (N(3, 2),)),
    "rmul_float": (lambda a: 3.0 * a, lambda a: 3.0 * a, (N(3, 2),)),
    "rtruediv_float": (lambda a: 1.5 / a, lambda a: 1.5 / a, (POS(3, 2),)),
    "radd_array": (lambda a: C34 + a, lambda a: torch.tensor(C34) + a, (N(4,),)),
    "rsub_array": (lambda a: C34 - a, lambda a: torch.tensor(C34) - a, (N(3, 4),)),
    "rmul_array": (lambda a: C31 * a, lambda a: torch.tensor(C31) * a, (N(4),)),
    "rtruediv_array": (lambda a: C31 / a, lambda a: torch.tensor(C31) / a, (POS(3, 4),)),
    "rsub_numpy_scalar": (lambda a: np.float64(0.5) - a, lambda a: 0.5 - a, (N(3),)),
    "sub_constant": (lambda a: a - C34, lambda a: a - torch.tensor(C34), (N(3, 4),)),
    "neg": (lambda a: -a, lambda a: -a, (N(3),)),
    "pow": (lambda a: a**3, lambda a: a**3, (N(2, 3),)),
    "pow_fractional": (lambda a: a**0.5, lambda a: a**0.5, (POS(4),)),
    "pow_negative": (lambda a: a**-2, lambda a: a**-2, (POS(4),)),
    "pow_integers_at_zero": (lambda a: a**0 + a**1 + a**2 + a**3, lambda a: a**0 + a**1 + a**2 + a**3, (ZEROS,)),
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, (N(3, 4), N(4, 2))),
    "matmul_batched_broadcast": (lambda a, b: a @ b, lambda a, b: a @ b, (N(2, 3, 4), N(4, 5))),
    "matmul_broadcast_batch_right": (lambda a, b: a @ b, lambda a, b: a @ b, (N(3, 4), N(2, 4, 5))),
    "matmul_vector_matrix": (lambda a, b: a @ b, lambda a, b: a @ b, (N(4,), N(4, 3))),
    "matmul_matrix_vector": (lambda a, b: a @ b, lambda a, b: a @ b, (N(3, 4), N(4,))),
    "matmul_vector_vector": (lambda a, b: a @ b, lambda a, b: a @ b, (N(4,), N(4,))),
    "matmul_vector_batched": (lambda a, b: a @ b, lambda a, b: a @ b, (N(4,), N(2, 4, 3))),
    "rmatmul_array": (lambda a: C34 @ a, lambda a: torch.tensor(C34) @ a, (N(4, 2),)),
    "sum_all": (lambda a: a.sum(), lambda a: a.sum(), (N(3, 4),)),
    "sum_axis": (lambda a: a.sum(axis=1), lambda a: a.sum(dim=1), (N(3, 4, 2),)),
    "sum_negative_axis": (lambda a: a.sum(axis=-2), lambda a: a.sum(dim=-2), (N(3, 4, 2),)),
    "sum_axes_keepdims": (lambda a: a.sum(axis=(0, 2), keepdims=True),
                          lambda a: a.sum(dim=(0, 2), keepdim=True), (N(3, 4, 2),)),
    "sum_negative_axes": (lambda a: a.sum(axis=(-1, 0)), lambda a: a.sum(dim=(-1, 0)), (N(3, 4, 2),)),
    # numpy's axis=() reduces nothing (torch's dim=() would reduce everything): compare with a copy
    "sum_no_axes": (lambda a: a.sum(axis=()), lambda a: a * 1.0, (N(3, 4),)),
    "sum_no_axes_keepdims": (lambda a: a.sum(axis=(), keepdims=True), lambda a: a * 1.0, (N(3, 4),)),
    "mean_no_axes": (lambda a: a.mean(axis=()), lambda a: a * 1.0, (N(3, 4),)),
    "mean_all": (lambda a: a.mean(), lambda a: a.mean(), (N(3, 4),)),
    "mean_axis": (lambda a: a.mean(axis=-1), lambda a: a.mean(dim=-1), (N(3, 4),)),
    "mean_axes_keepdims": (lambda a: a.mean(axis=(0, -1), keepdims=True),
                           lambda a: a.mean(dim=(0, -1), keepdim=True), (N(3, 4, 2),)),
    "max_all": (lambda a: a.max(), lambda a: a.amax(), (N(3, 4),)),
    "max_axis": (lambda a: a.max(axis=0), lambda a: a.amax(dim=0), (N(3, 4),)),
    "max_negative_axis": (lambda a: a.max(axis=-1), lambda a: a.amax(dim=-1), (N(3, 4, 2),)),
    "max_axes": (lambda a: a.max(axis=(0, -1)), lambda a: a.amax(dim=(0, -1)), (N(3, 4, 2),)),
    "max_axis_keepdims": (lambda a: a.max(axis=1, keepdims=True), lambda a: a.amax(dim=1, keepdim=True),
                          (N(3, 4),)),
    "max_keepdims_all": (lambda a: a.max(keepdims=True), lambda a: a.amax(dim=(0, 1), keepdim=True),
                         (N(3, 4),)),
    "reshape": (lambda a: a.reshape(4, 3) * W43, lambda a: a.reshape(4, 3) * torch.tensor(W43), (N(2, 6),)),
    "reshape_tuple": (lambda a: a.reshape((4, 3)) * W43, lambda a: a.reshape(4, 3) * torch.tensor(W43),
                      (N(2, 6),)),
    "transpose": (lambda a: a.T, lambda a: a.T, (N(2, 3),)),
    "transpose_no_axes_3d": (lambda a: a.transpose(), lambda a: a.permute(2, 1, 0), (N(2, 3, 4),)),
    "transpose_axes": (lambda a: a.transpose(2, 0, 1), lambda a: a.permute(2, 0, 1), (N(2, 3, 4),)),
    "transpose_axes_tuple": (lambda a: a.transpose((1, 2, 0)), lambda a: a.permute(1, 2, 0), (N(2, 3, 4),)),
    "transpose_axes_list": (lambda a: a.transpose([1, 2, 0]), lambda a: a.permute(1, 2, 0), (N(2, 3, 4),)),
    # negative axes (issue 18): (0, -1) is the identity on a matrix; (0, -1, -2) swaps the last two axes
    "transpose_negative_2d": (lambda a: a.transpose(0, -1), lambda a: a.permute(0, -1), (N(3, 3),)),
    "transpose_negative_swap_2d": (lambda a: a.transpose(-1, 0), lambda a: a.permute(-1, 0), (N(3, 3),)),
    "transpose_negative_3d": (lambda a: a.transpose(0, -1, -2), lambda a: a.permute(0, -1, -2), (N(2, 3, 4),)),
    "transpose_negative_3d_cycle": (lambda a: a.transpose(-1, 0, 1), lambda a: a.permute(-1, 0, 1),
                                    (N(2, 3, 4),)),
    "index_slice": (lambda a: a[1:, ::2], lambda a: a[1:, ::2], (N(3, 5),)),
    "index_repeated": (lambda a: a[np.array([0, 2, 0, 0])], lambda a: a[torch.tensor([0, 2, 0, 0])],
                       (N(3, 2),)),
    "index_pairs": (lambda a: a[np.arange(3), np.array([1, 0, 1])],
                    lambda a: a[torch.arange(3), torch.tensor([1, 0, 1])], (N(3, 2),)),
    "concatenate": (lambda a, b: ag.concatenate([a, b, a], axis=1), lambda a, b: torch.cat([a, b, a], dim=1),
                    (N(2, 3), N(2, 1))),
    "concatenate_axis0": (lambda a, b: ag.concatenate([b, a]), lambda a, b: torch.cat([b, a]),
                          (N(2, 3), N(3, 3))),
    "concatenate_negative_axis": (lambda a, b: ag.concatenate([a, b], axis=-1),
                                  lambda a, b: torch.cat([a, b], dim=-1), (N(2, 3), N(2, 2))),
    "exp": (lambda a: a.exp(), lambda a: a.exp(), (N(3, 2),)),
    "log": (lambda a: a.log(), lambda a: a.log(), (POS(3, 2),)),
    "tanh": (lambda a: a.tanh(), lambda a: a.tanh(), (N(3, 2),)),
    "sigmoid": (lambda a: a.sigmoid(), lambda a: a.sigmoid(), (3 * N(3, 2),)),
    "relu": (lambda a: a.relu(), lambda a: a.relu(), (N(4, 3),)),
    "gelu": (lambda a: a.gelu(), lambda a: F.gelu(a), (2 * N(4, 3),)),
    "smooth_at_zero": (lambda a: a.exp() + a.tanh() + a.sigmoid() + a.gelu(),
                       lambda a: a.exp() + a.tanh() + a.sigmoid() + F.gelu(a), (ZEROS,)),
    "log_softmax": (lambda a: a.log_softmax(axis=-1), lambda a: F.log_softmax(a, dim=-1), (3 * N(4, 5),)),
    "log_softmax_default_axis": (lambda a: a.log_softmax(), lambda a: F.log_softmax(a, dim=-1), (N(2, 3, 4),)),
    "log_softmax_axis0": (lambda a: a.log_softmax(axis=0), lambda a: F.log_softmax(a, dim=0), (N(4, 5),)),
    "log_softmax_axis1_3d": (lambda a: a.log_softmax(axis=1), lambda a: F.log_softmax(a, dim=1), (N(2, 3, 4),)),
    "log_softmax_shifted": (lambda a: a.log_softmax(axis=-1), lambda a: F.log_softmax(a, dim=-1),
                            (N(4, 5) + 40.0,)),
    "log_softmax_ties": (lambda a: a.log_softmax(axis=-1), lambda a: F.log_softmax(a, dim=-1), (TIES,)),
}
TARGETS = np.array([1, 0, 4, 4])
LOSSES = {
    "cross_entropy": (lambda a: ag.cross_entropy(a, TARGETS),
                      lambda a: F.cross_entropy(a, torch.tensor(TARGETS)), (2 * N(4, 5),)),
    "cross_entropy_equal_logits": (lambda a: ag.cross_entropy(a, np.array([0, 3, 2])),
                                   lambda a: F.cross_entropy(a, torch.tensor([0, 3, 2])), (TIES,)),
    "cross_entropy_shifted": (lambda a: ag.cross_entropy(a, TARGETS) * 3.0,
                              lambda a: F.cross_entropy(a, torch.tensor(TARGETS)) * 3.0, (N(4, 5) - 50.0,)),
}
# Kinks and ties: the gradient is a convention there (torch's), which finite differences cannot check.
KINKS = {
    "relu_at_zero": (lambda a: a.relu(), lambda a: a.relu(), (ZEROS,)),  # relu'(0) = 0
    "relu_at_negative_zero": (lambda a: a.relu(), lambda a: a.relu(), (np.array([-0.0, 0.0, 1e-300]),)),
    "pow_zero_at_zero": (lambda a: a**0, lambda a: a**0, (ZEROS,)),  # constant 1: gradient 0, not nan
    "pow_zero_float_at_zero": (lambda a: a**0.0, lambda a: a**0.0, (ZEROS,)),
    "max_all_ties": (lambda a: a.max(), lambda a: a.amax(), (TIES,)),  # tied maxima share the gradient
    "max_axis0_ties": (lambda a: a.max(axis=0), lambda a: a.amax(dim=0), (TIES,)),
    "max_axis1_ties": (lambda a: a.max(axis=-1), lambda a: a.amax(dim=-1), (TIES,)),
    "max_keepdims_ties": (lambda a: a.max(axis=1, keepdims=True), lambda a: a.amax(dim=1, keepdim=True),
                          (TIES,)),
    "max_axes_ties": (lambda a: a.max(axis=(0, 1)), lambda a: a.amax(dim=(0, 1)), (TIES,)),
    "max_no_axes_ties": (lambda a: a.max(axis=()), lambda a: a * 1.0, (TIES,)),
    "max_of_relu_zeros": (lambda a: a.relu().max(axis=1), lambda a: a.relu().amax(dim=1), (ZEROS - 1.0,)),
    "sigmoid_saturated": (lambda a: a.sigmoid(), lambda a: a.sigmoid(), (np.array([-800.0, 0.0, 800.0]),)),
    "tanh_saturated": (lambda a: a.tanh(), lambda a: a.tanh(), (np.array([-800.0, 0.0, 800.0]),)),
}
SMOOTH = OPS | LOSSES
ALL = SMOOTH | KINKS


@pytest.mark.parametrize("name", sorted(ALL))
def test_op_value_and_gradient_match_torch(name):
    f, ft, inputs = ALL[name]
    _compare_with_torch(f, ft, *inputs)


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_op_gradient_matches_dlcore_gradcheck(name):
    f, _, inputs = SMOOTH[name]
    _gradcheck(f, *inputs)


@pytest.mark.parametrize("name", sorted(ALL))
def test_op_keeps_float32_in_forward_and_every_backward_rule(name):
    f, _, inputs = ALL[name]
    ours = [Tensor(a.astype(np.float32), requires_grad=True) for a in inputs]
    out = f(*ours)
    assert out.dtype == np.float32
    for node in out._topological_order():  # each recorded rule maps a float32 gradient to float32 ones
        if not node.is_leaf:
            for parent, g in zip(node._prev, node._backward(np.ones(node.shape, np.float32))):
                if parent.requires_grad:  # a constant operand gets no gradient at all (None)
                    assert g.dtype == np.float32, node._op
    (out * 1.0).sum().backward()
    assert all(t.grad.dtype == np.float32 for t in ours)


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
    ps = [Tensor(a, requires_grad=True) for a in init]  # shares init's memory: nothing may write into it
    ts = [torch.tensor(a, requires_grad=True) for a in init]
    loss = ag.cross_entropy((Tensor(X) @ ps[0] + ps[1]).tanh() @ ps[2] + ps[3], y)
    tloss = F.cross_entropy(torch.tanh(torch.tensor(X) @ ts[0] + ts[1]) @ ts[2] + ts[3], torch.tensor(y))
    loss.backward()
    tloss.backward()
    assert abs(loss.item() - tloss.item()) < 1e-12
    for p, t, a in zip(ps, ts, init, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(a, t.detach().numpy())


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
    with pytest.raises(RuntimeError, match=r"^Trying to backward through the graph a second time \(op 'sum'\): its "
                                           r"saved values were freed by the first backward\(\)\. Use "
                                           r"backward\(retain_graph=True\) the first time if you need to call "
                                           r"backward twice\.$"):
        loss.backward()


def test_backward_on_tensor_without_graph_raises():
    with pytest.raises(RuntimeError, match=r"^backward: this tensor does not require grad and has no recorded graph "
                                           r"\(did you create the leaves with requires_grad=True, or run under "
                                           r"no_grad\?\)$"):
        Tensor([1.0]).sum().backward()


def test_backward_with_wrongly_shaped_grad_raises():
    y = Tensor([1.0, 2.0], requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"grad has shape \(3,\)"):
        y.backward(np.ones(3))


def test_incompatible_elementwise_shapes_raise():
    with pytest.raises(ValueError, match=r"^add: shapes \(2, 3\) and \(4,\) cannot be broadcast together "
                                         r"\(trailing dimensions must be equal or 1\)$"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"^mul: shapes \(2, 3\) and \(3, 2\) cannot be broadcast"):
        Tensor(np.ones((2, 3))) * np.ones((3, 2))
    with pytest.raises(ValueError, match=r"^div: shapes \(2,\) and \(3,\) cannot be broadcast"):
        Tensor(np.ones(2)) / np.ones(3)


def test_incompatible_matmul_shapes_raise():
    with pytest.raises(ValueError, match=r"^matmul: shapes \(2, 3\) and \(4, 5\) are incompatible "
                                         r"\(inner dimensions 3 and 4 differ\)$"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"inner dimensions 4 and 3 differ"):
        Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones((2, 3, 5)))


def test_cross_entropy_rejects_bad_targets():
    with pytest.raises(ValueError, match="integer targets"):
        ag.cross_entropy(Tensor(np.ones((4, 3))), np.array([0, 1]))
    with pytest.raises(ValueError, match="integer class indices"):
        ag.cross_entropy(Tensor(np.ones((2, 3))), np.array([0.0, 1.0]))


def test_tensor_exponent_raises_type_error():
    with pytest.raises(TypeError, match=r"^only a number exponent is supported: x \*\* 2\.0, not x \*\* tensor$"):
        Tensor([1.0]) ** Tensor([2.0])


# ----- defects found in issue 18, each first written as a failing test ---------------------------------
def test_transpose_with_negative_axes_gives_the_inverse_permutation_gradient():
    W = np.arange(4.0).reshape(2, 2)
    x = Tensor(np.zeros((2, 2)), requires_grad=True)
    (x.transpose(0, -1) * W).sum().backward()  # (0, -1) is the identity on a matrix
    np.testing.assert_array_equal(x.grad, W)
    x = Tensor(np.zeros((2, 3, 4)), requires_grad=True)
    y = x.transpose(0, -1, -2)
    assert y.shape == (2, 4, 3)
    V = np.arange(24.0).reshape(2, 4, 3)
    (y * V).sum().backward()
    np.testing.assert_array_equal(x.grad, V.transpose(0, 2, 1))


@pytest.mark.parametrize("axes", [(0, 0), (0, 2), (0, -3), (0,), (0, 1, 2)])
def test_transpose_rejects_invalid_axes_like_numpy(axes):
    with pytest.raises((ValueError, np.exceptions.AxisError)):
        Tensor(np.zeros((2, 3))).transpose(*axes)


def test_transpose_of_a_0d_tensor():
    x = Tensor(np.array(2.0), requires_grad=True)
    y = x.T * 3.0
    y.backward()
    assert y.shape == () and x.grad == 3.0


@pytest.mark.parametrize("bad", [-1, 3, 7])
def test_cross_entropy_rejects_out_of_range_targets_clearly(bad):
    with pytest.raises(ValueError, match=rf"class indices in 0\.\.2 for 3 classes; target\[1\] = {bad}\. "
                                         r"Map labels to 0\.\.2 first"):
        ag.cross_entropy(Tensor(np.zeros((3, 3))), np.array([0, bad, 2]))


def test_cross_entropy_accepts_the_first_and_last_class():
    loss = ag.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 2]))
    assert loss.item() == pytest.approx(np.log(3))


def test_cross_entropy_does_not_modify_its_inputs():
    x, y = N(3, 4), np.array([0, 3, 1])
    before = x.copy()
    logits = Tensor(x, requires_grad=True)
    loss = ag.cross_entropy(logits, y)
    loss.backward()
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(y, [0, 3, 1])
    assert not np.shares_memory(logits.grad, x)


def test_tensor_copies_the_callers_array_like_torch_tensor():
    a = np.zeros(3)
    t = ag.tensor(a, requires_grad=True)
    a[0] = 1.0
    t.data[1] = 2.0
    np.testing.assert_array_equal(a, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(t.data, [0.0, 2.0, 0.0])
    assert t.requires_grad and t.is_leaf and t.dtype == np.float64
    assert ag.tensor([1, 2]).dtype == np.float64
    assert ag.tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert ag.tensor(np.ones(2, np.float32)).dtype == np.float32


def test_tensor_of_a_tensor_copies_its_data_and_leaves_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    t = ag.tensor(y)
    assert t.is_leaf and not t.requires_grad and not np.shares_memory(t.data, y.data)
    np.testing.assert_array_equal(t.data, [2.0, 4.0])
    assert ag.tensor(y, requires_grad=True).requires_grad


def test_Tensor_shares_the_callers_float_array_as_documented():
    a = np.zeros(3)
    t = Tensor(a)
    a[0] = 1.0
    assert t.data is a and t.data[0] == 1.0
    b = np.zeros(2, np.float32)
    assert Tensor(b).data is b
    ints = np.array([1, 2])
    assert Tensor(ints).dtype == np.float64 and not np.shares_memory(Tensor(ints).data, ints)
    assert Tensor(ints, dtype=np.float32).dtype == np.float32
    assert not Tensor([1.0]).requires_grad and Tensor([1.0], requires_grad=True).requires_grad


def test_Tensor_of_a_Tensor_raises_a_clear_error():
    with pytest.raises(TypeError, match=r"^Tensor\(t\) got a Tensor: use t\.detach\(\) for a tensor sharing its "
                                        r"data without the graph, or tensor\(t\) for a copy$"):
        Tensor(Tensor([1.0, 2.0]))


def test_x_to_the_zero_has_gradient_zero_at_zero_as_torch():
    x = Tensor(np.array([0.0, 0.0, 2.0]), requires_grad=True)
    y = x**0
    y.sum().backward()
    np.testing.assert_array_equal(y.data, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])


def test_float32_gelu_stays_float32():
    x = Tensor(np.array([-1.0, 0.0, 2.0], np.float32), requires_grad=True)
    y = x.gelu()
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(y.data, F.gelu(torch.tensor([-1.0, 0.0, 2.0])).numpy(), rtol=1e-6)


def test_np_asarray_gives_the_data_not_an_object_array():
    t = Tensor([1.0, 2.0])
    a = np.asarray(t)
    assert a.dtype == np.float64 and np.shares_memory(a, t.data)  # as torch: a view of the same memory
    np.testing.assert_array_equal(a, [1.0, 2.0])
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    assert t.__array__(np.float32).dtype == np.float32  # the protocol call numpy makes
    copied = np.array(t, copy=True)
    assert not np.shares_memory(copied, t.data)
    np.testing.assert_array_equal(copied, [1.0, 2.0])
    assert np.asarray(Tensor([1.0], requires_grad=True).detach()).shape == (1,)


def test_np_asarray_of_a_tensor_that_requires_grad_raises_as_torch():
    with pytest.raises(RuntimeError, match=r"^can't convert a Tensor that requires grad to a numpy array: "
                                           r"use t\.detach\(\) or t\.data$"):
        np.asarray(Tensor([1.0], requires_grad=True))


def test_numpy_on_the_left_of_an_operator_still_records_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    for y in (np.ones(2) * x, np.float64(2.0) * x, np.float32(2.0) - x, np.ones(2) / x, np.array(3.0) + x):
        assert isinstance(y, Tensor) and y.requires_grad


def test_sum_over_no_axes_reduces_nothing_as_numpy():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.sum(axis=())
    assert y.shape == (2, 3)
    np.testing.assert_array_equal(y.data, np.arange(6.0).reshape(2, 3).sum(axis=()))
    (y * np.arange(6.0).reshape(2, 3)).sum().backward()
    np.testing.assert_array_equal(x.grad, np.arange(6.0).reshape(2, 3))


# ----- planted bugs the old suite missed ----------------------------------------------------------------
def test_relu_gradient_at_zero_is_zero_as_torch():
    x = Tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


def test_reflected_operators_match_torch():
    a = np.array([0.5, -2.0, 3.0])
    for op in (lambda x: 2.0 + x, lambda x: 2.0 - x, lambda x: 2.0 * x, lambda x: 2.0 / x):
        x, t = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        y, ty = op(x), op(t)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-15)
        (y * np.array([1.0, 2.0, 3.0])).sum().backward()
        (ty * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
        np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-15)


def test_detach_returns_a_new_tensor_outside_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    d = h.detach()
    assert d is not h and not d.requires_grad and d.is_leaf and d._prev == () and d._op == ""
    assert np.shares_memory(d.data, h.data)  # as torch: the same memory, no graph
    (d * x).sum().backward()  # no gradient flows through d
    np.testing.assert_array_equal(x.grad, [3.0, 6.0])
    assert h.grad is None and d.grad is None
    leaf = x.detach()
    assert leaf is not x and not leaf.requires_grad


def test_module_zero_grad_and_tensor_zero_grad_reset_every_gradient():
    x, y = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0], requires_grad=True)
    (x * y).sum().backward()
    assert x.grad is not None and y.grad is not None
    ag.zero_grad([x, y])
    assert x.grad is None and y.grad is None
    (x * y).sum().backward()
    x.zero_grad()
    assert x.grad is None
    np.testing.assert_array_equal(y.grad, [3.0])
    ag.zero_grad([])


def test_no_grad_is_restored_after_an_exception_in_the_block():
    x = Tensor([1.0], requires_grad=True)
    with pytest.raises(KeyError):
        with no_grad():
            assert not (x * 2.0).requires_grad
            raise KeyError("an error inside the block")
    assert (x * 2.0).requires_grad


def test_nested_no_grad_restores_the_outer_state():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        with no_grad():
            pass
        assert not (x * 2.0).requires_grad  # still off: the inner block restored "off", not "on"
    assert (x * 2.0).requires_grad


def test_leaf_gradients_are_fresh_arrays():
    x, y = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    seed = np.array([1.0, 1.0])
    (x + y).backward(seed)
    assert not np.shares_memory(x.grad, y.grad) and not np.shares_memory(x.grad, seed)
    x.grad[0] = 100.0  # writing into one gradient must not change another
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])
    np.testing.assert_array_equal(seed, [1.0, 1.0])
    b = Tensor([5.0], requires_grad=True)
    (b + Tensor(np.zeros((2, 3)))).sum().backward()  # broadcast: the gradient is summed back, writable
    b.grad += 1.0
    np.testing.assert_array_equal(b.grad, [7.0])


def test_backward_accepts_a_tensor_or_list_as_grad_and_casts_it():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    (x * x).backward(Tensor([1.0, 1.0]))
    (x * x).backward([1.0, 0.0])
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


def test_backward_of_a_one_element_non_scalar_needs_no_grad():
    x = Tensor([[2.0]], requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, [[4.0]])


def test_a_leaf_can_call_backward_itself():
    x = Tensor([3.0], requires_grad=True)
    x.backward()
    np.testing.assert_array_equal(x.grad, [1.0])


def test_gradient_reaches_a_leaf_used_by_a_constant_branch_only_through_recorded_ops():
    x = Tensor([1.0, 2.0], requires_grad=True)
    c = Tensor([5.0, 6.0])
    y = (c * 2.0 + x) * x  # the constant branch records nothing and receives nothing
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * np.array([1.0, 2.0]) + np.array([10.0, 12.0]))
    assert c.grad is None and not (c * 2.0).requires_grad


def test_retain_grad_accumulates_and_backward_frees_only_the_graph_it_used():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    h.retain_grad()
    h.sum().backward(retain_graph=True)
    h.sum().backward()
    np.testing.assert_array_equal(h.grad, [2.0, 2.0])
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match=r"second time \(op 'mul'\).*retain_graph=True"):
        h.sum().backward()


# ----- small API -------------------------------------------------------------------------------------
def test_properties_item_len_numpy_and_repr():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    assert t.shape == (2, 3) and t.ndim == 2 and t.dtype == np.float64 and len(t) == 2 and t.is_leaf
    assert t.numpy() is t.data
    assert Tensor([2.5]).item() == 2.5 and isinstance(Tensor([2.5]).item(), float)
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1., 2.])"
    assert repr(Tensor([1.0, 2.0], requires_grad=True)) == "Tensor([1., 2.], requires_grad=True)"
    assert repr(Tensor([1.0], requires_grad=True) * 2.0) == "Tensor([2.], grad_fn=<mul>)"
    assert repr(Tensor([1.23456])) == "Tensor([1.2346])"


def test_each_op_records_its_name_as_grad_fn():
    x, y = Tensor([[1.0, 2.0]], requires_grad=True), Tensor([[3.0], [4.0]], requires_grad=True)
    names = {
        "add": x + y, "mul": x * y, "div": x / y, "pow": x**2, "neg": -x, "matmul": x @ y, "sum": x.sum(),
        "max": x.max(), "reshape": x.reshape(2), "transpose": x.T, "index": x[0], "exp": x.exp(),
        "log": x.log(), "tanh": x.tanh(), "sigmoid": x.sigmoid(), "relu": x.relu(), "gelu": x.gelu(),
        "log_softmax": x.log_softmax(), "concatenate": ag.concatenate([x, x]),
        "cross_entropy": ag.cross_entropy(x, np.array([1])),
    }
    for name, t in names.items():
        assert t._op == name and f"grad_fn=<{name}>" in repr(t)
    assert (x - y)._op == "add" and (x.mean())._op == "mul"


def test_no_graph_is_recorded_when_no_input_requires_grad():
    a, b = Tensor([1.0, 2.0]), Tensor([3.0, 4.0])
    for t in (a + b, a * b, a @ b, a.sum(), a.exp(), ag.concatenate([a, b]), a.relu()):
        assert not t.requires_grad and t.is_leaf and t._prev == () and t._op == ""


def test_concatenate_of_nothing_raises():
    with pytest.raises(ValueError, match="^concatenate needs at least one tensor$"):
        ag.concatenate([])


def test_matmul_with_a_scalar_raises():
    with pytest.raises(ValueError, match="^matmul needs tensors with at least one dimension, got a scalar$"):
        Tensor(np.array(2.0)) @ Tensor(np.ones(2))
    with pytest.raises(ValueError, match="at least one dimension"):
        Tensor(np.ones(2)) @ Tensor(np.array(2.0))
    with pytest.raises(ValueError, match=r"inner dimensions 3 and 2 differ"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones(2))


def test_graph_with_many_shared_paths_is_walked_once_per_node():
    """y = y + y sixty times has 2**60 paths from x to the output: each node must be visited once."""
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(60):
        y = y + y
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0**60])
    assert len(y._topological_order()) == 61  # x and the sixty sums


def test_topological_order_holds_only_tensors_that_need_a_gradient():
    x, c = Tensor([1.0], requires_grad=True), Tensor([2.0])
    h = x * c
    y = (h * (c + 1.0)).sum()
    order = y._topological_order()
    assert [t._op for t in order] == ["", "mul", "mul", "sum"] and order[0] is x and order[-1] is y


def test_backward_accepts_a_seed_gradient_that_requires_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).backward(Tensor([1.0, 2.0], requires_grad=True))
    np.testing.assert_array_equal(x.grad, [3.0, 6.0])


def test_each_leaf_gradient_has_the_leafs_dtype_in_mixed_precision():
    x32 = Tensor(np.ones(2, np.float32), requires_grad=True)
    y64 = Tensor(np.ones(2), requires_grad=True)
    out = x32 * y64
    assert out.dtype == np.float64  # numpy promotes, as torch does
    out.sum().backward()
    assert x32.grad.dtype == np.float32 and y64.grad.dtype == np.float64


def test_a_backward_rule_returning_the_wrong_number_of_gradients_fails_loudly():
    x = Tensor([1.0], requires_grad=True)
    bad = Tensor._make(x.data * 2, (x,), lambda g: (g, g), "bad")  # one parent, two gradients
    with pytest.raises(ValueError, match="zip"):
        bad.sum().backward()


def test_matmul_backward_skips_the_gradient_of_an_operand_that_needs_none():
    """The data X of a first layer needs no gradient: the backward pass makes 2L - 1 products, not 2L."""
    rng = np.random.default_rng(0)
    X, W = Tensor(rng.standard_normal((4, 3))), Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    out = X @ W
    gx, gw = out._backward(np.ones(out.shape))
    assert gx is None and np.allclose(gw, X.data.T @ np.ones((4, 2)))
    out = W.T @ X.T  # now the left operand needs the gradient and the right one does not
    gw_t, gxt = out._backward(np.ones(out.shape))
    assert gxt is None and gw_t.shape == (2, 3)
    (X @ W).sum().backward()
    assert X.grad is None and np.allclose(W.grad, X.data.T @ np.ones((4, 2)))
