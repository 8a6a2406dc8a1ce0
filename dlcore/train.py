"""A small, readable training loop for PyTorch models.

``fit`` is the loop every chapter would otherwise rewrite: for each epoch, train on every batch
(``zero_grad`` -> forward -> loss -> ``backward`` -> ``step``), then evaluate, and record the numbers in a
:class:`History`. It shows a ``tqdm`` progress bar, moves data to the model's device, and is deterministic
given a seed. The training chapter derives each piece; later chapters simply call it.

Classification and regression: ``task="auto"`` (the default) looks at the first batch. Integer (or
boolean) targets are class labels, and so are float targets that are all 0 or 1 when the model gives one
output per example (binary cross-entropy on logits); then the accuracy is recorded next to the loss.
Anything else is regression: only the loss is recorded, because an accuracy of real-valued predictions
means nothing. Pass ``task="classification"`` or ``task="regression"`` to decide yourself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from dlcore.device import check_device, seed_everything

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

TASKS = ("auto", "classification", "regression")
"""Values of the ``task`` argument of :func:`fit` and :func:`evaluate`."""


@dataclass
class History:
    """Per-epoch metrics: ``history["val_acc"]`` is the list of validation accuracies, one per epoch."""

    metrics: dict[str, list[float]] = field(default_factory=dict)

    def log(self, **values: float) -> None:
        """Append one value per named metric (call once per epoch)."""
        for k, v in values.items():
            self.metrics.setdefault(k, []).append(float(v))

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.metrics:
            raise KeyError(f"no metric {key!r} recorded; recorded: {sorted(self.metrics)}")
        return self.metrics[key]

    def __contains__(self, key: str) -> bool:
        return key in self.metrics

    def __len__(self) -> int:
        return max((len(v) for v in self.metrics.values()), default=0)

    def last(self, key: str) -> float:
        """The most recent value of a metric."""
        return self[key][-1]

    def best(self, key: str, mode: str = "max") -> tuple[int, float]:
        """(epoch index, value) of the best value of a metric; ``mode`` is ``"max"`` or ``"min"``."""
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        vals = self[key]
        i = max(range(len(vals)), key=vals.__getitem__) if mode == "max" else \
            min(range(len(vals)), key=vals.__getitem__)
        return i, vals[i]


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of examples whose largest logit is the true class.

    ``logits`` has shape ``(n, k)`` (or ``(n, ..., k)``, e.g. one prediction per time step) with integer
    labels of shape ``(n,)`` (or ``(n, ...)``), or probability targets of the same shape as the logits (soft
    labels: their largest entry is the class). With one output per example (shape ``(n,)`` or ``(n, 1)``) the
    prediction is ``step(logit)``: class 1 where the logit is >= 0 (the book's step convention), else 0.
    """
    if logits.shape[0] != y.shape[0]:
        raise ValueError(f"logits and labels disagree on batch size: {tuple(logits.shape)} vs {tuple(y.shape)}")
    if logits.ndim == 1 or logits.shape[-1] == 1:
        pred = (logits.reshape(-1) >= 0).long()
    else:
        pred = logits.argmax(dim=-1)
        if y.shape == logits.shape and y.is_floating_point():  # soft labels (probabilities per class)
            y = y.argmax(dim=-1)
    if y.numel() != pred.numel():
        raise ValueError(f"accuracy needs one class label per example, got targets of shape {tuple(y.shape)} for "
                         f"outputs of shape {tuple(logits.shape)}; for real-valued targets pass task='regression'")
    return (pred == y.reshape(pred.shape)).float().mean().item()


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _resolve_device(model: nn.Module, device) -> torch.device:
    """``device`` checked to exist here (dlcore's error, not torch's), or the model's own device."""
    if device is None:
        return _model_device(model)
    return check_device(device, fix="pass device='cpu', or device=None to stay on the model's device "
                                    "(dlcore.device.get_device() picks the best one this machine has)")


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


def _infer_task(out: torch.Tensor, y: torch.Tensor) -> str:
    """``"classification"`` for class labels (see the module docstring), else ``"regression"``."""
    if not (y.is_floating_point() or y.is_complex()):
        return "classification"
    one_output = out.ndim == 1 or out.shape[-1] == 1
    if one_output and out.numel() == y.numel() and bool(((y == 0) | (y == 1)).all()):
        return "classification"
    return "regression"


