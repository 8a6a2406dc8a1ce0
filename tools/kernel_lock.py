"""Start Jupyter kernels one at a time across parallel workers.

jupyter_client picks free TCP ports for a new kernel, releases them, and the kernel binds them a moment
later. Two workers starting kernels at the same moment (pytest-xdist running nbval, or the parallel book
builder) can pick the same port, and one kernel dies with "Address already in use". Holding a file lock
from choosing the ports until the kernel answers removes that race; executing notebooks stays parallel.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = Path(tempfile.gettempdir()) / f"dlcore-kernel-start-{os.getuid()}.lock"


class KernelStartLock:
    """An inter-process lock; ``release`` may be called more than once (and with hook arguments)."""

    def __init__(self) -> None:
        self._fh = None

    def acquire(self) -> KernelStartLock:
        self._fh = open(LOCK_FILE, "w")  # noqa: SIM115 - closed in release()
        fcntl.flock(self._fh, fcntl.LOCK_EX)
        return self

    def release(self, **_hook_kwargs) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


@contextmanager
def kernel_start_lock() -> Iterator[Callable[..., None]]:
    """Hold the lock while a kernel starts; yields ``release`` to pass as nbclient's ``on_notebook_start``
    hook, so the lock is freed once the kernel is up (and in any case when the block ends)."""
    lock = KernelStartLock().acquire()
    try:
        yield lock.release
    finally:
        lock.release()


def serialize_nbval_kernel_starts() -> None:
    """Make nbval start its kernels under the lock (patches ``nbval.kernel.start_new_kernel``)."""
    import nbval.kernel

    original = nbval.kernel.start_new_kernel
    if getattr(original, "_dlcore_locked", False):
        return

    def locked_start_new_kernel(*args, **kwargs):
        with kernel_start_lock():
            return original(*args, **kwargs)  # returns once the kernel has answered kernel_info

    locked_start_new_kernel._dlcore_locked = True
    nbval.kernel.start_new_kernel = locked_start_new_kernel
