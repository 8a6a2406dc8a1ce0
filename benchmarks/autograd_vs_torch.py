"""Benchmark: one training step of a 784-256-256-10 MLP in dlcore.autograd vs torch (CPU), and the scalar engine.

Not a test: it prints times and ratios. Run it twice to see the effect of threads:

    OMP_NUM_THREADS=1 python benchmarks/autograd_vs_torch.py
    python benchmarks/autograd_vs_torch.py

One step = forward, cross-entropy, backward, plain SGD update; batch 128, float32; the median over many
steps is reported (after warm-up). The scalar ``dlcore.scalar.Value`` engine is timed per graph node on a
small MLP, forward + backward.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from dlcore import autograd as ag
from dlcore.scalar import Value
from dlcore.timing import median_time

SIZES = (784, 256, 256, 10)


def init_params(seed: int = 0, dtype=np.float32) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:], strict=True):
        params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)).astype(dtype))
        params.append(np.zeros(fan_out, dtype))
    return params


def time_mlp_steps(steps: int = 50, warmup: int = 5, batch: int = 128, lr: float = 0.01) -> dict[str, float]:
    """Median seconds per training step for dlcore.autograd, torch and a hand-written numpy step."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], batch)

    ours = [ag.Tensor(p, requires_grad=True) for p in init_params()]
    Xa = ag.Tensor(X)

    def dlcore_step() -> None:
        h = Xa
        for i in range(0, len(ours) - 2, 2):
            h = (h @ ours[i] + ours[i + 1]).relu()
        loss = ag.cross_entropy(h @ ours[-2] + ours[-1], y)
        ag.zero_grad(ours)
        loss.backward()
        with ag.no_grad():
            for p in ours:
                p.data -= lr * p.grad

    theirs = [torch.tensor(p, requires_grad=True) for p in init_params()]
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def torch_step() -> None:
        h = Xt
        for i in range(0, len(theirs) - 2, 2):
            h = torch.relu(h @ theirs[i] + theirs[i + 1])
        loss = F.cross_entropy(h @ theirs[-2] + theirs[-1], yt)
        for p in theirs:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in theirs:
                p -= lr * p.grad

    manual = init_params()

    def numpy_step() -> None:  # the backward pass derived by hand, no graph at all
        W1, b1, W2, b2, W3, b3 = manual
        z1 = X @ W1 + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ W2 + b2
        h2 = np.maximum(z2, 0)
        z3 = h2 @ W3 + b3
        p = np.exp(z3 - z3.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(batch), y] -= 1
        d3 = p / batch
        d2 = (d3 @ W3.T) * (z2 > 0)
        d1 = (d2 @ W2.T) * (z1 > 0)
        for param, g in zip(manual, (X.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)),
                            strict=True):
            param -= lr * g

    return {"dlcore": median_time(dlcore_step, steps, warmup),
            "torch": median_time(torch_step, steps, warmup),
            "numpy_by_hand": median_time(numpy_step, steps, warmup)}


def time_scalar_engine(repeats: int = 5, seed: int = 0) -> dict[str, float]:
    """Seconds per graph node for forward + backward of the scalar Value engine on a 2-16-16-1 MLP."""
    rng = np.random.default_rng(seed)
    sizes = (2, 16, 16, 1)
    weights = [[[Value(rng.standard_normal()) for _ in range(n_in)] for _ in range(n_out)]
               for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]
    points = rng.standard_normal((8, 2))

    def forward_backward() -> int:
        loss = Value(0.0)
        for x in points:
            h = [Value(v) for v in x]
            for layer, W in enumerate(weights):
                z = [sum((w * v for w, v in zip(row, h, strict=True)), Value(0.0)) for row in W]
                h = z if layer == len(weights) - 1 else [zi.tanh() for zi in z]
            loss = loss + (h[0] - 1.0) ** 2
        loss.backward()
        return len(loss.topological_order())

    n_nodes = forward_backward()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward_backward()
        times.append(time.perf_counter() - t0)
    # forward_backward also runs one extra topological sort to count nodes; it is part of the time.
    return {"nodes": n_nodes, "seconds_per_node": statistics.median(times) / n_nodes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    args = parser.parse_args()
    mlp = time_mlp_steps(steps=args.steps)
    scalar = time_scalar_engine()
    result = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
              "torch_threads": torch.get_num_threads(), **{f"{k}_ms": 1e3 * v for k, v in mlp.items()},
              "ratio_dlcore_over_torch": mlp["dlcore"] / mlp["torch"],
              "ratio_numpy_by_hand_over_torch": mlp["numpy_by_hand"] / mlp["torch"],
              "scalar_nodes": scalar["nodes"], "scalar_us_per_node": 1e6 * scalar["seconds_per_node"]}
    if args.json:
        print(json.dumps(result))
        return
    print(f"threads: OMP_NUM_THREADS={result['OMP_NUM_THREADS']}, torch uses {result['torch_threads']}")
    print(f"MLP {'-'.join(map(str, SIZES))}, batch 128, float32, median of {args.steps} steps:")
    for k in mlp:
        print(f"  {k:>14}: {1e3 * mlp[k]:7.2f} ms/step  ({mlp[k] / mlp['torch']:.2f}x torch)")
    verdict = "within" if result["ratio_dlcore_over_torch"] <= 2 else "NOT within"
    print(f"dlcore.autograd / torch = {result['ratio_dlcore_over_torch']:.2f} ({verdict} the 2x target)")
    print(f"scalar Value engine: {result['scalar_us_per_node']:.1f} us per node "
          f"({scalar['nodes']} nodes, forward + backward)")


if __name__ == "__main__":
    main()
