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

Mixed precision (``fit(..., amp=True)``, CUDA only): the forward pass and the loss run under
``torch.autocast`` with **float16**, and a ``GradScaler`` multiplies the loss before ``backward`` so that
small gradients do not underflow float16's range, then divides them out again before the step (and before
gradient clipping, so that ``clip_grad`` bounds the true gradient). A step whose scaled gradients overflowed
(inf or nan) is skipped by the scaler, which halves the scale; the scheduler is then not stepped either, so
that the learning-rate schedule counts the updates that really happened. We use float16 with a scaler rather
than bfloat16 without one because float16 runs fast on every CUDA GPU with tensor cores (Volta and later,
including the T4 of a free Colab session, which has no native bfloat16), and the scaler is the part worth
understanding; on a GPU with bfloat16 the scaler is harmless. The weights and the optimizer stay in float32.
Each call of ``fit`` starts a new scaler at torch's default scale (2**16): a run resumed from a checkpoint
with ``amp=True`` re-learns its scale in its first steps.

Checkpoints: :func:`save_checkpoint` writes the model's and the optimizer's state (Adam's moment estimates
are part of the optimizer's state: without them a resumed run is a different run) plus any extra fields
(epoch, :class:`History`, a loader generator's state) to one file, atomically; :func:`load_checkpoint`
loads it back, checks that it fits the model, and returns the dict.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
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


def _model_device(model) -> torch.device:
    """The device of the model's first parameter; the CPU for a model without parameters or a plain function.

    Shared by ``dlcore.text`` and ``dlcore.diffusion``, whose samplers also accept any callable as the model.
    """
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device("cpu")


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


# ---- mixed precision ------------------------------------------------------------------------------------

AMP_DTYPE = torch.float16
"""The low-precision type of ``fit(..., amp=True)`` (see the module docstring for why float16)."""


def _check_amp(amp: bool, device: torch.device) -> None:
    if not isinstance(amp, bool):
        raise ValueError(f"amp must be True or False, got {amp!r}")
    if amp and device.type != "cuda":
        raise ValueError(f"amp=True (mixed precision with float16 and a gradient scaler) needs a CUDA device, "
                         f"but training runs on {device.type!r}; pass amp=False "
                         f"(or amp=device.type == 'cuda' to use it wherever a GPU is present)")


def _autocast(device: torch.device):
    """The context in which the forward pass and the loss run in float16 where that is safe."""
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPE)


def _grad_scaler(device: torch.device):
    """A loss scaler for ``device`` (``torch.amp.GradScaler`` from torch 2.3, the CUDA one before)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device.type)
    return torch.cuda.amp.GradScaler()  # pragma: no cover - torch 2.2


def fit(model: nn.Module, train_loader: Iterable, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
        epochs: int, val_loader: Iterable | None = None, device: torch.device | str | None = None,
        scheduler=None, clip_grad: float | None = None, seed: int | None = None,
        progress: bool = True, desc: str = "training", task: str = "auto", amp: bool = False) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader`` and return its :class:`History`.

    Records ``train_loss`` (the running mean over the epoch) and, with a ``val_loader``, ``val_loss``; for
    classification also ``train_acc`` and ``val_acc``. ``task`` is ``"auto"`` (decided from the first
    batch, see the module docstring), ``"classification"`` or ``"regression"``. ``scheduler.step()`` is
    called after every optimizer step if given (once per batch, except for a step that mixed precision
    skips); ``clip_grad`` clips the global gradient norm to at most that value.
    With ``seed`` the run is repeatable: :func:`dlcore.device.seed_everything` is called before training,
    so dropout and other randomness inside the model are fixed (a loader's shuffling follows its own
    generator, see :func:`dlcore.data.make_loader`). ``device`` (default: where the model is) must exist
    on this machine, else a ``RuntimeError`` says so. ``amp=True`` trains in mixed precision (float16
    autocast and a gradient scaler, see the module docstring); it needs a CUDA device, and elsewhere raises
    a ``ValueError``. Validation runs in full precision.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    task = _check_task(task)
    if clip_grad is not None and not (isinstance(clip_grad, (int, float)) and clip_grad > 0):
        raise ValueError(f"clip_grad must be a positive number (the largest gradient norm) or None, got {clip_grad!r}")
    device = _resolve_device(model, device)
    _check_amp(amp, device)
    scaler = _grad_scaler(device) if amp else None
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
            with _autocast(device) if amp else contextlib.nullcontext():
                out = model(X)
                if task == "auto":
                    task = _infer_task(out.detach(), y)
                loss = _loss(loss_fn, out, y)
            if not torch.isfinite(loss):
                hint = "; with amp=True the float16 forward pass may have overflowed (try amp=False)" if amp else ""
                raise FloatingPointError(f"loss became {loss.item()} after {len(history)} epochs: "
                                         f"lower the learning rate or check the data{hint}")
            stepped = True
            if scaler is None:
                loss.backward()
                if clip_grad is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
                optimizer.step()
            else:
                scaler.scale(loss).backward()           # gradients of (scale * loss): no float16 underflow
                if clip_grad is not None:
                    scaler.unscale_(optimizer)          # divide by the scale first: clip the true gradient
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
                scale = scaler.get_scale()
                scaler.step(optimizer)                  # skips the step if a gradient is inf or nan
                scaler.update()                         # halve the scale after an overflow, double it slowly
                stepped = scaler.get_scale() >= scale   # the scale only drops when the step was skipped
            if scheduler is not None and stepped:       # a skipped step does not advance the schedule
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


# ---- checkpoints --------------------------------------------------------------------------------------------

_PLAIN = (torch.Tensor, int, float, bool, str, bytes, type(None), History)


def _check_plain(value, where: str) -> None:
    """Refuse, at save time, a value that ``torch.load(weights_only=True)`` would refuse at load time."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint field {where} has a key of type {type(k).__name__}; use str or int keys")
            _check_plain(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(f"checkpoint field {where} is a {type(value).__name__}; a checkpoint stores tensors, "
                        "numbers, strings, None, History and lists/dicts of them (convert numpy arrays with "
                        "torch.as_tensor), so that it loads safely with torch.load(weights_only=True)")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    **extra) -> Path:
    """Write ``model``'s state, ``optimizer``'s state (if given) and ``extra`` fields to ``path``.

    ``extra`` holds whatever a resumed run needs besides the weights: the epoch, the :class:`History`, a
    data loader's generator state (``loader.generator.get_state()``), torch's RNG state. The file is written
    to a temporary name in the same folder and then renamed, so a crash mid-write never leaves a truncated
    checkpoint where a good one was. Returns the path.
    """
    path = Path(path)
    for name, value in extra.items():
        _check_plain(value, repr(name))
    state = {"model": model.state_dict(),
             "optimizer": optimizer.state_dict() if optimizer is not None else None, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _list(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_fits(model: nn.Module, saved: dict) -> None:
    """A ``ValueError`` that lists what differs if the saved state dict does not fit ``model``."""
    own = model.state_dict()
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    shapes = [f"{k} {tuple(saved[k].shape)} in the checkpoint vs {tuple(v.shape)} in the model"
              for k, v in own.items() if k in saved and tuple(saved[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing from the checkpoint: {_list(missing)}")
    if unexpected:
        problems.append(f"in the checkpoint but not in the model: {_list(unexpected)}")
    if shapes:
        problems.append(f"shapes differ: {_list(shapes, 3)}")
    if problems:
        raise ValueError("the checkpoint does not fit this model (was it saved from another architecture?); "
                         + "; ".join(problems))


def _check_optimizer_fits(optimizer: torch.optim.Optimizer, saved: dict | None) -> None:
    if saved is None:
        raise ValueError("the checkpoint holds no optimizer state (it was saved without optimizer=...); "
                         "pass optimizer=None to load only the model")
    ours = [len(g["params"]) for g in optimizer.param_groups]
    theirs = [len(g["params"]) for g in saved["param_groups"]]
    if ours != theirs:
        raise ValueError(f"the optimizer state does not fit this optimizer: parameters per group {theirs} in the "
                         f"checkpoint vs {ours} here; build the optimizer over the same model.parameters()")


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``); return it.

    The returned dict has the entries ``"model"`` and ``"optimizer"`` (the state dicts; ``None`` if no
    optimizer was saved) and every extra field that was saved (``ckpt["epoch"]``, ``ckpt["history"]``).
    Tensors are loaded to ``map_location`` (default the CPU; ``load_state_dict`` then copies them to where
    the model lives). Everything is checked before anything is changed: a missing file raises
    ``FileNotFoundError``, and a state that does not fit the model or the optimizer a ``ValueError`` that
    says what differs. The file is read with ``torch.load(weights_only=True)``, which runs no code from it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: check the path, or write one first with "
                                "save_checkpoint(path, model, optimizer)")
    allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5: let History through
    try:
        with allow([History]) if allow else contextlib.nullcontext():
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{str(path)!r} holds objects that torch.load(weights_only=True) refuses to run "
                         f"({str(e).splitlines()[0]}); if you trust the file, load it with "
                         "torch.load(path, weights_only=False)") from e
    if not (isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict) and "optimizer" in ckpt):
        raise ValueError(f"{str(path)!r} is not a checkpoint written by save_checkpoint (no 'model' and "
                         "'optimizer' entries); a bare state dict loads with model.load_state_dict(torch.load(path))")
    _check_fits(model, ckpt["model"])
    if optimizer is not None:
        _check_optimizer_fits(optimizer, ckpt["optimizer"])
    model.load_state_dict(ckpt["model"])
    if optimizer is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    return ckpt
