"""LIF forward+backward: spikeforge vs SpikingJelly, snnTorch, Norse and a plain eager loop; writes docs/benchmarks.md.

Two cases (see ``spikeforge.bench.neuron`` for how every library is configured to the same neuron):

* ``conv``: the neuron alone on ``x[T, B, C, H, W] = [8, 32, 64, 32, 32]`` (a CIFAR-sized conv feature map).
* ``linear``: ``Linear(4096, 4096)`` + LIF on ``x[500, B, 4096]`` (the Open Neuromorphic set-up, T = 500; the
  batch is cut from 16 to ``--linear-batch`` because the CPU matmul alone would take ~15 s per repeat at 16).

Every library runs in fresh subprocesses, round-robin (``--rounds``), so that background load on a shared machine
biases no library in particular; the medians pool all rounds' repeats.

Usage::

    python benchmarks/neuron.py                       # full run, writes docs/benchmarks.md
    python benchmarks/neuron.py --quick --out /tmp/b.md   # tiny sizes, a minute
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from spikeforge.bench import BenchConfig, available_libraries, check_agreement, format_table, machine_info
from spikeforge.bench.neuron import Measurement, format_agreement, measure_rounds
from spikeforge.functional import _cpu_kernel

TARGET = 3.0  # issue 2: spikeforge at least 3x faster than SpikingJelly and snnTorch


def _ratio(results: list[Measurement], lib: str, attr: str = "total_median") -> float | None:
    base = next(m for m in results if m.library == "spikeforge")
    other = next((m for m in results if m.library == lib), None)
    return None if other is None else getattr(other, attr) / getattr(base, attr)


def _min_ratio(results: list[Measurement], lib: str) -> float | None:
    base = next(m for m in results if m.library == "spikeforge")
    other = next((m for m in results if m.library == lib), None)
    return None if other is None else min(other.total_s) / min(base.total_s)


def _verdict(results: list[Measurement]) -> list[str]:
    lines = []
    base = next(m for m in results if m.library == "spikeforge")
    for lib in ("spikingjelly", "snntorch", "norse", "spikeforge-pyfused", "spikeforge-reference", "eager"):
        r = _ratio(results, lib)
        if r is None:
            continue
        other = next(m for m in results if m.library == lib)
        mem = (f"{other.peak_mem_bytes / base.peak_mem_bytes:.2f}x spikeforge's peak memory"
               if other.peak_mem_bytes and base.peak_mem_bytes else "memory n/a")
        goal = ""
        best = _min_ratio(results, lib) or 0.0
        if lib in ("spikingjelly", "snntorch"):
            # a load burst on a shared machine can inflate one library's median; claim the target only when the
            # best-repeat ratio (the least disturbed repeats) agrees
            low = min(r, best)
            goal = (f" — target {TARGET:.0f}x **met**" if low >= TARGET else
                    f" — target {TARGET:.0f}x **not established**: the lower of the two ratios is {low:.2f}x "
                    f"({100 * low / TARGET:.0f} % of the target)")
        fwd = _ratio(results, lib, "fwd_median")
        lines.append(f"- vs {lib}: spikeforge is **{r:.2f}x** faster on the fwd+bwd median "
                     f"({_min_ratio(results, lib):.2f}x on the best repeat; fwd alone {fwd:.2f}x),"
                     f" and {lib} uses {mem}{goal}.")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/benchmarks.md", help="markdown report to write")
    ap.add_argument("--rounds", type=int, default=3, help="round-robin subprocess rounds per library (conv case)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per round")
    ap.add_argument("--warmup", type=int, default=2, help="untimed repeats per round")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--linear-batch", type=int, default=2, help="batch of the T=500 Linear+LIF case")
    ap.add_argument("--linear-rounds", type=int, default=2, help="rounds of the Linear+LIF case")
    ap.add_argument("--skip-linear", action="store_true", help="only the conv case")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, not a measurement)")
    args = ap.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    # build the C++ kernel once here, so that no timed subprocess pays for the compile
    _cpu_kernel.kernel()
    libs = available_libraries()
    missing = sorted(set(("spikingjelly", "snntorch", "norse")) - set(libs))
    conv_shape = (4, 2, 8, 8, 8) if args.quick else (8, 32, 64, 32, 32)
    lin_shape = (20, args.linear_batch, 64) if args.quick else (500, args.linear_batch, 4096)
    info_before = machine_info()
    started = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - started:6.0f} s] {msg}", file=sys.stderr, flush=True)

    sections = []
    cases = [("conv", conv_shape, args.rounds)]
    if not args.skip_linear:
        cases.append(("linear", lin_shape, args.linear_rounds))
    for case, shape, rounds in cases:
        cfg = BenchConfig(case=case, shape=shape, repeats=args.repeats, warmup=args.warmup, threads=args.threads)
        log(f"{case} {list(shape)}: agreement check")
        agreement = check_agreement(libs, cfg)
        for a in agreement:
            if a.mismatches and a.library != "norse":
                raise SystemExit(f"{a.library} disagrees with the reference on {a.mismatches} spikes: "
                                 "the libraries are not configured to the same neuron")
        results = measure_rounds(libs, cfg, rounds=rounds, progress=log)
        sections.append((case, shape, rounds, cfg, agreement, results))

    info_after = machine_info()
    cmd = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/neuron.py", *(argv if argv is not None
                                                                                   else sys.argv[1:])])
    out = [_HEADER.format(cmd=cmd, minutes=(time.time() - started) / 60)]
    out.append("## Machine\n")
    for k, v in info_before.items():
        if k == "load average (1 min)":
            v = f"{v} at start, {info_after[k]} at the end (2 cores shared with other jobs: see below)"
        out.append(f"- {k}: {v}")
    out.append(f"- C++ CPU kernel: {_cpu_kernel.kernel_status()}")
    out.append("- library versions: " + ", ".join(
        f"{m.library} {m.version}" for m in sections[0][5] if m.library in ("spikingjelly", "snntorch", "norse")))
    if missing:
        out.append(f"- not installed (skipped): {', '.join(missing)}")
    out.append("")
    for case, shape, rounds, cfg, agreement, results in sections:
        title = ("Neuron alone, x[T, B, C, H, W]" if case == "conv" else "Linear(n, n) + LIF, x[T, B, n]")
        out.append(f"## {title} = {list(shape)}\n")
        out.append(f"{rounds} rounds x {cfg.repeats} timed repeats (after {cfg.warmup} warm-up repeats per round), "
                   f"median over all {rounds * cfg.repeats}; times in ms; ratios are library / spikeforge "
                   "(> 1: spikeforge is faster or smaller). Peak memory: extra resident memory of one "
                   "forward+backward in a fresh process, over the input and grad_output already resident.\n")
        out.append(format_table(results))
        out.append("")
        out.extend(_verdict(results))
        out.append("\nAgreement on the same input (one forward+backward; gradient = "
                   + ("dL/dx" if case == "conv" else "dL/dW of the Linear") + " for L = <spikes, g>):\n")
        out.append(format_agreement(agreement))
        out.append("")
    out.append(_DISCUSSION)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    old = Path(args.out).read_text() if Path(args.out).exists() else ""
    begin, end = "<!-- step-benchmark:begin -->", "<!-- step-benchmark:end -->"
    if begin in old and end in old:  # keep the whole-step section of benchmarks/step.py
        out.append(begin + old.split(begin, 1)[1].split(end, 1)[0] + end)
    Path(args.out).write_text("\n".join(out) + "\n")
    log(f"wrote {args.out}")
    for case, shape, *_rest, results in sections:
        print(f"\n{case} {list(shape)}\n{format_table(results)}")
    return 0


_HEADER = """# Benchmarks: the LIF neuron, forward + backward

