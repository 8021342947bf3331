"""LIF forward+backward benchmark: spikeforge (fused and reference) against an eager loop and peer libraries.

Every library runs the *same* neuron (the group's LIF, ``docs/methods/neurons.md``; the benchmark
set-up is fixed):

    h_t = decay * v_{t-1} + x_t,   s_t = H(h_t - V_th),   v_t = h_t (1 - s_t)      (hard reset to 0)

with ``decay = 1 - 1/tau`` (``tau = 2`` -> 0.5, exact in float, so every library's charge rounds identically),
``V_th = 1``, the reset *not* detached (gradient flows through ``s_t`` in the reset) and the ATan surrogate
``dH/dz ~ alpha / (2 (1 + (pi alpha z / 2)^2))``, ``alpha = 2`` (Fang et al., arXiv:2007.05785). How each
library is configured for that:

* spikeforge: ``NeuronSpec(reset="hard", v_reset=0, surrogate=surrogate("atan", alpha=2), detach_reset=False)``,
  ``decay = 1 - 1/tau``, ``threshold = 1``; ``backend="auto"`` (the C++ kernel on CPU) and
  ``backend="reference"`` (autograd loop).
* spikeforge-pyfused: the pure-PyTorch fused autograd loop, i.e. ``backend="fused"`` (no C++ kernel)
  (what runs where no compiler is available), to show the kernel's effect.
* eager: a hand-written PyTorch loop with a custom ATan autograd function (what a user would write).
* SpikingJelly: ``LIFNode(tau=2., decay_input=False, v_threshold=1., v_reset=0., surrogate_function=ATan(2.),
  detach_reset=False, step_mode="m")``; its charge ``v - (v - v_reset)/tau + x`` equals ``decay v + x``.
  SpikingJelly 2.0 has no ``backend=`` argument any more: on CPU it always runs its own fused autograd loop.
* snnTorch: ``Leaky(beta=decay, threshold=1., reset_mechanism="zero", reset_delay=False, spike_grad=atan(2.))``
  stepped in a Python loop and stacked. ``reset_delay=False`` resets in the same step through the
  (non-detached) spike, i.e. ``v_t = h_t - s_t h_t``; snnTorch's default ``reset_delay=True`` applies a
  *detached* reset at the start of the next step (same spikes, the gradient of ``detach_reset=True``).
  snnTorch fires on ``h > V_th`` where the others fire on ``h >= V_th`` (differs only at exact equality).
* Norse (optional): ``lif_box_feed_forward_step`` (LIF without synaptic current) with ``dt * tau_mem_inv =
  1 - decay`` and the input multiplied by ``tau`` so that ``v + (tau x - v)/tau = decay v + x`` (one extra
  rounding, so a rare spike may flip); Norse has no ATan surrogate, so it runs SuperSpike and its gradients
  are not compared.

Timing: fresh input and cleared gradients every repeat (no ``retain_graph`` accumulation), ``warmup``
untimed repeats, median of ``repeats`` with :func:`time.perf_counter` (and a device synchronise on CUDA).
Peak memory (:mod:`.memory`): each library runs in a fresh subprocess; on Linux, after the input and
``grad_output`` exist, glibc's cached free heap is returned (``malloc_trim(0)``), the kernel's high-water mark
``VmHWM`` is reset (``/proc/self/clear_refs``) and read after one
forward+backward, so the number is the peak *extra* resident memory of that step (on CUDA:
``torch.cuda.max_memory_allocated`` above the resident baseline).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from .memory import peak_extra_memory

__all__ = [
    "CASES", "LIBRARIES", "Agreement", "BenchConfig", "LIFParams", "Measurement", "available_libraries",
    "check_agreement", "format_agreement", "format_table", "library_version", "machine_info", "measure",
    "measure_in_subprocess", "measure_rounds",
]

LIBRARIES: tuple[str, ...] = ("spikeforge", "spikeforge-pyfused", "spikeforge-reference", "eager", "spikingjelly",
                               "snntorch", "norse")
PEERS: tuple[str, ...] = ("spikingjelly", "snntorch", "norse")
CASES: tuple[str, ...] = ("conv", "linear")
_DISTRIBUTION = {"spikeforge": "spikeforge", "spikeforge-pyfused": "spikeforge", "spikeforge-reference": "spikeforge",
                 "eager": "torch",
                 "spikingjelly": "spikingjelly", "snntorch": "snntorch", "norse": "norse"}
_MODULE = {"spikingjelly": "spikingjelly.activation_based.neuron", "snntorch": "snntorch",
           "norse": "norse.torch.functional.lif_box"}

NeuronFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class LIFParams:
    """The shared LIF: ``decay = 1 - 1/tau``, threshold ``V_th``, ATan surrogate sharpness ``alpha``."""

    tau: float = 2.0
    threshold: float = 1.0
    alpha: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tau) and self.tau > 1.0):
            raise ValueError(f"tau must be a finite number > 1 (SpikingJelly's constraint), got {self.tau}")
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError(f"threshold must be a positive finite number, got {self.threshold}")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"alpha must be a positive finite number, got {self.alpha}")

    @property
    def decay(self) -> float:
        return 1.0 - 1.0 / self.tau


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark case.

    ``case="conv"``: the neuron alone on ``x[T, B, C, H, W]`` (any ``[T, B, ...]`` shape), gradient w.r.t. x.
    ``case="linear"``: ``Linear(n, n)`` + LIF on ``x[T, B, n]`` (the Open Neuromorphic set-up), gradient
    w.r.t. the Linear's weight and bias; the input needs no gradient.
    """

    case: str = "conv"
    shape: tuple[int, ...] = (8, 32, 64, 32, 32)
    repeats: int = 7
    warmup: int = 2
    threads: int | None = None
    seed: int = 0
    device: str = "cpu"
    lif: LIFParams = field(default_factory=LIFParams)

    def __post_init__(self) -> None:
        if self.case not in CASES:
            raise ValueError(f"case must be one of {CASES}, got {self.case!r}")
        shape = tuple(int(d) for d in self.shape)
        object.__setattr__(self, "shape", shape)
        if len(shape) < 2 or any(d < 1 for d in shape):
            raise ValueError(f"shape must be [T, B, ...] with positive sizes, got {shape}")
        if self.case == "linear" and len(shape) != 3:
            raise ValueError(f"the linear case takes shape [T, B, n], got {shape}")
        if self.repeats < 1 or self.warmup < 0:
            raise ValueError(f"need repeats >= 1 and warmup >= 0, got {self.repeats} and {self.warmup}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    @property
    def input_scale(self) -> float:
        # the linear case's default init shrinks the std by ~1/sqrt(3); scale so that both cases fire ~10-20 %
        return 2.0 if self.case == "linear" else 1.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BenchConfig:
        d = json.loads(text)
        d["shape"] = tuple(d["shape"])
        d["lif"] = LIFParams(**d["lif"])
        return cls(**d)


@dataclass
class Measurement:
    """Per-repeat times (seconds), peak extra memory (bytes) and the spike rate of one library on one case."""

    library: str
    version: str
    case: str
    shape: tuple[int, ...]
    threads: int
    fwd_s: list[float]
    total_s: list[float]
    peak_mem_bytes: int | None
    mem_method: str
    spike_rate: float

    @property
    def fwd_median(self) -> float:
        return statistics.median(self.fwd_s)

    @property
    def total_median(self) -> float:
        return statistics.median(self.total_s)

    @property
    def bwd_median(self) -> float:
        return statistics.median(t - f for t, f in zip(self.total_s, self.fwd_s))


@dataclass
class Agreement:
    """Spikes and gradients of one library against spikeforge's reference loop on the same input."""

    library: str
    spikes: int
    reference_spikes: int
    mismatches: int
    grad_compared: bool
    grad_max_abs_diff: float
    grad_rel_diff: float
    note: str = ""


# --- the neuron in each library ----------------------------------------------------------------------------


class _ATanSpike(torch.autograd.Function):
    """H(z) with the ATan surrogate backward; the eager baseline's hand-written spike function."""

    @staticmethod
    def forward(ctx, z: Tensor, alpha: float) -> Tensor:
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        return (z >= 0).to(z.dtype)

    @staticmethod
    def backward(ctx, g: Tensor):
        (z,) = ctx.saved_tensors
        a = ctx.alpha
        return g * (a / 2) / (1 + (math.pi / 2 * a * z) ** 2), None


def _eager(p: LIFParams) -> NeuronFn:
    def run(x: Tensor) -> Tensor:
        v = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            h = p.decay * v + x[t]
            s = _ATanSpike.apply(h - p.threshold, p.alpha)
            v = h * (1 - s)
            out.append(s)
        return torch.stack(out)
    return run


def _spikeforge(p: LIFParams, backend: str) -> NeuronFn:
    from ..functional import NeuronSpec, multistep, surrogate

    spec = NeuronSpec(reset="hard", v_reset=0.0, surrogate=surrogate("atan", alpha=p.alpha), detach_reset=False)

    def run(x: Tensor) -> Tensor:
        return multistep(x, spec, decay=p.decay, threshold=p.threshold, backend=backend)[0]
    return run


def _spikeforge_pyfused(p: LIFParams) -> NeuronFn:
    return _spikeforge(p, "fused")  # the pure-PyTorch fused loop, whatever kernels are available


def _spikingjelly(p: LIFParams) -> NeuronFn:
    from spikingjelly.activation_based import neuron, surrogate

    node = neuron.LIFNode(tau=float(p.tau), decay_input=False, v_threshold=p.threshold, v_reset=0.0,
                          surrogate_function=surrogate.ATan(alpha=p.alpha), detach_reset=False, step_mode="m")

    def run(x: Tensor) -> Tensor:
        node.reset()
        return node(x)
    return run


def _snntorch(p: LIFParams) -> NeuronFn:
    import snntorch
    from snntorch import surrogate

    leaky = snntorch.Leaky(beta=p.decay, threshold=p.threshold, reset_mechanism="zero", reset_delay=False,
                           spike_grad=surrogate.atan(alpha=p.alpha))

    def run(x: Tensor) -> Tensor:
        mem = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            spk, mem = leaky(x[t], mem)
            out.append(spk)
        return torch.stack(out)
    return run


def _norse(p: LIFParams) -> NeuronFn:
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step

    params = LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / p.tau), v_th=torch.as_tensor(p.threshold),
                              v_leak=torch.as_tensor(0.0), v_reset=torch.as_tensor(0.0), method="super")

    def run(x: Tensor) -> Tensor:
        state = LIFBoxFeedForwardState(v=torch.zeros_like(x[0]))
        out = []
        for t in range(x.shape[0]):
            z, state = lif_box_feed_forward_step(x[t] * p.tau, state, params, dt=1.0)
            out.append(z)
        return torch.stack(out)
    return run


