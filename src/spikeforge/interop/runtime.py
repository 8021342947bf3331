"""Run a :class:`~spikeforge.interop.graph.Graph`: an ``nn.Module`` that needs nothing of the training code.

:class:`InferenceNetwork` holds the graph's tensors as buffers (so ``.to(device)``, ``.double()`` work) and executes
the nodes in order with ``torch.nn.functional`` and the library's functional neuron
(:func:`spikeforge.functional.multistep`), the same call a :class:`spikeforge.neurons.Neuron` makes, so spikes are
bit-identical to the folded model's.

``export_mode=True`` (set by the ONNX exporter) runs every neuron as a plain unrolled loop of tensor ops (``h ≥ θ``
comparisons), which any exporter can trace; the arithmetic is the same up to float rounding.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functional import NeuronSpec, multistep, uniform_membrane
from ..layers.unshared import unshared_conv2d
from . import graph as g

__all__ = ["InferenceNetwork", "SpikeObserver"]

SpikeObserver = Callable[[str, Tensor], None]


class InferenceNetwork(nn.Module):
    """An executable inference network built from a :class:`~spikeforge.interop.graph.Graph`.

    ``forward(x[T, B, ...])`` returns the graph's output (a tuple when it has several). :meth:`observe` calls
    ``fn(neuron_name, spikes[T, ...])`` after every neuron inside a ``with`` block.
    """

    def __init__(self, graph: g.Graph):
        super().__init__()
        self._slots: dict[tuple[str, str], str] = {}
        nodes: dict[str, g.Node] = {}
        for i, (name, node) in enumerate(graph.nodes.items()):
            tensors = node.op.tensors()
            for field_name, t in tensors.items():
                slot = f"t{i}_{field_name}"
                self.register_buffer(slot, t.detach().clone())
                self._slots[(name, field_name)] = slot
            # the module's buffers hold the values; the structure keeps shape-only (meta) tensors
            meta = {f: t.detach().to("meta") for f, t in tensors.items()}
            nodes[name] = g.Node(dataclasses.replace(node.op, **meta), list(node.inputs))
        self.graph = g.Graph(nodes, graph.input, list(graph.outputs), dict(graph.metadata))
        self._observers: list[SpikeObserver] = []
        self.export_mode = False
        self._stream: tuple[dict[str, Tensor], dict[str, Tensor]] | None = None
        self.num_classes = graph.metadata.get("num_classes")
        self.input_kind = graph.metadata.get("input_kind", "static")
        names = graph.metadata.get("source_neuron_names")
        if names:
            self.source_neuron_names = dict(names)
        self.eval()

    def tensor(self, node: str, field_name: str) -> Tensor | None:
        slot = self._slots.get((node, field_name))
        return None if slot is None else getattr(self, slot)

    def to_graph(self) -> g.Graph:
        """The graph with this module's (possibly moved or converted) tensors."""
        nodes = {}
        for name, node in self.graph.nodes.items():
            repl = {f: self.tensor(name, f) for f in node.op.tensors()}
            nodes[name] = g.Node(dataclasses.replace(node.op, **repl), list(node.inputs))
        return g.Graph(nodes, self.graph.input, list(self.graph.outputs), dict(self.graph.metadata))

    def stateful_neurons(self) -> list[str]:
        """Names of the neurons, in execution order (the membranes of :meth:`step`)."""
        return [k for k, n in self.graph.nodes.items() if isinstance(n.op, g.Neuron)]

    def step(self, x_t: Tensor, membranes: dict[str, Tensor]) -> tuple[Any, dict[str, Tensor]]:
        """One time step for streaming: ``x_t[B, ...]`` and every neuron's membrane ``[B, ...]`` (zeros at rest)
        -> ``(output_t, new_membranes)``. Runs the plain-op neuron; per-step parameters are refused."""
        check_streamable(self.graph)
        missing = [n for n in self.stateful_neurons() if n not in membranes]
        if missing:
            raise ValueError(f"step() needs the membrane of every neuron; missing {missing}")
        new: dict[str, Tensor] = {}
        self._stream = (membranes, new)
        try:
            out = self.forward(x_t.unsqueeze(0))
        finally:
            self._stream = None
        out = tuple(o[0] for o in out) if isinstance(out, tuple) else out[0]
        return out, new

    @contextlib.contextmanager
    def observe(self, fn: SpikeObserver) -> Iterator[None]:
        self._observers.append(fn)
        try:
            yield
        finally:
            self._observers.remove(fn)

    def forward(self, x: Tensor) -> Any:
        values: dict[str, Any] = {}
        for name, node in self.graph.nodes.items():
            if name == self.graph.input:
                values[name] = self._check_input(x, node.op)  # type: ignore[arg-type]
                continue
            args = [values[i] for i in node.inputs]
            values[name] = self._run(name, node.op, args)
        outs = tuple(values[o] for o in self.graph.outputs)
        return outs[0] if len(outs) == 1 else outs

    # --- execution --------------------------------------------------------------------------------------------
    def _check_input(self, x: Tensor, op: g.Input) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 2 + len(op.shape):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"this network expects input [T, B, {', '.join(str(s) for s in op.shape)}], got {got}")
        if not torch.jit.is_tracing() and not torch.compiler.is_exporting():
            for d, (want, have) in enumerate(zip(op.shape, x.shape[2:])):
                if want is not None and want != have:
                    raise ValueError(f"input dim {d + 2} must be {want}, got shape {tuple(x.shape)}")
        return x

    def _t(self, name: str, field_name: str) -> Tensor | None:
        return self.tensor(name, field_name)

    def _run(self, name: str, op: g.Op, args: list[Any]) -> Any:
        x = args[0] if args else None
        if isinstance(op, g.Conv):
            w = self._t(name, "weight")
            assert w is not None and x is not None
            d = w.ndim - 2
            conv = F.conv1d if d == 1 else F.conv2d
            lead = x.shape[:-(1 + d)]
            y = conv(x.reshape((-1,) + tuple(x.shape[-(1 + d):])), w, self._t(name, "bias"), op.stride,
                     op.padding, op.dilation, op.groups)
            return y.reshape(tuple(lead) + tuple(y.shape[1:]))
        if isinstance(op, g.Linear):
            return F.linear(x, self._t(name, "weight"), self._t(name, "bias"))  # type: ignore[arg-type]
        if isinstance(op, g.UnsharedConv):
            w = self._t(name, "weight")
            assert w is not None and x is not None
            lead = x.shape[:-3]
            y = unshared_conv2d(x.reshape((-1,) + tuple(x.shape[-3:])), w, self._t(name, "bias"), op.stride,
                                op.padding, op.dilation)
            return y.reshape(tuple(lead) + tuple(y.shape[1:]))
        if isinstance(op, (g.Pool, g.AdaptivePool)):
            assert x is not None
            lead = x.shape[:-(1 + op.dim)]
            y = _pool(op, x.reshape((-1,) + tuple(x.shape[-(1 + op.dim):])))
            return y.reshape(tuple(lead) + tuple(y.shape[1:]))
        if isinstance(op, g.Flatten):
            return torch.flatten(x, op.start_dim, op.end_dim)  # type: ignore[arg-type]
        if isinstance(op, g.Reshape):
            assert x is not None
            return x.reshape((x.shape[0], x.shape[1]) + tuple(op.shape))
        if isinstance(op, g.Affine):
            return self._affine(name, x)  # type: ignore[arg-type]
        if isinstance(op, g.Neuron):
            s = self._neuron(name, op, x)  # type: ignore[arg-type]
            for fn in self._observers:
                fn(name, s)
            return s
        if isinstance(op, g.Binary):
            return _binary(op, args)
        if isinstance(op, g.Unary):
            return _unary(op, x)  # type: ignore[arg-type]
        if isinstance(op, g.Constant):
            return self._t(name, "value")
        if isinstance(op, g.MatMul):
            return torch.matmul(args[0], args[1])
        if isinstance(op, g.Transpose):
            return x.transpose(op.dim0, op.dim1)  # type: ignore[union-attr]
        if isinstance(op, g.Permute):
            return x.permute(*op.dims)  # type: ignore[union-attr]
        if isinstance(op, g.Reduce):
            return _reduce(op, x)  # type: ignore[arg-type]
        if isinstance(op, g.Index):
            return x[decode_index(op.items)]  # type: ignore[index]
        if isinstance(op, g.Concat):
            return torch.cat(args, dim=op.dim)
        if isinstance(op, g.Identity):
            return x
        raise g.GraphError(f"node {name!r}: no runtime for operation {op.kind!r}")

    def _affine(self, name: str, x: Tensor) -> Tensor:
        w = self._t(name, "weight")
        b = self._t(name, "bias")
        assert w is not None
        S, C = w.shape
        T = x.shape[0]
        if S > 1 and T > S and not torch.jit.is_tracing():
            raise ValueError(f"{name} holds per-step affines for {S} steps, got T = {T}")
        rows = T if S > 1 else 1
        shape = (rows, 1, C) + (1,) * (x.ndim - 3)
        y = x * w[:rows].reshape(shape)
        return y if b is None else y + b[:rows].reshape(shape)

    def _neuron(self, name: str, op: g.Neuron, x: Tensor) -> Tensor:
        thr = self._t(name, "threshold")
        low = self._t(name, "threshold_low")
        assert thr is not None
        T = x.shape[0]
        if op.per_step:
            if T > thr.shape[0] and not torch.jit.is_tracing():
                raise ValueError(f"neuron {name} has per-step thresholds for {thr.shape[0]} steps, got T = {T}")
            thr = thr[:T] if T > 1 else thr[0]
            if low is not None:
                low = low[:T] if T > 1 else low[0]
        if self._stream is not None:
            s, v = _plain_neuron(op, x, thr, low, self._stream[0][name])
            self._stream[1][name] = v
            return s
        v0 = uniform_membrane(x[0], op.init_range) if op.init == "uniform" else None
        if self.export_mode:
            return _plain_neuron(op, x, thr, low, v0)[0]
        spec = NeuronSpec(reset=op.reset, v_reset=op.v_reset,  # type: ignore[arg-type]
                          soft_reset_amount=op.soft_reset_amount, spike=op.spike,  # type: ignore[arg-type]
                          decay_input=op.decay_input)
        decay = torch.tensor(op.decay, dtype=x.dtype, device=x.device)
        s, _, _ = multistep(x, spec, decay=decay, threshold=thr, v0=v0, threshold_low=low,
                            backend=op.backend)  # type: ignore[arg-type]
        return s