Generated by `{cmd}` ({minutes:.0f} min; `make bench` installs the peers and runs it). Do not edit by hand:
rerun the command. The methodology fixes the flaws of the published SNN library benchmark (anchors.md §5):

- **Same neuron everywhere**, checked: LIF `h_t = decay v_(t-1) + x_t`, `s_t = H(h_t - 1)`, hard reset to 0 through
  the (not detached) spike, ATan surrogate with alpha = 2, `decay = 1 - 1/tau = 0.5`. The agreement tables below
  compare every library's spikes and gradients with spikeforge's autograd reference loop on the same input; the
  exact configuration of each library is in the docstring of `src/spikeforge/bench/neuron.py`.
- **Fresh input and cleared gradients every repeat** (no `retain_graph` accumulation), warm-up repeats first,
  **median** of the pooled repeats with `time.perf_counter` (a device synchronise would bracket each phase on CUDA).
- **Peak memory** per library in its own fresh subprocess: once input and grad_output exist, glibc returns its
  cached free heap (`malloc_trim(0)`), the Linux high-water mark `VmHWM` is reset through `/proc/self/clear_refs`,
  and read after one forward+backward (RSS, because `tracemalloc` does not see torch's allocations; on CUDA the
  script uses `torch.cuda.max_memory_allocated`).