def _unpack(batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A loader's batch as ``(X, y)`` on ``device``; anything else is a clear ``TypeError``."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        what = f"a {type(batch).__name__}" + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        raise TypeError(f"each batch must be a pair (inputs, targets), got {what}; a DataLoader over a "
                        "TensorDataset(X, y) (e.g. dlcore.data.make_loader) yields such pairs")
    X, y = batch
    return X.to(device), y.to(device)


def _loss(loss_fn: LossFn, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = loss_fn(out, y)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar tensor (the mean loss of the batch), got shape {shape}; "
                         "use reduction='mean'")
    return loss


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, loss_fn: LossFn | None = None,
             device: torch.device | str | None = None, task: str = "auto") -> dict[str, float]:
    """Mean loss (if ``loss_fn`` is given) and, for classification, accuracy of ``model`` over ``loader``.

    Runs in eval mode and afterwards restores the mode the model was in, even if the loader raises. With
    ``device`` the model is moved there first (default: the device its parameters are on). Returns
    ``{"acc": ..., "loss": ...}`` (``"loss"`` only with ``loss_fn``) for classification and ``{"loss": ...}``
    for regression, which therefore needs ``loss_fn``; ``task`` as in :func:`fit`.
    """
    task = _check_task(task)
    device = _resolve_device(model, device)
    model.to(device)
    was_training = model.training
    model.eval()
    n, total_loss, correct = 0, 0.0, 0.0
    try:
        for batch in loader:
            X, y = _unpack(batch, device)
            out = model(X)
            if task == "auto":
                task = _infer_task(out, y)
            if task == "regression" and loss_fn is None:
                raise ValueError("evaluate() of a regression model needs a loss_fn: there is no accuracy to "
                                 "report (pass task='classification' if the targets are class labels)")
            b = y.shape[0]
            if loss_fn is not None:
                total_loss += _loss(loss_fn, out, y).item() * b
            if task == "classification":
                correct += accuracy(out, y) * b
            n += b
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate() got an empty loader: it yielded no examples")
    result = {"acc": correct / n} if task == "classification" else {}
    if loss_fn is not None:
        result["loss"] = total_loss / n
    return result


def fit(model: nn.Module, train_loader: Iterable, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
        epochs: int, val_loader: Iterable | None = None, device: torch.device | str | None = None,
        scheduler=None, clip_grad: float | None = None, seed: int | None = None,
        progress: bool = True, desc: str = "training", task: str = "auto") -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader`` and return its :class:`History`.

    Records ``train_loss`` (the running mean over the epoch) and, with a ``val_loader``, ``val_loss``; for
    classification also ``train_acc`` and ``val_acc``. ``task`` is ``"auto"`` (decided from the first
    batch, see the module docstring), ``"classification"`` or ``"regression"``. ``scheduler.step()`` is
    called once per batch if given; ``clip_grad`` clips the global gradient norm to at most that value.
    With ``seed`` the run is repeatable: :func:`dlcore.device.seed_everything` is called before training,
    so dropout and other randomness inside the model are fixed (a loader's shuffling follows its own
    generator, see :func:`dlcore.data.make_loader`). ``device`` (default: where the model is) must exist
    on this machine, else a ``RuntimeError`` says so.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    task = _check_task(task)
    if clip_grad is not None and not (isinstance(clip_grad, (int, float)) and clip_grad > 0):
        raise ValueError(f"clip_grad must be a positive number (the largest gradient norm) or None, got {clip_grad!r}")
    device = _resolve_device(model, device)
    if seed is not None:
        seed_everything(seed)
    model.to(device)
    history = History()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=True)
    for _ in bar:
        model.train()
        n, loss_sum, correct = 0, 0.0, 0.0
        for batch in train_loader:
            X, y = _unpack(batch, device)
            optimizer.zero_grad(set_to_none=True)
            out = model(X)
            if task == "auto":
                task = _infer_task(out.detach(), y)
            loss = _loss(loss_fn, out, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} after {len(history)} epochs: "
                                         "lower the learning rate or check the data")
            loss.backward()
            if clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            b = y.shape[0]
            n += b
            loss_sum += loss.item() * b
            if task == "classification":
                correct += accuracy(out.detach(), y) * b
        if n == 0:
            raise ValueError("fit(): the train_loader yielded no batches (is the data set empty, or smaller "
                             "than a batch with drop_last=True?)")
        row = {"train_loss": loss_sum / n}
        if task == "classification":
            row["train_acc"] = correct / n
        if val_loader is not None:
            ev = evaluate(model, val_loader, loss_fn, device, task=task)
            row["val_loss"] = ev["loss"]
            if task == "classification":
                row["val_acc"] = ev["acc"]
        history.log(**row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()})
    return history
