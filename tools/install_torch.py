"""Install PyTorch into the current interpreter before the rest of the requirements.

Why a script: a plain ``pip install torch`` on a Linux machine without a GPU pulls a multi-GB CUDA
build. This picks the smallest build that works here:

1. torch already importable            -> keep it (never reinstall; Colab, existing venvs)
2. an NVIDIA GPU is present            -> ``pip install "torch>=2.2"`` (the CUDA build is what you want)
3. no GPU: a local CPU wheel (pip's find-links, as on the book's CI machines) -> ``torch==2.13.0``
4. no GPU: PyTorch's CPU wheel index    -> ``--index-url https://download.pytorch.org/whl/cpu``
5. last resort                          -> ``pip install "torch>=2.2"``
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

CPU_LOCAL = "torch==2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
ANY = "torch>=2.2"


def pip(*args: str) -> bool:
    """Run pip in this interpreter; True when it succeeded."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", *args]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode == 0


def main() -> int:
    if importlib.util.find_spec("torch") is not None:
        print("torch is already installed; leaving it alone.")
        return 0
    if shutil.which("nvidia-smi"):
        return 0 if pip(ANY) else 1
    # --no-index: only local wheels (pip's find-links); fails at once where there are none.
    # The wheel goes in first without its dependencies, then pip resolves those normally.
    if pip("--no-index", "--no-deps", CPU_LOCAL):
        return 0 if pip(CPU_LOCAL) else 1
    if pip("--timeout", "20", "--retries", "1", "--index-url", CPU_INDEX, ANY):
        return 0
    return 0 if pip(ANY) else 1


if __name__ == "__main__":
    sys.exit(main())
