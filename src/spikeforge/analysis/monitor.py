"""A removable monitor of firing, membrane potentials and synaptic operations of any spikeforge model.

``with Monitor(model) as mon: model(x)`` then ``mon.result()``. Everything is done with forward hooks and the
:func:`spikeforge.neurons.observe` callback; nothing is added to the model's parameters, buffers or attributes, and
after :meth:`Monitor.detach` (or leaving the ``with`` block) every hook is gone and the model runs exactly as before.

Per spiking layer (:class:`spikeforge.neurons.Neuron`): firing rate per time step and overall (events ``|s|``, so a
ternary −1 spike counts as firing), fraction of −1 spikes among spikes, a bounded seeded reservoir of the membrane
values compared with the threshold (``fire_input``, detached; Algorithm R, Vitter 1985), threshold range, and the
spike train of a few neurons of the first sample for rasters.

Per synaptic layer: dense MACs and SOPs (:mod:`spikeforge.analysis.ops`); a module counting its own MACs
(:class:`~spikeforge.layers.synaptic.MacCounted`, PointNet's point transforms) is charged those as MACs.
Whether a layer's input is made of spikes
is decided per call, first by **provenance** — the input is (a view of) a ``Neuron`` output of the same forward,
or the output of a shape-only layer (Flatten/Identity/Dropout), average pool or max pool applied to such a tensor —
then by the exact **value rule** of :func:`spikeforge.analysis.ops.spike_events`. Provenance is what makes
channel- and element-wise amplitudes (``a ⊙ s``, Real Spike) count as spikes before folding exactly as the plain
spikes after folding. An average pool over spikes forwards event counts (window sums): ``conv(avgpool(s))`` is a
conv with the pool folded into its kernel acting on ``s``. How these count is ``sop_mode``: ``'nonzero'`` (default,
the papers' ``fr · FLOPs`` convention) charges one accumulation per non-zero input element and fan-out;
``'events'`` weights each element by the spike events it carries. Calls with real-valued input (the direct-encoded
image of the first layer) are charged dense MACs.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.synaptic import call_macs, is_mac_counted
from ..neurons import Neuron, observe
from .ops import SynapticGeometry, dense_macs, is_synaptic, pair_sizes, sops, spike_events, synaptic_geometry

__all__ = ["Monitor", "MonitorResult", "NeuronRecord", "SynapseRecord", "Reservoir"]

_SHAPE_ONLY = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
              nn.AdaptiveAvgPool3d)
_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
              nn.AdaptiveMaxPool3d)


class Reservoir:
    """Uniform fixed-size sample of a stream of values (Algorithm R, Vitter 1985), seeded, kept on the CPU.

    After ``n`` values each has probability ``min(1, size / n)`` of being held. Value ``i`` (0-based global
    index, ``i ≥ size``) is accepted with probability ``size / (i + 1)`` into a uniformly chosen slot; within a
    batch later values overwrite earlier ones, as in the sequential algorithm. Acceptances are drawn exactly but
    cheaply: candidates of a Bernoulli(``p_max``) process (``p_max = size / (first + 1)``, geometric gaps) are
    thinned with probability ``p_i / p_max``, so a batch costs O(accepted) once the stream is long.
    """

    def __init__(self, size: int, seed: int = 0):
        if size < 0:
            raise ValueError(f"reservoir size must be >= 0, got {size}")
        self.size = int(size)
        self.seen = 0
        self._values = torch.empty(self.size)
        self._gen = torch.Generator().manual_seed(int(seed))

    def _candidates(self, start: int, count: int) -> Tensor:
        """Offsets ``c`` in ``[0, count)`` accepted by Algorithm R for global indices ``start + c``."""
        p_max = min(1.0, self.size / (start + 1))
        if p_max >= 0.25:  # dense: one uniform per value
            idx = torch.arange(start + 1, start + count + 1, dtype=torch.float64)
            u = torch.rand(count, generator=self._gen, dtype=torch.float64)
            return torch.nonzero(u * idx < self.size).squeeze(1)
        # Bernoulli(p_max) candidates via geometric gaps, then thinning to Bernoulli(size / (i + 1))
        log_q = math.log1p(-p_max)
        chunks, last = [], -1
        while last < count - 1:
            n = int(count * p_max + 6 * math.sqrt(count * p_max) + 16)
            u = torch.rand(n, generator=self._gen, dtype=torch.float64).clamp_min(1e-300)
            gaps = torch.floor(torch.log(u) / log_q).clamp_max(float(count))
            pos = last + torch.cumsum(gaps + 1, 0)
            chunks.append(pos)
            last = int(pos[-1])
        cand = torch.cat(chunks)
        cand = cand[cand < count]
        keep = torch.rand(cand.numel(), generator=self._gen, dtype=torch.float64) * (start + cand + 1) < start + 1
        return cand[keep].long()

    def add(self, values: Tensor) -> None:
        v = values.detach().reshape(-1)
        m = v.numel()
        if m == 0 or self.size == 0:
            self.seen += m
            return
        fill = max(0, min(self.size - self.seen, m))
        if fill:
            self._values[self.seen:self.seen + fill] = v[:fill].float().cpu()
        rest = m - fill
        if rest:
            offsets = self._candidates(self.seen + fill, rest)
            if offsets.numel():
                slots = torch.randint(self.size, (offsets.numel(),), generator=self._gen)
                last = torch.full((self.size,), -1, dtype=torch.long)
                last.scatter_reduce_(0, slots, offsets, reduce="amax")  # the last writer of each slot wins
                hit = torch.nonzero(last >= 0).squeeze(1)
                src = (last[hit] + fill).to(v.device)
                self._values[hit] = v[src].float().cpu()
        self.seen += m

    @property
    def values(self) -> Tensor:
        """The held values (fewer than ``size`` until ``size`` values were seen)."""
        return self._values[:min(self.seen, self.size)].clone()


@dataclass
class NeuronRecord:
    """What the monitor collected for one spiking layer (all counts summed over batches)."""

    name: str
    spike: str  # 'binary' | 'ternary'
    num_neurons: int  # per sample
    threshold_min: float
    threshold_max: float
    events_per_step: list[float] = field(default_factory=list)  # Σ|s| at step t over batch and neurons
    elements_per_step: list[int] = field(default_factory=list)  # neurons × samples seen at step t
    negative: int = 0  # number of −1 spikes
    events: float = 0.0
    membrane: Tensor = field(default_factory=lambda: torch.empty(0))
    membrane_seen: int = 0
    raster: Tensor | None = None  # [T, K] spikes of K neurons of the first sample of the first batch
    raster_neurons: list[int] = field(default_factory=list)  # flat feature indices of the raster rows

    @property
    def rate_per_step(self) -> list[float]:
        """Firing rate ``E|s_t|`` at each time step (spikes per neuron per step)."""
        return [e / n if n else 0.0 for e, n in zip(self.events_per_step, self.elements_per_step)]

    @property
    def rate(self) -> float:
        """Mean firing rate over all steps, neurons and samples."""
        n = sum(self.elements_per_step)
        return self.events / n if n else 0.0

    @property
    def negative_fraction(self) -> float:
        """Fraction of the spikes that are −1 (0 for binary neurons)."""
        return self.negative / self.events if self.events else 0.0

    def to_dict(self, membrane: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "spike": self.spike, "num_neurons": self.num_neurons, "rate": self.rate,
            "rate_per_step": self.rate_per_step, "negative_fraction": self.negative_fraction,
            "threshold_min": self.threshold_min, "threshold_max": self.threshold_max,
            "membrane_seen": self.membrane_seen,
        }
        if membrane:
            d["membrane"] = self.membrane.tolist()
        return d


@dataclass
class SynapseRecord:
    """Operation counts of one synaptic layer, summed over calls. ``geometry`` is None for a module that counts
    its own multiply-accumulates (:class:`~spikeforge.layers.synaptic.MacCounted`), always charged as MACs."""

    name: str
    layer_type: str
    geometry: SynapticGeometry | None
    dense_macs: int = 0  # what a dense evaluation executes (every call)
    sops: float = 0.0  # accumulations for the calls with spike input
    charged_macs: int = 0  # dense MACs of the calls with real-valued input
    spike_calls: int = 0
    real_calls: int = 0
    input_events: float = 0.0
    input_elements: int = 0

    @property
    def mode(self) -> str:
        """``'sop'`` (spike input), ``'mac'`` (real-valued input), ``'mixed'`` or ``'unused'``."""
        if self.spike_calls and self.real_calls:
            return "mixed"
        return "sop" if self.spike_calls else ("mac" if self.real_calls else "unused")

    @property
    def input_rate(self) -> float:
        """Mean events per input element over the spike-input calls."""
        return self.input_events / self.input_elements if self.input_elements else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.layer_type, "mode": self.mode, "dense_macs": self.dense_macs, "sops": self.sops,
                "charged_macs": self.charged_macs, "input_rate": self.input_rate}


@dataclass
class MonitorResult:
    """Snapshot of a monitor: records in model order plus the amount of data seen.

    ``samples`` is Σ B over the model's forward calls and ``sample_steps`` Σ T·B (inputs are time-first
    ``[T, B, ...]``); both count calls of the monitored root module only.
    """

    neurons: dict[str, NeuronRecord]
    synapses: dict[str, SynapseRecord]
    samples: int
    sample_steps: int

    @property
    def time_steps(self) -> float:
        """Mean T per sample."""
        return self.sample_steps / self.samples if self.samples else 0.0

    @property
    def firing_rates(self) -> dict[str, float]:
        return {k: r.rate for k, r in self.neurons.items()}

    def to_dict(self, membrane: bool = False) -> dict[str, Any]:
        return {"samples": self.samples, "sample_steps": self.sample_steps,
                "neurons": {k: r.to_dict(membrane) for k, r in self.neurons.items()},
                "synapses": {k: r.to_dict() for k, r in self.synapses.items()}}


class _Events:
    """Provenance of spike tensors within one forward: weak references, never keeping a tensor alive."""

    def __init__(self) -> None:
        self._map: dict[int, tuple[weakref.ref, Tensor | None]] = {}

    def clear(self) -> None:
        self._map.clear()

    def mark(self, t: Tensor, counts: Tensor | None = None) -> None:
        """``t`` carries spikes: one event per non-zero entry (``counts=None``) or ``counts`` events per entry."""
        if len(self._map) > 4096:  # the root module was not the one called: drop entries of freed tensors
            self._map = {k: e for k, e in self._map.items() if e[0]() is not None}
        self._map[id(t)] = (weakref.ref(t), counts)

    def lookup(self, x: Tensor) -> tuple[Tensor, bool] | None:
        """``(events per element, one_per_nonzero)`` if ``x`` is a marked tensor or a view of a tensor marked
        with one event per non-zero entry; None otherwise."""
        entry = self._map.get(id(x))
        if entry is not None and entry[0]() is x:
            return ((x != 0).to(x.dtype), True) if entry[1] is None else (entry[1], False)
        base = x._base
        if base is not None:
            entry = self._map.get(id(base))
            if entry is not None and entry[0]() is base and entry[1] is None:
                return (x != 0).to(x.dtype), True
        return None


def _pool_dims(module: nn.Module) -> int:
    for classes, d in (((nn.AvgPool1d, nn.AdaptiveAvgPool1d), 1), ((nn.AvgPool2d, nn.AdaptiveAvgPool2d), 2),
                       ((nn.AvgPool3d, nn.AdaptiveAvgPool3d), 3)):
        if isinstance(module, classes):
            return d
    raise TypeError(f"{type(module).__name__} is not an average pool")


def _sum_pool(module: nn.Module, counts: Tensor) -> Tensor:
    """Window sums of ``counts`` for an average pool (fixed or adaptive), in the module's geometry.

    An average pool divides the window sum by a constant, which a following synaptic layer can absorb into its
    weights, so the events it forwards are the window sums.
    """
    d = _pool_dims(module)
    lead, spatial = tuple(counts.shape[:-d]), tuple(counts.shape[-d:])
    x = counts.reshape((-1, 1) + spatial)
    if isinstance(module, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        k = pair_sizes(module.kernel_size, d)
        s = pair_sizes(module.stride if module.stride is not None else module.kernel_size, d)
        p = pair_sizes(module.padding, d)
        if d == 1:  # avg_pool1d has no divisor_override: run it as a 1×k 2-d pool
            y = F.avg_pool2d(x.unsqueeze(-2), (1, k[0]), (1, s[0]), (0, p[0]), module.ceil_mode, True,
                             divisor_override=1).squeeze(-2)
        elif d == 2:
            y = F.avg_pool2d(x, k, s, p, module.ceil_mode, True, divisor_override=1)
        else:
            y = F.avg_pool3d(x, k, s, p, module.ceil_mode, True, divisor_override=1)
        return y.reshape(lead + tuple(y.shape[-d:]))
    # adaptive: window i along an axis of length L with O outputs is [floor(i·L/O), ceil((i+1)·L/O))
    out: Any = module.output_size  # AdaptiveAvgPool{1,2,3}d: an int, None, or a tuple of them
    outs = (out,) * d if not isinstance(out, (tuple, list)) else tuple(out)
    out_sizes = tuple(spatial[a] if o is None else int(o) for a, o in enumerate(outs))
    pool: Callable[..., Tensor] = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[d]
    pooled = pool(x, out_sizes if d > 1 else out_sizes[0])
    size = torch.ones((), dtype=counts.dtype, device=counts.device)
    for L, O in zip(spatial, out_sizes):
        i = torch.arange(O, device=counts.device)
        w = torch.div((i + 1) * L + O - 1, O, rounding_mode="floor") - torch.div(i * L, O, rounding_mode="floor")
        size = size.unsqueeze(-1) * w.to(counts.dtype)
    y = (pooled * size).round()
    return y.reshape(lead + tuple(y.shape[-d:]))


class Monitor:
    """Record firing, membrane samples and synaptic operations of ``model`` while attached.

    Args:
        model: any module containing :class:`spikeforge.neurons.Neuron` layers and/or synaptic layers.
        reservoir_size: membrane values kept per spiking layer (0 disables membrane recording).
        seed: seed of the reservoir sampling (reproducible samples).
        raster_neurons: neurons per layer whose spike train (first sample of the first batch) is kept.
        sop_mode: ``'nonzero'`` (default) — one accumulation per non-zero input element and fan-out, so an
            average-pooled spike map costs its non-zero pooled positions (the ``fr · FLOPs`` convention of the
            papers; SOPs never exceed the dense MACs); ``'events'`` — weighted by the number of spike events the
            element carries (window sums of pooled spikes, integer sums such as SEW ADD), the count of an
            implementation that folds the pool into the next layer and stays accumulate-only.

    Use ``with Monitor(model) as mon: ...`` or :meth:`attach` / :meth:`detach`. The model is never modified:
    only hooks and an observer callback are registered, and :meth:`detach` removes all of them.
    """

    def __init__(self, model: nn.Module, *, reservoir_size: int = 4096, seed: int = 0, raster_neurons: int = 16,
                 sop_mode: str = "nonzero", attach: bool = True):
        if not isinstance(model, nn.Module):
            raise TypeError(f"Monitor needs a torch.nn.Module, got {type(model).__name__}")
        if raster_neurons < 0:
            raise ValueError(f"raster_neurons must be >= 0, got {raster_neurons}")
        if sop_mode not in ("nonzero", "events"):
            raise ValueError(f"sop_mode must be 'nonzero' or 'events', got {sop_mode!r}")
        self.sop_mode = sop_mode
        self.model = model
        self.reservoir_size = int(reservoir_size)
        self.seed = int(seed)
        self.raster_neurons = int(raster_neurons)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._stack: contextlib.ExitStack | None = None
        self._events = _Events()
        self.reset()
        if attach:
            self.attach()

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return self._stack is not None

    def reset(self) -> None:
        """Forget everything recorded so far (hooks stay as they are)."""
        self._neurons: dict[str, NeuronRecord] = {}
        self._reservoirs: dict[str, Reservoir] = {}
        self._synapses: dict[str, SynapseRecord] = {}
        self._samples = 0
        self._sample_steps = 0
        names = {id(m): n for n, m in self.model.named_modules()}
        self._names = names
        for n, m in self.model.named_modules():
            if isinstance(m, Neuron):
                self._reservoirs[n] = Reservoir(self.reservoir_size, self.seed + zlib_crc(n))
            elif is_synaptic(m):
                self._synapses[n] = SynapseRecord(n or type(m).__name__, type(m).__name__, synaptic_geometry(m))
            elif is_mac_counted(m):
                self._synapses[n] = SynapseRecord(n or type(m).__name__, type(m).__name__, None)

    def attach(self) -> Monitor:
        """Register the hooks (idempotent)."""
        if self._stack is not None:
            return self
        stack = contextlib.ExitStack()
        stack.enter_context(observe(self.model, self._on_neuron))
        m = self.model
        self._handles.append(m.register_forward_pre_hook(self._on_root_start))
        self._handles.append(m.register_forward_hook(self._on_root_end))
        for name, mod in m.named_modules():
            if isinstance(mod, Neuron):
                self._handles.append(mod.register_forward_hook(self._on_neuron_output))
            elif is_synaptic(mod) or is_mac_counted(mod):
                self._handles.append(mod.register_forward_hook(self._make_synapse_hook(name)))
            elif isinstance(mod, _SHAPE_ONLY + _AVG_POOLS + _MAX_POOLS):
                self._handles.append(mod.register_forward_hook(self._on_passthrough))
        stack.callback(self._remove_handles)
        self._stack = stack
        return self

    def detach(self) -> None:
        """Remove every hook and the observer; the recorded data stays available via :meth:`result`."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None
        self._events.clear()

    def _remove_handles(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> Monitor:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # --- hooks ----------------------------------------------------------------------------------------
    def _on_root_start(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._events.clear()
        x = args[0] if args else None
        if isinstance(x, Tensor) and x.ndim >= 2:
            self._samples += int(x.shape[1])
            self._sample_steps += int(x.shape[0]) * int(x.shape[1])

    def _on_root_end(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        self._events.clear()

    def _on_neuron(self, neuron: Neuron, fire_input: Tensor | None, s: Tensor) -> None:
        name = self._names.get(id(neuron), type(neuron).__name__)
        with torch.no_grad():
            rec = self._neurons.get(name)
            T = s.shape[0]
            if rec is None:
                thr = neuron.threshold.detach()
                rec = NeuronRecord(name, neuron.config.spike, int(s[0, 0].numel()) if s.ndim > 1 else 1,
                                   float(thr.min()), float(thr.max()))
                self._neurons[name] = rec
                if self.raster_neurons and s.ndim > 1:
                    first = s[:, 0].reshape(T, -1)
                    k = min(self.raster_neurons, first.shape[1])
                    # the k most active neurons of the first sample (ties -> lower index), in index order
                    activity = first.abs().sum(0).double().cpu()
                    order = torch.sort(-activity, stable=True).indices[:k]
                    idx = torch.sort(order).values
                    rec.raster_neurons = idx.tolist()
                    rec.raster = first[:, idx.to(first.device)].detach().float().cpu()
            mag = s.detach().abs()
            per_step = mag.reshape(T, -1).sum(1, dtype=torch.float64).cpu().tolist()
            elems = int(s[0].numel())
            while len(rec.events_per_step) < T:
                rec.events_per_step.append(0.0)
                rec.elements_per_step.append(0)
            for t in range(T):
                rec.events_per_step[t] += per_step[t]
                rec.elements_per_step[t] += elems
            rec.events += float(sum(per_step))
            if neuron.config.spike == "ternary":
                rec.negative += int((s < 0).sum())
            if fire_input is not None and self.reservoir_size:
                res = self._reservoirs.setdefault(name, Reservoir(self.reservoir_size, self.seed + zlib_crc(name)))
                res.add(fire_input.detach())

    def _on_neuron_output(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if isinstance(out, Tensor):
            self._events.mark(out)

    def _input_events(self, x: Tensor) -> Tensor | None:
        found = self._events.lookup(x)
        return found[0] if found is not None else spike_events(x)

    def _on_passthrough(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if not args or not isinstance(args[0], Tensor) or not isinstance(out, Tensor):
            return
        with torch.no_grad():
            x = args[0]
            found = self._events.lookup(x)
            if found is None and isinstance(module, _AVG_POOLS + _MAX_POOLS):
                ev = spike_events(x)  # e.g. event frames fed straight into a pool
                found = None if ev is None else (ev, bool((ev <= 1).all()))
            if found is None:
                return  # not provably spikes: the consumer applies the value rule to ``out``
            ev, one_per_nonzero = found
            if isinstance(module, _MAX_POOLS):
                if one_per_nonzero:
                    self._events.mark(out)  # max over {0, ±a_i}: one event per non-zero output
            elif isinstance(module, _AVG_POOLS):
                self._events.mark(out, _sum_pool(module, ev))
            elif one_per_nonzero:
                self._events.mark(out)
            elif ev.numel() == out.numel():  # shape-only: same counts, zero where dropout dropped the entry
                self._events.mark(out, ev.reshape(out.shape) * (out != 0))

    def _make_synapse_hook(self, name: str):
        def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            if not args or not isinstance(args[0], Tensor) or not isinstance(out, Tensor):
                return
            rec = self._synapses[name]
            with torch.no_grad():
                x = args[0]
                if rec.geometry is None:  # a module counting its own MACs (e.g. a learned point transform)
                    macs = int(call_macs(module, args, out) or 0)
                    rec.dense_macs += macs
                    rec.real_calls += 1
                    rec.charged_macs += macs
                    return
                macs = dense_macs(rec.geometry, out)
                rec.dense_macs += macs
                ev = self._input_events(x)
                if ev is None:
                    rec.real_calls += 1
                    rec.charged_macs += macs
                else:
                    if self.sop_mode == "nonzero":
                        ev = (ev != 0).to(ev.dtype)
                    rec.spike_calls += 1
                    rec.sops += sops(rec.geometry, ev)
                    rec.input_events += float(ev.sum(dtype=torch.float64))
                    rec.input_elements += int(ev.numel())

        return hook

    # --- results --------------------------------------------------------------------------------------
    def result(self) -> MonitorResult:
        """A snapshot of everything recorded (neurons in model order, synaptic layers in model order)."""
        order = list(self._names.values())
        neurons = {k: self._neurons[k] for k in sorted(self._neurons, key=lambda n: _pos(order, n))}
        for k, rec in neurons.items():
            res = self._reservoirs.get(k)
            if res is not None:
                rec.membrane, rec.membrane_seen = res.values, res.seen
        synapses = {k: v for k, v in self._synapses.items()}
        return MonitorResult(neurons, synapses, self._samples, self._sample_steps)

    def energy(self, e_mac: float | None = None, e_ac: float | None = None):
        """Shortcut for :func:`spikeforge.analysis.energy_report` on :meth:`result`."""
        from .energy import E_AC_PJ, E_MAC_PJ, energy_report

        return energy_report(self.result(), E_MAC_PJ if e_mac is None else e_mac, E_AC_PJ if e_ac is None else e_ac)


def _pos(order: list[str], name: str) -> int:
    try:
        return order.index(name)
    except ValueError:
        return len(order)


def zlib_crc(name: str) -> int:
    """Stable per-layer seed offset (``hash()`` is salted per process)."""
    import zlib

    return zlib.crc32(name.encode()) % (2**31 - 1)

