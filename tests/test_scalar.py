"""dlcore.scalar.Value: values and gradients against torch (float64) and dlcore.gradcheck, kinks included."""

import itertools
import math

import numpy as np
import pytest
import torch

from dlcore.gradcheck import check_gradient
from dlcore.scalar import Value


def _expr(a, b, c, exp, log, tanh, relu):
    d = a * b + c**2 - b / c
    e = tanh(d) + exp(a * 0.5) * relu(b - a) + log(c * c + 1.0)
    return e * d + 3.0 - 1.0 / (1.0 + e * e) + 2.0 * (0.5 - a) / (2.0 + c)


def _value_expr(*xs):
    return _expr(*[Value(x) for x in xs], Value.exp, Value.log, Value.tanh, Value.relu)


XS = (0.7, -1.3, 2.1)


def test_value_gradients_match_torch():
    vs = [Value(x) for x in XS]
    out = _expr(*vs, Value.exp, Value.log, Value.tanh, Value.relu)
    out.backward()
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in XS]
    tout = _expr(*ts, torch.exp, torch.log, torch.tanh, torch.relu)
    tout.backward()
    assert out.data == pytest.approx(tout.item(), rel=1e-12)
    for v, t in zip(vs, ts, strict=True):
        assert v.grad == pytest.approx(t.grad.item(), rel=1e-10)


def test_value_gradients_match_dlcore_gradcheck():
    vs = [Value(x) for x in XS]
    _expr(*vs, Value.exp, Value.log, Value.tanh, Value.relu).backward()
    check_gradient(lambda x: _value_expr(*x).data, np.array(XS), [v.grad for v in vs])