def check_streamable(graph: g.Graph) -> None:
    """Raise unless every parameter is shared over time (a step graph has no step index)."""
    for name, node in graph.nodes.items():
        op = node.op
        if (isinstance(op, g.Neuron) and op.per_step) or (isinstance(op, g.Affine) and op.weight.shape[0] > 1):
            raise g.GraphError(f"{name} has per-step parameters; step() (streaming) needs time-shared ones")


def _pool(op: g.Pool | g.AdaptivePool, x: Tensor) -> Tensor:
    if isinstance(op, g.AdaptivePool):
        fns = {("avg", 1): F.adaptive_avg_pool1d, ("avg", 2): F.adaptive_avg_pool2d,
               ("max", 1): F.adaptive_max_pool1d, ("max", 2): F.adaptive_max_pool2d}
        return fns[(op.mode, op.dim)](x, op.output_size)  # type: ignore[operator]
    if op.mode == "avg":
        if op.dim == 1:
            return F.avg_pool1d(x, op.kernel_size, op.stride, op.padding, op.ceil_mode,
                                op.count_include_pad)
        return F.avg_pool2d(x, op.kernel_size, op.stride, op.padding, op.ceil_mode,
                            op.count_include_pad, op.divisor_override)
    fn = F.max_pool1d if op.dim == 1 else F.max_pool2d
    return fn(x, op.kernel_size, op.stride, op.padding, op.dilation, ceil_mode=op.ceil_mode)


