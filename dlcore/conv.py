"""Convolution and pooling from scratch in numpy: forward and backward, through im2col.

Chapter 6 derives these (06_1_convolution): a convolution layer is a matrix product in disguise. ``im2col``
copies every receptive field of the input into a column, so the layer becomes one ``W @ cols``; its backward
is two more matrix products, and ``col2im`` (the adjoint of ``im2col``) sends the column gradients back to
the pixels they came from, adding where receptive fields overlap. Pooling reuses the same unrolling.

Layout as in PyTorch: inputs ``(N, C, H, W)`` (or ``(N, C, L)`` in 1-D), kernels ``(C_out, C_in, kH, kW)``.
What deep learning calls convolution is cross-correlation (the kernel is not flipped), like
``torch.nn.functional.conv2d``, which the tests match to 1e-6 in float64, forward and backward.
"""

from __future__ import annotations

from typing import Union

import numpy as np

IntOrPair = Union[int, tuple[int, int]]


# ----------------------------------------------------------------------------------------------- helpers
def _pair(value: IntOrPair, name: str, minimum: int) -> tuple[int, int]:
    """``3 -> (3, 3)``; check a pair of ints and that both are at least ``minimum``."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) if np.iterable(value) else (value,)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _geometry(stride: IntOrPair, padding: IntOrPair, dilation: IntOrPair) -> tuple[tuple[int, int], ...]:
    """Stride, padding and dilation as checked (height, width) pairs."""
    return _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)


def _check_ndim(x: np.ndarray, ndim: int, layout: str, what: str = "input") -> None:
    if x.ndim != ndim:
        raise ValueError(f"expected {what} of shape {layout} ({ndim} dimensions), got shape {x.shape}")


def conv_output_size(n: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis: ``(n + 2p - d(k - 1) - 1) // s + 1``.

    A kernel of size ``k`` with dilation ``d`` spans ``d(k - 1) + 1`` input positions; it fits in the padded
    input ``n + 2p`` at ``n + 2p - d(k - 1) - 1`` offsets after the first, of which every ``s``-th is used.
    Raises ``ValueError`` when the (dilated) kernel is larger than the padded input, so no output exists.
    """
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    if padding < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    if dilation < 1 or k < 1:
        raise ValueError(f"kernel size and dilation must be at least 1, got k={k}, dilation={dilation}")
    span = dilation * (k - 1) + 1
    if span > n + 2 * padding:
        raise ValueError(f"kernel spans {span} positions (size {k}, dilation {dilation}) but the padded input "
                         f"has only {n + 2 * padding} (size {n}, padding {padding}): no output position fits")
    return (n + 2 * padding - span) // stride + 1


# ----------------------------------------------------------------------------------------- im2col / col2im
def im2col(x: np.ndarray, kh: int, kw: int, stride: IntOrPair = 1, padding: IntOrPair = 0,
           dilation: IntOrPair = 1) -> np.ndarray:
    """Unroll every receptive field of ``x`` (N, C, H, W) into a column: returns (N, C*kh*kw, H_out*W_out).

    Row ``(c, i, j)`` (C order, matching ``w.reshape(C_out, -1)``) of column ``(r, s)`` holds the padded
    input at channel ``c``, row ``r*stride + i*dilation``, column ``s*stride + j*dilation``. The copy costs
    about ``kh*kw / (stride_h*stride_w)`` times the memory of the input; in exchange the convolution becomes
    one matrix product.
    """
    x = np.asarray(x)
    _check_ndim(x, 4, "(batch, channels, height, width)")
    (sh, sw), (ph, pw), (dh, dw) = _geometry(stride, padding, dilation)
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):  # one strided slice per kernel position: kh*kw numpy copies, no Python loop over pixels
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int, stride: IntOrPair = 1,
           padding: IntOrPair = 0, dilation: IntOrPair = 1) -> np.ndarray:
    """The adjoint of :func:`im2col`: scatter-add columns (N, C*kh*kw, L) back onto an input of ``x_shape``.

    An input pixel that sits in several receptive fields receives the sum of its copies, so
    ``<im2col(x), cols> == <x, col2im(cols)>`` for every ``x`` and ``cols``. This is exactly the backward of
    im2col, which is why the gradient of a convolution w.r.t. its input is ``col2im(W^T dY)``.
    """
    (sh, sw), (ph, pw), (dh, dw) = _geometry(stride, padding, dilation)
    n, c, h, w = x_shape
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    if cols.shape != (n, c * kh * kw, oh * ow):
        raise ValueError(f"expected columns of shape {(n, c * kh * kw, oh * ow)} for input {tuple(x_shape)}, "
                         f"got {cols.shape}")
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw] += cols[:, :, i, j]
    return xp[:, :, ph: ph + h, pw: pw + w]


