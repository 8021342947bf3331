"""Forward time of a model never monitored, with a :class:`spikeforge.analysis.Monitor` attached, and after detach.

    python benchmarks/monitor_overhead.py [--model convnet] [--batch 64] [-T 4] [--rounds 7] [--iters 10]

Rounds interleave the three cases (never-attached copy, attached, detached) so that machine noise hits them
alike; the median over rounds of the mean forward time per case is printed. Detached must match never-attached
(the monitor leaves nothing behind); attached shows the cost of recording.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from spikeforge import create_model
from spikeforge.analysis import Monitor


def _time(model: torch.nn.Module, x: torch.Tensor, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        model(x)
    return (time.perf_counter() - t0) / iters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="convnet")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("-T", type=int, default=4)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    never = copy.deepcopy(model)
    shape = {"convnet": (1, 8, 8), "mlp": (64,)}.get(args.model, (3, 32, 32))
    x = torch.randn((args.T, args.batch) + shape)
    mon = Monitor(model, attach=False)
    times: dict[str, list[float]] = {"never attached": [], "attached": [], "detached": []}
    with torch.no_grad():
        for m in (never, model):
            _time(m, x, 2)  # warm-up
        for _ in range(args.rounds):
            times["never attached"].append(_time(never, x, args.iters))
            mon.attach()
            times["attached"].append(_time(model, x, args.iters))
            mon.detach()
            times["detached"].append(_time(model, x, args.iters))
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    base = med["never attached"]
    print(f"{args.model} T={args.T} B={args.batch} threads={args.threads} torch {torch.__version__}: "
          + ", ".join(f"{k} {v:.2f} ms ({v / base:.2f}x)" for k, v in med.items()))


if __name__ == "__main__":
    main()