def neuron_fn(library: str, p: LIFParams) -> NeuronFn:
    """``x[T, B, ...] -> spikes[T, B, ...]`` for ``library`` (see the module docstring for the configuration)."""
    if library == "spikeforge":
        return _spikeforge(p, "auto")
    if library == "spikeforge-pyfused":
        return _spikeforge_pyfused(p)
    if library == "spikeforge-reference":
        return _spikeforge(p, "reference")
    if library == "eager":
        return _eager(p)
    if library == "spikingjelly":
        return _spikingjelly(p)
    if library == "snntorch":
        return _snntorch(p)
    if library == "norse":
        return _norse(p)
    raise ValueError(f"unknown library {library!r}; choose one of {LIBRARIES}")


def library_version(library: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(_DISTRIBUTION[library])
    except (PackageNotFoundError, KeyError):
        return "n/a"


def available_libraries(candidates: Sequence[str] = LIBRARIES) -> list[str]:
    """The libraries of ``candidates`` that import here (peers are optional and may be missing)."""
    found = []
    for lib in candidates:
        if lib not in LIBRARIES:
            raise ValueError(f"unknown library {lib!r}; choose from {LIBRARIES}")
        if lib in _MODULE:
            try:
                importlib.import_module(_MODULE[lib])
            except Exception:  # a peer that is absent or broken is simply not benchmarked
                continue
        found.append(lib)
    return found


# --- one case ----------------------------------------------------------------------------------------------


def _build(library: str, cfg: BenchConfig) -> tuple[NeuronFn, list[Tensor]]:
    neuron = neuron_fn(library, cfg.lif)
    if cfg.case == "conv":
        return neuron, []
    n = cfg.shape[-1]
    torch.manual_seed(cfg.seed + 1)  # the same Linear weights for every library
    linear = torch.nn.Linear(n, n).to(cfg.device)
    return (lambda x: neuron(linear(x))), list(linear.parameters())


def _input(cfg: BenchConfig, gen: torch.Generator, shape: tuple[int, ...] | None = None) -> Tensor:
    x = torch.randn(shape or cfg.shape, generator=gen) * cfg.input_scale
    return x.to(cfg.device).requires_grad_(cfg.case == "conv")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_memory(fn: NeuronFn, params: list[Tensor], cfg: BenchConfig, x: Tensor, g: Tensor) -> tuple[int | None, str]:
    """Peak extra memory of one forward+backward, with x and g already resident (:mod:`.memory`)."""
    reading = peak_extra_memory(lambda: fn(x).backward(g), cfg.device)
    return reading.peak_bytes, reading.method


def measure(library: str, cfg: BenchConfig, *, memory: bool = True) -> Measurement:
    """Time ``library`` on ``cfg`` in this process (and its peak memory first, when ``memory``).

    For a meaningful memory number call this in a fresh process (:func:`measure_in_subprocess`).
    """
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    fn, params = _build(library, cfg)
    g = torch.randn(cfg.shape, generator=gen).to(cfg.device)
    # a tiny call first, so that lazy imports and dispatch set-up do not count as the step's memory
    tiny = (min(cfg.shape[0], 2), 1, *cfg.shape[2:])
    fn(_input(cfg, gen, tiny)).backward(g[: tiny[0], :1])
    for p in params:
        p.grad = None
    peak, method = (None, "not measured")
    if memory:
        x = _input(cfg, gen)
        peak, method = _peak_memory(fn, params, cfg, x, g)
        del x
        for p in params:
            p.grad = None
    fwd, total = [], []
    rate = 0.0
    for i in range(cfg.warmup + cfg.repeats):
        x = _input(cfg, gen)  # fresh input, fresh graph
        for p in params:
            p.grad = None  # no accumulation across repeats
        _sync(cfg.device)
        t0 = time.perf_counter()
        s = fn(x)
        _sync(cfg.device)
        t1 = time.perf_counter()
        s.backward(g)
        _sync(cfg.device)
        t2 = time.perf_counter()
        if i >= cfg.warmup:
            fwd.append(t1 - t0)
            total.append(t2 - t0)
        rate = float(s.detach().float().mean())
        del s, x
    return Measurement(library, library_version(library), cfg.case, cfg.shape, torch.get_num_threads(), fwd, total,
                       peak, method, rate)


def measure_in_subprocess(library: str, cfg: BenchConfig, timeout: float = 1800.0) -> Measurement:
    """:func:`measure` in a fresh Python process, so that memory is not shared with other libraries."""
    cmd = [sys.executable, "-m", "spikeforge.bench.neuron", "--worker", library, cfg.to_json()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker for {library!r} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    d["shape"] = tuple(d["shape"])
    return Measurement(**d)


def measure_rounds(libraries: Sequence[str], cfg: BenchConfig, rounds: int = 3,
                   progress: Callable[[str], None] | None = None) -> list[Measurement]:
    """Round-robin :func:`measure_in_subprocess` over ``libraries``, ``rounds`` times, pooling the repeats.

    Interleaving spreads every library over the same stretches of time, so that load from other processes on a
    shared machine biases no library in particular. Peak memory is the median over the rounds.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    runs: dict[str, list[Measurement]] = {lib: [] for lib in libraries}
    for r in range(rounds):
        for lib in libraries:
            if progress:
                progress(f"round {r + 1}/{rounds}: {lib}")
            runs[lib].append(measure_in_subprocess(lib, cfg))
    pooled = []
    for lib, ms in runs.items():
        peaks = [m.peak_mem_bytes for m in ms if m.peak_mem_bytes is not None]
        pooled.append(Measurement(lib, ms[0].version, cfg.case, cfg.shape, ms[0].threads,
                                  [t for m in ms for t in m.fwd_s], [t for m in ms for t in m.total_s],
                                  int(statistics.median(peaks)) if peaks else None, ms[0].mem_method,
                                  ms[0].spike_rate))
    return pooled


# --- agreement ---------------------------------------------------------------------------------------------


def check_agreement(libraries: Sequence[str], cfg: BenchConfig) -> list[Agreement]:
    """Run every library once on the same input; compare spikes and gradients with spikeforge's reference loop.

    The gradient is ``dL/dx`` (conv case) or ``dL/dW`` of the Linear (linear case) for ``L = <spikes, g>``.
    """
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)

    def run(lib: str) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(cfg.seed)
        fn, params = _build(lib, cfg)
        x = _input(cfg, gen)
        g = torch.randn(cfg.shape, generator=gen).to(cfg.device)
        s = fn(x)
        s.backward(g)
        grad = x.grad if cfg.case == "conv" else params[0].grad
        assert grad is not None
        return s.detach(), grad

    s_ref, g_ref = run("spikeforge-reference")
    scale = float(g_ref.abs().max()) or 1.0
    out = []
    for lib in libraries:
        s, grad = (s_ref, g_ref) if lib == "spikeforge-reference" else run(lib)
        compared = lib != "norse"
        diff = float((grad - g_ref).abs().max()) if compared else float("nan")
        note = "SuperSpike surrogate (Norse has no ATan): gradients not comparable" if not compared else ""
        out.append(Agreement(lib, int(s.sum()), int(s_ref.sum()), int((s != s_ref).sum()), compared, diff,
                             diff / scale, note))
    return out


# --- reporting ---------------------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    """CPU model, core count, torch/Python versions and the thread count torch uses."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical cores": str(os.cpu_count()),
        "torch": torch.__version__,
        "torch threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
        "load average (1 min)": f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a",
        "platform": platform.platform(),
    }


def _mib(b: int | None) -> str:
    return "n/a" if b is None else f"{b / 2**20:.1f}"


def format_table(results: Sequence[Measurement], baseline: str = "spikeforge") -> str:
    """A markdown table of medians; ratios are ``library / baseline`` (> 1: the baseline is faster / smaller)."""
    base = next((m for m in results if m.library == baseline), None)
    lines = ["| library | version | fwd (ms) | bwd (ms) | fwd+bwd (ms) | fwd+bwd min-max (ms) | peak mem (MiB) "
             f"| time / {baseline} | mem / {baseline} | spike rate |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in results:
        t_ratio = f"{m.total_median / base.total_median:.2f}x" if base else "n/a"
        m_ratio = (f"{m.peak_mem_bytes / base.peak_mem_bytes:.2f}x"
                   if base and base.peak_mem_bytes and m.peak_mem_bytes is not None else "n/a")
        lines.append(f"| {m.library} | {m.version} | {1e3 * m.fwd_median:.1f} | {1e3 * m.bwd_median:.1f} | "
                     f"{1e3 * m.total_median:.1f} | {1e3 * min(m.total_s):.1f}-{1e3 * max(m.total_s):.1f} | "
                     f"{_mib(m.peak_mem_bytes)} | {t_ratio} | {m_ratio} | {m.spike_rate:.3f} |")
    return "\n".join(lines)


def format_agreement(rows: Sequence[Agreement]) -> str:
    lines = ["| library | spikes | reference spikes | mismatching elements | max abs grad diff | rel. grad diff "
             "| note |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for a in rows:
        g = f"{a.grad_max_abs_diff:.2e} | {a.grad_rel_diff:.2e}" if a.grad_compared else "- | -"
        lines.append(f"| {a.library} | {a.spikes} | {a.reference_spikes} | {a.mismatches} | {g} | {a.note} |")
    return "\n".join(lines)


def _worker(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="internal: measure one library in this process, print JSON")
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "CONFIG_JSON"), required=True)
    args = parser.parse_args(argv)
    library, cfg_json = args.worker
    m = measure(library, BenchConfig.from_json(cfg_json), memory=True)
    print(json.dumps(asdict(m)))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
