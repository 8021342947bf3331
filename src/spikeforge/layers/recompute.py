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

**Time chunks** (``time_chunk=k``, for long sequences): a segment whose layers act on each time step separately --
convs, linears, pools, flatten, neurons without MPBN or per-step thresholds, norms in eval mode -- runs ``k`` steps
at a time, carrying each neuron's membrane from chunk to chunk; the backward recomputes and differentiates one chunk
at a time in reverse order, passing the membrane's gradient back across the chunk boundary. A training-mode
BatchNorm (``BatchNorm1d/2d``, tdBN) pools its statistics over all ``T * B`` samples: the segment then runs a
statistics pass over the chunks (mean and biased variance merged pairwise in float64, running statistics updated
once as BatchNorm does), normalises chunk by chunk, and its backward passes twice over the chunks -- once for the
two per-channel sums the statistics' gradient needs, once for the input gradient. Kept besides the input bits: the
membranes at the chunk boundaries (one step's worth each) and the statistics. Spikes and the membrane recurrence
are those of the whole sequence; conv outputs on a ``k * B`` batch, pooled statistics and per-chunk parameter
gradients equal the whole-sequence values to float rounding. :func:`recompute` raises if no segment of the model can
be chunked (MPBN, BNTT/TEBN in training, dropout), and :func:`recompute_plan` says why per segment.

Use: ``spikeforge.layers.recompute(model)`` (a recipe: ``memory: {recompute: true}``, ``time_chunk: 8``); off again
with ``recompute(model, False)``. It works on every ``nn.Sequential`` of the model (the zoo's
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
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import get_device_states, set_device_states

from ..neurons import Neuron
from ..neurons.base import NeuronState
from .norm import BatchNorm1d, BatchNorm2d, TDBatchNorm2d
from .spikes import RECOMPUTING, PackedSpikes
from .time import Flatten, SeqModule

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


# per-step layers (Flatten: spikeforge's, which keeps [T, B]; dropout only in eval, see below)
_TIME_LOCAL = (SeqModule, nn.Linear, Flatten, nn.Identity, nn.Dropout)


def _why_not_chunkable(mods: Sequence[nn.Module]) -> str | None:
    for m in mods:
        name = type(m).__name__
        if isinstance(m, Neuron):
            if m.mpbn is not None:
                return f"{name} with MPBN normalises each step with per-step statistics"
            if m.threshold_per_step:
                return f"{name} has per-step thresholds"
            continue
        if isinstance(m, nn.Dropout) and m.training:
            return f"{name} in training draws its masks for the whole sequence at once"
        if isinstance(m, nn.modules.batchnorm._NormBase):
            continue  # eval: per sample; training: _why_norm_not_chunkable
        if isinstance(m, _TIME_LOCAL):
            continue
        return f"{name} is not known to act on each time step separately"
    return _why_norm_not_chunkable(mods)


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


class _ChunkedOutput:
    """The segment output written chunk by chunk into one tensor (no list of chunks plus a concatenated copy)."""

    def __init__(self) -> None:
        self.full: Tensor | None = None

    def put(self, y: Tensor, t0: int, T: int) -> None:
        if not isinstance(y, Tensor):
            raise TypeError(f"a recomputed segment must return one tensor, got {type(y).__name__}")
        if self.full is None:
            if y.shape[0] == T:
                self.full = y
                return
            self.full = y.new_empty((T,) + tuple(y.shape[1:]))
        self.full[t0:t0 + y.shape[0]] = y

    def result(self) -> Tensor:
        assert self.full is not None
        return self.full


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
        out = _ChunkedOutput()
        for t0, t1 in spans:
            boundary.append(states)
            replays.append(_Replay(x))
            if len(spans) == 1:
                y = _run_whole(mods, x)
                states = []
            else:
                y, states = _run_chunk(mods, x[t0:t1], states)
                states = [None if s is None else NeuronState(s.v.detach()) for s in states]
            out.put(y, t0, T)
            del y
        buffers.keep_changed()
        ctx.buffers, ctx.spans, ctx.boundary, ctx.replays = buffers, spans, boundary, replays
        ctx.saved_input = _SavedInput(ctx, x)
        return out.result()

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
            del x, y, outputs, grad_outputs, grads, inputs  # one chunk alive at a time
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


_HOOKS = threading.local()


def _why_plain(mods: Sequence[nn.Module]) -> str | None:
    """Why a segment must run the ordinary path: its forward has observers that need (or hooks that would see
    twice) what it computes."""
    from torch.nn.modules import module as torch_module

    hooks_ok = getattr(_HOOKS, "allowed", 0) > 0
    if not hooks_ok and (torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks):
        return "global module forward hooks are registered (they would run again in the backward)"
    for m in mods:
        for k in m.modules():
            if isinstance(k, Neuron) and k._observers:
                return "neurons are observed (RMP-Loss or a monitor needs the membranes of the forward itself)"
            if not hooks_ok and (k._forward_hooks or k._forward_pre_hooks):
                return f"{type(k).__name__} has forward hooks (they would run again in the backward)"
    return None



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


# --- time chunks through a training-mode BatchNorm -----------------------------------------------------------

_CHUNKABLE_NORMS: tuple[type, ...] = (nn.BatchNorm1d, nn.BatchNorm2d, BatchNorm1d, BatchNorm2d, TDBatchNorm2d)


def _pooled_norm_index(mods: Sequence[nn.Module]) -> int | None:
    """Index of the (one) training-mode BatchNorm of a chunkable segment, if any."""
    found = [i for i, m in enumerate(mods) if isinstance(m, nn.modules.batchnorm._NormBase) and m.training]
    return found[0] if found else None


def _why_norm_not_chunkable(mods: Sequence[nn.Module]) -> str | None:
    norms = [m for m in mods if isinstance(m, nn.modules.batchnorm._NormBase) and m.training]
    if not norms:
        return None
    if len(norms) > 1:
        return "the segment has more than one training-mode BatchNorm"
    bn = norms[0]
    name = type(bn).__name__
    if type(bn) not in _CHUNKABLE_NORMS:
        return f"{name} in training: its statistics cannot be pooled over chunks here (BatchNorm1d/2d, tdBN can)"
    i = list(mods).index(bn)
    if any(isinstance(k, Neuron) for m in mods[:i] for k in m.modules()):
        return f"a neuron runs before {name}"
    return None


def _channel_dims(c: Tensor) -> list[int]:
    return [0, 1] + list(range(3, c.ndim))


def _per_channel(v: Tensor, like: Tensor) -> Tensor:
    return v.reshape((1, 1, -1) + (1,) * (like.ndim - 3))


class _PooledStats:
    """Mean and biased variance per channel over chunks (Chan et al.'s pairwise update, in float64)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: Tensor | None = None
        self.m2: Tensor | None = None
        self.dtype = torch.float32  # of the statistics: the input's, at least float32 (half inputs: float32)

    def add(self, c: Tensor) -> None:
        if c.dtype == torch.float64:
            self.dtype = torch.float64
        var, mean = torch.var_mean(c, dim=_channel_dims(c), correction=0)
        n_k = c.numel() // c.shape[2]
        mean, m2 = mean.double(), var.double() * n_k
        if self.mean is None or self.m2 is None:
            self.n, self.mean, self.m2 = n_k, mean, m2
            return
        n = self.n + n_k
        delta = mean - self.mean
        self.mean = self.mean + delta * (n_k / n)
        self.m2 = self.m2 + m2 + delta * delta * (self.n * n_k / n)
        self.n = n

    def result(self) -> tuple[Tensor, Tensor]:
        assert self.mean is not None and self.m2 is not None
        return self.mean.to(self.dtype), (self.m2 / self.n).to(self.dtype)


def _norm_weight(bn: nn.Module) -> Tensor | None:
    eff = getattr(bn, "effective_weight", None)
    w = eff() if callable(eff) else bn.weight
    return w if isinstance(w, Tensor) else None


def _normalise(bn: Any, c: Tensor, mean: Tensor, var: Tensor, affine: bool = True) -> Tensor:
    """``(c - mean) / sqrt(var + eps) * w + b`` with the BatchNorm kernel (eval form: no statistics update)."""
    w, b = (_norm_weight(bn), bn.bias) if affine else (None, None)
    y = F.batch_norm(c.flatten(0, 1), mean, var, w, b, False, 0.0, bn.eps)
    return y.reshape(c.shape)


def _update_running(bn: Any, mean: Tensor, var: Tensor, n: int) -> None:
    if not bn.track_running_stats:
        return
    bn.num_batches_tracked.add_(1)
    factor = (1.0 / float(bn.num_batches_tracked)) if bn.momentum is None else float(bn.momentum)
    unbiased = var * (n / max(n - 1, 1))
    bn.running_mean.mul_(1 - factor).add_(mean.to(bn.running_mean.dtype), alpha=factor)
    bn.running_var.mul_(1 - factor).add_(unbiased.to(bn.running_var.dtype), alpha=factor)


class _NormChunkedSegment(torch.autograd.Function):
    """``pre -> BatchNorm (training) -> post`` in time chunks: a statistics pass, then normalised chunks; the
    backward recomputes each chunk twice (once for the statistics' gradient sums, once for the input gradient)."""

    @staticmethod
    def forward(ctx: Any, mods: list[nn.Module], j: int, chunk: int, x: Tensor, *params: Tensor) -> Tensor:
        pre, bn, post = mods[:j], mods[j], mods[j + 1:]
        spans = _chunks(x.shape[0], chunk)
        stats = _PooledStats()
        for t0, t1 in spans:
            stats.add(_run_whole(pre, x[t0:t1]))
        mean, var = stats.result()
        _update_running(bn, mean, var, stats.n)
        n_neurons = sum(isinstance(m, Neuron) for m in post)
        states: list[NeuronState | None] = [None] * n_neurons
        boundary: list[list[NeuronState | None]] = []
        replays: list[_Replay] = []
        result = _ChunkedOutput()
        for t0, t1 in spans:
            boundary.append(states)
            replays.append(_Replay(x))
            y = _normalise(bn, _run_whole(pre, x[t0:t1]), mean, var)
            out, states = _run_chunk(post, y, states)
            del y
            states = [None if s is None else NeuronState(s.v.detach()) for s in states]
            result.put(out, t0, x.shape[0])
            del out
        ctx.mods, ctx.j, ctx.n_params, ctx.n = mods, j, len(params), stats.n
        ctx.spans, ctx.boundary, ctx.replays, ctx.stats = spans, boundary, replays, (mean, var)
        ctx.saved_input = _SavedInput(ctx, x)
        return result.result()

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        mods: list[nn.Module] = ctx.mods
        pre, bn, post = mods[:ctx.j], mods[ctx.j], mods[ctx.j + 1:]
        saved_input = ctx.saved_input.restore(ctx)
        mean, var = ctx.stats
        need_x = ctx.needs_input_grad[3]
        params = _segment_params(mods)
        needs = dict(zip(map(id, params), ctx.needs_input_grad[4:]))
        post_params = [p for p in _segment_params(post) if needs.get(id(p))]
        pre_params = [p for p in _segment_params(pre) if needs.get(id(p))]
        grads: dict[int, Tensor] = {}

        def add(p: Tensor, gp: Tensor | None) -> None:
            if gp is not None:
                grads[id(p)] = gp if id(p) not in grads else grads[id(p)] + gp

        def post_backward(k: int, y: Tensor, g_finals: list[Tensor | None], want_params: bool
                          ) -> tuple[Tensor, list[Tensor | None], tuple[Tensor | None, ...]]:
            t0, t1 = ctx.spans[k]
            y = y.detach().requires_grad_(True)
            init = [None if s is None else s.v.detach().requires_grad_(True) for s in ctx.boundary[k]]
            with torch.random.fork_rng(devices=ctx.replays[k].devices), torch.enable_grad(), _inside():
                ctx.replays[k].restore()
                with ctx.replays[k].autocast_context():
                    out, finals = _run_chunk(post, y, [None if v is None else NeuronState(v) for v in init])
            outputs, grad_outputs = [out], [g[t0:t1]]
            for st, gs in zip(finals, g_finals):
                if st is not None and gs is not None and st.v.requires_grad:
                    outputs.append(st.v)
                    grad_outputs.append(gs)
            init_used = [v for v in init if v is not None]
            wanted = post_params if want_params else []
            res = torch.autograd.grad(outputs, [y, *init_used, *wanted], grad_outputs, allow_unused=True)
            it = iter(res[1:1 + len(init_used)])
            g_init = [None if v is None else next(it) for v in init]
            return res[0], g_init, res[1 + len(init_used):]

        # pass A: the gradient sums the statistics need, the neuron-side parameter gradients
        sum_g: Tensor | None = None
        sum_g_xhat: Tensor | None = None
        g_finals_of: list[list[Tensor | None]] = [[] for _ in ctx.spans]
        g_next: list[Tensor | None] = []
        for k in range(len(ctx.spans) - 1, -1, -1):
            t0, t1 = ctx.spans[k]
            with torch.no_grad():
                c = _run_whole(pre, saved_input.steps(t0, t1))
                xhat = _normalise(bn, c, mean, var, affine=False)
                y = _normalise(bn, c, mean, var)
            g_finals_of[k] = g_next
            g_y, g_next, g_post = post_backward(k, y, g_next, True)
            for p, gp in zip(post_params, g_post):
                add(p, gp)
            dims = _channel_dims(g_y)
            s1, s2 = g_y.sum(dims, dtype=torch.float64), (g_y * xhat).sum(dims, dtype=torch.float64)
            sum_g = s1 if sum_g is None else sum_g + s1
            sum_g_xhat = s2 if sum_g_xhat is None else sum_g_xhat + s2
            del c, xhat, y, g_y, g_post  # one chunk alive at a time
        assert sum_g is not None and sum_g_xhat is not None
        # the BatchNorm's own parameters: y = xhat * w + b
        w_param, b_param = bn.weight, bn.bias
        with torch.enable_grad():
            w_eff = _norm_weight(bn)
        dtype = g.dtype
        if w_eff is not None and w_param is not None and needs.get(id(w_param)):
            add(w_param, torch.autograd.grad(w_eff, w_param, sum_g_xhat.to(dtype), retain_graph=False)[0])
        if b_param is not None and needs.get(id(b_param)):
            add(b_param, sum_g.to(dtype))
        # pass B: the input gradient through the statistics, chunk by chunk
        g_x = torch.empty(saved_input.shape, dtype=dtype, device=g.device) if need_x else None
        if need_x or pre_params:
            w_now = (w_eff.detach() if w_eff is not None else torch.ones_like(mean))
            invstd = torch.rsqrt(var + bn.eps)
            mean_g = (w_now.double() * sum_g / ctx.n).to(dtype)
            mean_g_xhat = (w_now.double() * sum_g_xhat / ctx.n).to(dtype)
            for k in range(len(ctx.spans) - 1, -1, -1):
                t0, t1 = ctx.spans[k]
                x = saved_input.steps(t0, t1).detach().requires_grad_(need_x)
                with torch.enable_grad(), _inside():
                    c = _run_whole(pre, x)
                with torch.no_grad():
                    xhat = _normalise(bn, c.detach(), mean, var, affine=False)
                    y = _normalise(bn, c.detach(), mean, var)
                g_y, _, _ = post_backward(k, y, g_finals_of[k], False)
                with torch.no_grad():
                    g_c = _per_channel(invstd, g_y) * (_per_channel(w_now, g_y) * g_y - _per_channel(mean_g, g_y)
                                                       - xhat * _per_channel(mean_g_xhat, g_y))
                inputs = ([x] if need_x else []) + pre_params
                if inputs:
                    res = torch.autograd.grad(c, inputs, g_c, allow_unused=True)
                    if need_x:
                        g_x[t0:t1] = 0 if res[0] is None else res[0]  # type: ignore[index]
                    for p, gp in zip(pre_params, res[1:] if need_x else res):
                        add(p, gp)
                    del res
                del x, c, xhat, y, g_y, g_c  # one chunk alive at a time
        return (None, None, None, g_x, *[grads.get(id(p)) for p in params])


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
            j = _pooled_norm_index(mods) if chunk is not None else None
            if chunk is not None and j is not None:
                x = _NormChunkedSegment.apply(list(mods), j, chunk, x, *params)
            else:
                x = _Segment.apply(list(mods), chunk, x, *params)
        return x


    def __reduce_ex__(self, protocol: Any) -> Any:
        # pickled as the original class plus the configuration (the generated class has no importable name)
        state = dict(self.__dict__)
        cfg = state.pop("_recompute", RecomputeConfig())
        return (_unpickle, (_original_class(type(self)), cfg), state)


def _original_class(cls: type) -> type:
    return next(c for c in cls.__mro__ if not issubclass(c, _RecomputeSequential))


def _unpickle(original: type[nn.Module], cfg: RecomputeConfig) -> nn.Module:
    obj = object.__new__(original)
    obj.__class__ = _recompute_class(original)
    obj.__dict__["_recompute"] = cfg
    return obj


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
            m.__class__ = _original_class(type(m))
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
