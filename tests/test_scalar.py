"""dlcore.scalar.Value: gradients against torch (float64) and finite differences."""

import math

import pytest
import torch

from dlcore.scalar import Value


def _expr(a, b, c, exp, log, tanh, relu):
    d = a * b + c**2 - b / c
    e = tanh(d) + exp(a * 0.5) * relu(b - a) + log(c * c + 1.0)
    return e * d + 3.0 - 1.0 / (1.0 + e * e)


def test_value_gradients_match_torch():
    xs = (0.7, -1.3, 2.1)
    vs = [Value(x) for x in xs]
    out = _expr(*vs, Value.exp, Value.log, Value.tanh, Value.relu)
    out.backward()
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    tout = _expr(*ts, torch.exp, torch.log, torch.tanh, torch.relu)
    tout.backward()
    assert out.data == pytest.approx(tout.item(), rel=1e-12)
    for v, t in zip(vs, ts, strict=True):
        assert v.grad == pytest.approx(t.grad.item(), rel=1e-10)


def test_value_gradients_match_finite_differences():
    xs = [0.7, -1.3, 2.1]
    vs = [Value(x) for x in xs]
    _expr(*vs, Value.exp, Value.log, Value.tanh, Value.relu).backward()
    f = lambda *x: _expr(*[Value(v) for v in x], Value.exp, Value.log, Value.tanh, Value.relu).data
    for i in range(3):
        hi, lo = list(xs), list(xs)
        hi[i] += 1e-6
        lo[i] -= 1e-6
        assert vs[i].grad == pytest.approx((f(*hi) - f(*lo)) / 2e-6, rel=1e-6)


def test_backward_twice_gives_the_same_gradients():
    a = Value(1.5)
    out = a * a + a.exp()
    out.backward()
    first = a.grad
    out.backward()
    assert a.grad == first == pytest.approx(2 * 1.5 + math.exp(1.5))


def test_log_of_non_positive_raises():
    with pytest.raises(ValueError, match="positive"):
        Value(-1.0).log()