- Forward and backward are both reported; "bwd" is fwd+bwd minus fwd of the same repeat, so no library's
  backward includes or excludes a forward that others do not.
- `torch.get_num_threads()` is stated; CPU numbers, a conv-sized tensor and a T = 500 Linear+LIF case.
"""

_DISCUSSION = """## Discussion

**What spikeforge runs.** `multistep(..., backend="auto")` on CPU uses a small C++ kernel
(`src/spikeforge/functional/csrc/neuron_cpu.cpp`, built with `torch.utils.cpp_extension.load` at first use and
cached; backends: `docs/neuron_kernels.md`) whenever it covers the call: binary or ternary spikes, scalar decay and
a scalar, per-channel or per-element threshold without gradient, any reset, the built-in surrogates. It walks each
block of 4096 neurons through all T steps with the membrane in L1, so the forward reads `x` once and writes `s` and
`h` once, and the backward reads `g_s` and `h` once and writes `g_x` once. Spikes are bit-identical to the reference
loop (no fused multiply-add, same rounding order); gradients agree to float rounding (tests:
`tests/functional/test_cpu_kernel.py`). Where it cannot be built (no compiler) a `RuntimeWarning` says so once and
the pure-PyTorch fused loop (`spikeforge-pyfused` row) runs instead; `SPIKEFORGE_CPU_KERNEL=0` turns it off.

**Why the pure-PyTorch paths cannot reach 3x.** SpikingJelly 2.0 on CPU already runs a fused autograd loop of its
own (whole time loop as one autograd node, backward as one reverse loop), so any PyTorch-level loop is in the same
class: per step it costs ~4 elementwise ATen passes forward and ~12 backward over the `[B, ...]` slice (the ATan
surrogate alone is 5-6 passes), each a full read+write of 8 MiB here, and it is memory-bandwidth bound. Fewer
passes inside PyTorch (in-place ops, `masked_fill_`) buy tens of percent, not 3x. One pass per step needs a
compiled kernel: the C++ kernel above on CPU; on CUDA the equivalent is a single Triton/CUDA kernel per layer, as
SpikingJelly's CuPy/Triton backends do (spikeforge's Triton kernel, `backend="triton"`, is what `"auto"` picks on
CUDA; it is tested here under the Triton interpreter only).

**What still bounds the kernel.** With the elementwise work reduced to one pass, the remaining cost is memory
traffic that every library pays equally: fresh `[T, ...]` outputs are new `mmap`s whose pages fault in on first
touch (about as expensive as writing them), and the benchmark's fresh input each repeat. The Linear+LIF case is
dominated by the 4096x4096 matmuls (about 2x67 GFLOP per repeat at B = 2), which no neuron kernel changes: there the
ratios show how much the neuron matters inside a layer, not the kernel's speed.

**Noise.** The machine has 2 cores shared with other jobs (see the load averages above). Each library's repeats
are spread over several subprocess rounds, interleaved with the others, so load bursts hit every library; but a
library that runs longer is exposed to more of them, so under load the medians overstate the gaps. The min-max
column and the best-repeat ratios show the spread; the verdicts claim the 3x target only when the median *and*
the best-repeat ratio reach it. Rerun on an idle machine for tighter numbers. A profile under such load shows why
the per-op libraries suffer most: every ATen elementwise op on the 8 MiB slice is an OpenMP parallel region over
both cores, and when another process holds one core the region waits a scheduler time slice for its second thread
(~16 ms per op instead of ~1 ms). A PyTorch-level loop runs hundreds of such regions per forward+backward; the
C++ kernel runs two. `--threads 1` avoids the barrier waits and gives steadier (but single-core) numbers.
"""


if __name__ == "__main__":
    sys.exit(main())
