"""A small, readable training loop for PyTorch models.

``fit`` is the loop every chapter would otherwise rewrite: for each epoch, train on every batch
(``zero_grad`` -> forward -> loss -> ``backward`` -> ``step``), then evaluate, and record the numbers in a
:class:`History`. It shows a ``tqdm`` progress bar, moves data to the model's device, and is deterministic
given a seed. The training chapter derives each piece; later chapters simply call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from dlcore.device import seed_everything

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
    """Fraction of rows whose largest logit is the true class (or, for one output, logit > 0 matches y)."""
    if logits.shape[0] != y.shape[0]:
        raise ValueError(f"logits and labels disagree on batch size: {tuple(logits.shape)} vs {tuple(y.shape)}")
    if logits.ndim == 1 or logits.shape[-1] == 1:
        pred = (logits.reshape(-1) > 0).long()
    else:
        pred = logits.argmax(dim=-1)
    return (pred == y.reshape(pred.shape)).float().mean().item()


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, loss_fn: LossFn | None = None,
             device: torch.device | None = None) -> dict[str, float]:
    """Mean loss (if ``loss_fn`` is given) and accuracy of ``model`` over ``loader``, in eval mode."""
    device = device or _model_device(model)
    was_training = model.training
    model.eval()
    n, total_loss, correct = 0, 0.0, 0.0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        out = model(X)
        b = y.shape[0]
        if loss_fn is not None:
            total_loss += loss_fn(out, y).item() * b
        correct += accuracy(out, y) * b
        n += b
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate() got an empty loader")
    result = {"acc": correct / n}
    if loss_fn is not None:
        result["loss"] = total_loss / n
    return result


def fit(model: nn.Module, train_loader: Iterable, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
        epochs: int, val_loader: Iterable | None = None, device: torch.device | None = None,
        scheduler=None, clip_grad: float | None = None, seed: int | None = None,
        progress: bool = True, desc: str = "training") -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader`` and return its :class:`History`.

    Records ``train_loss`` and ``train_acc`` (running means over the epoch) and, with a ``val_loader``,
    ``val_loss`` and ``val_acc``. ``scheduler.step()`` is called once per batch if given; ``clip_grad``
    clips the global gradient norm. With ``seed`` the run is repeatable (note: a loader's shuffling
    follows its own generator, see :func:`dlcore.data.make_loader`).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if seed is not None:
        seed_everything(seed)
    device = device or _model_device(model)
    model.to(device)
    history = History()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=True)
    for _ in bar:
        model.train()
        n, loss_sum, correct = 0, 0.0, 0.0
        for X, y in train_loader:
            X, y = X.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            out = model(X)
            loss = loss_fn(out, y)
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
            correct += accuracy(out.detach(), y) * b
        row = {"train_loss": loss_sum / n, "train_acc": correct / n}
        if val_loader is not None:
            ev = evaluate(model, val_loader, loss_fn, device)
            row.update(val_loss=ev["loss"], val_acc=ev["acc"])
        history.log(**row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()})
    return history
