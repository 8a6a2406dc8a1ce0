"""Reverse-mode automatic differentiation on numpy arrays: a small ``Tensor`` that behaves like torch's.

Every operation on a ``Tensor`` computes its value with numpy and, when gradients are wanted, records
(1) the tensors it was computed from (``_prev``) and (2) a function ``_backward`` that maps the gradient of
the output to the gradients of those inputs (the *vector-Jacobian product* of the operation).
``loss.backward()`` then visits the recorded graph in reverse topological order and applies the chain rule.

Semantics follow PyTorch, so the chapter can check one against the other:

- only *leaf* tensors created with ``requires_grad=True`` receive ``.grad`` (call ``retain_grad()`` on an
  intermediate tensor to keep its gradient too); ``.grad`` *accumulates* across ``backward`` calls until
  ``zero_grad()`` sets it back to ``None``;
- ``backward()`` needs a scalar output or an explicit ``grad`` of the output's shape;
- ``backward()`` frees the graph's saved arrays unless ``retain_graph=True``; a second ``backward``
  through a freed graph raises the same kind of error as PyTorch;
- inside ``with no_grad():`` nothing is recorded;
- broadcasting works as in numpy, and the gradient of a broadcast input is summed back to its shape.

The dtype of the data is kept (float64 by default, float32 if you pass float32 arrays): every op returns,
and every gradient has, the dtype of its inputs.

``Tensor(array)`` wraps the array *without copying* (like ``torch.from_numpy``), so later writes to the array
show in the tensor; ``tensor(data)`` copies (like ``torch.tensor``). ``np.asarray(t)`` gives ``t.data``,
and, as in PyTorch, refuses a tensor that requires grad (use ``t.detach()`` or ``t.data``).
Where NumPy and PyTorch differ, axes follow NumPy: ``sum(axis=())`` reduces nothing (``torch.sum(dim=())``
reduces everything), and ``transpose(*axes)`` permutes like ``np.transpose``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

Grads = tuple[np.ndarray | None, ...]
_GRAD_ENABLED = True


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager in which operations record no graph (evaluation, parameter updates)."""
    global _GRAD_ENABLED
    previous, _GRAD_ENABLED = _GRAD_ENABLED, False
    try:
        yield
    finally:
        _GRAD_ENABLED = previous


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it gets back ``shape``."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def _broadcast_shape(a: Tensor, b: Tensor, op: str) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together "
                         "(trailing dimensions must be equal or 1)") from None


def _expand_reduced(g: np.ndarray, shape: tuple[int, ...], axis, keepdims: bool) -> np.ndarray:
    """Re-insert the axes a reduction removed, so ``g`` broadcasts against the input of ``shape``."""
    if axis is None or keepdims:  # a scalar, or every reduced axis kept with size 1: broadcasts as it is
        return g
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return np.expand_dims(g, tuple(a % len(shape) for a in axes))


