"""Whole training step benchmark: a spiking VGG-4 and a narrow spiking ResNet-19 in spikeforge and in the peers.

One SGD step = zero grads, forward over ``x[T, B, 3, 32, 32]`` (a static image repeated T times, direct
encoding), cross-entropy of the time-averaged logits, backward, ``optimizer.step()``. Every library runs the
*same network* with the *same weights*: spikeforge's model is built first and every other library's network is
converted from it module by module (conv, BN, pooling and linear weights and BN running statistics copied in).

* ``vgg4``: ``SpikingConvNet`` conv 64-128-256-256 (3x3, BN, LIF, 2x2 avg-pool after each), linear 1024 -> 10.
* ``resnet19``: ``resnet19(width=0.25)`` (32-64-128 channels, blocks 3-3-2, standard residual style).

The neuron everywhere is the LIF of :mod:`spikeforge.bench.neuron` (``decay = 0.5`` i.e. tau = 2, threshold 1,
hard reset to 0 through the non-detached spike, ATan surrogate alpha = 2).

Libraries:

* ``spikeforge``: the model as built (public options only: ``neuron=dict(..., backend="auto")``).
* ``spikeforge-compressed``: the same with :func:`spikeforge.layers.compress_spikes` on (spike inputs of
  conv/linear saved for backward as 1 bit per element).
* ``spikeforge-recompute``: the same with :func:`spikeforge.layers.recompute` on (each spiking segment keeps
  only its input, as bits when it is a spike tensor, and runs again in the backward).
* ``spikingjelly``: SpikingJelly 2.0 multi-step (``step_mode="m"``) layers and ``LIFNode``; on CPU SpikingJelly
  2.0 always runs its fused autograd loop (its fastest CPU path).
* ``snntorch``: ``snntorch.Leaky`` stepped in a Python loop over T (torch layers on ``[B, ...]`` per step).
* ``norse``: ``lif_box_feed_forward_step`` in a Python loop (SuperSpike surrogate: Norse has no ATan).
* ``eager``: a plain PyTorch per-step loop with a hand-written LIF.
* ``ann``: the same network with ReLU instead of the neuron, run once on ``[B, ...]`` (the reference cost).

The per-step libraries compute BN statistics per time step in training (how they are used); the multi-step
libraries pool them over T*B. The agreement check therefore runs in ``eval()`` mode (BN from the copied running
statistics), where every library computes the same function.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .memory import peak_extra_memory
from .neuron import LIFParams, _ATanSpike, library_version

__all__ = ["MODELS", "STEP_LIBRARIES", "StepAgreement", "StepConfig", "StepMeasurement", "build",
           "check_step_agreement", "measure_step", "measure_step_in_subprocess", "measure_step_rounds",
           "profile_step", "profile_step_in_subprocess"]

MODELS: tuple[str, ...] = ("vgg4", "resnet19")
STEP_LIBRARIES: tuple[str, ...] = ("spikeforge", "spikeforge-compressed", "spikeforge-recompute", "spikingjelly",
                                   "snntorch", "norse", "eager", "ann")
_PEER_MODULE = {"spikingjelly": "spikingjelly.activation_based.layer", "snntorch": "snntorch",
                "norse": "norse.torch.functional.lif_box"}
_DIST = {"spikeforge-compressed": "spikeforge", "spikeforge-recompute": "spikeforge", "eager": "torch",
         "ann": "torch"}


@dataclass(frozen=True)
class StepConfig:
    model: str = "vgg4"
    steps: int = 4
    batch: int = 32
    input_size: int = 32
    width: float = 0.25  # resnet19 only
    repeats: int = 5
    warmup: int = 0  # untimed steps beyond the two every measurement starts with (set-up, memory)
    threads: int | None = None
    seed: int = 0
    lr: float = 0.01
    device: str = "cpu"

    def __post_init__(self) -> None:
        torch.device(self.device)  # raises on a malformed device string
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if min(self.steps, self.batch, self.input_size, self.repeats) < 1 or self.warmup < 0:
            raise ValueError("steps, batch, input_size and repeats must be >= 1 and warmup >= 0, got "
                             f"{self.steps}, {self.batch}, {self.input_size}, {self.repeats}, {self.warmup}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must lie in (0, 4], got {self.width}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> StepConfig:
        return cls(**json.loads(text))


@dataclass
class StepMeasurement:
    library: str
    version: str
    model: str
    steps: int
    batch: int
    threads: int
    step_s: list[float]
    fwd_s: list[float]
    peak_mem_bytes: int | None
    load: float
    memory_method: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.step_s)

    @property
    def fwd_median(self) -> float:
        return statistics.median(self.fwd_s)


@dataclass
class StepAgreement:
    library: str
    spikes: int
    reference_spikes: int
    logits_max_abs_diff: float
    grad_rel_diff: float  # max |g - g_ref| / max |g_ref| over all parameters; nan where not comparable
    note: str = ""


# --- the spikeforge model ------------------------------------------------------------------------------------

def _neuron_cfg(p: LIFParams, backend: str = "auto") -> dict:
    return dict(decay=p.decay, threshold=p.threshold, reset="hard", v_reset=0.0, detach_reset=False,
                surrogate="atan", surrogate_param=p.alpha, backend=backend)


def spikeforge_model(cfg: StepConfig, p: LIFParams | None = None, backend: str = "auto",
                     random_bn: bool = False) -> nn.Module:
    """The benchmark network in spikeforge (fixed seed: every library copies these weights).

    ``random_bn``: random BN affine and running statistics (for the eval-mode agreement check: with the default
    running statistics an identity shortcut can put a membrane exactly on the threshold, where snnTorch's
    ``h > V_th`` and everyone else's ``h >= V_th`` differ).
    """
    from ..models import create_model

    p = p or LIFParams()
    torch.manual_seed(cfg.seed)
    if cfg.model == "vgg4":
        model = create_model("convnet", num_classes=10, in_channels=3, input_size=cfg.input_size,
                             widths=(64, 128, 256, 256), neuron=_neuron_cfg(p, backend))
    else:
        model = create_model("resnet19", num_classes=10, in_channels=3, input_size=cfg.input_size,
                             width=cfg.width, neuron=_neuron_cfg(p, backend))
    if random_bn:
        gen = torch.Generator().manual_seed(cfg.seed + 11)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    n = m.num_features
                    assert m.running_mean is not None and m.running_var is not None  # track_running_stats
                    m.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
                    m.running_var.copy_(0.2 + 0.3 * torch.rand(n, generator=gen))
                    m.weight.copy_(1 + 0.2 * torch.randn(n, generator=gen))
                    m.bias.copy_(0.3 + 0.2 * torch.randn(n, generator=gen))
    return model


# --- per-step neurons of the peers ---------------------------------------------------------------------------

class _StepNeuron(nn.Module):
    """A stateful one-step neuron on ``[B, ...]``; ``reset()`` before each sequence. Counts its spikes."""

    def __init__(self, p: LIFParams):
        super().__init__()
        self.p = p
        self.v: Tensor | None = None
        self.spikes = 0

    def reset(self) -> None:
        self.v = None

    def step(self, x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        v = torch.zeros_like(x) if self.v is None else self.v
        s, self.v = self.step(x, v)
        if not torch.is_grad_enabled() or not self.training:
            self.spikes += int(s.detach().sum())
        return s


class _EagerLIF(_StepNeuron):
    def step(self, x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        h = self.p.decay * v + x
        s = _ATanSpike.apply(h - self.p.threshold, self.p.alpha)
        return s, h * (1 - s)


class _SnntorchLIF(_StepNeuron):
    def __init__(self, p: LIFParams):
        super().__init__(p)
        import snntorch
        from snntorch import surrogate

        self.leaky = snntorch.Leaky(beta=p.decay, threshold=p.threshold, reset_mechanism="zero", reset_delay=False,
                                    spike_grad=surrogate.atan(alpha=p.alpha))

    def step(self, x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        return self.leaky(x, v)


class _NorseLIF(_StepNeuron):
    def __init__(self, p: LIFParams):
        super().__init__(p)
        from norse.torch.functional.lif_box import LIFBoxParameters

        self.params = LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / p.tau), v_th=torch.as_tensor(p.threshold),
                                       v_leak=torch.as_tensor(0.0), v_reset=torch.as_tensor(0.0), method="super")

    def step(self, x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        from norse.torch.functional.lif_box import LIFBoxFeedForwardState, lif_box_feed_forward_step

        z, state = lif_box_feed_forward_step(x * self.p.tau, LIFBoxFeedForwardState(v=v), self.params, dt=1.0)
        return z, state.v


_STEP_NEURON: dict[str, Callable[[LIFParams], nn.Module]] = {
    "eager": _EagerLIF, "snntorch": _SnntorchLIF, "norse": _NorseLIF, "ann": lambda p: nn.ReLU()}


# --- conversion ------------------------------------------------------------------------------------------------

def _copy(dst: nn.Module, src: nn.Module) -> nn.Module:
    dst.load_state_dict(src.state_dict())
    return dst


def _convert(m: nn.Module, lib: str, p: LIFParams) -> nn.Module:
    """The peer-library counterpart of spikeforge module ``m`` (weights copied)."""
    from .. import layers
    from ..neurons import Neuron

    if lib == "spikingjelly":
        from spikingjelly.activation_based import layer, neuron, surrogate

        if isinstance(m, Neuron):
            return neuron.LIFNode(tau=float(p.tau), decay_input=False, v_threshold=p.threshold, v_reset=0.0,
                                  surrogate_function=surrogate.ATan(alpha=p.alpha), detach_reset=False,
                                  step_mode="m")
        if isinstance(m, layers.Conv2d):
            return _copy(layer.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                      bias=m.bias is not None, step_mode="m"), m)
        if isinstance(m, layers.BatchNorm2d):
            return _copy(layer.BatchNorm2d(m.num_features, step_mode="m"), m)
        if isinstance(m, layers.AvgPool2d):
            return layer.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                                   step_mode="m")
        if isinstance(m, layers.AdaptiveAvgPool2d):
            return layer.AdaptiveAvgPool2d(m.output_size, step_mode="m")
        if isinstance(m, layers.Flatten):
            return layer.Flatten(1, -1, step_mode="m")
        if isinstance(m, layers.Linear):
            return _copy(layer.Linear(m.in_features, m.out_features, m.bias is not None, step_mode="m"), m)
    else:
        if isinstance(m, Neuron):
            return _STEP_NEURON[lib](p)
        if isinstance(m, layers.Conv2d):
            return _copy(nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,  # type: ignore[arg-type]
                                   bias=m.bias is not None), m)
        if isinstance(m, layers.BatchNorm2d):
            return _copy(nn.BatchNorm2d(m.num_features), m)
        if isinstance(m, layers.AvgPool2d):
            return nn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad)
        if isinstance(m, layers.AdaptiveAvgPool2d):
            return nn.AdaptiveAvgPool2d(m.output_size)
        if isinstance(m, layers.Flatten):
            return nn.Flatten(1)
        if isinstance(m, layers.Linear):
            return _copy(nn.Linear(m.in_features, m.out_features, m.bias is not None), m)
    if isinstance(m, nn.Identity):
        return nn.Identity()
    if isinstance(m, nn.Sequential):
        return nn.Sequential(*[_convert(c, lib, p) for c in m.children()])
    if isinstance(m, layers.BasicBlock):
        block = copy.copy(m)
        block._modules = {name: _convert(c, lib, p) for name, c in m._modules.items() if c is not None}
        return block
    raise TypeError(f"no {lib} counterpart for {type(m).__name__}")


class _PerStep(nn.Module):
    """Runs a per-step network over ``x[T, B, ...]``, one time step at a time; returns ``[T, B, k]``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        for m in self.net.modules():
            if isinstance(m, _StepNeuron):
                m.reset()
        return torch.stack([self.net(x[t]) for t in range(x.shape[0])])


class _Ann(nn.Module):
    """The ReLU network on one ``[B, ...]`` frame (no time); returns ``[1, B, k]``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x[0]).unsqueeze(0)


class _SJ(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        from spikingjelly.activation_based import functional

        functional.reset_net(self.net)
        return self.net(x)


def build(library: str, cfg: StepConfig, p: LIFParams | None = None, random_bn: bool = False) -> nn.Module:
    """The benchmark network of ``library``: ``x[T, B, 3, H, W] -> logits[T', B, 10]`` (same weights for all)."""
    p = p or LIFParams()
    model = spikeforge_model(cfg, p, random_bn=random_bn)
    if library == "spikeforge":
        return model
    if library == "spikeforge-compressed":
        from ..layers import compress_spikes

        compress_spikes(model, True)
        return model
    if library == "spikeforge-recompute":
        from ..layers import compress_spikes, recompute

        return recompute(compress_spikes(model, True))
    if library not in STEP_LIBRARIES:
        raise ValueError(f"unknown library {library!r}; choose one of {STEP_LIBRARIES}")
    net = nn.Sequential(*[_convert(c, library, p) for c in model.children()])
    if library == "spikingjelly":
        return _SJ(net)
    if library == "ann":
        return _Ann(net)
    return _PerStep(net)


def available_step_libraries(candidates: Sequence[str] = STEP_LIBRARIES) -> list[str]:
    import importlib

    out = []
    for lib in candidates:
        if lib not in STEP_LIBRARIES:
            raise ValueError(f"unknown library {lib!r}; choose from {STEP_LIBRARIES}")
        if lib in _PEER_MODULE:
            try:
                importlib.import_module(_PEER_MODULE[lib])
            except Exception:  # an absent or broken peer is not benchmarked
                continue
        out.append(lib)
    return out


# --- measurement ------------------------------------------------------------------------------------------------

def _data(cfg: StepConfig, device: str = "cpu") -> tuple[Tensor, Tensor]:
    """``x[T, B, 3, H, W]`` direct-encoded as the trainer does it (:func:`spikeforge.encode.direct`: the image
    repeated over T as a view; every library reads the same tensor) and labels ``y[B]``."""
    from ..encode import direct

    gen = torch.Generator().manual_seed(cfg.seed + 7)
    img = torch.randn(cfg.batch, 3, cfg.input_size, cfg.input_size, generator=gen)
    y = torch.randint(0, 10, (cfg.batch,), generator=gen)
    return direct(img.to(device), cfg.steps), y.to(device)


def _loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(model(x).mean(0), y)


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _training_step(library: str, cfg: StepConfig) -> tuple[Callable[[], tuple[float, float]], torch.optim.Optimizer,
                                                            nn.Module]:
    """``step()`` -> (step seconds, forward seconds) of ``library``'s net, its optimizer and the net (threads set
    here)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    model = build(library, cfg).to(cfg.device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    x, y = _data(cfg, cfg.device)

    def step() -> tuple[float, float]:
        _sync(cfg.device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = _loss(model, x, y)
        _sync(cfg.device)
        t1 = time.perf_counter()
        loss.backward()
        opt.step()
        _sync(cfg.device)
        return time.perf_counter() - t0, t1 - t0

    return step, opt, model


def profile_step(library: str, cfg: StepConfig, top: int = 4, by: str = "time") -> list[str]:
    """One training step (after a set-up step) in this process: its ``top`` operators by self CPU time
    (``by="time"``, :func:`spikeforge.bench.targets.top_ops`) or the modules whose tensors autograd saves for
    backward (``by="memory"``, :func:`spikeforge.bench.targets.saved_tensors_by_module`)."""
    from .targets import neuron_backends, saved_tensors_by_module, top_ops

    if by not in ("time", "memory"):
        raise ValueError(f"by must be 'time' or 'memory', got {by!r}")
    step, _, model = _training_step(library, cfg)
    step()
    with neuron_backends() as used:
        rows = top_ops(step, top) if by == "time" else saved_tensors_by_module(model, step, top)
    return (used if library.startswith("spikeforge") else []) + rows


def profile_step_in_subprocess(library: str, cfg: StepConfig, top: int = 4, by: str = "time",
                               timeout: float = 1800.0) -> list[str]:
    """:func:`profile_step` in a fresh process (same threads as the measurement)."""
    cmd = [sys.executable, "-m", "spikeforge.bench.step", "--worker", library, cfg.to_json(), "--profile", str(top),
           "--by", by]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"step profile worker for {library!r} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def measure_step(library: str, cfg: StepConfig, *, memory: bool = True) -> StepMeasurement:
    """Time ``library``'s training step in this process; with ``memory``, first the peak extra memory of one step.

    Memory (:func:`spikeforge.bench.memory.peak_extra_memory`): one whole step (forward, backward,
    ``optimizer.step()``) after a first set-up step, with the weights, the momentum buffers and the input batch
    resident and the previous step's gradients freed (``zero_grad(set_to_none=True)``); glibc's cached free heap is
    returned to the kernel first, so the step's activations, gradients and temporaries are counted even though
    the set-up step allocated (and freed) the same sizes. For a number independent of other libraries call this in
    a fresh process (:func:`measure_step_in_subprocess`).
    """
    import os

    step, opt, _ = _training_step(library, cfg)
    step()  # momentum buffers, lazy set-up, kernel build
    for _ in range(cfg.warmup):
        step()
    peak, method = None, "not measured"
    if memory:
        opt.zero_grad(set_to_none=True)
        reading = peak_extra_memory(step, cfg.device)
        peak, method = reading.peak_bytes, reading.method
    times, fwd = [], []
    for _ in range(cfg.repeats):
        t, f = step()
        times.append(t)
        fwd.append(f)
    dist = _DIST.get(library, library)
    return StepMeasurement(library, library_version(dist) if dist in ("spikingjelly", "snntorch", "norse")
                           else _version(dist), cfg.model, cfg.steps, cfg.batch, torch.get_num_threads(), times, fwd,
                           peak, os.getloadavg()[0], method)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "n/a"


def measure_step_in_subprocess(library: str, cfg: StepConfig, timeout: float = 1800.0) -> StepMeasurement:
    cmd = [sys.executable, "-m", "spikeforge.bench.step", "--worker", library, cfg.to_json()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"step benchmark worker for {library!r} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return StepMeasurement(**json.loads(proc.stdout.strip().splitlines()[-1]))


def measure_step_rounds(libraries: Sequence[str], cfg: StepConfig, rounds: int = 2,
                        progress: Callable[[str], None] | None = None) -> list[StepMeasurement]:
    """Round-robin subprocess measurements (every library in a fresh process each round), repeats pooled."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    runs: dict[str, list[StepMeasurement]] = {lib: [] for lib in libraries}
    for r in range(rounds):
        order = list(libraries) if r % 2 == 0 else list(reversed(libraries))
        for lib in order:
            if progress:
                progress(f"{cfg.model} T={cfg.steps} round {r + 1}/{rounds}: {lib}")
            runs[lib].append(measure_step_in_subprocess(lib, cfg))
    out = []
    for lib, ms in runs.items():
        peaks = [m.peak_mem_bytes for m in ms if m.peak_mem_bytes is not None]
        out.append(StepMeasurement(lib, ms[0].version, cfg.model, cfg.steps, cfg.batch, ms[0].threads,
                                   [t for m in ms for t in m.step_s], [t for m in ms for t in m.fwd_s],
                                   int(statistics.median(peaks)) if peaks else None,
                                   statistics.mean(m.load for m in ms), ms[0].memory_method))
    return out


# --- agreement --------------------------------------------------------------------------------------------------

def _count_spikes(model: nn.Module) -> Callable[[], int]:
    from ..layers import recomputing
    from ..neurons import Neuron

    total = [0]
    hooks = []

    def count(_m: nn.Module, _i: object, o: Tensor) -> None:
        if not recomputing():  # a recomputed segment (spikeforge-recompute) runs its neurons again in backward
            total[0] += int(o.sum())

    for m in model.modules():
        is_sj = type(m).__name__ == "LIFNode"
        if isinstance(m, Neuron) or is_sj:
            hooks.append(m.register_forward_hook(count))
    for m in model.modules():
        if isinstance(m, _StepNeuron):
            m.spikes = 0

    def read() -> int:
        for h in hooks:
            h.remove()
        return total[0] + sum(m.spikes for m in model.modules() if isinstance(m, _StepNeuron))
    return read


def check_step_agreement(libraries: Sequence[str], cfg: StepConfig) -> list[StepAgreement]:
    """One forward+backward of every library in eval mode on the same data, against spikeforge's autograd
    reference neuron loop (``backend="reference"``): total spikes, logits and all parameter gradients."""
    x, y = _data(cfg)
    p = LIFParams()

    def run(lib: str) -> tuple[int, Tensor, list[Tensor]]:
        model = (spikeforge_model(cfg, p, "reference", random_bn=True) if lib == "reference"
                 else build(lib, cfg, p, random_bn=True))
        model.eval()
        from ..layers import hooks_rerun

        read = _count_spikes(model)
        with hooks_rerun():  # the counting hooks must not turn recomputation off
            logits = model(x).mean(0)
            F.cross_entropy(logits, y).backward()
        grads = [q.grad if q.grad is not None else torch.zeros_like(q) for q in model.parameters()]
        return read(), logits.detach(), grads

    n_ref, l_ref, g_ref = run("reference")
    out = []
    for lib in libraries:
        if lib == "ann":
            continue
        n, logits, grads = run(lib)
        comparable = lib != "norse"
        if comparable and len(grads) != len(g_ref):
            raise RuntimeError(f"{lib}: {len(grads)} parameters, reference has {len(g_ref)}")
        rel = (max(float((g - r).abs().max()) / (float(r.abs().max()) or 1.0) for g, r in zip(grads, g_ref))
               if comparable else math.nan)
        out.append(StepAgreement(lib, n, n_ref, float((logits - l_ref).abs().max()), rel,
                                 "" if comparable else "SuperSpike surrogate: gradients not comparable"))
    return out


def _worker(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(description="internal: one library's training step in this process, JSON out")
    ap.add_argument("--worker", nargs=2, metavar=("LIBRARY", "CONFIG_JSON"), required=True)
    ap.add_argument("--profile", type=int, default=0, help="print the top N ops of one step instead of timing")
    ap.add_argument("--by", choices=("time", "memory"), default="time", help="--profile: rank ops by")
    a = ap.parse_args(argv)
    cfg = StepConfig.from_json(a.worker[1])
    if a.profile:
        print(json.dumps(profile_step(a.worker[0], cfg, a.profile, a.by)))
        return 0
    m = measure_step(a.worker[0], cfg)
    print(json.dumps(asdict(m)))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
