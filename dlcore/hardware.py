"""FLOPs, bytes and the roofline: how fast *can* a computation run, and how fast did it?

Two numbers bound the speed of any kernel on any chip: the peak rate of arithmetic (FLOP/s) and the
bandwidth of the memory that feeds it (bytes/s). A kernel that performs ``F`` floating-point operations
while moving ``B`` bytes has **arithmetic intensity** ``I = F / B`` (FLOP per byte), and the **roofline
model** (Williams, Waterman & Patterson 2009) says it can reach at most

    attainable(I) = min(peak, I * bandwidth)

FLOP/s: memory-bound below the **ridge point** ``I* = peak / bandwidth``, compute-bound above it.

Conventions: one multiply-add is **2 FLOPs** (the convention of vendor datasheets and of
``dlcore.models.gpt.flops_per_token``); byte counts are the *minimal* traffic (each operand read once,
each result written once), so the intensities here are upper bounds for a real kernel.

- :func:`matmul_flops`, :func:`matmul_bytes`, :func:`attention_flops`: operation and byte counts.
- :func:`arithmetic_intensity`, :func:`roofline`, :func:`ridge_point`: the model.
- :func:`measure_gemm`: a measured matrix-product rate in GFLOP/s (numpy or torch, any device).
- :func:`peak_flops`, :func:`peak_bandwidth`: published dense peaks of common accelerators (vendor
  datasheets), ``None`` for a chip not in the table.
- :func:`mfu`: model FLOPs utilization, achieved FLOP/s over peak (Chowdhery et al. 2022).
"""

from __future__ import annotations

import re

import numpy as np
import torch

from dlcore.timing import best_time

# ---------------------------------------------------------------------------------------------- counting


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def matmul_flops(m: int, k: int, n: int) -> int:
    """FLOPs of the product of an (m, k) and a (k, n) matrix: ``2 m k n`` (m n outputs, k multiply-adds each)."""
    m, k, n = (_positive_int(name, v) for name, v in (("m", m), ("k", k), ("n", n)))
    return 2 * m * k * n


def matmul_bytes(m: int, k: int, n: int, bytes_per_element: int = 4) -> int:
    """Minimal memory traffic of an (m, k) @ (k, n) product: read both inputs once, write the output once."""
    m, k, n = (_positive_int(name, v) for name, v in (("m", m), ("k", k), ("n", n)))
    return (m * k + k * n + m * n) * _positive_int("bytes_per_element", bytes_per_element)


def attention_flops(seq_q: int, seq_k: int, d_head: int, n_heads: int = 1, batch: int = 1) -> int:
    """Matmul FLOPs of scaled dot-product attention, ``softmax(Q K^T / sqrt(d)) V``, per call.

    Two products per head: the scores ``Q K^T`` ((seq_q, d) @ (d, seq_k)) and the mixture ``A V``
    ((seq_q, seq_k) @ (seq_k, d)), each ``2 seq_q seq_k d`` FLOPs, so ``4 seq_q seq_k d`` per head. The
    softmax and the scaling (a few FLOPs per score) are left out, as in the usual counts; a causal mask
    does not change the dense count (a kernel that skips masked blocks saves up to half of it).
    """
    args = {"seq_q": seq_q, "seq_k": seq_k, "d_head": d_head, "n_heads": n_heads, "batch": batch}
    seq_q, seq_k, d_head, n_heads, batch = (_positive_int(k, v) for k, v in args.items())
    return 4 * batch * n_heads * seq_q * seq_k * d_head


# ------------------------------------------------------------------------------------------- the model


def arithmetic_intensity(flops: float, bytes_moved: float) -> float:
    """FLOP per byte of memory traffic: ``flops / bytes_moved``."""
    if not np.isfinite(flops) or flops < 0:
        raise ValueError(f"flops must be a finite number >= 0, got {flops!r}")
    if not np.isfinite(bytes_moved) or bytes_moved <= 0:
        raise ValueError(f"bytes_moved must be a finite number > 0, got {bytes_moved!r}")
    return flops / bytes_moved


