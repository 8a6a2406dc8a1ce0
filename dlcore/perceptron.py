"""The perceptron: Rosenblatt's learning rule, its margin quantities, and its smooth cousin.

Chapter 2 derives everything here from scratch; this module is the tested version later chapters import.

- :class:`Perceptron` learns a linear threshold unit ``sign(w . x + b)`` with Rosenblatt's mistake-driven
  rule and records what the book draws: the mistakes in every epoch and the weights after every update.
- :func:`margin`, :func:`radius` and :func:`mistake_bound` compute the quantities of Novikoff's theorem:
  on data separated with margin gamma inside a ball of radius R, the rule makes at most (R / gamma)^2
  mistakes, whatever the order of the examples.
- :func:`make_separable` draws linearly separable data with a known margin, to measure that bound.
- :func:`logic_gate` returns hand-set weights of a McCulloch-Pitts threshold unit for AND, OR and NOT.
- :func:`logistic_loss` and :func:`logistic_grad`: the binary cross-entropy of logistic regression (the
  smooth version of the perceptron) and its gradient, derived by hand.

Labels: :meth:`Perceptron.fit` accepts labels in {-1, +1} or in {0, 1} (or booleans). Internally the rule
works with y in {-1, +1}, because then "x is misclassified" is the single test ``y (w . x + b) <= 0`` and
the update is ``w += lr * y * x``. :meth:`Perceptron.predict` answers in the convention it was fitted with.

Step at zero: prediction follows the book's convention (``book/notation.md``) and
:func:`dlcore.functional.step`: a score ``w . x + b`` of exactly 0 is the positive class, just as
:func:`logic_gate`'s units fire when ``w . x + b >= 0``. Training is stricter on purpose: the rule counts a
point *on* the boundary as a mistake (``y (w . x + b) <= 0``), so it keeps updating until every example has
a positive margin, and starting from ``w = 0`` it can move at all.
"""

from __future__ import annotations

import warnings

import numpy as np

from dlcore.functional import sigmoid, step


class NotConvergedWarning(UserWarning):
    """The perceptron still made mistakes in its last epoch (the data may not be linearly separable)."""


# --------------------------------------------------------------------------------------------------
# Input checks shared by the learner and the helpers
# --------------------------------------------------------------------------------------------------

