"""The issue-14 targets the whole-step benchmark (:mod:`.step`) does not cover, and the profile line of a miss.

* **Folded inference** (target: folded inference costs <= 1.02x a vanilla LIF model of the same shape): the VGG-4
  of :mod:`.step` (conv 64-128-256-256, BN, avg-pool, linear) built with a training-only neuron of the library --
  ``mpbn`` (MPBN, arXiv:2308.08359), ``ternary`` (Ternary Spike with a layer amplitude, arXiv:2312.06372),
  ``real-spike`` (channel amplitudes, arXiv:2210.06686) -- given a trained state (random BN affine and amplitudes,
  running statistics from a few training-mode forwards), folded with :func:`spikeforge.fold`, against the same net
  with the plain ``lif`` preset, folded too (its BN merges into the conv: the deployable vanilla model). Time of
  one inference batch (``no_grad``, eval) ``x[T, B, 3, 32, 32]``, the models alternating every repeat, median.
* **Spiking PointNet T = 1 vs T = 4** (target: training at T = 1 costs <= 0.3x training at T = 4 per epoch): one
  epoch = ``batches`` SGD steps of ``pointnet`` (preset neuron ``pointnet``, cross-entropy of the time-mean logits +
  0.001 x the feature-transform regulariser) over the same in-memory point clouds ``[T, B, 3, N]``; the T = 1 and
  T = 4 epochs alternate, median over epochs.
* :func:`top_ops`: the ``torch.profiler`` self-CPU top operators of a call, the line a missed target reports.

Each measurement runs in its own subprocess (``python -m spikeforge.bench.targets --worker KIND CONFIG_JSON``)
with the requested thread count, like the step benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FOLD_VARIANTS", "InferenceConfig", "PointNetConfig", "measure_folded_inference", "measure_pointnet",
           "neuron_backends", "run_in_subprocess", "saved_tensors_by_module", "top_ops", "trained_vgg4"]

FOLD_VARIANTS: tuple[str, ...] = ("mpbn", "ternary", "real-spike")


@dataclass(frozen=True)
class InferenceConfig:
    variants: tuple[str, ...] = FOLD_VARIANTS
    steps: int = 4
    batch: int = 32
    input_size: int = 32
    repeats: int = 7
    threads: int | None = 1
    seed: int = 0
    profile_top: int = 4

    def __post_init__(self) -> None:
        bad = [v for v in self.variants if v not in FOLD_VARIANTS]
        if bad:
            raise ValueError(f"variants: unknown {bad}; choose from {FOLD_VARIANTS}")
        if min(self.steps, self.batch, self.input_size, self.repeats) < 1:
            raise ValueError("steps, batch, input_size and repeats must be >= 1, got "
                             f"{self.steps}, {self.batch}, {self.input_size}, {self.repeats}")


@dataclass(frozen=True)
class PointNetConfig:
    batch: int = 32
    points: int = 1024
    width: float = 0.25
    batches: int = 1  # SGD steps per epoch (the ratio is per step; one keeps `make bench` short)
    epochs: int = 3  # timed epochs per T (after one untimed)
    long_steps: int = 4
    threads: int | None = 1
    seed: int = 0
    profile_top: int = 4

    def __post_init__(self) -> None:
        if min(self.batch, self.points, self.batches, self.epochs, self.long_steps) < 1 or not 0 < self.width <= 1:
            raise ValueError("batch, points, batches, epochs and long_steps must be >= 1 and width in (0, 1], got "
                             f"{self.batch}, {self.points}, {self.batches}, {self.epochs}, {self.long_steps}, "
                             f"{self.width}")


@dataclass
class InferenceResult:
    variant: str
    variant_s: list[float]
    vanilla_s: list[float]
    profile: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.variant_s) / statistics.median(self.vanilla_s)


@dataclass
class PointNetResult:
    short_s: list[float]  # epoch times at T = 1
    long_s: list[float]  # epoch times at T = long_steps
    long_steps: int
    profile: list[str] = field(default_factory=list)  # top ops of one T = 1 step

    @property
    def ratio(self) -> float:
        return statistics.median(self.short_s) / statistics.median(self.long_s)


def top_ops(fn: Callable[[], object], top: int = 4) -> list[str]:
    """The ``top`` operators by self CPU time of one call of ``fn`` (``torch.profiler``), as
    ``"aten::op 123 ms (40 %, 8 calls)"`` strings."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [f"{e.key} {e.self_cpu_time_total / 1e3:.0f} ms ({100 * e.self_cpu_time_total / total:.0f} %, "
            f"{e.count} calls)" for e in events[:top]]


