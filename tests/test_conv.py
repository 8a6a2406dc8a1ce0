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


def _forward_and_backward_match_torch(ours, ours_backward, theirs, x, wt, b, rng, **geometry) -> None:
    """Our convolution's output and (dx, dw, db) for a random dy equal torch's, in float64.

    ``geometry`` (stride, padding, dilation) goes to both libraries; none given tests the defaults. With
    ``b=None`` there is no bias, and so no db to compare."""
    y = ours(x, wt, b, **geometry)
    xt, wtt = torch.tensor(x, requires_grad=True), torch.tensor(wt, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    yt = theirs(xt, wtt, bt, **geometry)
    _close(y, yt)
    dy = rng.normal(size=y.shape)
    yt.backward(torch.tensor(dy))
    dx, dw, db = ours_backward(dy, x, wt, **geometry)
    _close(dx, xt.grad)
    _close(dw, wtt.grad)
    if b is not None:
        _close(db, bt.grad)


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
    _forward_and_backward_match_torch(conv.conv2d, conv.conv2d_backward, F.conv2d, x, wt, b, rng,
                                      stride=stride, padding=padding, dilation=dilation)


@FAST
@given(n=st.integers(1, 3), c_in=st.integers(1, 3), c_out=st.integers(1, 3), k=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2), extra=st.integers(0, 8),
       seed=st.integers(0, 2**16))
def test_conv1d_forward_and_backward_match_torch(n, c_in, c_out, k, stride, padding, dilation, extra, seed):
    length = max(1, dilation * (k - 1) + 1 - 2 * padding) + extra
    rng = np.random.default_rng(seed)
    x, wt, b = rng.normal(size=(n, c_in, length)), rng.normal(size=(c_out, c_in, k)), rng.normal(size=c_out)
    _forward_and_backward_match_torch(conv.conv1d, conv.conv1d_backward, F.conv1d, x, wt, b, rng,
                                      stride=stride, padding=padding, dilation=dilation)


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


def test_default_geometry_is_stride_1_padding_0_dilation_1_as_in_torch():
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(2, 2, 5, 6)), rng.normal(size=(3, 2, 2, 3))
    _forward_and_backward_match_torch(conv.conv2d, conv.conv2d_backward, F.conv2d, x, w, None, rng)
    cols = conv.im2col(x, 2, 3)
    np.testing.assert_array_equal(cols, conv.im2col(x, 2, 3, 1, 0, 1))
    np.testing.assert_array_equal(conv.col2im(cols, x.shape, 2, 3), conv.col2im(cols, x.shape, 2, 3, 1, 0, 1))
    assert conv.conv_output_size(5, 3) == 3
    x1, w1 = rng.normal(size=(2, 2, 7)), rng.normal(size=(3, 2, 3))
    _forward_and_backward_match_torch(conv.conv1d, conv.conv1d_backward, F.conv1d, x1, w1, None, rng)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_with_rectangular_window_and_stride_matches_torch(kind):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 2, 7, 9))
    ours, ours_back, theirs = {"max": (conv.max_pool2d, conv.max_pool2d_backward, F.max_pool2d),
                               "avg": (conv.avg_pool2d, conv.avg_pool2d_backward, F.avg_pool2d)}[kind]
    for k, s in [((2, 3), (1, 2)), ((3, 2), (2, 1)), ((3, 2), None)]:
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt, k, s)
        _close(ours(x, k, s), yt)
        dy = rng.normal(size=tuple(yt.shape))
        yt.backward(torch.tensor(dy))
        _close(ours_back(dy, x, k, s), xt.grad)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_backward_stride_defaults_to_kernel_size(kind):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 2, 6, 6))
    ours_back, theirs = {"max": (conv.max_pool2d_backward, F.max_pool2d),
                         "avg": (conv.avg_pool2d_backward, F.avg_pool2d)}[kind]
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt, 2)
    dy = rng.normal(size=tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    _close(ours_back(dy, x, 2), xt.grad)


def test_unrolling_and_pooling_keep_the_input_dtype():
    x = np.arange(2 * 6 * 6, dtype=np.float32).reshape(1, 2, 6, 6)
    cols = conv.im2col(x, 3, 3)
    assert cols.dtype == np.float32
    assert conv.col2im(cols, x.shape, 3, 3).dtype == np.float32
    assert conv.max_pool2d(x, 2).dtype == np.float32


def test_max_pool_backward_of_an_integer_input_keeps_fractional_gradients():
    x = np.arange(16).reshape(1, 1, 4, 4)                       # integer pixels, float upstream gradient
    dx = conv.max_pool2d_backward(np.full((1, 1, 2, 2), 0.5), x, 2)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, 1::2, 1::2] = 0.5                            # the bottom-right entry wins every window
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("stride", [(2,), np.int64(2)])
def test_conv1d_accepts_an_int_or_a_1_tuple_like_torch(stride):
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(1, 2, 9)), rng.normal(size=(3, 2, 3))
    y = conv.conv1d(x, w, stride=stride, padding=(1,), dilation=(2,))
    _close(y, F.conv1d(torch.tensor(x), torch.tensor(w), stride=2, padding=1, dilation=2))
    dx, _, _ = conv.conv1d_backward(np.ones_like(y), x, w, stride=stride, padding=(1,), dilation=(2,))
    assert dx.shape == x.shape