class Tensor:
    """A numpy array plus the bookkeeping reverse-mode differentiation needs.

    ``Tensor(data)`` does not copy a float array: the tensor and the caller's array share memory (integer
    data is converted to a new float64 array). Use ``tensor(data)`` for a copy. Passing a ``Tensor`` raises
    ``TypeError``: say whether you want its data shared (``t.detach()``) or copied (``tensor(t)``).
    """

    __array_priority__ = 100  # numpy scalar/array on the left defers to our __radd__ etc.

    def __init__(self, data, requires_grad: bool = False, dtype=None,
                 _prev: tuple[Tensor, ...] = (), _backward: Callable[[np.ndarray], Grads] | None = None,
                 _op: str = "") -> None:
        if isinstance(data, Tensor):
            raise TypeError("Tensor(t) got a Tensor: use t.detach() for a tensor sharing its data without "
                            "the graph, or tensor(t) for a copy")
        data = np.asarray(data, dtype=dtype)
        if not np.issubdtype(data.dtype, np.floating):
            data = data.astype(np.float64)
        self.data: np.ndarray = data
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self._prev = _prev
        self._backward = _backward
        self._op = _op
        self._retains_grad = False

    # ----- basic properties -------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    is_leaf = property(lambda self: self._backward is None, doc="True if no recorded op produced it.")

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        extra = f", grad_fn=<{self._op}>" if self._op else extra
        return f"Tensor({np.array2string(self.data, precision=4, separator=', ')}{extra})"

    def __len__(self) -> int:
        return len(self.data)

    def item(self) -> float:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The data itself, not a copy (as ``torch.Tensor.numpy`` shares memory)."""
        return self.data

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(t)``: the data, as ``torch.Tensor.__array__``; refused while it requires grad."""
        if self.requires_grad:
            raise RuntimeError("can't convert a Tensor that requires grad to a numpy array: "
                               "use t.detach() or t.data")
        return np.array(self.data, dtype=dtype, copy=copy)

    def detach(self) -> Tensor:
        """A new leaf holding the same data (shared memory, as in torch), cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (PyTorch's default: set it to ``None``)."""
        self.grad = None

    def retain_grad(self) -> None:
        """Ask ``backward`` to store this non-leaf tensor's gradient in ``.grad`` too."""
        self._retains_grad = True

    # ----- recording an operation -------------------------------------------------------------------
    def _wrap(self, other) -> Tensor:
        return other if isinstance(other, Tensor) else Tensor(np.asarray(other, dtype=self.dtype))

    @staticmethod
    def _make(data: np.ndarray, parents: tuple[Tensor, ...], backward: Callable[[np.ndarray], Grads],
              op: str) -> Tensor:
        """The output of an op: records parents and the backward rule only if some parent needs a gradient."""
        if _GRAD_ENABLED and any(p.requires_grad for p in parents):
            return Tensor(data, requires_grad=True, _prev=parents, _backward=backward, _op=op)
        return Tensor(data)

    # ----- elementwise arithmetic (broadcasting) ----------------------------------------------------
    def __add__(self, other) -> Tensor:
        other = self._wrap(other)
        _broadcast_shape(self, other, "add")
        a, b = self.shape, other.shape
        return self._make(self.data + other.data, (self, other),
                          lambda g: (_unbroadcast(g, a), _unbroadcast(g, b)), "add")

    def __mul__(self, other) -> Tensor:
        other = self._wrap(other)
        _broadcast_shape(self, other, "mul")
        x, y = self.data, other.data
        return self._make(x * y, (self, other),
                          lambda g: (_unbroadcast(g * y, x.shape), _unbroadcast(g * x, y.shape)), "mul")

    def __truediv__(self, other) -> Tensor:
        other = self._wrap(other)
        _broadcast_shape(self, other, "div")
        x, y = self.data, other.data
        return self._make(x / y, (self, other),
                          lambda g: (_unbroadcast(g / y, x.shape), _unbroadcast(-g * x / y**2, y.shape)),
                          "div")

    def __pow__(self, p: float) -> Tensor:
        if isinstance(p, Tensor):
            raise TypeError("only a number exponent is supported: x ** 2.0, not x ** tensor")
        x = self.data

        def backward(g: np.ndarray) -> Grads:
            if p == 0:  # x**0 is constant; p * x**(p-1) would be 0 * inf = nan at x = 0 (torch gives 0)
                return (np.zeros_like(g),)
            return (g * p * x ** (p - 1),)

        return self._make(x**p, (self,), backward, "pow")

    def __neg__(self) -> Tensor:
        return self._make(-self.data, (self,), lambda g: (-g,), "neg")

    def __sub__(self, other) -> Tensor:
        return self + (-self._wrap(other))

    def __radd__(self, other) -> Tensor:
        return self + other

    def __rmul__(self, other) -> Tensor:
        return self * other

    def __rsub__(self, other) -> Tensor:
        return self._wrap(other) - self

    def __rtruediv__(self, other) -> Tensor:
        return self._wrap(other) / self

    # ----- matrix product ---------------------------------------------------------------------------
    def __matmul__(self, other) -> Tensor:
        other = self._wrap(other)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError("matmul needs tensors with at least one dimension, got a scalar")
        inner = other.shape[-2] if other.ndim > 1 else other.shape[0]  # a vector's only axis
        if self.shape[-1] != inner:
            raise ValueError(f"matmul: shapes {self.shape} and {other.shape} are incompatible "
                             f"(inner dimensions {self.shape[-1]} and {inner} differ)")
        x, y = self.data, other.data
        need_x, need_y = self.requires_grad, other.requires_grad

        def backward(g: np.ndarray) -> Grads:
            # Treat vectors as matrices (a row for x, a column for y), as np.matmul does.
            x2 = x[None, :] if x.ndim == 1 else x
            y2 = y[:, None] if y.ndim == 1 else y
            g2 = np.expand_dims(g, -1) if y.ndim == 1 else g
            g2 = np.expand_dims(g2, -2) if x.ndim == 1 else g2
            # Only the operands that need a gradient get one: the data X of a first layer needs none, which
            # saves one of the backward pass's matrix products per network (2L - 1 rather than 2L).
            gx = _unbroadcast(g2 @ np.swapaxes(y2, -1, -2), x2.shape).reshape(x.shape) if need_x else None
            gy = _unbroadcast(np.swapaxes(x2, -1, -2) @ g2, y2.shape).reshape(y.shape) if need_y else None
            return gx, gy

        return self._make(x @ y, (self, other), backward, "matmul")

    def __rmatmul__(self, other) -> Tensor:
        return self._wrap(other) @ self

    # ----- reductions -------------------------------------------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        shape = self.shape
        # d(sum)/dx_i = 1: every input element receives the gradient of the sum it went into.
        return self._make(self.data.sum(axis=axis, keepdims=keepdims), (self,),
                          lambda g: (np.broadcast_to(_expand_reduced(g, shape, axis, keepdims), shape),),
                          "sum")

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        total = self.sum(axis=axis, keepdims=keepdims)
        return total * (total.data.size / self.data.size)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; ties share the gradient equally (as ``torch.amax``)."""
        x, shape = self.data, self.shape
        out = x.max(axis=axis, keepdims=keepdims)

        def backward(g: np.ndarray) -> Grads:
            mask = x == _expand_reduced(out, shape, axis, keepdims)
            count = mask.sum(axis=axis, keepdims=True).astype(x.dtype)  # int counts would give float64
            return (mask * _expand_reduced(g, shape, axis, keepdims) / count,)

        return self._make(out, (self,), backward, "max")

    # ----- shape ------------------------------------------------------------------------------------
    def reshape(self, *shape) -> Tensor:
        old = self.shape
        return self._make(self.data.reshape(*shape), (self,), lambda g: (g.reshape(old),), "reshape")

    def transpose(self, *axes) -> Tensor:
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = tuple(axes) if axes else tuple(reversed(range(self.ndim)))
        out = self.data.transpose(axes)  # numpy checks the axes (in range, each once)
        # Make the axes non-negative before inverting: argsort of (0, -1) is (1, 0), the wrong inverse.
        inverse = tuple(np.argsort([a % self.ndim for a in axes]))
        return self._make(out, (self,), lambda g: (g.transpose(inverse),), "transpose")

    T = property(lambda self: self.transpose())

    def __getitem__(self, index) -> Tensor:
        x = self.data

        def backward(g: np.ndarray) -> Grads:
            grad = np.zeros_like(x)
            np.add.at(grad, index, g)  # add.at, not +=: an index may select the same element twice
            return (grad,)

        return self._make(x[index], (self,), backward, "index")

    # ----- elementwise functions --------------------------------------------------------------------
    def exp(self) -> Tensor:
        y = np.exp(self.data)
        return self._make(y, (self,), lambda g: (g * y,), "exp")

    def log(self) -> Tensor:
        x = self.data
        return self._make(np.log(x), (self,), lambda g: (g / x,), "log")

    def tanh(self) -> Tensor:
        y = np.tanh(self.data)
        return self._make(y, (self,), lambda g: (g * (1 - y * y),), "tanh")

    def sigmoid(self) -> Tensor:
        y = 0.5 * (1 + np.tanh(0.5 * self.data))  # = 1 / (1 + e^-x), without overflow for large |x|
        return self._make(y, (self,), lambda g: (g * y * (1 - y),), "sigmoid")

    def relu(self) -> Tensor:
        x = self.data
        return self._make(np.maximum(x, 0), (self,), lambda g: (g * (x > 0),), "relu")

    def gelu(self) -> Tensor:
        """GELU, x Phi(x) with Phi the standard normal CDF (the exact form, as torch's default)."""
        from scipy.special import erf

        x = self.data
        cdf = 0.5 * (1 + erf(x / math.sqrt(2)))  # Python floats, not np.float64: they keep float32 float32
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return self._make(x * cdf, (self,), lambda g: (g * (cdf + x * pdf),), "gelu")

    def log_softmax(self, axis: int = -1) -> Tensor:
        """log of softmax along ``axis``, computed as x - logsumexp(x) with the max subtracted (stable)."""
        x = self.data
        shifted = x - x.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        return self._make(out, (self,), lambda g: (g - np.exp(out) * g.sum(axis=axis, keepdims=True),),
                          "log_softmax")

    # ----- the backward pass ------------------------------------------------------------------------
    def _topological_order(self) -> list[Tensor]:
        """Every tensor this one depends on (that needs a gradient), each after all its inputs."""
        order, visited, stack = [], set(), [(self, False)]
        while stack:  # iterative depth-first search: deep graphs do not hit Python's recursion limit
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
            elif id(node) not in visited:
                visited.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node._prev if p.requires_grad)
        return order

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf with ``requires_grad``.

        ``grad`` is the gradient of some scalar with respect to ``self``; it may be omitted only when
        ``self`` is a scalar (it is then 1). Unless ``retain_graph``, the graph is freed afterwards.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no recorded graph "
                               "(did you create the leaves with requires_grad=True, or run under no_grad?)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar outputs; "
                                   f"this output has shape {self.shape}, pass grad= of that shape")
            grad = np.ones_like(self.data)
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise RuntimeError(f"backward: grad has shape {grad.shape} but the output has shape {self.shape}")

        grads = {id(self): grad}  # gradient of the output with respect to each node, filled in reverse
        for node in reversed(self._topological_order()):
            g = grads.pop(id(node))  # complete: every consumer of node came earlier in this order
            if node.is_leaf or node._retains_grad:
                g = np.array(g, dtype=node.dtype)  # a fresh, writable array (g may be a broadcast view)
                node.grad = g if node.grad is None else node.grad + g
            if node.is_leaf:
                continue
            for parent, pg in zip(node._prev, node._backward(g), strict=True):
                if parent.requires_grad:
                    grads[id(parent)] = pg if id(parent) not in grads else grads[id(parent)] + pg
            if not retain_graph:
                node._backward = _freed(node._op)  # drop the saved arrays the closure holds