# ------------------------------------------------------------------------------------------------ conv2d
def _check_conv_args(x: np.ndarray, w: np.ndarray) -> None:
    _check_ndim(x, 4, "(batch, channels, height, width)")
    _check_ndim(w, 4, "(out_channels, in_channels, kernel_height, kernel_width)", what="kernel")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"input has {x.shape[1]} channels but the kernel expects {w.shape[1]} "
                         f"(input shape {x.shape}, kernel shape {w.shape})")


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: IntOrPair = 1,
           padding: IntOrPair = 0, dilation: IntOrPair = 1) -> np.ndarray:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``: x (N, C_in, H, W), w (C_out, C_in, kH, kW).

    ``y[n, o, r, s] = b[o] + sum_{c, i, j} w[o, c, i, j] * xpad[n, c, r*s_h + i*d_h, s*s_w + j*d_w]``,
    computed as one matrix product ``w.reshape(C_out, -1) @ im2col(x)``. Returns (N, C_out, H_out, W_out).
    """
    x, w = np.asarray(x), np.asarray(w)
    _check_conv_args(x, w)
    n, _, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = _geometry(stride, padding, dilation)
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(wd, kw, sw, pw, dw)
    cols = im2col(x, kh, kw, stride, padding, dilation)                  # (N, C_in*kh*kw, L)
    y = np.einsum("ok,nkl->nol", w.reshape(c_out, -1), cols, optimize=True)  # (N, C_out, L)
    if b is not None:
        b = np.asarray(b)
        if b.shape != (c_out,):
            raise ValueError(f"expected a bias of shape ({c_out},), got {b.shape}")
        y = y + b[None, :, None]
    return y.reshape(n, c_out, oh, ow)


def conv2d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: IntOrPair = 1, padding: IntOrPair = 0,
                    dilation: IntOrPair = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw, db)`` of a loss through :func:`conv2d`, given ``dy = dL/dy`` (N, C_out, H_out, W_out).

    With ``Y = W X_col`` per example: ``dW = sum_n dY_n X_col_n^T`` (the input correlated with dy),
    ``dX = col2im(W^T dY)`` (a full convolution of dy with the flipped kernel, i.e. a transposed
    convolution), ``db = dy`` summed over batch and positions.
    """
    x, w, dy = np.asarray(x), np.asarray(w), np.asarray(dy)
    _check_conv_args(x, w)
    c_out, _, kh, kw = w.shape
    cols = im2col(x, kh, kw, stride, padding, dilation)
    n, _, length = cols.shape
    if dy.shape[:2] != (n, c_out) or dy.ndim != 4 or dy.shape[2] * dy.shape[3] != length:
        raise ValueError(f"dy has shape {dy.shape}, but the convolution's output has {n} examples, "
                         f"{c_out} channels and {length} positions")
    dy_flat = dy.reshape(n, c_out, length)
    dw = np.einsum("nol,nkl->ok", dy_flat, cols, optimize=True).reshape(w.shape)
    dcols = np.einsum("ok,nol->nkl", w.reshape(c_out, -1), dy_flat, optimize=True)
    dx = col2im(dcols, x.shape, kh, kw, stride, padding, dilation)
    db = dy.sum(axis=(0, 2, 3))
    return dx, dw, db


# ------------------------------------------------------------------------------------------------ conv1d
def _as_2d(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.asarray(x), np.asarray(w)
    _check_ndim(x, 3, "(batch, channels, length)")
    _check_ndim(w, 3, "(out_channels, in_channels, kernel_size)", what="kernel")
    return x[:, :, None, :], w[:, :, None, :]


def _int(value: int, name: str, minimum: int) -> int:
    """A 1-D stride, padding or dilation: an int or, as torch also accepts, a 1-tuple ``(s,)``; checked."""
    single = tuple(value) if np.iterable(value) else (value,)
    if len(single) != 1:
        raise ValueError(f"{name} must be an int or a 1-tuple of ints, got {value!r}")
    return _pair(single[0], name, minimum)[0]


def conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: int = 1, padding: int = 0,
           dilation: int = 1) -> np.ndarray:
    """1-D cross-correlation, as ``torch.nn.functional.conv1d``: x (N, C_in, L), w (C_out, C_in, k).

    A 1-D signal is an image of height 1, so this is :func:`conv2d` with a height-1 kernel.
    """
    x4, w4 = _as_2d(x, w)
    s, p, d = _int(stride, "stride", 1), _int(padding, "padding", 0), _int(dilation, "dilation", 1)
    return conv2d(x4, w4, b, (1, s), (0, p), (1, d))[:, :, 0, :]