X4, W4 = np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3))
X3, W3 = np.zeros((1, 1, 7)), np.zeros((1, 1, 3))


@pytest.mark.parametrize("call, message", [
    # the geometry arguments: type, arity and minimum, each naming the argument
    (lambda: conv.conv2d(X4, W4, stride=(1, 1, 1)), "stride must be an int or a pair of ints, got (1, 1, 1)"),
    (lambda: conv.conv2d(X4, W4, stride=(1.5, 1)), "stride must be an int or a pair of ints, got (1.5, 1)"),
    (lambda: conv.conv2d(X4, W4, stride=1.5), "stride must be an int or a pair of ints, got 1.5"),
    (lambda: conv.conv2d(X4, W4, padding=(True, 0)), "padding must be an int or a pair of ints"),
    (lambda: conv.conv2d(X4, W4, dilation=0), "dilation must be at least 1, got 0"),
    (lambda: conv.conv1d(X3, W3, stride=0), "stride must be at least 1, got 0"),
    (lambda: conv.conv1d(X3, W3, padding=-1), "padding must be at least 0, got -1"),
    (lambda: conv.conv1d(X3, W3, dilation=0), "dilation must be at least 1, got 0"),
    (lambda: conv.conv1d(X3, W3, stride=(1, 3)), "stride must be an int or a 1-tuple of ints, got (1, 3)"),
    (lambda: conv.conv1d_backward(np.zeros((1, 1, 5)), X3, W3, stride=0), "stride must be at least 1"),
    (lambda: conv.conv1d_backward(np.zeros((1, 1, 5)), X3, W3, padding=-1), "padding must be at least 0"),
    (lambda: conv.conv1d_backward(np.zeros((1, 1, 5)), X3, W3, dilation=0), "dilation must be at least 1"),
    (lambda: conv.max_pool2d(X4, 0), "kernel size must be at least 1, got 0"),
    (lambda: conv.avg_pool2d_backward(np.zeros((1, 1, 2, 2)), X4, 0), "kernel size must be at least 1, got 0"),
    (lambda: conv.avg_pool2d_backward(np.zeros((1, 1, 2, 2)), X4, 2, stride=0), "stride must be at least 1, got 0"),
    # conv_output_size on its own
    (lambda: conv.conv_output_size(5, 3, padding=-1), "padding must be non-negative, got -1"),
    (lambda: conv.conv_output_size(5, 0), "kernel size and dilation must be at least 1, got k=0, dilation=1"),
    (lambda: conv.conv_output_size(1, 4, padding=1),
     "kernel spans 4 positions (size 4, dilation 1) but the padded input has only 3 (size 1, padding 1)"),
    # wrong number of dimensions: the message names the expected layout
    (lambda: conv.im2col(np.zeros((5, 5)), 3, 3), "expected input of shape (batch, channels, height, width) (4 dim"),
    (lambda: conv.conv2d(np.zeros((1, 5, 5)), W4), "expected input of shape (batch, channels, height, width)"),
    (lambda: conv.conv2d(X4, np.zeros((3, 3))),
     "expected kernel of shape (out_channels, in_channels, kernel_height, kernel_width) (4 dimensions), got shape"),
    (lambda: conv.conv1d(np.zeros((1, 7)), W3), "expected input of shape (batch, channels, length) (3 dimensions)"),
    (lambda: conv.conv1d(X3, np.zeros((1, 3))),
     "expected kernel of shape (out_channels, in_channels, kernel_size) (3 dimensions), got shape (1, 3)"),
    (lambda: conv.conv1d_backward(np.zeros((1, 5)), X3, W3),
     "expected dy of shape (batch, out_channels, out_length) (3 dimensions), got shape (1, 5)"),
    (lambda: conv.max_pool2d(np.zeros((5, 5)), 2), "expected input of shape (batch, channels, height, width)"),
    (lambda: conv.avg_pool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((5, 5)), 2),
     "expected input of shape (batch, channels, height, width)"),
    # gradients or columns of the wrong shape
    (lambda: conv.col2im(np.zeros((1, 4, 9)), (1, 1, 4, 4), 3, 3),
     "expected columns of shape (1, 9, 4) for input (1, 1, 4, 4), got (1, 4, 9)"),
    (lambda: conv.conv2d_backward(np.zeros((1, 1, 2, 2)), X4, W4),
     "dy has shape (1, 1, 2, 2), but the convolution's output has 1 examples, 1 channels and 9 positions"),
    (lambda: conv.conv2d_backward(np.zeros((1, 2, 3, 3)), X4, W4), "dy has shape (1, 2, 3, 3), but"),
    (lambda: conv.max_pool2d_backward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 4, 4)), 2),
     "expected dy of shape (1, 1, 2, 2), got (1, 1, 3, 3)"),
    (lambda: conv.avg_pool2d_backward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 4, 4)), 2),
     "expected dy of shape (1, 1, 2, 2), got (1, 1, 3, 3)"),
])
def test_bad_geometry_dims_and_shapes_raise_a_value_error_that_names_them(call, message):
    with pytest.raises(ValueError, match=_escape(message)):
        call()
