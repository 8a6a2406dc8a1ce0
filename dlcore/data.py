"""Datasets the book uses, all available offline, plus opt-in downloads with checksums.

Three kinds of data, in the order the book meets them:

1. **Generated**: small 2-D sets (moons, circles, spirals, XOR, a ring of Gaussians, a swiss roll) and
   MNIST-1D (made by the ``mnist1d`` package's generator and cached on disk). Same seed, same data.
2. **Bundled**: scikit-learn's 8x8 ``digits`` and a text corpus that ships with Python
   (``pydoc_data.topics``: the help texts of the Python language).
3. **Opt-in downloads**: MNIST, Fashion-MNIST, CIFAR-10 and Tiny Shakespeare. Nothing is downloaded unless
   you pass ``download=True``; files are checked against a fixed hash and cached under ``DLCORE_DATA``
   (default ``~/.cache/dlcore``). Offline, you get an error that names the file and how to get it.

Arrays come back as numpy (``float32`` inputs, ``int64`` labels) in a :class:`Splits` bundle;
``splits.as_tensors()`` and :func:`make_loader` take them to PyTorch.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import tarfile
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from dlcore.device import make_generator

DATA_ENV = "DLCORE_DATA"


def data_dir() -> Path:
    """The cache folder for generated and downloaded data: ``$DLCORE_DATA`` or ``~/.cache/dlcore``."""
    root = Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "dlcore").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


# --------------------------------------------------------------------------------------------------
# Generated 2-D data sets: (X float32 of shape (n, 2), y int64 of shape (n,))
# --------------------------------------------------------------------------------------------------

def _check_n(n: int, minimum: int = 1) -> None:
    if not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"n must be an integer >= {minimum}, got {n!r}")


def _finish(X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(y))
    return X[order].astype(np.float32), y[order].astype(np.int64)


def make_moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles (2 classes): the smallest set a linear model cannot separate well."""
    _check_n(n, 2)
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0, t1 = rng.uniform(0, np.pi, n0), rng.uniform(0, np.pi, n - n0)
    X = np.concatenate([np.c_[np.cos(t0), np.sin(t0)], np.c_[1 - np.cos(t1), 0.5 - np.sin(t1)]])
    X += rng.normal(0, noise, X.shape)
    y = np.r_[np.zeros(n0), np.ones(n - n0)]
    return _finish(X, y, rng)


