"""Benchmark: GPT-mini training throughput (tokens/s), MFU and validation loss, for the cpu or gpu profile.

Not a test: it prints figures that depend on the machine. MFU (model FLOPs utilization) is the model's own
FLOP count per second, 3 x ``flops_per_token`` (forward + backward) times tokens/s, over the chip's peak:
the published dense bf16 peak of a known GPU (``dlcore.hardware.peak_flops``), or, on a CPU or an
unknown GPU, the rate of a large matrix product measured here (``dlcore.hardware.measure_gemm``).

    OMP_NUM_THREADS=1 python benchmarks/gpt.py --profile cpu --steps 60
    python benchmarks/gpt.py --profile gpu --steps 300          # on a CUDA machine

The gpu profile is the scaled-up model of chapter 8 (about 10 M parameters, context 256) with bf16
autocast, fused scaled-dot-product attention (flash kernels on the GPU) and ``torch.compile``; on a
machine without CUDA it runs on the CPU, without compilation (a check that the code path works, not a
measurement of a GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

import torch
import torch.nn.functional as F

from dlcore import device, hardware, text
from dlcore.models.gpt import GPT, GPTConfig, flops_per_token

PROFILES = {
    # model sizes, batch and learning rate; the cpu model is the one chapter 8's hardware section times
    "cpu": dict(d_model=64, n_heads=4, n_layers=2, context=64, batch=32, lr=3e-3),
    "gpu": dict(d_model=384, n_heads=6, n_layers=6, context=256, batch=64, lr=1e-3),
}


def run(profile: str, steps: int, warmup: int | None = None, seed: int = 0, compile_model: bool | None = None,
        dev: torch.device | None = None) -> dict:
    """Train GPT-mini for ``steps`` steps on the pydoc corpus; return throughput, MFU and validation loss."""
    cfg_d = PROFILES[profile]
    dev = dev or device.get_device()
    cuda = dev.type == "cuda"
    compile_model = cuda if compile_model is None else compile_model
    warmup = warmup if warmup is not None else min(max(steps // 5, 1), 20)
    if steps <= warmup:
        raise ValueError(f"steps ({steps}) must exceed the warm-up steps ({warmup})")

    corpus = text.load_text("pydoc")
    tok = text.CharTokenizer(corpus)
    train_ids, val_ids = text.split_ids(tok.encode(corpus), val_fraction=0.1)
    cfg = GPTConfig(tok.vocab_size, cfg_d["context"], d_model=cfg_d["d_model"], n_heads=cfg_d["n_heads"],
                    n_layers=cfg_d["n_layers"])
    device.seed_everything(seed, deterministic=not cuda)   # deterministic kernels would slow the GPU down
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True       # fp32 leftovers (outside autocast) on tensor cores
    model = GPT(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg_d["lr"], weight_decay=0.1, fused=cuda or None)
    fwd = torch.compile(model) if compile_model else model
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext())
    gen = device.make_generator(seed)
    B, T = cfg_d["batch"], cfg.context

    def step() -> torch.Tensor:
        x, y = text.lm_batch(train_ids, B, T, gen, device=dev)
        with autocast:
            logits, _ = fwd(x)
            loss = F.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(warmup):  # includes compilation on the GPU
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps - warmup):
        loss = step()
    sync()
    seconds = time.perf_counter() - t0
    tokens_per_s = (steps - warmup) * B * T / seconds
    train_flops = 3 * flops_per_token(cfg)

    name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    peak = hardware.peak_flops(name, "bf16") if cuda else None
    peak_source = "datasheet bf16 dense"
    if peak is None:
        n = 4096 if cuda else 512
        peak = 1e9 * hardware.measure_gemm(n, dtype="bfloat16" if cuda else "float32", device=dev, repeats=5)
        peak_source = f"measured {n}x{n} GEMM"
    with autocast:
        val = text.evaluate_lm(model, val_ids[: (None if cuda else 16_385)], seq_len=T, batch_size=64)
    return {"profile": profile, "device": name, "params": model.num_params(), "context": T, "batch": B,
            "steps": steps, "compiled": bool(compile_model), "tokens_per_s": tokens_per_s,
            "train_flops_per_token": train_flops, "achieved_tflops": tokens_per_s * train_flops / 1e12,
            "peak_tflops": peak / 1e12, "peak_source": peak_source,
            "mfu": hardware.mfu(tokens_per_s, train_flops, peak), "last_train_loss": float(loss.detach()),
            "val_loss": val, "torch_threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset")}


def gemm_rates(n: int | None = None) -> dict[str, float]:
    """Measured (n, n) GEMM rates in TFLOP/s: fp32, tf32 and bf16 on CUDA; fp32 and fp64 on a CPU."""
    dev = device.get_device()
    if dev.type != "cuda":
        n = n or 512
        return {f"{dt}_n{n}": hardware.measure_gemm(n, dt, dev) / 1e3 for dt in ("float32", "float64")}
    n = n or 8192
    rates = {}
    for label, dt, tf32 in (("fp32", "float32", False), ("tf32", "float32", True), ("bf16", "bfloat16", False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        rates[f"{label}_n{n}"] = hardware.measure_gemm(n, dt, dev, repeats=10) / 1e3
    torch.backends.cuda.matmul.allow_tf32 = False
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="model size; default: gpu on a CUDA machine, else cpu")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 60 cpu, 300 gpu)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile on CUDA")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    parser.add_argument("--gemm", action="store_true", help="also time square GEMMs (fp32/tf32/bf16 on CUDA)")
    args = parser.parse_args()
    if args.gemm:
        print("GEMM TFLOP/s:", json.dumps({k: round(v, 3) for k, v in gemm_rates().items()}))
    profile = args.profile or device.profile()
    steps = args.steps or (300 if profile == "gpu" else 60)
    r = run(profile, steps, compile_model=False if args.no_compile else None)
    if args.json:
        print(json.dumps(r))
        return
    print(f"GPT-mini, profile {r['profile']} on {r['device']} (torch threads {r['torch_threads']}, "
          f"OMP_NUM_THREADS={r['OMP_NUM_THREADS']}, compiled={r['compiled']})")
    print(f"  {r['params']:,} parameters, context {r['context']}, batch {r['batch']}, {r['steps']} steps")
    print(f"  throughput     {r['tokens_per_s']:,.0f} tokens/s")
    print(f"  model FLOP/s   {r['achieved_tflops']:.4g} TFLOP/s ({r['train_flops_per_token']:,} FLOP per token)")
    print(f"  MFU            {100 * r['mfu']:.1f} % of {r['peak_tflops']:.4g} TFLOP/s ({r['peak_source']})")
    print(f"  loss           train {r['last_train_loss']:.3f}, validation {r['val_loss']:.3f} nats/char")


if __name__ == "__main__":
    main()