@contextlib.contextmanager
def neuron_backends() -> Iterator[list[str]]:
    """Within the block, record which backend ran each neuron call and, when it was not the device's first
    choice (C++ on CPU, Triton on CUDA), why: the list gets one ``"neurons: fused x4 (cpp: <reason>)"`` line
    on exit."""
    from ..functional import kernels

    seen: dict[tuple[str, str | None], int] = {}
    original = kernels.select_backend

    def spy(call: Any, backend: str = "auto") -> Any:
        chosen = original(call, backend)
        first = kernels._auto_order(call.x)[0]
        why = kernels.get_backend(first).supports(call) or f"backend={backend!r} requested"
        reason = None if chosen.name == first else f"{first}: {why}"
        seen[(chosen.name, reason)] = seen.get((chosen.name, reason), 0) + 1
        return chosen

    out: list[str] = []
    kernels.select_backend = spy
    try:
        yield out
    finally:
        kernels.select_backend = original
        parts = [f"{name} x{n}" + (f" ({why})" if why else "") for (name, why), n in seen.items()]
        out.append("neurons: " + ("; ".join(parts) or "none"))


def saved_tensors_by_module(model: nn.Module, fn: Callable[[], object], top: int = 4) -> list[str]:
    """What autograd keeps for backward during one call of ``fn`` (which runs ``model``), grouped by the class of
    the innermost module running when the tensor was saved: ``"Neuron 120 MiB (40 %)"``. Each storage counts
    once; parameters (resident anyway) are left out. This is the part of training memory a layer choice moves.

    Under :func:`spikeforge.layers.recompute`, what a segment saves while it is recomputed in the backward lives
    only until that segment's gradient is computed: it is reported apart, as the largest such segment."""
    from ..layers import hooks_rerun
    from ..layers.spikes import RECOMPUTING

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    stack: list[str] = []
    sizes: dict[str, int] = {}
    per_segment: dict[int, int] = {}
    seen: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if getattr(RECOMPUTING, "depth", 0) > 0:
            seg = int(getattr(RECOMPUTING, "segments", 0))
            per_segment[seg] = per_segment.get(seg, 0) + storage.nbytes()
        elif ptr not in seen and ptr not in params:
            seen.add(ptr)
            owner = stack[-1] if stack else "(outside modules)"
            owner = "segment inputs" if owner.startswith("Recompute") else owner
            sizes[owner] = sizes.get(owner, 0) + storage.nbytes()
        return t

    def enter(mod: nn.Module, _inputs: object) -> None:
        stack.append(type(mod).__name__)

    def leave(_mod: nn.Module, _inputs: object, _output: object) -> None:
        stack.pop()

    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(enter))
        handles.append(m.register_forward_hook(leave))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), hooks_rerun():
            fn()
    finally:
        for h in handles:
            h.remove()
    total = sum(sizes.values()) or 1
    ranked = sorted(sizes.items(), key=lambda kv: kv[1], reverse=True)
    rows = [f"{name} {b / 2**20:.0f} MiB ({100 * b / total:.0f} %)" for name, b in ranked[:top]]
    if per_segment:
        rows.insert(0, f"kept from forward to backward {total / 2**20:.1f} MiB; largest segment saves "
                       f"{max(per_segment.values()) / 2**20:.0f} MiB while it is recomputed "
                       f"({len(per_segment)} segments)")
    return rows


# --- folded inference ------------------------------------------------------------------------------------------

def trained_vgg4(preset: str, cfg: InferenceConfig) -> nn.Module:
    """The step benchmark's VGG-4 with neuron preset ``preset`` in a trained-looking state (eval mode): BN/MPBN
    affine and amplitudes drawn around their init, running statistics from three training-mode forwards."""
    from ..models import create_model

    torch.manual_seed(cfg.seed)
    model = create_model("convnet", num_classes=10, in_channels=3, input_size=cfg.input_size,
                         widths=(64, 128, 256, 256), neuron={"preset": preset})
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "weight" and p.ndim == 1 or "amplitude" in name:
                p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=gen))  # positive: foldable scales
            elif leaf == "bias" and p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        model.train()
        for _ in range(3):
            model(torch.randn(cfg.steps, 4, 3, cfg.input_size, cfg.input_size, generator=gen))
    return model.eval()