def make_circles(n: int = 200, noise: float = 0.05, factor: float = 0.5,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small circle inside a large one (2 classes); ``factor`` is the ratio of the radii."""
    _check_n(n, 2)
    if not 0 < factor < 1:
        raise ValueError(f"factor must lie in (0, 1), got {factor}")
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.r_[np.ones(n0), np.full(n - n0, factor)]
    X = np.c_[r * np.cos(t), r * np.sin(t)] + rng.normal(0, noise, (n, 2))
    y = np.r_[np.zeros(n0), np.ones(n - n0)]
    return _finish(X, y, rng)


def make_spirals(n: int = 300, classes: int = 2, noise: float = 0.2, turns: float = 1.5,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` interleaved spiral arms: needs a curved, many-piece decision boundary."""
    _check_n(n, classes)
    if classes < 2:
        raise ValueError(f"classes must be >= 2, got {classes}")
    rng = np.random.default_rng(seed)
    per = np.full(classes, n // classes)
    per[: n % classes] += 1
    Xs, ys = [], []
    for k, m in enumerate(per):
        r = np.linspace(0.15, 1.0, m)
        theta = 2 * np.pi * turns * r + 2 * np.pi * k / classes
        theta += rng.normal(0, noise * 0.5, m)
        Xs.append(np.c_[r * np.cos(theta), r * np.sin(theta)] * 2)
        ys.append(np.full(m, k))
    return _finish(np.concatenate(Xs), np.concatenate(ys), rng)


def make_xor(n: int = 200, noise: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four blobs at (+-1, +-1); the label is 1 where the signs differ (the XOR of the two inputs)."""
    _check_n(n, 4)
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    X = (2 * corners - 1) + rng.normal(0, noise, (n, 2))
    y = corners[:, 0] ^ corners[:, 1]
    return _finish(X, y, rng)


def make_ring(n: int = 400, k: int = 8, radius: float = 2.0, std: float = 0.05,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A ring of ``k`` Gaussians (the GAN chapter's mode-collapse test); labels are the mode index."""
    _check_n(n, 1)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    angle = 2 * np.pi * y / k
    X = radius * np.c_[np.cos(angle), np.sin(angle)] + rng.normal(0, std, (n, 2))
    return X.astype(np.float32), y.astype(np.int64)


def make_swiss_roll(n: int = 400, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D swiss roll. ``y`` is the position along the roll, binned into 4 classes."""
    _check_n(n, 1)
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(0, 1, n))
    X = np.c_[t * np.cos(t), t * np.sin(t)] / 5 + rng.normal(0, noise, (n, 2))
    y = np.minimum((t - 1.5 * np.pi) / (3 * np.pi) * 4, 3).astype(np.int64)
    return X.astype(np.float32), y


TOY_2D: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "moons": make_moons,
    "circles": make_circles,
    "spirals": make_spirals,
    "xor": make_xor,
    "ring": make_ring,
    "swiss_roll": make_swiss_roll,
}


def make_toy(name: str, n: int = 200, seed: int = 0, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Make a 2-D set by name (``"moons"``, ``"circles"``, ``"spirals"``, ``"xor"``, ``"ring"``, ``"swiss_roll"``)."""
    if name not in TOY_2D:
        raise ValueError(f"unknown 2-D data set {name!r}; choose one of: {', '.join(sorted(TOY_2D))}")
    return TOY_2D[name](n=n, seed=seed, **kwargs)


# --------------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------------

@dataclass
class Splits:
    """Train, validation and test arrays of one data set (numpy, or tensors after :meth:`as_tensors`)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        """Number of classes (largest label + 1 over all splits)."""
        ys = [a for a in (self.y_train, self.y_val, self.y_test) if len(a)]
        if not ys:
            raise ValueError("these splits hold no labels, so they have no number of classes")
        return int(max(int(a.max()) for a in ys) + 1)

    def sizes(self) -> dict[str, int]:
        """Number of examples per split."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def as_tensors(self, dtype: torch.dtype = torch.float32) -> Splits:
        """The same splits as torch tensors (inputs as ``dtype``, labels as ``int64``)."""
        out = {}
        for f in fields(self):
            a = getattr(self, f.name)
            t = torch.as_tensor(np.asarray(a))
            out[f.name] = t.to(dtype) if f.name.startswith("X") else t.long()
        return Splits(**out)


def _check_fraction(name: str, value) -> float:
    """``value`` as a float in [0, 1), or a ``ValueError`` that names the argument."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and 0 <= value < 1):
        raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")
    return float(value)


def _split_counts(n: int, val: float, test: float) -> tuple[int, int, int]:
    """(train, val, test) sizes of a group of ``n`` examples."""
    n_test, n_val = int(round(test * n)), int(round(val * n))
    return n - n_test - n_val, n_val, n_test


def _class_groups(y: np.ndarray, val: float, test: float, stratify: bool | None) -> list[np.ndarray] | None:
    """Index groups to split one by one (one per class), or ``None`` for a plain random split.

    Stratifying makes sense only for class labels (integers, booleans, strings, or floats that are all whole
    numbers) of which every class is common enough to put at least one example into each non-empty split.
    ``stratify=True`` demands it (a clear error otherwise); ``None`` stratifies exactly when it makes sense.
    """
    if stratify is False:
        return None
    continuous = y.ndim != 1 or (y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))))
    if continuous or y.dtype.kind == "c":
        if stratify:
            raise ValueError(f"cannot stratify by labels that look continuous (dtype {y.dtype}, shape {y.shape}, "
                             f"{len(np.unique(y))} distinct values): a stratified split needs class labels; "
                             "pass stratify=False for a plain random split (e.g. regression targets)")
        return None
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    rare = []
    for c, m in zip(classes.tolist(), counts):
        n_tr, n_va, n_te = _split_counts(int(m), val, test)
        if n_tr < 1 or (val > 0 and n_va < 1) or (test > 0 and n_te < 1):
            rare.append((c, int(m)))
    if rare:
        if stratify:
            c, m = rare[0]
            more = f" (and {len(rare) - 1} more rare class(es))" if len(rare) > 1 else ""
            raise ValueError(f"class {c!r} has only {m} example(s){more}: too few to put at least one into each "
                             f"of train/val/test with val={val}, test={test}; pass stratify=False for a plain "
                             "random split, or merge the rare classes")
        return None
    return [np.flatnonzero(inverse == k) for k in range(len(classes))]


def train_val_test_split(X: np.ndarray, y: np.ndarray, val: float = 0.15, test: float = 0.15,
                         seed: int = 0, stratify: bool | None = None) -> Splits:
    """Shuffle and split into train/val/test with the given fractions.

    ``stratify``: ``True`` splits every class in the same proportions (and raises a ``ValueError`` for
    continuous targets or for classes too rare to reach every split); ``False`` makes a plain random split;
    ``None`` (the default) stratifies whenever that makes sense (class labels, every class common enough) and
    makes a plain split otherwise, e.g. for regression targets. A split asked for (``val > 0`` or
    ``test > 0``) that would come out empty is an error, never a silent empty array.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    ok = all(isinstance(f, (int, float, np.integer, np.floating)) and not isinstance(f, bool) for f in (val, test))
    if not (ok and 0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val and test must be fractions in [0, 1) with val + test < 1, got {val!r}, {test!r}")
    if len(y) == 0:
        raise ValueError("cannot split an empty data set")
    rng = np.random.default_rng(seed)
    groups = _class_groups(y, val, test, stratify)
    if groups is None:
        groups = [np.arange(len(y))]
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for idx in groups:
        idx = rng.permutation(idx)
        _, n_val, n_test = _split_counts(len(idx), val, test)
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])
    take = {k: rng.permutation(np.concatenate(v)) for k, v in parts.items()}
    for name, frac in (("train", 1 - val - test), ("val", val), ("test", test)):
        if frac > 0 and len(take[name]) == 0:
            raise ValueError(f"the {name} fraction {frac:.3g} of {len(y)} examples gives no example: "
                             f"use more data or a larger {name} fraction" + ("" if name == "train" else
                                                                              f" (or {name}=0 for none)"))
    return Splits(X[take["train"]], y[take["train"]], X[take["val"]], y[take["val"]],
                  X[take["test"]], y[take["test"]])


# --------------------------------------------------------------------------------------------------
# Bundled and generated real data
# --------------------------------------------------------------------------------------------------

def load_digits(val: float = 0.15, test: float = 0.2, seed: int = 0, flatten: bool = False) -> Splits:
    """scikit-learn's 1,797 handwritten digits (8x8, ships with scikit-learn).

    Pixels are scaled to [0, 1]; images have shape ``(n, 1, 8, 8)`` or ``(n, 64)`` with ``flatten=True``.
    """
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    X = (d.images / 16.0).astype(np.float32)
    X = X.reshape(len(X), 64) if flatten else X[:, None]
    return train_val_test_split(X, d.target.astype(np.int64), val=val, test=test, seed=seed)


def _mnist1d_args(num_samples: int, seed: int) -> dict:
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.update(num_samples=num_samples, seed=seed)
    args.pop("url", None)
    return args


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)  # atomic: parallel notebooks never see a half-written file


def load_mnist1d(num_samples: int = 5000, seed: int = 42, val: float = 0.1, cache: bool = True) -> Splits:
    """MNIST-1D (Greydanus, 2020): 1-D signals of length 40 made from 10 digit templates.

    Generated locally by the ``mnist1d`` package (no download); the default 5,000 examples give the
    package's own 4,000/1,000 train/test split, and ``val`` of the training part is held out for
    validation. The result is cached on disk, keyed by the generator's arguments. Inputs have shape
    ``(n, 40)``.
    """
    from mnist1d.utils import ObjectView

    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 100:
        raise ValueError(f"num_samples must be an integer >= 100, got {num_samples!r}")
    val = _check_fraction("val", val)
    args = _mnist1d_args(num_samples, seed)
    key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
    path = data_dir() / "mnist1d" / f"mnist1d-{key}.npz"
    if cache and path.exists():
        with np.load(path) as z:
            d = {k: z[k] for k in z.files}
    else:
        from mnist1d.data import make_dataset

        state = np.random.get_state()  # the generator reseeds numpy's global RNG; keep the caller's
        try:
            raw = make_dataset(ObjectView(args))
        finally:
            np.random.set_state(state)
        d = {"x": raw["x"], "y": raw["y"], "x_test": raw["x_test"], "y_test": raw["y_test"]}
        if cache:
            _atomic_save_npz(path, **d)
    X, y = d["x"].astype(np.float32), d["y"].astype(np.int64)
    n_val = int(round(val * len(y)))
    return Splits(X[n_val:], y[n_val:], X[:n_val], y[:n_val],
                  d["x_test"].astype(np.float32), d["y_test"].astype(np.int64))


def load_text(name: str = "pydoc") -> str:
    """An offline text corpus. ``"pydoc"``: Python's bundled help topics (about 465k characters)."""
    if name != "pydoc":
        raise ValueError(f"unknown text corpus {name!r}; offline corpora: 'pydoc' "
                         "(Tiny Shakespeare is opt-in: load_tiny_shakespeare(download=True))")
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


class CharTokenizer:
    """Characters to integer ids and back; the vocabulary is the sorted set of characters seen."""

    def __init__(self, text: str) -> None:
        if not text:
            raise ValueError("cannot build a vocabulary from empty text")
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text`` as an int64 array; unknown characters raise a ``ValueError`` naming them."""
        try:
            return np.fromiter((self.stoi[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the vocabulary "
                             f"({self.vocab_size} characters)") from None

    def decode(self, ids) -> str:
        """Text of a sequence of ids (list, numpy array or tensor)."""
        ids = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids).ravel()
        if len(ids) and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"ids must lie in [0, {self.vocab_size}), got range [{ids.min()}, {ids.max()}]")
        return "".join(self.chars[i] for i in ids)


def make_associative_recall(n: int, num_pairs: int = 8, num_keys: int = 32, num_values: int = 32,
                            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` associative-recall sequences: ``num_pairs`` key-value pairs, then a query key (chapter 8).

    Vocabulary layout (``num_keys + num_values`` token ids): keys are ids ``0 .. num_keys - 1``, values are
    ids ``num_keys .. num_keys + num_values - 1``. Each row of ``X`` (int64, shape ``(n, 2*num_pairs + 1)``)
    reads ``k_1 v_1 k_2 v_2 ... k_P v_P q``: the ``P`` keys of a row are distinct (drawn without replacement),
    the values are drawn independently and may repeat, and the query ``q`` is one of the row's keys chosen
    uniformly. ``y`` (int64, shape ``(n,)``) is the value token paired with ``q``, so a model that predicts
    at the last position answers with a value id. The same seed gives the same sequences.
    """
    _check_n(n)
    for name, value in (("num_pairs", num_pairs), ("num_keys", num_keys), ("num_values", num_values)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if num_pairs > num_keys:
        raise ValueError(f"num_pairs={num_pairs} needs that many distinct keys, but num_keys={num_keys}")
    rng = np.random.default_rng(seed)
    keys = np.argsort(rng.random((n, num_keys)), axis=1)[:, :num_pairs]  # distinct keys in each row
    values = num_keys + rng.integers(0, num_values, size=(n, num_pairs))
    which = rng.integers(0, num_pairs, size=n)  # the position of the queried pair
    rows = np.arange(n)
    X = np.empty((n, 2 * num_pairs + 1), dtype=np.int64)
    X[:, 0:-1:2], X[:, 1:-1:2], X[:, -1] = keys, values, keys[rows, which]
    return X, values[rows, which].astype(np.int64)


# --------------------------------------------------------------------------------------------------
# PyTorch loaders
# --------------------------------------------------------------------------------------------------

def make_loader(X, y, batch_size: int = 64, shuffle: bool = True, seed: int = 0,
                dtype: torch.dtype = torch.float32) -> DataLoader:
    """A ``DataLoader`` over in-memory arrays, shuffled with its own seeded generator (repeatable).

    It yields the same batches, in the same order, as ``DataLoader(TensorDataset(X, y), batch_size,
    shuffle)``, but gathers each batch with one indexing operation instead of collating ``batch_size``
    single rows, which is most of the cost of a small model's training step on a CPU.
    """
    X, y = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X), torch.as_tensor(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    X = X.to(dtype) if X.is_floating_point() else X
    shuffle = shuffle and len(y) > 0  # torch refuses to shuffle nothing; an empty loader simply yields nothing
    dataset, gen = TensorDataset(X, y), make_generator(seed)
    order = RandomSampler(dataset, generator=gen) if shuffle else SequentialSampler(dataset)
    # batch_size=None: the sampler hands over a whole list of indices, and TensorDataset indexes with it.
    # The loader shares the sampler's generator (it draws a base seed from it each epoch, as DataLoader does).
    return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None,
                      generator=gen)


def loaders(splits: Splits, batch_size: int = 64, seed: int = 0) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train (shuffled), validation and test loaders for a :class:`Splits` bundle."""
    return (make_loader(splits.X_train, splits.y_train, batch_size, shuffle=True, seed=seed),
            make_loader(splits.X_val, splits.y_val, batch_size, shuffle=False),
            make_loader(splits.X_test, splits.y_test, batch_size, shuffle=False))


# --------------------------------------------------------------------------------------------------
# Opt-in downloads: hashed, cached, never automatic
# --------------------------------------------------------------------------------------------------

class DatasetNotAvailableError(FileNotFoundError):
    """A downloadable data set is not in the cache (and was not, or could not be, downloaded)."""


@dataclass(frozen=True)
class RemoteFile:
    url: str
    known_hash: str | None  # "sha256:..." or "md5:..."; None only where the content is checked otherwise


_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
REMOTE: dict[str, dict[str, RemoteFile]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": RemoteFile(
            _MNIST + "train-images-idx3-ubyte.gz",
            "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte.gz": RemoteFile(
            _MNIST + "train-labels-idx1-ubyte.gz",
            "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte.gz": RemoteFile(
            _MNIST + "t10k-images-idx3-ubyte.gz",
            "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte.gz": RemoteFile(
            _MNIST + "t10k-labels-idx1-ubyte.gz",
            "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": RemoteFile(_FASHION + "train-images-idx3-ubyte.gz",
                                                 "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte.gz": RemoteFile(_FASHION + "train-labels-idx1-ubyte.gz",
                                                 "md5:25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte.gz": RemoteFile(_FASHION + "t10k-images-idx3-ubyte.gz",
                                                "md5:bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte.gz": RemoteFile(_FASHION + "t10k-labels-idx1-ubyte.gz",
                                                "md5:bb300cfdad3c16e7a12a480ee83cd310"),
    },
    "cifar10": {
        "cifar-10-python.tar.gz": RemoteFile("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                                             "md5:c58f30108f718f92721af3b95e74349a"),
    },
    "tiny_shakespeare": {
        # No published hash; the loader checks the exact length of the text instead.
        "input.txt": RemoteFile("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                                "tinyshakespeare/input.txt", None),
    },
}
TINY_SHAKESPEARE_CHARS = 1_115_394


def file_hash(path: Path, alg: str = "sha256") -> str:
    """Hex digest of a file (streamed, so large archives do not fill memory)."""
    h = hashlib.new(alg)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, known_hash: str | None) -> None:
    if known_hash is None:
        return
    alg, _, expected = known_hash.partition(":")
    actual = file_hash(path, alg)
    if actual != expected:
        raise ValueError(f"{path} is corrupt or not the expected file: its {alg} is {actual}, expected "
                         f"{expected}. Delete it and fetch it again.")


def fetch(name: str, download: bool = False) -> dict[str, Path]:
    """Paths of a downloadable data set's files, checked against their hashes.

    Files are looked up in ``data_dir()/name``. A missing file is downloaded only with
    ``download=True`` (through ``pooch``); otherwise, and when the download fails (offline), a
    :class:`DatasetNotAvailableError` says which file is missing, where it should be and how to get it.
    """
    if name not in REMOTE:
        raise ValueError(f"unknown downloadable data set {name!r}; choose one of: {', '.join(sorted(REMOTE))}")
    folder = data_dir() / name
    paths = {}
    for fname, remote in REMOTE[name].items():
        path = folder / fname
        if not path.exists():
            if not download:
                raise DatasetNotAvailableError(
                    f"{name}: file {fname} is not in the cache folder {folder}. Nothing is downloaded by "
                    f"default: call dlcore.data.fetch({name!r}, download=True) once you are online, or copy "
                    f"the file there from {remote.url}. Set the environment variable {DATA_ENV} to use "
                    "another cache folder.")
            _download(remote, path)
        _verify(path, remote.known_hash)
        paths[fname] = path
    return paths


def _download(remote: RemoteFile, path: Path) -> None:
    try:
        import pooch
    except ImportError as e:  # pragma: no cover - pooch is a dependency, but say what to do
        raise ImportError("downloading needs the 'pooch' package: pip install pooch") from e
    try:
        pooch.retrieve(remote.url, known_hash=remote.known_hash, fname=path.name, path=path.parent,
                       progressbar=False)
    except Exception as e:
        raise DatasetNotAvailableError(
            f"could not download {remote.url} into {path.parent} ({type(e).__name__}: {e}). "
            "Check your internet connection, or copy the file there by hand.") from e


def parse_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format, gzipped or not) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type code {data[2]:#x}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but the file holds {arr.size} values")
    return arr.reshape(shape)


def load_mnist(kind: str = "mnist", val: float = 1 / 12, seed: int = 0, download: bool = False) -> Splits:
    """MNIST or Fashion-MNIST (``kind="fashion_mnist"``), 28x28 images scaled to [0, 1], shape (n, 1, 28, 28).

    Opt-in: needs the files in the cache or ``download=True``. ``val`` of the training set is held out.
    """
    if kind not in ("mnist", "fashion_mnist"):
        raise ValueError(f"kind must be 'mnist' or 'fashion_mnist', got {kind!r}")
    val = _check_fraction("val", val)
    p = fetch(kind, download=download)
    X = parse_idx(p["train-images-idx3-ubyte.gz"]).astype(np.float32)[:, None] / 255.0
    y = parse_idx(p["train-labels-idx1-ubyte.gz"]).astype(np.int64)
    Xt = parse_idx(p["t10k-images-idx3-ubyte.gz"]).astype(np.float32)[:, None] / 255.0
    yt = parse_idx(p["t10k-labels-idx1-ubyte.gz"]).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = int(round(val * len(y)))
    tr, va = order[n_val:], order[:n_val]
    return Splits(X[tr], y[tr], X[va], y[va], Xt, yt)


def load_cifar10(val: float = 0.1, seed: int = 0, download: bool = False) -> Splits:
    """CIFAR-10, 32x32 colour images scaled to [0, 1], shape (n, 3, 32, 32). Opt-in (see :func:`fetch`)."""
    val = _check_fraction("val", val)
    path = fetch("cifar10", download=download)["cifar-10-python.tar.gz"]
    train_x, test_x, test_y = [], None, None
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            base = os.path.basename(member.name)
            if not (base.startswith("data_batch_") or base == "test_batch"):
                continue
            batch = pickle.load(tar.extractfile(member), encoding="bytes")
            x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(batch[b"labels"], dtype=np.int64)
            if base == "test_batch":
                test_x, test_y = x, y
            else:
                train_x.append((base, x, y))
    if not train_x or test_x is None:
        raise ValueError(f"{path} does not contain the CIFAR-10 python batches")
    train_x.sort(key=lambda t: t[0])
    X = np.concatenate([t[1] for t in train_x]).astype(np.float32) / 255.0
    y = np.concatenate([t[2] for t in train_x])
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = int(round(val * len(y)))
    tr, va = order[n_val:], order[:n_val]
    return Splits(X[tr], y[tr], X[va], y[va], test_x.astype(np.float32) / 255.0, test_y)


def load_tiny_shakespeare(download: bool = False) -> str:
    """Tiny Shakespeare (1,115,394 characters). Opt-in; the offline default corpus is :func:`load_text`."""
    path = fetch("tiny_shakespeare", download=download)["input.txt"]
    text = path.read_text(encoding="utf-8")
    if len(text) != TINY_SHAKESPEARE_CHARS:
        raise ValueError(f"{path} has {len(text)} characters, expected {TINY_SHAKESPEARE_CHARS}: "
                         "delete it and fetch it again")
    return text


# --------------------------------------------------------------------------------------------------
# One entry point by name
# --------------------------------------------------------------------------------------------------

DATASETS: dict[str, Callable[..., object]] = {
    "digits": load_digits,
    "mnist1d": load_mnist1d,
    "pydoc": load_text,
    "mnist": lambda **kw: load_mnist("mnist", **kw),
    "fashion_mnist": lambda **kw: load_mnist("fashion_mnist", **kw),
    "cifar10": load_cifar10,
    "tiny_shakespeare": load_tiny_shakespeare,
}


def load(name: str, **kwargs):
    """Load any of the book's data sets by name; 2-D toy sets are under :func:`make_toy`."""
    if name in TOY_2D:
        return make_toy(name, **kwargs)
    if name not in DATASETS:
        known = sorted(DATASETS) + sorted(TOY_2D)
        raise ValueError(f"unknown data set {name!r}; choose one of: {', '.join(known)}")
    return DATASETS[name](**kwargs)