def _check_X(X, name: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"expected {name} of shape (n, d) with n, d >= 1, got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def _check_y(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"expected labels y of shape ({n},), got {y.shape}")
    if y.dtype == bool:
        y = y.astype(np.int64)
    y = y.astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("labels y contain NaN or infinite values")
    return y


def to_signed(y, n: int | None = None) -> tuple[np.ndarray, str]:
    """Labels as floats in {-1, +1}, and the convention they came in: ``"01"`` or ``"pm1"``.

    ``{0, 1}`` (or booleans) map 0 -> -1 and 1 -> +1. A label set that contains only 1s is read as
    ``"pm1"``. Anything else (2, 0.5, -1 mixed with 0) is an error, because silently guessing would train
    the wrong classifier.
    """
    y = _check_y(y, len(np.asarray(y)) if n is None else n)
    values = set(np.unique(y).tolist())
    if values <= {-1.0, 1.0}:
        return y.copy(), "pm1"
    if values <= {0.0, 1.0}:
        return 2.0 * y - 1.0, "01"
    raise ValueError(f"labels must all lie in {{-1, +1}} or all in {{0, 1}}, got values {sorted(values)}")


def _check_wb(w, b, d: int) -> tuple[np.ndarray, float]:
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (d,):
        raise ValueError(f"expected weights w of shape ({d},), got {w.shape}")
    b = float(b)
    if not (np.all(np.isfinite(w)) and np.isfinite(b)):
        raise ValueError("weights w and bias b must be finite")
    return w, b


# --------------------------------------------------------------------------------------------------
# The learner
# --------------------------------------------------------------------------------------------------

class Perceptron:
    """Rosenblatt's perceptron: ``predict(x) = sign(w . x + b)``, trained one mistake at a time.

    Each epoch visits every example once (in index order, or in a fresh seeded order if ``shuffle``);
    whenever ``y_i (w . x_i + b) <= 0`` it updates ``w += lr * y_i * x_i`` and ``b += lr * y_i``.
    Training stops after the first epoch without a mistake (``converged_ = True``) or after
    ``max_epochs`` (``converged_ = False``, and a :class:`NotConvergedWarning`).

    Starting from ``w = 0, b = 0`` the learning rate only rescales ``(w, b)``, so the predictions and the
    number of mistakes do not depend on it.

    After ``fit``: ``w_``, ``b_``, ``mistakes_`` (list: mistakes in each epoch), ``n_updates_``,
    ``converged_``, ``w_history_`` (array ``(n_updates + 1, d)``: the weights before any update, then after
    each one) and ``b_history_`` (array ``(n_updates + 1,)``).
    """

    def __init__(self, lr: float = 1.0, max_epochs: int = 100, fit_intercept: bool = True,
                 shuffle: bool = False, seed: int = 0) -> None:
        if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if not isinstance(max_epochs, (int, np.integer)) or isinstance(max_epochs, bool) or max_epochs < 1:
            raise ValueError(f"max_epochs must be an integer >= 1, got {max_epochs!r}")
        self.lr = float(lr)
        self.max_epochs = int(max_epochs)
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.seed = seed

    def fit(self, X, y) -> Perceptron:
        """Run the perceptron rule on ``X`` (shape ``(n, d)``) and labels ``y`` in {-1, +1} or {0, 1}."""
        X = _check_X(X)
        ys, self.label_style_ = to_signed(y, len(X))
        n, d = X.shape
        rng = np.random.default_rng(self.seed)
        w, b = np.zeros(d), 0.0
        w_hist, b_hist = [w.copy()], [b]
        self.mistakes_: list[int] = []
        self.converged_ = False
        for _ in range(self.max_epochs):
            order = rng.permutation(n) if self.shuffle else range(n)
            mistakes = 0
            for i in order:
                if ys[i] * (X[i] @ w + b) <= 0:          # wrong side, or on the boundary
                    w = w + self.lr * ys[i] * X[i]
                    if self.fit_intercept:
                        b = b + self.lr * ys[i]
                    w_hist.append(w.copy())
                    b_hist.append(b)
                    mistakes += 1
            self.mistakes_.append(mistakes)
            if mistakes == 0:
                self.converged_ = True
                break
        self.w_, self.b_ = w, float(b)
        self.w_history_, self.b_history_ = np.array(w_hist), np.array(b_hist)
        self.n_updates_ = len(w_hist) - 1
        if not self.converged_:
            warnings.warn(f"the perceptron still made {self.mistakes_[-1]} mistake(s) in epoch "
                          f"{self.max_epochs} (max_epochs); the data may not be linearly separable",
                          NotConvergedWarning, stacklevel=2)
        return self

    def _check_fitted(self, X) -> np.ndarray:
        if not hasattr(self, "w_"):
            raise RuntimeError("this Perceptron is not fitted yet: call fit(X, y) first")
        X = _check_X(X)
        if X.shape[1] != len(self.w_):
            raise ValueError(f"expected X with {len(self.w_)} features (as in fit), got shape {X.shape}")
        return X

    def decision_function(self, X) -> np.ndarray:
        """The score ``w . x + b`` of each row: its sign is the class, ``|score| / ||w||`` the distance."""
        X = self._check_fitted(X)
        return X @ self.w_ + self.b_

    def predict(self, X) -> np.ndarray:
        """Class labels in the convention of ``fit``'s ``y``: ``step(w . x + b)`` (a score of 0 is the + class)."""
        pos = step(self.decision_function(X)).astype(np.int64)
        if self.label_style_ == "01":
            return pos
        return 2 * pos - 1

    def score(self, X, y) -> float:
        """Accuracy on ``(X, y)``."""
        ys, _ = to_signed(y, len(np.asarray(X)))
        return float(np.mean(2.0 * step(self.decision_function(X)) - 1.0 == ys))


# --------------------------------------------------------------------------------------------------
# Novikoff's quantities
# --------------------------------------------------------------------------------------------------

def margin(w, b, X, y, augmented: bool = False) -> float:
    """The margin of the hyperplane ``w . x + b = 0`` on labelled data: ``min_i y_i (w . x_i + b) / norm``.

    With ``augmented=False`` the norm is ``||w||``: the geometric distance from the hyperplane to the
    closest example (negative if some example is on the wrong side). With ``augmented=True`` it is
    ``||(w, b)||``, the margin of the unit vector ``(w, b) / ||(w, b)||`` on the points ``(x, 1)``: the
    quantity in Novikoff's bound for a perceptron that learns a bias.
    """
    X = _check_X(X)
    ys, _ = to_signed(y, len(X))
    w, b = _check_wb(w, b, X.shape[1])
    norm = np.sqrt(w @ w + (b * b if augmented else 0.0))
    if norm == 0:
        raise ValueError("the weight vector is zero: it defines no hyperplane")
    return float(np.min(ys * (X @ w + b)) / norm)


def radius(X, augmented: bool = False) -> float:
    """``R = max_i ||x_i||`` (or ``max_i ||(x_i, 1)||`` with ``augmented=True``), about the origin."""
    X = _check_X(X)
    sq = np.sum(X * X, axis=1) + (1.0 if augmented else 0.0)
    return float(np.sqrt(sq.max()))


def mistake_bound(w, b, X, y, fit_intercept: bool = True) -> float:
    """Novikoff's bound ``(R / gamma)^2`` on the number of perceptron updates, for separator ``(w, b)``.

    With ``fit_intercept`` the bias is learned as the weight of a constant input 1, so R and gamma are the
    augmented ones; otherwise ``b`` must be 0 and the plain ones are used.
    """
    if not fit_intercept and float(b) != 0.0:
        raise ValueError("without an intercept the separator must pass through the origin (b = 0)")
    gamma = margin(w, b, X, y, augmented=fit_intercept)
    if gamma <= 0:
        raise ValueError(f"(w, b) does not separate the data (margin {gamma:.3g} <= 0): no bound applies")
    return (radius(X, augmented=fit_intercept) / gamma) ** 2


def make_separable(n: int = 100, gamma: float = 0.1, dim: int = 2, bias: float = 0.0, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Linearly separable data with a known margin: returns ``X, y, w_star, b_star``.

    Points are uniform in the unit ball of dimension ``dim``; a random unit vector ``w_star`` and the
    offset ``b_star = bias`` define the true boundary; points closer to it than ``gamma`` are rejected and
    redrawn, and the labels (in {-1, +1}) are the side. So ``margin(w_star, b_star, X, y) >= gamma``.
    """
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    if not 0 < gamma < 1 - abs(bias):
        raise ValueError(f"gamma must lie in (0, 1 - |bias|) so that both sides have room, got {gamma}")
    rng = np.random.default_rng(seed)
    w_star = rng.normal(size=dim)
    w_star /= np.linalg.norm(w_star)
    rows: list[np.ndarray] = []
    count = 0
    while count < n:
        z = rng.normal(size=(4 * n, dim))
        r = rng.uniform(size=(4 * n, 1)) ** (1.0 / dim)
        pts = r * z / np.linalg.norm(z, axis=1, keepdims=True)
        keep = pts[np.abs(pts @ w_star + bias) >= gamma]
        rows.append(keep)
        count += len(keep)
    X = np.concatenate(rows)[:n]
    y = np.where(X @ w_star + bias > 0, 1, -1).astype(np.int64)
    return X, y, w_star, float(bias)


# --------------------------------------------------------------------------------------------------
# Logic gates and the smooth perceptron
# --------------------------------------------------------------------------------------------------

_GATES = {
    "and": (np.array([1.0, 1.0]), -2.0),   # fires when x1 + x2 >= 2
    "or": (np.array([1.0, 1.0]), -1.0),    # fires when x1 + x2 >= 1
    "not": (np.array([-1.0]), 0.0),        # fires when -x1 >= 0, i.e. x1 = 0
}


def logic_gate(name: str) -> tuple[np.ndarray, float]:
    """Weights and bias of a threshold unit ``[w . x + b >= 0]`` computing a gate on inputs in {0, 1}.

    ``name`` is ``"and"``, ``"or"`` or ``"not"`` (the bias is minus the McCulloch-Pitts threshold).
    """
    key = str(name).lower()
    if key not in _GATES:
        raise ValueError(f"unknown gate {name!r}; choose one of {sorted(_GATES)}")
    w, b = _GATES[key]
    return w.copy(), b


def logistic_loss(w, b, X, y) -> float:
    """Mean binary cross-entropy of ``p = sigmoid(w . x + b)`` against labels in {0, 1} (or {-1, +1}).

    Computed stably as ``mean(softplus(z) - y z)`` with ``softplus(z) = log(1 + e^z)``.
    """
    X = _check_X(X)
    ys, _ = to_signed(y, len(X))
    y01 = (ys + 1) / 2
    w, b = _check_wb(w, b, X.shape[1])
    z = X @ w + b
    return float(np.mean(np.logaddexp(0.0, z) - y01 * z))


def logistic_grad(w, b, X, y) -> tuple[np.ndarray, float]:
    """Gradient of :func:`logistic_loss`: ``(X^T (p - y) / n, mean(p - y))`` with ``p = sigmoid(Xw + b)``."""
    X = _check_X(X)
    ys, _ = to_signed(y, len(X))
    y01 = (ys + 1) / 2
    w, b = _check_wb(w, b, X.shape[1])
    r = sigmoid(X @ w + b) - y01
    return X.T @ r / len(X), float(r.mean())
