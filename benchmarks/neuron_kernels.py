"""Neuron forward+backward per kernel backend: MPBN, LIF, Real Spike amplitude (the kernel boundary, issue 14).

For each case and backend: median wall time of ``neuron(x)`` + ``backward`` over ``--repeats`` (after
``--warmup``), fresh gradients every repeat, and the bytes the autograd graph keeps for the backward (counted
with ``torch.autograd.graph.saved_tensors_hooks``, each storage once). Input ``x[T, B, C, H, W]``
(default ``[4, 32, 64, 16, 16]``), float32, training mode.

Usage::

    python benchmarks/neuron_kernels.py                    # prints a markdown table
    python benchmarks/neuron_kernels.py --shape 4 8 64 16 16 --repeats 5 --threads 1 --only MPBN LIF
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from spikeforge.neurons import Neuron

CASES = {
    "MPBN (channel, dspike b=3)": ("mpbn", ("reference", "fused")),
    "LIF (hard reset, rectangular)": ("lif", ("reference", "fused", "cpp")),
    "Real Spike (channel amplitude)": ("real-spike", ("reference", "fused", "cpp")),
    "Ternary Spike (layer amplitude)": ("ternary", ("reference", "fused", "cpp")),
}


def saved_bytes(neuron: Neuron, x: torch.Tensor) -> int:
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        neuron(x.requires_grad_())
    return sum(seen.values())


def measure(neuron: Neuron, x: torch.Tensor, repeats: int, warmup: int) -> list[float]:
    times = []
    for i in range(warmup + repeats):
        xi = x.detach().clone().requires_grad_()
        neuron.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        out = neuron(xi)
        out.backward(torch.ones_like(out))
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs=5, default=[4, 32, 64, 16, 16], metavar=("T", "B", "C", "H", "W"))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", nargs="*", default=None, help="case title prefixes to run (e.g. MPBN LIF)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(*args.shape) * 0.6 + 0.3
    print(f"x{list(args.shape)} float32, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()}")
    print("| case | backend | fwd+bwd median (ms) | min (ms) | saved for backward (MB) |")
    print("|---|---|---:|---:|---:|")
    for title, (preset, backends) in CASES.items():
        if args.only and not any(title.startswith(o) for o in args.only):
            continue
        for backend in backends:
            try:
                neuron = Neuron(preset, feature_shape=tuple(args.shape[2:]), backend=backend).train()
                t = measure(neuron, x, args.repeats, args.warmup)
            except ValueError as exc:  # an older spikeforge without this backend, or a call it cannot run
                print(f"| {title} | {backend} | n/a: {str(exc).splitlines()[0][:80]} | | |", flush=True)
                continue
            mb = saved_bytes(neuron, x.clone()) / 2**20
            print(f"| {title} | {backend} | {1e3 * statistics.median(t):.1f} | {1e3 * min(t):.1f} | {mb:.1f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