def _binary(op: g.Binary, args: list[Any]) -> Tensor:
    a: Any
    b: Any
    if op.scalar is not None:
        a, b = (op.scalar, args[0]) if op.scalar_first else (args[0], op.scalar)
    else:
        a, b = args[0], args[1]
    if op.fn == "add":
        return a + b
    if op.fn == "sub":
        return a - b
    if op.fn == "mul":
        return a * b
    if op.fn == "div":
        return a / b
    if op.fn == "max":
        return torch.maximum(torch.as_tensor(a), torch.as_tensor(b))
    return torch.minimum(torch.as_tensor(a), torch.as_tensor(b))


def _unary(op: g.Unary, x: Tensor) -> Tensor:
    if op.fn == "neg":
        return -x
    if op.fn in ("log_softmax", "softmax"):
        return getattr(torch, op.fn)(x, dim=-1 if op.dim is None else op.dim)
    return getattr(torch, op.fn)(x)


def _reduce(op: g.Reduce, x: Tensor) -> Tensor:
    dims = list(op.dims)
    if op.fn == "amax":
        return x.amax(dim=dims, keepdim=op.keepdim)
    if op.fn == "amin":
        return x.amin(dim=dims, keepdim=op.keepdim)
    if op.fn == "mean":
        return x.mean(dim=dims, keepdim=op.keepdim)
    return x.sum(dim=dims, keepdim=op.keepdim)