# Each op on its own, at points that include 0 (the kink of relu, x ** p at 0): name -> (f, points).
# f works on Values and on torch tensors alike.
UNARY = {
    "add": (lambda x: x + 2.5, [-1.3, 0.0, 0.7]),
    "radd": (lambda x: 2.5 + x, [-1.3, 0.0, 0.7]),
    "add_self": (lambda x: x + x, [-1.3, 0.0, 0.7]),
    "mul": (lambda x: x * -3.0, [-1.3, 0.0, 0.7]),
    "rmul": (lambda x: -3.0 * x, [-1.3, 0.0, 0.7]),
    "mul_self": (lambda x: x * x, [-1.3, 0.0, 0.7]),
    "sub": (lambda x: x - 2.5, [-1.3, 0.0, 0.7]),
    "rsub": (lambda x: 2.5 - x, [-1.3, 0.0, 0.7]),
    "sub_self": (lambda x: x - x * 3.0, [-1.3, 0.0, 0.7]),
    "neg": (lambda x: -x, [-1.3, 0.0, 0.7]),
    "truediv": (lambda x: x / 4.0, [-1.3, 0.0, 0.7]),
    "rtruediv": (lambda x: 3.0 / x, [-1.3, 0.7, 2.0]),
    "div_self": (lambda x: (x + 1.0) / (x * x + 1.0), [-1.3, 0.0, 0.7]),
    "pow0": (lambda x: x**0, [-1.3, 0.0, 0.7]),  # gradient 0, also at x = 0 (torch gives 0)
    "pow0_float": (lambda x: x**0.0, [-1.3, 0.0, 0.7]),
    "pow1": (lambda x: x**1, [-1.3, 0.0, 0.7]),
    "pow2": (lambda x: x**2, [-1.3, 0.0, 0.7]),
    "pow3": (lambda x: x**3, [-1.3, 0.0, 0.7]),
    "pow_negative": (lambda x: x**-2, [-1.3, 0.7, 2.0]),
    "pow_fractional": (lambda x: x**1.5, [0.0, 0.7, 2.0]),
    "exp": (lambda x: x.exp(), [-1.3, 0.0, 0.7]),
    "log": (lambda x: x.log(), [0.3, 1.0, 2.0]),
    "tanh": (lambda x: x.tanh(), [-1.3, 0.0, 0.7]),
    "relu": (lambda x: x.relu(), [-1.3, 0.0, 0.7]),  # relu'(0) = 0, as torch
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_each_op_matches_torch_including_kinks(name):
    f, points = UNARY[name]
    # An upstream gradient other than 1 tests the chain rule's factor. The term x * x uses x a second time,
    # before or after the op in the backward order, so each op must add to x.grad (+=), not overwrite it.
    combiners = (lambda x: f(x) * 1.5 + x * x, lambda x: x * x + f(x) * 1.5)
    for x, g in itertools.product(points, combiners):
        v = Value(x)
        out = g(v)
        out.backward()
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        tout = g(t)
        tout.backward()
        assert out.data == pytest.approx(tout.item(), rel=1e-14, abs=1e-300)
        assert v.grad == pytest.approx(t.grad.item(), rel=1e-14, abs=1e-300), x


@pytest.mark.parametrize("name", sorted(UNARY))
def test_each_op_matches_dlcore_gradcheck_away_from_kinks(name):
    f, points = UNARY[name]
    for x in points:
        if x == 0.0 and name in ("relu", "pow_fractional"):
            continue  # not differentiable (relu) or one-sided (x ** 1.5) at 0: torch's convention applies
        v = Value(x)
        f(v).backward()
        # floor 1e-4: at x = 0 the true gradient of x**3 is 0 and the difference quotient is h**2 = 1e-12
        check_gradient(lambda a: f(Value(float(a))).data, x, v.grad, tol=1e-6, floor=1e-4)


def test_binary_ops_give_both_inputs_their_gradient():
    for op in (lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b):
        a, b = Value(0.8), Value(-1.7)
        op(a, b).backward()
        ta = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
        tb = torch.tensor(-1.7, dtype=torch.float64, requires_grad=True)
        op(ta, tb).backward()
        assert (a.grad, b.grad) == pytest.approx((ta.grad.item(), tb.grad.item()), rel=1e-14)


def test_zero_to_the_zero_backward_gives_zero_and_does_not_raise():
    v = Value(0.0)
    out = v**0
    out.backward()
    assert out.data == 1.0 and v.grad == 0.0


def test_relu_gradient_at_zero_is_zero():
    v = Value(0.0)
    v.relu().backward()
    assert v.grad == 0.0


def test_backward_twice_gives_the_same_gradients():
    a = Value(1.5)
    out = a * a + a.exp()
    out.backward()
    first = a.grad
    out.backward()
    assert a.grad == first == pytest.approx(2 * 1.5 + math.exp(1.5))


def test_backward_resets_gradients_of_the_whole_graph_only():
    a, b = Value(2.0), Value(3.0)
    (a * b).backward()
    other = Value(5.0)
    other.grad = 7.0  # not part of the next graph: left alone
    (a + a).backward()
    assert a.grad == 2.0 and b.grad == 2.0 and other.grad == 7.0  # b keeps d(a*b)/db = a from before


def test_topological_order_lists_inputs_before_outputs():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    d = c + a
    e = d.tanh()
    order = e.topological_order()
    assert order[-1] is e and len(order) == 5
    pos = {id(v): i for i, v in enumerate(order)}
    for v in order:
        assert all(pos[id(p)] < pos[id(v)] for p in v._prev)
    assert a.topological_order() == [a]


def test_deep_chain_does_not_hit_the_recursion_limit():
    x = Value(0.5)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.backward()
    assert x.grad == 1.0


def test_values_record_their_inputs_operation_and_label():
    a, b = Value(2.0, label="a"), Value(-1.0)
    assert a.label == "a" and b.label == "" and a._op == "" and a._prev == () and a.grad == 0.0
    assert isinstance(Value(3).data, float)
    ops = {"+": a + b, "*": a * b, "**2": a**2, "**-1": a**-1, "**0.5": a**0.5, "exp": a.exp(), "log": a.log(),
           "tanh": a.tanh(), "relu": a.relu()}
    for op, v in ops.items():
        assert v._op == op and v._prev[0] is a
    assert (a + b)._prev == (a, b) and (a * b)._prev == (a, b)
    assert (a + 1.0)._prev[1].data == 1.0 and (a * 2.0)._prev[1].data == 2.0
    # the derived ops are built from the primitives: -a = a * -1, a / b = a * b**-1, a - b = a + (-b)
    neg = -a
    assert neg._op == "*" and neg._prev[0] is a and neg._prev[1].data == -1.0 and neg._prev[1]._op == ""
    div = a / 2.0
    assert div._op == "*" and div._prev[1]._op == "**-1" and div._prev[1]._prev[0].data == 2.0
    sub = a - b
    assert sub._op == "+" and sub._prev[1]._op == "*" and sub._prev[1]._prev[0] is b


def test_repr_shows_data_and_grad():
    v = Value(1.23456)
    (v * 2.0).backward()
    assert repr(v) == "Value(data=1.235, grad=2)"


def test_log_of_non_positive_raises():
    with pytest.raises(ValueError, match=r"log needs a positive input, got -1\.0"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match="positive"):
        Value(0.0).log()


def test_value_exponent_raises_type_error():
    with pytest.raises(TypeError, match="only a number exponent is supported, got Value"):
        Value(2.0) ** Value(2.0)
