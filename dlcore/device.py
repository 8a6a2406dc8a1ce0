"""Devices, seeds and size profiles.

A notebook in this book runs on a 2-core laptop CPU and, unchanged, on a CUDA GPU. Three small helpers
make that possible:

- :func:`get_device` picks the best available device (cuda > mps > cpu), overridable with ``DLCORE_DEVICE``.
- :func:`seed_everything` makes runs repeatable (python, numpy and torch generators).
- :func:`profile` and :func:`pick` choose sizes from one table: ``pick(cpu=2_000, gpu=50_000)``.
  ``DLCORE_PROFILE`` overrides the profile, and ``DLCORE_SMOKE=1`` shrinks every ``pick`` that offers a
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


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device to compute on: ``cuda`` if present, else ``mps``, else ``cpu``.

    ``prefer`` (or the environment variable ``DLCORE_DEVICE``) forces one, e.g. ``"cpu"`` to compare
    speeds. Asking for a device that is not available raises a ``RuntimeError`` that says so.
    """
    choice = prefer or os.environ.get("DLCORE_DEVICE")
    if choice:
        kind = choice.split(":")[0]
        if kind not in _DEVICES:
            raise ValueError(f"unknown device {choice!r}; expected one of {', '.join(_DEVICES)} "
                             "(check the DLCORE_DEVICE environment variable)")
        if kind == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} requested but CUDA is not available on this machine; "
                               "unset DLCORE_DEVICE or set it to 'cpu'")
        if kind == "mps" and not _mps_available():
            raise RuntimeError(f"device {choice!r} requested but Apple MPS is not available; "
                               "unset DLCORE_DEVICE or set it to 'cpu'")
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = True) -> torch.Generator:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA).

    With ``deterministic=True`` torch is asked for deterministic kernels where they exist (warning,
    not failing, where they do not), so a notebook's numbers are the same on every run on one machine.
    Returns a seeded ``torch.Generator`` for data loaders.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def profile() -> str:
    """The size profile: ``"gpu"`` when CUDA is available, else ``"cpu"``; ``DLCORE_PROFILE`` overrides."""
    forced = os.environ.get("DLCORE_PROFILE")
    if forced:
        if forced not in PROFILES:
            raise ValueError(f"DLCORE_PROFILE must be one of {PROFILES}, got {forced!r}")
        return forced
    return "gpu" if torch.cuda.is_available() else "cpu"


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
        n = int(os.environ.get("OMP_NUM_THREADS", "0")) or (os.cpu_count() or 1)
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