def measure_folded_inference(cfg: InferenceConfig) -> list[InferenceResult]:
    """Per variant: folded-model vs folded-vanilla inference time per batch (module docstring)."""
    from ..folding import fold

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    vanilla = fold(trained_vgg4("lif", cfg))
    folded = {v: fold(trained_vgg4(v, cfg)) for v in cfg.variants}
    x = torch.randn(cfg.steps, cfg.batch, 3, cfg.input_size, cfg.input_size,
                    generator=torch.Generator().manual_seed(cfg.seed + 2))

    def timed(m: nn.Module) -> float:
        with torch.no_grad():
            t0 = time.perf_counter()
            m(x)
            return time.perf_counter() - t0

    for m in (vanilla, *folded.values()):
        timed(m)  # set-up
    res = {v: InferenceResult(v, [], []) for v in cfg.variants}
    for _ in range(cfg.repeats):
        for v, m in folded.items():
            res[v].vanilla_s.append(timed(vanilla))
            res[v].variant_s.append(timed(m))
    if cfg.profile_top:
        for v, m in folded.items():
            with torch.no_grad(), neuron_backends() as used:
                res[v].profile = top_ops(functools.partial(m, x), cfg.profile_top)
            res[v].profile = used + res[v].profile
    return list(res.values())


# --- Spiking PointNet ------------------------------------------------------------------------------------------

def measure_pointnet(cfg: PointNetConfig) -> PointNetResult:
    """Epoch time of Spiking PointNet training at T = 1 and T = ``long_steps`` (module docstring)."""
    from ..models import create_model

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    clouds = [torch.randn(cfg.batch, 3, cfg.points, generator=gen) for _ in range(cfg.batches)]
    labels = [torch.randint(0, 40, (cfg.batch,), generator=gen) for _ in range(cfg.batches)]
    runs: dict[int, tuple[Any, torch.optim.Optimizer]] = {}
    for t in (1, cfg.long_steps):
        torch.manual_seed(cfg.seed)
        model = create_model("pointnet", num_classes=40, num_points=cfg.points, width=cfg.width,
                             neuron={"preset": "pointnet"})
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        runs[t] = (model, opt)

    def step(t: int, i: int) -> None:
        model, opt = runs[t]
        opt.zero_grad(set_to_none=True)
        out = model(clouds[i].unsqueeze(0).expand(t, *clouds[i].shape), aux=True)
        reg = model.feature_transform_regularizer(transform=out.aux["feature_transform"])
        loss = F.cross_entropy(out.logits.mean(0), labels[i]) + 0.001 * reg
        loss.backward()
        opt.step()

    def epoch(t: int) -> float:
        t0 = time.perf_counter()
        for i in range(cfg.batches):
            step(t, i)
        return time.perf_counter() - t0

    times: dict[int, list[float]] = {1: [], cfg.long_steps: []}
    for e in range(cfg.epochs + 1):
        for t in ((1, cfg.long_steps) if e % 2 == 0 else (cfg.long_steps, 1)):
            d = epoch(t)
            if e > 0:
                times[t].append(d)
    prof: list[str] = []
    if cfg.profile_top:
        with neuron_backends() as used:
            prof = top_ops(lambda: step(1, 0), cfg.profile_top)
        prof = used + prof
    return PointNetResult(times[1], times[cfg.long_steps], cfg.long_steps, prof)


# --- subprocess plumbing ----------------------------------------------------------------------------------------

_KINDS: dict[str, tuple[type, Callable]] = {"inference": (InferenceConfig, measure_folded_inference),
                                           "pointnet": (PointNetConfig, measure_pointnet)}


def run_in_subprocess(kind: str, cfg: InferenceConfig | PointNetConfig,
                      timeout: float = 1800.0) -> list[InferenceResult] | PointNetResult:
    """``measure_folded_inference`` (``kind="inference"``) or ``measure_pointnet`` (``"pointnet"``) in a fresh
    Python process."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    cmd = [sys.executable, "-m", "spikeforge.bench.targets", "--worker", kind, json.dumps(asdict(cfg))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} benchmark worker failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if kind == "inference":
        return [InferenceResult(**r) for r in out]
    return PointNetResult(**out)


def _worker(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(description="internal: one target measurement in this process, JSON out")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "CONFIG_JSON"), required=True)
    a = ap.parse_args(argv)
    config_cls, fn = _KINDS[a.worker[0]]
    raw = json.loads(a.worker[1])
    if "variants" in raw:
        raw["variants"] = tuple(raw["variants"])
    res = fn(config_cls(**raw))
    print(json.dumps([asdict(r) for r in res] if isinstance(res, list) else asdict(res)))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))