def _positive(name: str, value) -> float:
    if value is None or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def roofline(intensity, peak_flops: float, bandwidth: float):
    """Attainable FLOP/s at arithmetic ``intensity`` (FLOP/byte): ``min(peak_flops, intensity * bandwidth)``.

    ``peak_flops`` in FLOP/s, ``bandwidth`` in bytes/s; ``intensity`` a number or an array (for a plot).
    """
    peak_flops, bandwidth = _positive("peak_flops", peak_flops), _positive("bandwidth", bandwidth)
    i = np.asarray(intensity, dtype=float)
    if np.any(i < 0) or not np.all(np.isfinite(i)):
        raise ValueError("intensity must be finite and >= 0")
    out = np.minimum(peak_flops, i * bandwidth)
    return float(out) if out.ndim == 0 else out


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """The intensity (FLOP/byte) where the two roofs meet, ``peak_flops / bandwidth``.

    Below it a kernel is memory-bound, above it compute-bound.
    """
    return _positive("peak_flops", peak_flops) / _positive("bandwidth", bandwidth)


def mfu(tokens_per_second: float, flops_per_token: float, peak: float) -> float:
    """Model FLOPs utilization: the fraction of the peak that the model's own FLOP count achieves.

    ``tokens_per_second * flops_per_token / peak``. For training, ``flops_per_token`` is the forward count
    times 3 (the backward pass costs about twice the forward); recomputation and padding do not count,
    which is what makes MFU comparable across implementations (Chowdhery et al. 2022, appendix B).
    """
    if peak is None:
        raise ValueError("peak is None: the chip is not in the table of peak_flops(); pass a measured peak, "
                         "e.g. measure_gemm(...) * 1e9")
    tokens_per_second = _positive("tokens_per_second", tokens_per_second)
    flops_per_token = _positive("flops_per_token", flops_per_token)
    return tokens_per_second * flops_per_token / _positive("peak", peak)


# ---------------------------------------------------------------------------------------- measuring

_TORCH_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float64": torch.float64,
                 "fp64": torch.float64, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                 "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}


def measure_gemm(n: int, dtype="float32", device="cpu", lib: str = "torch", repeats: int = 5) -> float:
    """Measured rate of an (n, n) @ (n, n) product in GFLOP/s: ``2 n^3`` FLOPs over the best of ``repeats``.

    ``lib="numpy"`` (CPU only, float32 or float64) or ``"torch"`` (any dtype and device torch supports;
    on CUDA the timer waits for the kernel with ``torch.cuda.synchronize``). A wall-clock figure: it
    depends on the machine and its load, so report it, never assert it.
    """
    n = _positive_int("n", n)
    repeats = _positive_int("repeats", repeats)
    if lib not in ("torch", "numpy"):
        raise ValueError(f"lib must be 'torch' or 'numpy', got {lib!r}")
    name = str(dtype).removeprefix("torch.").removeprefix("numpy.")
    if isinstance(dtype, type) and issubclass(dtype, np.generic):
        name = np.dtype(dtype).name
    if lib == "numpy":
        if name not in ("float32", "fp32", "float64", "fp64"):
            raise ValueError(f"numpy GEMM supports float32 or float64, got {dtype!r}")
        if torch.device(device).type != "cpu":
            raise ValueError(f"numpy runs on the CPU only, got device={device!r}")
        rng = np.random.default_rng(0)
        np_dtype = np.float32 if name in ("float32", "fp32") else np.float64
        a, b = (rng.standard_normal((n, n)).astype(np_dtype) for _ in range(2))
        seconds = best_time(lambda: a @ b, repeats=repeats, warmup=1)
    else:
        if name not in _TORCH_DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(_TORCH_DTYPES)}")
        dev = torch.device(device)
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randn(n, n, generator=gen).to(dev, _TORCH_DTYPES[name]) for _ in range(2))
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

        def product() -> None:
            a @ b
            sync()

        sync()
        seconds = best_time(product, repeats=repeats, warmup=1)
    return 2 * n**3 / max(seconds, 1e-12) / 1e9


# -------------------------------------------------------------------------------- published peaks
# Dense (no structured sparsity) peak FLOP/s in TFLOP/s and memory bandwidth in TB/s, from the vendors'
# datasheets: NVIDIA H100 and H200 Tensor Core GPU datasheets (SXM column unless the name says PCIe),
# NVIDIA A100 datasheet (the same FLOP/s for every A100; bandwidth 2,039 GB/s SXM 80GB, 1,935 GB/s PCIe
# 80GB, 1,555 GB/s for the 40GB cards), NVIDIA V100 and T4 datasheets, NVIDIA L4 datasheet, NVIDIA Ada Lovelace
# architecture whitepaper (RTX 4090: FP16/BF16 tensor with FP32 accumulate), Google Cloud TPU
# documentation (system architecture pages for v4, v5e, v5p). The datasheets print sparse figures for
# tf32/bf16 (twice the dense ones, marked "with sparsity"); the table holds the dense ones.
# "tf32", "bf16" and "fp16" are tensor-core rates; "fp32" and "fp64" the plain (non-tensor) rates. V100: SXM2.

