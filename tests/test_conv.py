"""dlcore.conv: convolution and pooling, forward and backward, equal to torch in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcore import conv
from dlcore.gradcheck import check_gradient

TOL = 1e-6
FAST = settings(max_examples=25, deadline=None)


def _close(a, b):
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL)


@st.composite
def conv2d_case(draw):
    """A random but valid conv2d configuration (kernel fits in the padded input)."""
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 8))
    w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 8))
    seed = draw(st.integers(0, 2**16))
    return (n, c_in, c_out, h, w, kh, kw), stride, padding, dilation, seed


@FAST
@given(conv2d_case())
def test_conv2d_forward_and_backward_match_torch(case):
    (n, c_in, c_out, h, w, kh, kw), stride, padding, dilation, seed = case
    rng = np.random.default_rng(seed)
    x, wt, b = rng.normal(size=(n, c_in, h, w)), rng.normal(size=(c_out, c_in, kh, kw)), rng.normal(size=c_out)
    y = conv.conv2d(x, wt, b, stride, padding, dilation)
    xt, wtt, bt = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    yt = F.conv2d(xt, wtt, bt, stride=stride, padding=padding, dilation=dilation)
    _close(y, yt)
    dy = rng.normal(size=y.shape)
    yt.backward(torch.tensor(dy))
    dx, dw, db = conv.conv2d_backward(dy, x, wt, stride, padding, dilation)
    _close(dx, xt.grad)
    _close(dw, wtt.grad)
    _close(db, bt.grad)


@FAST
@given(n=st.integers(1, 3), c_in=st.integers(1, 3), c_out=st.integers(1, 3), k=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2), extra=st.integers(0, 8),
       seed=st.integers(0, 2**16))
def test_conv1d_forward_and_backward_match_torch(n, c_in, c_out, k, stride, padding, dilation, extra, seed):
    length = max(1, dilation * (k - 1) + 1 - 2 * padding) + extra
    rng = np.random.default_rng(seed)
    x, wt, b = rng.normal(size=(n, c_in, length)), rng.normal(size=(c_out, c_in, k)), rng.normal(size=c_out)
    y = conv.conv1d(x, wt, b, stride, padding, dilation)
    xt, wtt, bt = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    yt = F.conv1d(xt, wtt, bt, stride=stride, padding=padding, dilation=dilation)
    _close(y, yt)
    dy = rng.normal(size=y.shape)
    yt.backward(torch.tensor(dy))
    dx, dw, db = conv.conv1d_backward(dy, x, wt, stride, padding, dilation)
    _close(dx, xt.grad)
    _close(dw, wtt.grad)
    _close(db, bt.grad)


@FAST
@given(n=st.integers(1, 2), c=st.integers(1, 3), k=st.integers(1, 3), stride=st.integers(1, 3),
       extra_h=st.integers(0, 6), extra_w=st.integers(0, 6), kind=st.sampled_from(["max", "avg"]),
       seed=st.integers(0, 2**16))
def test_pooling_forward_and_backward_match_torch(n, c, k, stride, extra_h, extra_w, kind, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, k + extra_h, k + extra_w))  # continuous values: no ties inside a window
    ours, ours_back, theirs = {"max": (conv.max_pool2d, conv.max_pool2d_backward, F.max_pool2d),
                               "avg": (conv.avg_pool2d, conv.avg_pool2d_backward, F.avg_pool2d)}[kind]
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt, k, stride)
    y = ours(x, k, stride)
    _close(y, yt)
    dy = rng.normal(size=y.shape)
    yt.backward(torch.tensor(dy))
    _close(ours_back(dy, x, k, stride), xt.grad)


def test_pooling_stride_defaults_to_kernel_size():
    x = np.arange(2 * 3 * 6 * 6, dtype=np.float64).reshape(2, 3, 6, 6)
    _close(conv.max_pool2d(x, 2), F.max_pool2d(torch.tensor(x), 2))
    _close(conv.avg_pool2d(x, 3), F.avg_pool2d(torch.tensor(x), 3))


def test_conv2d_backward_passes_finite_difference_check():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 2, 5, 4)), rng.normal(size=(3, 2, 3, 2)), rng.normal(size=3)
    args = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    dy = rng.normal(size=conv.conv2d(x, w, b, **args).shape)
    dx, dw, db = conv.conv2d_backward(dy, x, w, **args)
    check_gradient(lambda x_: np.sum(dy * conv.conv2d(x_, w, b, **args)), x, dx)
    check_gradient(lambda w_: np.sum(dy * conv.conv2d(x, w_, b, **args)), w, dw)
    check_gradient(lambda b_: np.sum(dy * conv.conv2d(x, w, b_, **args)), b, db)


def test_max_pool_backward_passes_finite_difference_check():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 2, 5, 5))
    dy = rng.normal(size=conv.max_pool2d(x, 3, 2).shape)
    check_gradient(lambda x_: np.sum(dy * conv.max_pool2d(x_, 3, 2)), x, conv.max_pool2d_backward(dy, x, 3, 2),
                   floor=1e-4)


@FAST
@given(conv2d_case())
def test_col2im_is_the_adjoint_of_im2col(case):
    (n, c_in, _, h, w, kh, kw), stride, padding, dilation, seed = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c_in, h, w))
    cols = conv.im2col(x, kh, kw, stride, padding, dilation)
    c = rng.normal(size=cols.shape)
    back = conv.col2im(c, x.shape, kh, kw, stride, padding, dilation)
    assert back.shape == x.shape
    assert np.isclose(np.sum(cols * c), np.sum(x * back), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n, k, s, p, d", [(5, 3, 1, 0, 1), (5, 3, 1, 1, 1), (7, 3, 2, 1, 1), (8, 3, 1, 2, 2),
                                            (1, 1, 1, 0, 1), (10, 4, 3, 0, 1)])
def test_conv_output_size_matches_torch(n, k, s, p, d):
    y = F.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, dilation=d)
    assert conv.conv_output_size(n, k, s, p, d) == y.shape[-1]


@pytest.mark.parametrize("call, message", [
    (lambda: conv.conv2d(np.zeros((3, 5, 5)), np.zeros((2, 3, 3, 3))), "4 dimensions"),
    (lambda: conv.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3))), "kernel of shape"),
    (lambda: conv.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 4, 3, 3))), "3 channels but the kernel expects 4"),
    (lambda: conv.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3))), "no output position fits"),
    (lambda: conv.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)), padding=0, dilation=2), "no output"),
    (lambda: conv.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), stride=0), "stride must be at least 1"),
    (lambda: conv.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=-1), "padding must be at least 0"),
    (lambda: conv.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((2, 1, 3, 3)), b=np.zeros(3)), "bias of shape"),
    (lambda: conv.conv1d(np.zeros((1, 5)), np.zeros((1, 1, 3))), "(batch, channels, length)"),
    (lambda: conv.conv1d(np.zeros((1, 2, 5)), np.zeros((1, 1, 3))), "2 channels but the kernel expects 1"),
    (lambda: conv.max_pool2d(np.zeros((1, 1, 2, 2)), 3), "no output position fits"),
    (lambda: conv.avg_pool2d(np.zeros((1, 1, 4, 4)), 2, stride=0), "stride must be at least 1"),
    (lambda: conv.conv_output_size(5, 3, stride=0), "stride must be at least 1"),
])
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=_escape(message)):
        call()


def _escape(text):
    import re
    return re.escape(text)


def test_padding_makes_a_kernel_fit_that_would_not_otherwise():
    y = conv.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), padding=1)
    assert y.shape == (1, 1, 2, 2) and np.all(y == 4)