def conv1d_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0,
                    dilation: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw, db)`` through :func:`conv1d`; ``dy`` has shape (N, C_out, L_out)."""
    x4, w4 = _as_2d(x, w)
    s, p, d = _int(stride, "stride", 1), _int(padding, "padding", 0), _int(dilation, "dilation", 1)
    dy = np.asarray(dy)
    _check_ndim(dy, 3, "(batch, out_channels, out_length)", what="dy")
    dx, dw, db = conv2d_backward(dy[:, :, None, :], x4, w4, (1, s), (0, p), (1, d))
    return dx[:, :, 0, :], dw[:, :, 0, :], db


# ----------------------------------------------------------------------------------------------- pooling
def _pool_cols(x: np.ndarray, k: IntOrPair, stride: IntOrPair | None) -> tuple[np.ndarray, tuple, tuple]:
    """Each channel's pooling windows as columns: (N*C, kh*kw, L), with the kernel and stride pairs."""
    x = np.asarray(x)
    _check_ndim(x, 4, "(batch, channels, height, width)")
    kh, kw = _pair(k, "kernel size", 1)
    st = _pair(k if stride is None else stride, "stride", 1)
    n, c, h, w = x.shape
    cols = im2col(x.reshape(n * c, 1, h, w), kh, kw, st)  # channels pooled separately: one channel per "image"
    return cols, (kh, kw), st


def _pool_shape(x_shape: tuple, k: tuple, st: tuple) -> tuple[int, int, int, int]:
    n, c, h, w = x_shape
    return n, c, conv_output_size(h, k[0], st[0]), conv_output_size(w, k[1], st[1])


def max_pool2d(x: np.ndarray, k: IntOrPair, stride: IntOrPair | None = None) -> np.ndarray:
    """Max over each ``k`` window, per channel (stride defaults to ``k``), as ``F.max_pool2d`` without padding."""
    cols, kk, st = _pool_cols(x, k, stride)
    return cols.max(axis=1).reshape(_pool_shape(np.shape(x), kk, st))


def max_pool2d_backward(dy: np.ndarray, x: np.ndarray, k: IntOrPair, stride: IntOrPair | None = None) -> np.ndarray:
    """Gradient w.r.t. ``x`` of :func:`max_pool2d`: each window's gradient goes to its (first) maximum only.

    The max is locally the identity on the winning entry and constant in the others, so every other entry of
    the window gets 0; an entry that wins in several overlapping windows collects the sum.
    """
    x = np.asarray(x)
    cols, kk, st = _pool_cols(x, k, stride)
    out_shape = _pool_shape(x.shape, kk, st)
    dy = np.asarray(dy)
    if dy.shape != out_shape:
        raise ValueError(f"expected dy of shape {out_shape}, got {dy.shape}")
    winner = cols.argmax(axis=1)                                        # (N*C, L)
    dcols = np.zeros_like(cols, dtype=dy.dtype)
    np.put_along_axis(dcols, winner[:, None, :], dy.reshape(winner.shape)[:, None, :], axis=1)
    n, c, h, w = x.shape
    return col2im(dcols, (n * c, 1, h, w), kk[0], kk[1], st).reshape(x.shape)


def avg_pool2d(x: np.ndarray, k: IntOrPair, stride: IntOrPair | None = None) -> np.ndarray:
    """Mean over each ``k`` window, per channel (stride defaults to ``k``), as ``F.avg_pool2d`` without padding."""
    cols, kk, st = _pool_cols(x, k, stride)
    return cols.mean(axis=1).reshape(_pool_shape(np.shape(x), kk, st))


def avg_pool2d_backward(dy: np.ndarray, x: np.ndarray, k: IntOrPair, stride: IntOrPair | None = None) -> np.ndarray:
    """Gradient w.r.t. ``x`` of :func:`avg_pool2d`: each window spreads ``dy / (kh*kw)`` evenly over its entries."""
    x, dy = np.asarray(x), np.asarray(dy)
    _check_ndim(x, 4, "(batch, channels, height, width)")
    kh, kw = _pair(k, "kernel size", 1)
    st = _pair(k if stride is None else stride, "stride", 1)
    out_shape = _pool_shape(x.shape, (kh, kw), st)
    if dy.shape != out_shape:
        raise ValueError(f"expected dy of shape {out_shape}, got {dy.shape}")
    n, c, h, w = x.shape
    flat = dy.reshape(n * c, 1, -1) / (kh * kw)
    dcols = np.broadcast_to(flat, (n * c, kh * kw, flat.shape[2]))
    return col2im(np.ascontiguousarray(dcols), (n * c, 1, h, w), kh, kw, st).reshape(x.shape)