_PEAKS: dict[str, dict[str, float]] = {
    "H100 SXM": {"fp64": 34, "fp32": 67, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5, "tb_s": 3.35},
    "H100 PCIe": {"fp64": 26, "fp32": 51, "tf32": 378, "bf16": 756.5, "fp16": 756.5, "tb_s": 2.0},
    "H200": {"fp64": 34, "fp32": 67, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5, "tb_s": 4.8},
    "A100": {"fp64": 9.7, "fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312, "tb_s": 2.039},  # SXM 80GB
    "A100 PCIe 80GB": {"fp64": 9.7, "fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312, "tb_s": 1.935},
    "A100 40GB": {"fp64": 9.7, "fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312, "tb_s": 1.555},
    "V100": {"fp64": 7.8, "fp32": 15.7, "fp16": 125, "tb_s": 0.9},
    "T4": {"fp32": 8.1, "fp16": 65, "tb_s": 0.32},
    "L4": {"fp32": 30.3, "tf32": 60, "bf16": 121, "fp16": 121, "tb_s": 0.3},
    "RTX 4090": {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2, "tb_s": 1.008},
    "TPU v4": {"bf16": 275, "tb_s": 1.2},
    "TPU v5e": {"bf16": 197, "tb_s": 0.819},
    "TPU v5p": {"bf16": 459, "tb_s": 2.765},
}

_DTYPE_ALIASES = {"bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16", "float16": "fp16", "half": "fp16",
                  "tf32": "tf32", "fp32": "fp32", "float32": "fp32", "float": "fp32", "fp64": "fp64",
                  "float64": "fp64", "double": "fp64"}


def _chip(device_name: str) -> str | None:
    """The table's key for a device name such as torch.cuda.get_device_name() returns, or None."""
    words = re.sub(r"[^a-z0-9]+", " ", device_name.lower()).split()
    if "tpu" in words:
        if "v5" in words and "lite" in words:  # Google also calls v5e "TPU v5 lite"
            return "TPU v5e"
        return next((f"TPU {v}" for v in ("v4", "v5e", "v5p") if v in words), None)
    if "h100" in words:
        if "nvl" in words:  # the NVL card has its own (lower) clocks: not in the table
            return None
        return "H100 PCIe" if "pcie" in words else "H100 SXM"
    if "a100" in words:  # same FLOP/s for every A100; the bandwidth depends on the memory and the form factor
        return "A100 40GB" if "40gb" in words else "A100 PCIe 80GB" if "pcie" in words else "A100"
    for key, token in (("H200", "h200"), ("V100", "v100"), ("T4", "t4"), ("L4", "l4"),
                       ("RTX 4090", "4090")):
        if token in words:
            return key
    return None


def _dtype_key(dtype) -> str:
    name = str(dtype).removeprefix("torch.").lower()
    if name not in _DTYPE_ALIASES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(set(_DTYPE_ALIASES))}")
    return _DTYPE_ALIASES[name]


def peak_flops(device_name: str, dtype="bf16") -> float | None:
    """Published dense peak FLOP/s of a chip for ``dtype`` ("bf16", "fp16", "tf32", "fp32", "fp64").

    ``device_name`` is matched loosely (case and punctuation ignored), so the strings that
    ``torch.cuda.get_device_name()`` returns work: ``"NVIDIA H100 80GB HBM3"`` (SXM),
    ``"NVIDIA H100 PCIe"``, ``"NVIDIA A100-SXM4-80GB"``. Returns ``None`` for a chip the table does not
    know (a CPU among them: measure it with :func:`measure_gemm`) or a format it lacks (bf16 on a V100).
    """
    if not isinstance(device_name, str):
        raise ValueError(f"device_name must be a string, got {device_name!r}")
    key, chip = _dtype_key(dtype), _chip(device_name)
    if chip is None or key not in _PEAKS[chip]:
        return None
    return _PEAKS[chip][key] * 1e12


def peak_bandwidth(device_name: str) -> float | None:
    """Published peak memory (HBM or GDDR) bandwidth of a chip in bytes/s, or ``None`` if unknown."""
    if not isinstance(device_name, str):
        raise ValueError(f"device_name must be a string, got {device_name!r}")
    chip = _chip(device_name)
    return None if chip is None else _PEAKS[chip]["tb_s"] * 1e12
