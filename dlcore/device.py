"""Devices, seeds and size profiles.

A notebook in this book runs on a 2-core laptop CPU and, unchanged, on a CUDA GPU. Three small helpers
make that possible:

- :func:`get_device` picks the best available device (cuda > mps > cpu), overridable with ``DLCORE_DEVICE``.
- :func:`seed_everything` makes runs repeatable (python, numpy and torch generators); it returns nothing,
  so a setup cell that ends with it prints nothing. :func:`make_generator` gives a seeded
  ``torch.Generator`` of its own, for a data loader's shuffling.
- :func:`profile` and :func:`pick` choose sizes from one table: ``pick(cpu=2_000, gpu=50_000)``. The
  profile follows the device the notebook will run on (so ``DLCORE_DEVICE=cpu`` on a GPU machine gets the
  cpu sizes); ``DLCORE_PROFILE`` overrides it, and ``DLCORE_SMOKE=1`` shrinks every ``pick`` that offers a
  ``smoke`` size, so tests can run a notebook's GPU branch on the CPU at toy size.
"""

from __future__ import annotations

import os
import random
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

PROFILES = ("cpu", "gpu")
_DEVICES = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_device(choice, fix: str = "pass device='cpu'") -> torch.device:
    """``choice`` (a string such as ``"cuda:0"`` or a ``torch.device``) as a device that exists here.

    An unknown name raises a ``ValueError`` and an unavailable device a ``RuntimeError``; both say what
    was asked for and how to fix it (``fix`` completes the message).
    """
    try:
        dev = torch.device(choice)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in _DEVICES:
        raise ValueError(f"unknown device {choice!r}; expected one of {', '.join(_DEVICES)} (e.g. 'cuda:0'); "
                         f"{fix}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(choice)!r} requested but CUDA is not available on this machine; {fix}")
    if dev.type == "mps" and not _mps_available():
        raise RuntimeError(f"device {str(choice)!r} requested but Apple MPS is not available; {fix}")
    return dev


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device to compute on: ``cuda`` if present, else ``mps``, else ``cpu``.

    ``prefer`` (or the environment variable ``DLCORE_DEVICE``) forces one, e.g. ``"cpu"`` to compare
    speeds. Asking for a device that is not available raises a ``RuntimeError`` that says so.
    """
    choice = prefer or os.environ.get("DLCORE_DEVICE")
    if choice:
        return check_device(choice, fix="check the DLCORE_DEVICE environment variable: unset it or set it "
                                        "to 'cpu'")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


CUBLAS_WORKSPACE = ":4096:8"
"""The ``CUBLAS_WORKSPACE_CONFIG`` value that makes cuBLAS deterministic (NVIDIA's documented setting)."""


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA). Returns ``None``.

    With ``deterministic=True`` torch is asked for deterministic kernels where they exist (warning,
    not failing, where they do not), so a notebook's numbers are the same on every run on one machine.
    On CUDA, cuBLAS matrix products are deterministic only with a fixed workspace, set through the
    environment variable ``CUBLAS_WORKSPACE_CONFIG`` before CUDA starts; without it torch warns on every
    matmul. So this sets it to ``":4096:8"`` (unless it is already set) before it touches ``torch.cuda``.

    For a data loader's shuffling use :func:`make_generator`, which does not depend on this global state.
    """
    seed = _check_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)  # before CUDA initialises
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False


def make_generator(seed: int = 0) -> torch.Generator:
    """A fresh CPU ``torch.Generator`` seeded with ``seed``: pass it to a ``DataLoader`` as ``generator=``."""
    return torch.Generator().manual_seed(_check_seed(seed))


def profile() -> str:
    """The size profile: ``"gpu"`` when the notebook runs on CUDA, else ``"cpu"``.

    It follows :func:`get_device`, so ``DLCORE_DEVICE=cpu`` on a GPU machine gives the cpu sizes (an MPS
    device also gets the cpu sizes: the gpu sizes are measured on CUDA). ``DLCORE_PROFILE`` overrides.
    """
    forced = os.environ.get("DLCORE_PROFILE")
    if forced:
        if forced not in PROFILES:
            raise ValueError(f"DLCORE_PROFILE must be one of {PROFILES}, got {forced!r}")
        return forced
    return "gpu" if get_device().type == "cuda" else "cpu"


def is_smoke() -> bool:
    """True when ``DLCORE_SMOKE`` is set to a true value: tests run notebooks at toy size."""
    return os.environ.get("DLCORE_SMOKE", "").lower() in {"1", "true", "yes", "on"}


def pick(cpu: T, gpu: T, smoke: T | None = None) -> T:
    """Choose a size for the current profile: ``n_steps = pick(cpu=500, gpu=5_000)``.

    ``smoke`` is used instead when ``DLCORE_SMOKE=1`` (CI runs the GPU branch on a CPU that way).
    """
    if smoke is not None and is_smoke():
        return smoke
    return gpu if profile() == "gpu" else cpu


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads (default: ``OMP_NUM_THREADS`` or all cores); returns the number used."""
    if n is None:
        env = os.environ.get("OMP_NUM_THREADS", "0").strip() or "0"
        if not env.isdigit():
            raise ValueError(f"the environment variable OMP_NUM_THREADS must be a whole number, got {env!r}")
        n = int(env) or (os.cpu_count() or 1)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"number of threads must be an integer, got {n!r}")
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    return n


def describe() -> str:
    """One line about where this notebook runs, for the top of a chapter."""
    dev = get_device()
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else dev.type
    return (f"torch {torch.__version__} on {name}, profile={profile()!r}, "
            f"{torch.get_num_threads()} CPU thread(s)")