def encode_index(index: Any) -> tuple[Any, ...]:
    """A Python basic index (ints, slices, None, Ellipsis) -> JSON-able items (see :class:`graph.Index`)."""
    items = index if isinstance(index, tuple) else (index,)
    out: list[Any] = []
    for it in items:
        if isinstance(it, slice):
            parts = [it.start, it.stop, it.step]
            if not all(p is None or isinstance(p, int) for p in parts):
                raise g.GraphError(f"slice {it} has non-integer bounds")
            out.append({"slice": parts})
        elif it is None:
            out.append(None)
        elif it is Ellipsis:
            out.append("...")
        elif isinstance(it, int) and not isinstance(it, bool):
            out.append(int(it))
        else:
            raise g.GraphError(f"index item {it!r} is not an int, slice, None or Ellipsis (advanced indexing is not "
                               "supported)")
    return tuple(out)


def decode_index(items: tuple[Any, ...] | list[Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for it in items:
        if isinstance(it, dict):
            out.append(slice(*it["slice"]))
        elif it == "...":
            out.append(Ellipsis)
        else:
            out.append(it)
    return tuple(out)


def _plain_neuron(op: g.Neuron, x: Tensor, thr: Tensor, low: Tensor | None,
                  v0: Tensor | None) -> tuple[Tensor, Tensor]:
    """The neuron as an unrolled loop of plain tensor ops (for exporters): same equations as
    :class:`~spikeforge.interop.graph.Neuron`."""
    T = x.shape[0]
    thr_steps = op.per_step and T > 1
    v = torch.zeros_like(x[0]) if v0 is None else v0
    decay = op.decay
    gain = 1.0 - decay if op.decay_input else 1.0
    out = []
    for t in range(T):
        th = thr[t] if thr_steps else thr
        h = decay * v + (x[t] * gain if op.decay_input else x[t])
        if op.spike == "binary":
            s = (h >= th).to(x.dtype)
            mag = s
        else:
            lo = -th if low is None else (low[t] if thr_steps else low)
            s = (h >= th).to(x.dtype) - (h <= lo).to(x.dtype)
            mag = s.abs()
        if op.reset == "hard":
            v = h * (1.0 - mag) + op.v_reset * mag
        elif op.reset == "soft":
            amount = th if op.soft_reset_amount is None else op.soft_reset_amount
            v = h - amount * s
        else:
            v = h
        out.append(s)
    return torch.stack(out), v
