"""A scalar autograd engine: each ``Value`` holds one number, its gradient, and how it was computed.

This is the engine the backpropagation chapter derives step by step. It is deliberately tiny and slow
(one Python object per number); ``dlcore.autograd.Tensor`` is the same idea applied to whole arrays.
"""

from __future__ import annotations

import math


class Value:
    """A scalar that remembers the operation and inputs that produced it, so it can backpropagate."""

    def __init__(self, data: float, _prev: tuple[Value, ...] = (), _op: str = "", label: str = "") -> None:
        self.data = float(data)
        self.grad = 0.0
        self._prev = _prev
        self._op = _op
        self.label = label
        self._backward = lambda: None  # pushes self.grad into the inputs' .grad (set by each op)

    def __repr__(self) -> str:
        return f"Value(data={self.data:.4g}, grad={self.grad:.4g})"

    def __add__(self, other) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward() -> None:
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, p: float) -> Value:
        if not isinstance(p, (int, float)):
            raise TypeError(f"only a number exponent is supported, got {type(p).__name__}")
        out = Value(self.data**p, (self,), f"**{p:g}")

        def _backward() -> None:
            if p != 0:  # x**0 is constant: gradient 0, as in torch (0 * 0.0**-1 would divide by zero)
                self.grad += p * self.data ** (p - 1) * out.grad
        out._backward = _backward
        return out

    def exp(self) -> Value:
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward() -> None:
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log needs a positive input, got {self.data}")
        out = Value(math.log(self.data), (self,), "log")

        def _backward() -> None:
            self.grad += out.grad / self.data
        out._backward = _backward
        return out

    def tanh(self) -> Value:
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward() -> None:
            self.grad += (1 - out.data**2) * out.grad
        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward() -> None:
            self.grad += (self.data > 0) * out.grad
        out._backward = _backward
        return out

    # Everything else is built from the operations above.
    def __neg__(self) -> Value:
        return self * -1

    def __sub__(self, other) -> Value:
        return self + (-other)

    def __truediv__(self, other) -> Value:
        return self * (other if isinstance(other, Value) else Value(other)) ** -1

    def __radd__(self, other) -> Value:
        return self + other

    def __rmul__(self, other) -> Value:
        return self * other

    def __rsub__(self, other) -> Value:
        return Value(other) - self

    def __rtruediv__(self, other) -> Value:
        return Value(other) / self

    def topological_order(self) -> list[Value]:
        """All values this one depends on, each listed after its inputs (iterative depth-first search)."""
        order, visited, stack = [], set(), [(self, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
            elif id(node) not in visited:
                visited.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node._prev)
        return order

    def backward(self) -> None:
        """Set ``.grad`` of every value in the graph to d(self)/d(value) (fresh, not accumulated)."""
        order = self.topological_order()
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            node._backward()