def _freed(op: str) -> Callable[[np.ndarray], Grads]:
    def backward(g: np.ndarray) -> Grads:
        raise RuntimeError(f"Trying to backward through the graph a second time (op '{op}'): its saved "
                           "values were freed by the first backward(). Use backward(retain_graph=True) "
                           "the first time if you need to call backward twice.")
    return backward


# ----- functions of several tensors, and losses ------------------------------------------------------
def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new tensor holding a *copy* of ``data`` (like ``torch.tensor``); integer data becomes float64.

    ``data`` may be a ``Tensor``: its data is copied and the graph left behind (a new leaf).
    """
    if isinstance(data, Tensor):
        data = data.data
    return Tensor(np.array(data, dtype=dtype), requires_grad=requires_grad)


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis; the gradient is split back into the pieces."""
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    sizes = [t.shape[axis] for t in tensors]
    bounds = np.cumsum(sizes)[:-1]
    out = np.concatenate([t.data for t in tensors], axis=axis)
    return Tensor._make(out, tuple(tensors), lambda g: tuple(np.split(g, bounds, axis=axis)), "concatenate")


def cross_entropy(logits: Tensor, targets: np.ndarray) -> Tensor:
    """Mean negative log-likelihood of integer ``targets`` under softmax(``logits``), fused and stable.

    The gradient with respect to the logits is (softmax - one_hot(targets)) / n, computed directly.
    """
    targets = np.asarray(targets)
    if logits.ndim != 2 or targets.shape != (logits.shape[0],):
        raise ValueError(f"cross_entropy expects logits (n, classes) and integer targets (n,), got "
                         f"{logits.shape} and {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"cross_entropy targets must be integer class indices, got dtype {targets.dtype}")
    k = logits.shape[1]
    bad = np.flatnonzero((targets < 0) | (targets >= k))
    if bad.size:  # a negative index would silently pick a class from the end, as numpy indexing does
        raise ValueError(f"cross_entropy targets must be class indices in 0..{k - 1} for {k} classes; "
                         f"target[{bad[0]}] = {targets[bad[0]]}. Map labels to 0..{k - 1} first "
                         f"(or give the logits more columns)")
    x = logits.data
    n, rows = len(targets), np.arange(len(targets))
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    def backward(g: np.ndarray) -> Grads:
        d = np.exp(log_probs)
        d[rows, targets] -= 1
        return (d * (g / n),)

    return Tensor._make(np.asarray(-log_probs[rows, targets].mean()), (logits,), backward,
                        "cross_entropy")


def accumulate_grad(param: Tensor, g: np.ndarray) -> None:
    """Add ``g`` to ``param.grad`` as PyTorch does until ``zero_grad``: layers with a hand-written backward
    pass (``dlcore.layers``, ``dlcore.recurrent``) fill their parameters' gradients this way."""
    g = np.asarray(g, dtype=param.dtype)
    param.grad = g.copy() if param.grad is None else param.grad + g


def zero_grad(params: Sequence[Tensor]) -> None:
    """Reset the gradients of all ``params`` (what ``optimizer.zero_grad()`` does in PyTorch)."""
    for p in params:
        p.zero_grad()
