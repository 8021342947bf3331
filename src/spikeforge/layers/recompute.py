"""Recomputation: keep each spiking segment's input (as bits when it is a spike tensor), rebuild the rest in backward.

Autograd keeps every tensor a layer needs for its backward until the backward runs: conv outputs for BatchNorm,
pre-spike membranes for the surrogate, spikes for the next conv, for all ``T`` steps of every layer at once. With
:func:`recompute` on, each segment of the network -- the run of layers up to and including a spiking neuron
(``[pool,] conv, BN, neuron``; a residual block) -- runs its forward without keeping anything but its input and
runs it again inside the backward, with the gradient enabled, just before its gradient is needed (gradient
checkpointing, Chen et al., arXiv:1604.06174). A segment input that is a spike tensor (every element in
``{0, a}`` or ``{-a, 0, a}``) is kept at 1 or 2 bits per element (:func:`~spikeforge.layers.spikes.pack_spikes`);
anything else (the encoded image, the real-valued residual stream of MS-ResNet) is kept as it is. What stays in
memory for backward is then about one bit per neuron and step, plus one segment's activations at a time.

**Exact.** The recomputation replays the segment's forward with the same inputs, the same random-number state
(dropout, random initial membranes) and the same autocast state, and with every buffer the first forward changed
(BatchNorm running statistics, MPBN statistics) set back to its value before that forward -- so the running
statistics are updated once per forward, as without recomputation. The gradients are those of the ordinary path
bit for bit (``tests/layers/test_recompute.py``, every zoo model).

**Time chunks** (``time_chunk=k``, for long sequences): a segment whose layers do not mix time steps -- convs,
linears, pools, flatten, neurons without MPBN or per-step thresholds, norms in eval mode -- runs ``k`` steps at a
time, carrying each neuron's membrane from chunk to chunk; the backward recomputes and differentiates one chunk at a
time in reverse order, passing the membrane's gradient back across the chunk boundary. Only the membranes at the
chunk boundaries are kept besides the input bits, and the backward holds one chunk's activations instead of
``T`` steps'. Spikes and the membrane recurrence are those of the whole sequence; a parameter's gradient is the
sum of its per-chunk gradients, equal to the whole-sequence gradient to float rounding (summation order), as are
conv/linear outputs computed on a ``k * B`` instead of a ``T * B`` batch. Training-mode BatchNorm pools its
statistics over all ``T * B`` samples, so a segment containing one recomputes the whole sequence;
:func:`recompute` raises if no segment of the model can be chunked, and :func:`recompute_plan` lists which are.

Use: ``spikeforge.layers.recompute(model)`` (a recipe: ``train: {recompute: true}`` or ``{recompute: {time_chunk:
8}}``); off again with ``recompute(model, False)``. It works on every ``nn.Sequential`` of the model (the zoo's
models are Sequentials of stems, stages and blocks) by giving it a subclass whose ``forward`` runs segments, as
``torch.nn.utils.parametrize`` does for parametrised layers: ``state_dict`` keys, ``isinstance`` checks and hooks
are unchanged. Recomputation is active only where it can change nothing: with gradients enabled, outside
``torch.compile``, and not in a segment whose neurons are observed (RMP-Loss and the monitors need the membranes of
the forward itself) or whose modules carry forward hooks (they would run a second time): such segments run the
ordinary path, with a one-time warning. Docs: ``docs/benchmarks.md``
(memory) and ``docs/training.md``.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import get_device_states, set_device_states

from ..neurons import Neuron
from ..neurons.base import NeuronState
from .spikes import RECOMPUTING, PackedSpikes
from .time import Dropout, Flatten, Identity, Linear, SeqModule

__all__ = ["RecomputeConfig", "SegmentPlan", "hooks_rerun", "recompute", "recompute_plan", "recomputing"]

_WARNED: set[str] = set()


@dataclass(frozen=True)
class RecomputeConfig:
    """``time_chunk``: steps per chunk for segments that do not mix time steps (None: whole sequence)."""

    time_chunk: int | None = None

    def __post_init__(self) -> None:
        if self.time_chunk is not None and (isinstance(self.time_chunk, bool) or int(self.time_chunk) < 1):
            raise ValueError(f"time_chunk must be a positive number of time steps or None, got {self.time_chunk!r}")


@dataclass(frozen=True)
class SegmentPlan:
    """One segment as :func:`recompute_plan` reports it: its module names, whether it is recomputed, and whether
    (in the model's current train/eval mode) it runs in time chunks, or why not."""

    container: str
    modules: tuple[str, ...]
    recomputed: bool
    chunked: bool
    reason: str


# --- which Sequentials, which segments ----------------------------------------------------------------------

def _has_neuron(m: nn.Module) -> bool:
    return any(isinstance(k, Neuron) for k in m.modules())


def _is_plain_sequential(m: nn.Module) -> bool:
    return isinstance(m, nn.Sequential) and getattr(type(m), "forward", None) in (nn.Sequential.forward,
                                                                                   _RecomputeSequential.forward)


def _segments(seq: nn.Sequential) -> list[tuple[list[nn.Module], bool]]:
    """``(modules, recompute)`` runs: cut after each child holding a neuron; a nested recomputing Sequential is a
    run of its own, executed as is (it segments itself)."""
    out: list[tuple[list[nn.Module], bool]] = []
    run: list[nn.Module] = []
    for child in seq:
        if isinstance(child, _RecomputeSequential):
            if run:
                out.append((run, False))
                run = []
            out.append(([child], False))
            continue
        run.append(child)
        if _has_neuron(child):
            out.append((run, True))
            run = []
    if run:
        out.append((run, False))
    return out


_TIME_LOCAL = (SeqModule, Linear, nn.Linear, Flatten, Identity, nn.Identity)


def _why_not_chunkable(mods: Sequence[nn.Module]) -> str | None:
    for m in mods:
        name = type(m).__name__
        if isinstance(m, Neuron):
            if m.mpbn is not None:
                return f"{name} with MPBN normalises each step with per-step statistics"
            if m.threshold_per_step:
                return f"{name} has per-step thresholds"
            continue
        if isinstance(m, (Dropout, nn.Dropout)) and m.training:
            return f"{name} in training draws its masks for the whole sequence at once"
        if isinstance(m, nn.modules.batchnorm._NormBase):
            if m.training:
                return f"{name} in training pools its statistics over all T*B samples"
            continue
        if isinstance(m, (Dropout, nn.Dropout)) or isinstance(m, _TIME_LOCAL):
            continue
        return f"{name} is not known to act on each time step separately"
    return None


# --- the segment as one autograd node ---------------------------------------------------------------------------

class _SavedInput:
    """A segment input kept for backward: bit-packed if spike-valued, else the tensor itself. The tensors go
    through ``ctx.save_for_backward`` (saved-tensor hooks such as CPU offloading see them)."""

    def __init__(self, ctx: Any, x: Tensor):
        packed = PackedSpikes.pack(x)
        if packed is None:
            ctx.save_for_backward(x)
            self.meta: tuple[torch.Size, torch.dtype, bool] | None = None
        else:
            neg = packed.neg if packed.neg is not None else packed.pos.new_empty(0)
            ctx.save_for_backward(packed.pos, neg, packed.amplitude)
            self.meta = (packed.shape, packed.dtype, packed.neg is not None)

    def restore(self, ctx: Any) -> _Input:
        saved = ctx.saved_tensors
        if self.meta is None:
            return _Input(saved[0], None)
        shape, dtype, ternary = self.meta
        return _Input(None, PackedSpikes(saved[0], saved[1] if ternary else None, saved[2], shape, dtype))


class _Input:
    def __init__(self, tensor: Tensor | None, packed: PackedSpikes | None):
        self.tensor, self.packed = tensor, packed
        self.shape = packed.shape if packed is not None else tensor.shape  # type: ignore[union-attr]

    def steps(self, t0: int, t1: int) -> Tensor:
        """Steps ``t0:t1`` of the input (only that range unpacked)."""
        if self.packed is not None:
            return self.packed.unpack(t0, t1)
        assert self.tensor is not None
        return self.tensor[t0:t1]


class _Replay:
    """Random-number, autocast and buffer state to run a segment's forward again as it first ran."""

    def __init__(self, x: Tensor):
        self.cpu_rng = torch.get_rng_state()
        self.devices, self.device_states = get_device_states(x)
        self.device_type = x.device.type
        self.autocast = (torch.is_autocast_enabled(self.device_type), torch.get_autocast_dtype(self.device_type))

    def restore(self) -> None:
        torch.set_rng_state(self.cpu_rng)
        if self.devices:
            set_device_states(self.devices, self.device_states)

    def autocast_context(self) -> Any:
        enabled, dtype = self.autocast
        return torch.autocast(self.device_type, dtype=dtype, enabled=enabled)


class _BufferSnapshot:
    """The values of a segment's buffers before its forward; :meth:`changed` keeps those the forward changed."""

    def __init__(self, mods: Sequence[nn.Module]):
        self.entries = [(m, name, b.detach().clone()) for top in mods for m in top.modules()
                        for name, b in m._buffers.items() if b is not None]

    def keep_changed(self) -> None:
        def changed(now: Tensor | None, old: Tensor) -> bool:
            return now is None or now.shape != old.shape or not torch.equal(now, old)

        self.entries = [(m, n, old) for m, n, old in self.entries if changed(m._buffers.get(n), old)]

    def swap_in(self) -> list[tuple[nn.Module, str, Tensor | None]]:
        """Put clones of the old values in place; returns the current entries to put back."""
        current = [(m, n, m._buffers.get(n)) for m, n, _ in self.entries]
        for m, n, old in self.entries:
            m._buffers[n] = old.clone()
        return current

    @staticmethod
    def put_back(current: list[tuple[nn.Module, str, Tensor | None]]) -> None:
        for m, n, t in current:
            m._buffers[n] = t


def _chunks(T: int, k: int | None) -> list[tuple[int, int]]:
    if k is None or k >= T:
        return [(0, T)]
    return [(t0, min(t0 + k, T)) for t0 in range(0, T, k)]


def _run_whole(mods: Sequence[nn.Module], x: Tensor) -> Tensor:
    for m in mods:
        x = m(x)
    return x


def _run_chunk(mods: Sequence[nn.Module], x: Tensor, states: list[NeuronState | None]
               ) -> tuple[Tensor, list[NeuronState | None]]:
    out: list[NeuronState | None] = []
    i = 0
    for m in mods:
        if isinstance(m, Neuron):
            x, st = m.run(x, states[i])
            out.append(st)
            i += 1
        else:
            x = m(x)
    return x, out


class _Segment(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, mods: list[nn.Module], chunk: int | None, x: Tensor, *params: Tensor) -> Tensor:
        ctx.mods, ctx.n_params = mods, len(params)
        buffers = _BufferSnapshot(mods)
        T = x.shape[0]
        spans = _chunks(T, chunk)
        n_neurons = sum(isinstance(m, Neuron) for m in mods)
        states: list[NeuronState | None] = [None] * n_neurons
        boundary: list[list[NeuronState | None]] = []
        replays: list[_Replay] = []
        outs: list[Tensor] = []
        for t0, t1 in spans:
            boundary.append(states)
            replays.append(_Replay(x))
            if len(spans) == 1:
                y = _run_whole(mods, x)
                states = []
            else:
                y, states = _run_chunk(mods, x[t0:t1], states)
                states = [None if s is None else NeuronState(s.v.detach()) for s in states]
            outs.append(y)
        if not all(isinstance(y, Tensor) for y in outs):
            raise TypeError("a recomputed segment must return one tensor")
        buffers.keep_changed()
        ctx.buffers, ctx.spans, ctx.boundary, ctx.replays = buffers, spans, boundary, replays
        ctx.saved_input = _SavedInput(ctx, x)
        return outs[0] if len(outs) == 1 else torch.cat(outs, 0)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        mods: list[nn.Module] = ctx.mods
        saved_input = ctx.saved_input.restore(ctx)
        need_x = ctx.needs_input_grad[2]
        params_need = list(ctx.needs_input_grad[3:])
        param_grads: list[Tensor | None] = [None] * ctx.n_params
        params = _segment_params(mods)
        chunked = len(ctx.spans) > 1
        g_x = torch.empty(saved_input.shape, dtype=g.dtype, device=g.device) if need_x and chunked else None
        g_state_next: list[Tensor | None] = []
        for k in range(len(ctx.spans) - 1, -1, -1):
            t0, t1 = ctx.spans[k]
            x = saved_input.steps(t0, t1).detach().requires_grad_(need_x)
            init = [None if s is None else s.v.detach().requires_grad_(True) for s in ctx.boundary[k]]
            current = ctx.buffers.swap_in()
            try:
                with torch.random.fork_rng(devices=ctx.replays[k].devices), torch.enable_grad(), _inside():
                    ctx.replays[k].restore()
                    with ctx.replays[k].autocast_context():
                        if chunked:
                            y, finals = _run_chunk(mods, x, [None if v is None else NeuronState(v) for v in init])
                        else:
                            y = _run_whole(mods, x)
                            finals = []
                outputs, grad_outputs = [y], [g[t0:t1] if chunked else g]
                for st, gs in zip(finals, g_state_next):
                    if st is not None and gs is not None and st.v.requires_grad:
                        outputs.append(st.v)
                        grad_outputs.append(gs)
                inputs: list[Tensor] = []
                if need_x:
                    inputs.append(x)
                init_used = [v for v in init if v is not None]
                inputs += init_used
                wanted = [p for p, need in zip(params, params_need) if need]
                inputs += wanted
                grads = torch.autograd.grad(outputs, inputs, grad_outputs, allow_unused=True) if inputs else ()
            finally:
                _BufferSnapshot.put_back(current)
            pos = 0
            if need_x:
                if chunked:
                    gx = grads[0]
                    g_x[t0:t1] = 0 if gx is None else gx  # type: ignore[index]
                else:
                    g_x = grads[0]
                pos = 1
            g_init = list(grads[pos:pos + len(init_used)])
            pos += len(init_used)
            it = iter(g_init)
            g_state_next = [None if v is None else next(it) for v in init]
            j = 0
            for i, need in enumerate(params_need):
                if need:
                    gp = grads[pos + j]
                    j += 1
                    prev = param_grads[i]
                    if gp is not None:
                        param_grads[i] = gp if prev is None else prev + gp
        return (None, None, g_x, *param_grads)


def _segment_params(mods: Sequence[nn.Module]) -> list[Tensor]:
    seen: set[int] = set()
    out: list[Tensor] = []
    for m in mods:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


class _inside:
    """Marks a recomputation in progress: nested recomputing Sequentials run plainly inside it."""

    def __enter__(self) -> None:
        RECOMPUTING.depth = getattr(RECOMPUTING, "depth", 0) + 1
        RECOMPUTING.segments = getattr(RECOMPUTING, "segments", 0) + 1  # profilers tell segments apart

    def __exit__(self, *exc: object) -> None:
        RECOMPUTING.depth -= 1


def _why_plain(mods: Sequence[nn.Module]) -> str | None:
    """Why a segment must run the ordinary path: its forward has observers that need (or hooks that would see
    twice) what it computes."""
    from torch.nn.modules import module as torch_module

    if getattr(_HOOKS, "allowed", 0) > 0:
        hooks_ok = True
    else:
        hooks_ok = False
    if not hooks_ok and (torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks):
        return "global module forward hooks are registered (they would run again in the backward)"
    for m in mods:
        for k in m.modules():
            if isinstance(k, Neuron) and k._observers:
                return ("neurons are observed (RMP-Loss or a monitor needs the membranes of the forward itself)")
            if not hooks_ok and (k._forward_hooks or k._forward_pre_hooks):
                return f"{type(k).__name__} has forward hooks (they would run again in the backward)"
    return None


_HOOKS = threading.local()


@contextlib.contextmanager
def hooks_rerun() -> Iterator[None]:
    """Inside this block, segments whose modules carry forward hooks are recomputed anyway: the hooks run a second
    time during the backward, where :func:`recomputing` is True (for tools that count or profile with hooks)."""
    _HOOKS.allowed = getattr(_HOOKS, "allowed", 0) + 1
    try:
        yield
    finally:
        _HOOKS.allowed -= 1


def recomputing() -> bool:
    """True while a segment's forward is being run again inside the backward."""
    return getattr(RECOMPUTING, "depth", 0) > 0


# --- the Sequential subclass ----------------------------------------------------------------------------------

class _RecomputeSequential(nn.Sequential):
    """Mixin put in front of a Sequential's class by :func:`recompute`: its forward runs segments."""

    _recompute: RecomputeConfig

    def forward(self, x: Tensor) -> Tensor:
        if not (isinstance(x, Tensor) and torch.is_grad_enabled() and getattr(RECOMPUTING, "depth", 0) == 0
                and not torch.compiler.is_compiling()):
            return nn.Sequential.forward(self, x)
        for mods, recomputed in _segments(self):
            why = _why_plain(mods) if recomputed else None
            if not recomputed or why is not None:
                if why is not None and why not in _WARNED:
                    _WARNED.add(why)
                    warnings.warn(f"recompute skips segments while {why}: those calls keep every activation",
                                  RuntimeWarning, stacklevel=2)
                for m in mods:
                    x = m(x)
                continue
            params = _segment_params(mods)
            if not (x.requires_grad or any(p.requires_grad for p in params)):
                for m in mods:
                    x = m(x)
                continue
            chunk = self._recompute.time_chunk
            if chunk is not None and (chunk >= x.shape[0] or _why_not_chunkable(mods) is not None):
                chunk = None
            x = _Segment.apply(list(mods), chunk, x, *params)
        return x


_CLASSES: dict[type, type] = {}


def _recompute_class(cls: type) -> type:
    if issubclass(cls, _RecomputeSequential):
        return cls
    if cls not in _CLASSES:
        _CLASSES[cls] = type(f"Recompute{cls.__name__}", (_RecomputeSequential, cls),
                             {"__module__": __name__, "__doc__": cls.__doc__})
    return _CLASSES[cls]


def _targets(model: nn.Module) -> Iterator[tuple[str, nn.Sequential]]:
    for name, m in model.named_modules():
        if _is_plain_sequential(m) and _has_neuron(m):
            yield name, m


def recompute(model: nn.Module, enabled: bool = True, *, time_chunk: int | None = None) -> nn.Module:
    """Turn recomputation on (off) for every Sequential of ``model`` that holds spiking neurons; returns
    ``model``. ``time_chunk=k`` also runs time-local segments ``k`` steps at a time (module docstring).

    Raises ``ValueError`` if the model has no such Sequential, or if ``time_chunk`` is given and no segment can
    run in chunks in the model's current mode (:func:`recompute_plan` tells why per segment)."""
    cfg = RecomputeConfig(time_chunk)
    targets = list(_targets(model))
    if not targets:
        if enabled:
            raise ValueError(f"{type(model).__name__} has no nn.Sequential holding spiking neurons to recompute "
                             "(recompute segments the Sequentials of a model)")
        return model
    for _, m in targets:
        if enabled:
            m.__class__ = _recompute_class(type(m))
            m.__dict__["_recompute"] = cfg
        elif isinstance(m, _RecomputeSequential):
            original = next(c for c in type(m).__mro__[1:] if not issubclass(c, _RecomputeSequential))
            m.__class__ = original  # type: ignore[assignment]
            m.__dict__.pop("_recompute", None)
    if enabled and time_chunk is not None:
        plan = recompute_plan(model)
        if not any(p.chunked for p in plan):
            reasons = sorted({p.reason for p in plan if p.recomputed})
            recompute(model, False)
            raise ValueError(f"time_chunk={time_chunk}: no segment of {type(model).__name__} can run in time chunks "
                             f"in its current ({'training' if model.training else 'eval'}) mode: "
                             + "; ".join(reasons) + ". Use time_chunk=None (whole-sequence recomputation)")
    return model


def recompute_plan(model: nn.Module) -> list[SegmentPlan]:
    """The segments :func:`recompute` runs, in the model's current train/eval mode."""
    names = {id(m): n for n, m in model.named_modules()}
    plan: list[SegmentPlan] = []
    for cname, seq in model.named_modules():
        if not isinstance(seq, _RecomputeSequential):
            continue
        chunk = seq._recompute.time_chunk
        for mods, recomputed in _segments(seq):
            if len(mods) == 1 and isinstance(mods[0], _RecomputeSequential):
                continue
            why = _why_not_chunkable(mods) if recomputed else "no spiking neuron: runs as is"
            chunked = recomputed and chunk is not None and why is None
            if recomputed and chunk is None:
                why = "time_chunk not set"
            plan.append(SegmentPlan(cname, tuple(names.get(id(m), type(m).__name__) for m in mods), recomputed,
                                    chunked, "" if chunked else str(why)))
    return plan
