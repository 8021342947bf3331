"""NIR (Neuromorphic Intermediate Representation, neuromorphs/NIR) export and import.

**dt convention.** NIR neurons are continuous-time, ``τ dv/dt = (v_leak − v) + R I`` (LIF) and ``dv/dt = R I``
(IF). One forward-Euler step of length ``dt`` gives ``v_t = (1 − dt/τ) v_{t−1} + (dt/τ) R I_t``. A spikeforge neuron
``h_t = decay · v_{t−1} + x_t`` is therefore written as::

    LIF (decay < 1):  tau = dt / (1 − decay),  r = tau / dt = 1 / (1 − decay),  v_leak = 0
    LIF decay_input:  tau = dt / (1 − decay),  r = 1                  (h = decay·v + (1 − decay)·x)
    IF  (decay = 1):  r = 1 / dt
    v_threshold = the largest float32 below θ   (NIR fires on v > θ', spikeforge on h ≥ θ; equal in float32)
    v_reset     = v_reset (hard reset)

so the discrete input gain ``r·dt/τ`` is 1 and the decay is recovered as ``1 − dt/τ``. ``dt`` defaults to 1e-4
(snnTorch's fixed value); a reader must simulate with the same ``dt`` (Norse: ``norse.torch.from_nir(g, dt=1e-4)``).
``unit_r=True`` writes ``r = 1`` and scales ``v_threshold``/``v_reset`` by ``1 − decay`` instead (the membrane of the
NIR neuron is then ``(1 − decay)·h``): readers that ignore ``r`` (Norse) need it; snnTorch accepts both.

What NIR cannot express — soft reset, reset 'none', ternary spikes, per-step thresholds or affines, random initial
membranes, unshared convolutions, max pooling, PointNet's reductions and matrix products — raises
:class:`~spikeforge.interop.graph.GraphError` naming the node and the property. ``lossy=True`` writes the nearest
NIR network instead and warns once per lost property. Either way the exact spikeforge description travels in the
graph's metadata (``metadata["spikeforge"]``), so :func:`from_nir` rebuilds the original exactly.

:func:`from_nir` reads any NIR graph made of Input, Output, Affine, Linear, Conv1d, Conv2d, AvgPool2d, SumPool2d,
Flatten, Scale, Threshold, IF and LIF (``v_leak = 0``); several edges into one node are summed (NIR's residual
sum). A graph written by snnTorch (``dt = 1e-4``) imports with the default ``dt``.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import graph as g
from .artifact import ArtifactError, as_graph, graph_from_json, graph_to_json
from .runtime import InferenceNetwork

__all__ = ["to_nir", "from_nir", "NIR_FORMAT", "DEFAULT_DT"]

NIR_FORMAT = "spikeforge-nir-1"
DEFAULT_DT = 1e-4


def _nir() -> Any:
    try:
        import nir
    except ImportError as exc:  # optional dependency
        raise ImportError("NIR export/import needs the 'nir' package: pip install 'spikeforge[interop]'") from exc
    return nir


def _below(v: np.ndarray) -> np.ndarray:
    """The largest float32 below each value: ``x ≥ θ ⇔ x > below(θ)`` for float32 ``x``."""
    v32 = np.asarray(v, dtype=np.float32)
    return np.nextafter(v32, np.float32(-np.inf)).astype(np.float32)


def _above(v: np.ndarray) -> np.ndarray:
    """The smallest float32 above each value: ``x > θ ⇔ x ≥ above(θ)`` for float32 ``x``."""
    v32 = np.asarray(v, dtype=np.float32)
    return np.nextafter(v32, np.float32(np.inf)).astype(np.float32)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu").numpy().copy()


def node_shapes(graph: g.Graph) -> dict[str, tuple[int, ...]]:
    """Per-sample output shape of every node (one run of the graph on a zero input, T = B = 1)."""
    net = InferenceNetwork(graph)
    inp = graph.nodes[graph.input].op
    assert isinstance(inp, g.Input)
    if any(s is None for s in inp.shape):
        raise g.GraphError(f"the input shape {inp.shape} has unknown dims; NIR needs concrete shapes")
    x = torch.zeros((1, 1) + tuple(int(s) for s in inp.shape if s is not None))
    values: dict[str, Any] = {}
    rng = torch.get_rng_state()
    try:
        with torch.no_grad():
            for name, node in graph.nodes.items():
                values[name] = x if name == graph.input else net._run(name, node.op, [values[i] for i in
                                                                                      node.inputs])
    finally:
        torch.set_rng_state(rng)
    return {k: tuple(int(s) for s in v.shape[2:]) for k, v in values.items() if isinstance(v, Tensor)}


class _Loss:
    def __init__(self, lossy: bool):
        self.lossy = lossy
        self.items: list[str] = []

    def add(self, node: str, what: str) -> None:
        self.items.append(f"{node}: {what}")

    def finish(self) -> None:
        if not self.items:
            return
        listing = "\n  ".join(self.items)
        if not self.lossy:
            raise g.GraphError("NIR cannot express these properties of the network exactly:\n  " + listing +
                               "\nkeep them out of the network, or pass lossy=True to write the nearest NIR network "
                               "(spikeforge's from_nir still restores the exact one from the graph metadata)")
        for item in self.items:
            warnings.warn(f"NIR export drops {item}", stacklevel=3)


def _neuron_node(nir: Any, name: str, op: g.Neuron, threshold: Tensor, low: Tensor | None,
                 shape: tuple[int, ...], dt: float, unit_r: bool, loss: _Loss) -> Any:
    if op.spike == "ternary":
        loss.add(name, "ternary spikes (NIR spikes are 0/1; the −1 spikes are lost)")
    if op.per_step:
        loss.add(name, "per-step thresholds (NIR parameters are constant in time; step 0 is written)")
        threshold = threshold[0]
    if op.reset == "soft":
        loss.add(name, "soft reset (reset by subtraction; written as a hard reset to v_reset)")
    if op.reset == "none":
        loss.add(name, "no reset (NIR neurons always reset; written as a hard reset to v_reset)")
    if op.init == "uniform":
        loss.add(name, f"random initial membrane U[0, {op.init_range}) (written as a zero initial membrane)")
    theta = np.broadcast_to(_np(threshold).astype(np.float64), shape).copy()
    v_reset = np.full(shape, op.v_reset, dtype=np.float64)
    d = float(op.decay)
    if d >= 1.0:
        if op.decay_input:
            loss.add(name, "IF with decay_input (no input reaches the membrane)")
        return nir.IF(r=np.full(shape, 1.0 / dt, dtype=np.float32), v_threshold=_below(theta),
                      v_reset=v_reset.astype(np.float32))
    tau = np.full(shape, dt / (1.0 - d), dtype=np.float32)
    if op.decay_input:
        r = np.ones(shape, dtype=np.float32)
    elif unit_r:
        r = np.ones(shape, dtype=np.float32)
        theta, v_reset = theta * (1.0 - d), v_reset * (1.0 - d)
    else:
        r = np.full(shape, 1.0 / (1.0 - d), dtype=np.float32)
    return nir.LIF(tau=tau, r=r, v_leak=np.zeros(shape, dtype=np.float32), v_threshold=_below(theta),
                   v_reset=v_reset.astype(np.float32))


def to_nir(model_or_graph: Any, *, dt: float = DEFAULT_DT, lossy: bool = False, unit_r: bool = False,
           input_shape: tuple[int, ...] | None = None, example: Tensor | None = None) -> Any:
    """A ``nir.NIRGraph`` of a folded network (``nn.Module``, :class:`InferenceNetwork` or :class:`Graph`).

    See the module docstring for the dt convention and for what ``lossy`` and ``unit_r`` change.
    """
    nir = _nir()
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    graph = as_graph(model_or_graph, input_shape=input_shape, example=example)
    shapes = node_shapes(graph)
    loss = _Loss(lossy)
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    carried: dict[str, str] = {}  # "<node>.<field>" -> attribute of the NIR node holding the same array
    for name, node in graph.nodes.items():
        op = node.op
        out_shape = shapes[name]
        in_shape = shapes[node.inputs[0]] if node.inputs else out_shape
        nir_node: Any = None
        if isinstance(op, g.Input):
            nir_node = nir.Input(input_type={"input": np.array(out_shape)})
        elif isinstance(op, g.Conv):
            if op.weight.ndim not in (3, 4):
                raise g.GraphError(f"{name}: only 1-D and 2-D convolutions map to NIR")
            bias = _np(op.bias) if op.bias is not None else np.zeros(op.weight.shape[0], dtype=np.float32)
            cls = nir.Conv2d if op.weight.ndim == 4 else nir.Conv1d
            spatial = in_shape[1:] if op.weight.ndim == 4 else in_shape[1]
            pad = op.padding if isinstance(op.padding, str) else tuple(op.padding)
            nir_node = cls(input_shape=spatial, weight=_np(op.weight),
                           stride=tuple(op.stride) if op.weight.ndim == 4 else op.stride[0],
                           padding=pad if op.weight.ndim == 4 or isinstance(pad, str) else pad[0],
                           dilation=tuple(op.dilation) if op.weight.ndim == 4 else op.dilation[0],
                           groups=op.groups, bias=bias)
            carried[f"{name}.weight"] = "weight"
            if op.bias is not None:
                carried[f"{name}.bias"] = "bias"
        elif isinstance(op, g.Linear):
            if len(in_shape) != 1:
                raise g.GraphError(f"{name}: a linear layer on per-sample shape {in_shape} (NIR Affine/Linear act "
                                   "on feature vectors; flatten first)")
            if op.bias is None:
                nir_node = nir.Linear(weight=_np(op.weight))
            else:
                nir_node = nir.Affine(weight=_np(op.weight), bias=_np(op.bias))
                carried[f"{name}.bias"] = "bias"
            carried[f"{name}.weight"] = "weight"
        elif isinstance(op, (g.Pool, g.AdaptivePool)):
            nir_node = _pool_node(nir, name, op, in_shape, out_shape)
        elif isinstance(op, g.Flatten):
            if op.start_dim < 2 or (op.end_dim >= 0 and op.end_dim < 2):
                raise g.GraphError(f"{name}: a flatten of dims {op.start_dim}..{op.end_dim} mixes time/batch dims")
            end = op.end_dim if op.end_dim < 0 else op.end_dim - 2
            nir_node = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=op.start_dim - 2,
                                   end_dim=end)
        elif isinstance(op, g.Neuron):
            nir_node = _neuron_node(nir, name, op, op.threshold, op.threshold_low, out_shape, dt, unit_r, loss)
        elif isinstance(op, g.Affine):
            nir_node = _affine_node(nir, name, op, in_shape, loss)
        elif isinstance(op, g.Binary) and op.fn == "add" and op.scalar is None:
            # NIR sums every edge entering a node: a unit Scale is the summing junction
            nir_node = nir.Scale(scale=np.ones(out_shape, dtype=np.float32))
        elif isinstance(op, g.Binary) and op.fn == "mul" and op.scalar is not None:
            nir_node = nir.Scale(scale=np.full(out_shape, op.scalar, dtype=np.float32))
        elif isinstance(op, g.UnsharedConv):
            raise g.GraphError(f"{name}: NIR has no unshared (locally connected) convolution; it comes from an "
                               "element-wise Real Spike amplitude — use a channel-wise amplitude for NIR export")
        else:
            raise g.GraphError(f"{name}: NIR has no node for the spikeforge operation {op.kind!r} "
                               f"({op.attributes()})")
        nodes[name] = nir_node
        edges += [(i, name) for i in node.inputs]
    for k, out in enumerate(graph.outputs):
        key = "output" if len(graph.outputs) == 1 else f"output_{k}"
        nodes[key] = nir.Output(output_type={"output": np.array(shapes[out])})
        edges.append((out, key))
    loss.finish()
    text, tensors = graph_to_json(graph)
    # HDF5 cannot compress 0-d datasets: arrays are stored at least 1-d, their shapes alongside
    extra = {k: np.atleast_1d(t.numpy()) for k, t in tensors.items() if k not in carried}
    shapes_json = json.dumps({k: list(t.shape) for k, t in tensors.items() if k not in carried})
    metadata = {"spikeforge": {"format": NIR_FORMAT, "graph": text, "dt": float(dt), "unit_r": int(unit_r),
                               "carried": json.dumps(carried), "shapes": shapes_json, "tensors": extra}}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _pool_node(nir: Any, name: str, op: g.Pool | g.AdaptivePool, in_shape: tuple[int, ...],
               out_shape: tuple[int, ...]) -> Any:
    if op.mode == "max":
        raise g.GraphError(f"{name}: NIR has no max pooling (only AvgPool2d and SumPool2d)")
    if op.dim != 2:
        raise g.GraphError(f"{name}: NIR has 2-D pooling only, got a {op.dim}-D pool")
    if isinstance(op, g.AdaptivePool):
        H, W = in_shape[-2:]
        oh, ow = out_shape[-2:]
        if H % oh or W % ow:
            raise g.GraphError(f"{name}: adaptive pooling {H}×{W} -> {oh}×{ow} has unequal windows; NIR pools have "
                               "one kernel size")
        k = np.array([H // oh, W // ow])
        return nir.AvgPool2d(kernel_size=k, stride=k, padding=np.array([0, 0]))
    if op.ceil_mode or op.divisor_override not in (None,) or (any(op.padding) and not op.count_include_pad):
        raise g.GraphError(f"{name}: average pooling with ceil_mode/count_include_pad=False/divisor_override has "
                           "no NIR equivalent")
    return nir.AvgPool2d(kernel_size=np.array(op.kernel_size), stride=np.array(op.stride),
                         padding=np.array(op.padding))


def _affine_node(nir: Any, name: str, op: g.Affine, in_shape: tuple[int, ...], loss: _Loss) -> Any:
    w, b = op.weight, op.bias
    if w.shape[0] > 1:
        loss.add(name, "per-step affine (BNTT/TEBN; NIR parameters are constant in time, step 0 is written)")
    k = _np(w[0])
    bias = _np(b[0]) if b is not None else np.zeros_like(k)
    C = k.shape[0]
    if len(in_shape) == 3:
        return nir.Conv2d(input_shape=in_shape[1:], weight=k.reshape(C, 1, 1, 1), stride=(1, 1), padding=(0, 0),
                          dilation=(1, 1), groups=C, bias=bias)
    if len(in_shape) == 2:
        return nir.Conv1d(input_shape=in_shape[1], weight=k.reshape(C, 1, 1), stride=1, padding=0, dilation=1,
                          groups=C, bias=bias)
    return nir.Affine(weight=np.diag(k), bias=bias)


# --- import --------------------------------------------------------------------------------------------------


def _from_metadata(nir_graph: Any, meta: dict[str, Any]) -> g.Graph:
    if meta.get("format") != NIR_FORMAT:
        raise ArtifactError(f"unknown spikeforge NIR metadata format {meta.get('format')!r}")
    carried = json.loads(meta["carried"])
    shapes = json.loads(meta.get("shapes", "{}"))
    tensors = {k: torch.from_numpy(np.array(v).reshape(shapes.get(k, np.shape(v))))
               for k, v in (meta.get("tensors") or {}).items()}
    for key, attr in carried.items():
        node, _, field_name = key.rpartition(".")
        nir_node = nir_graph.nodes.get(node)
        if nir_node is None:
            raise ArtifactError(f"the NIR graph lost node {node!r} named in its spikeforge metadata")
        tensors[key] = torch.from_numpy(np.array(getattr(nir_node, attr)))
    return graph_from_json(meta["graph"], tensors, "NIR metadata")


def _topological(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> list[str]:
    preds: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise g.GraphError(f"NIR edge ({a!r}, {b!r}) names a node that does not exist")
        preds[b].append(a)
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(n: str, stack: tuple[str, ...]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            raise g.GraphError(f"the NIR graph has a cycle through {' -> '.join(stack + (n,))}; recurrent NIR graphs "
                               "are not supported")
        state[n] = 1
        for p in preds[n]:
            visit(p, stack + (n,))
        state[n] = 2
        order.append(n)

    for n in nodes:
        visit(n, ())
    return order


def _t(a: Any) -> Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32))


def _scalar_or_tensor(a: np.ndarray) -> Tensor:
    a = np.asarray(a, dtype=np.float32)
    if a.size and np.all(a == a.reshape(-1)[0]):
        return torch.tensor(float(a.reshape(-1)[0]))
    return torch.from_numpy(a.copy())


def _uniform(a: Any, what: str, name: str) -> float:
    arr = np.asarray(a, dtype=np.float64)
    if arr.size == 0:
        raise g.GraphError(f"NIR node {name!r}: empty {what}")
    if not np.allclose(arr, arr.reshape(-1)[0], rtol=1e-6, atol=0):
        raise g.GraphError(f"NIR node {name!r}: {what} varies between neurons; spikeforge neurons share one decay")
    return float(arr.reshape(-1)[0])


def _neuron_from_nir(nir: Any, name: str, node: Any, dt: float) -> g.Neuron:
    if isinstance(node, nir.Threshold):
        return g.Neuron(threshold=_scalar_or_tensor(_above(node.threshold)), decay=0.0, reset="none")
    if isinstance(node, nir.IF):
        gain = np.asarray(node.r, dtype=np.float64) * dt
        decay, decay_input = 1.0, False
    else:
        if not np.allclose(node.v_leak, 0.0):
            raise g.GraphError(f"NIR node {name!r}: v_leak ≠ 0 (a resting potential) has no spikeforge equivalent")
        ratio = _uniform(dt / np.asarray(node.tau, dtype=np.float64), "tau", name)
        decay = float(np.float32(1.0 - ratio))
        gain = np.asarray(node.r, dtype=np.float64) * dt / np.asarray(node.tau, dtype=np.float64)
        decay_input = bool(np.allclose(np.asarray(node.r), 1.0) and not np.isclose(ratio, 1.0)) and not np.allclose(
            gain, 1.0)
        if decay_input:
            gain = np.ones_like(gain)  # h = decay·v + (1 − decay)·x carries the gain itself
    v_reset = np.asarray(node.v_reset if node.v_reset is not None else 0.0, dtype=np.float64)
    theta = np.asarray(node.v_threshold, dtype=np.float64)
    if not np.allclose(gain, 1.0):
        # v_nir = gain · h (zero start, hard reset): fire on h > θ/gain, reset h to v_reset/gain
        theta, v_reset = theta / gain, v_reset / gain
    vr = _uniform(v_reset, "v_reset", name) if v_reset.size else 0.0
    return g.Neuron(threshold=_scalar_or_tensor(_above(theta)), decay=decay, decay_input=decay_input, reset="hard",
                    v_reset=vr)


def from_nir(nir_graph: Any, *, dt: float | None = None, exact: bool = True) -> InferenceNetwork:
    """An :class:`InferenceNetwork` from a ``nir.NIRGraph`` (or a path to a ``.nir`` file).

    With ``exact=True`` a graph written by :func:`to_nir` is rebuilt from its spikeforge metadata (bit-exact);
    otherwise the NIR nodes are mapped with the dt convention of the module docstring (``dt`` default: the one
    recorded by spikeforge, else 1e-4, snnTorch's). The firing edge ``v > θ`` becomes ``h ≥ above(θ)`` (the next
    float32), exact in float32.
    """
    nir = _nir()
    if isinstance(nir_graph, (str, bytes)) or hasattr(nir_graph, "__fspath__"):
        nir_graph = nir.read(nir_graph)
    if not isinstance(nir_graph, nir.NIRGraph):
        raise TypeError(f"from_nir expects a nir.NIRGraph or a path, got {type(nir_graph).__name__}")
    meta = (nir_graph.metadata or {}).get("spikeforge") if isinstance(nir_graph.metadata, dict) else None
    if exact and isinstance(meta, dict) and "graph" in meta:
        return InferenceNetwork(_from_metadata(nir_graph, meta))
    if dt is None:
        dt = float(meta["dt"]) if isinstance(meta, dict) and "dt" in meta else DEFAULT_DT
    return InferenceNetwork(_graph_from_nir(nir, nir_graph, dt))


def _graph_from_nir(nir: Any, ng: Any, dt: float) -> g.Graph:
    order = _topological(ng.nodes, list(ng.edges))
    preds: dict[str, list[str]] = {k: [] for k in ng.nodes}
    for a, b in ng.edges:
        preds[b].append(a)
    nodes: dict[str, g.Node] = {}
    out_of: dict[str, str] = {}  # NIR node -> spikeforge node holding its output
    inputs: list[str] = []
    outputs: list[str] = []
    for name in order:
        node = ng.nodes[name]
        srcs = [out_of[p] for p in preds[name]]
        if isinstance(node, nir.Input):
            shape = tuple(int(s) for s in np.asarray(node.input_type["input"]).reshape(-1))
            nodes[name] = g.Node(g.Input(shape))
            out_of[name] = name
            inputs.append(name)
            continue
        if isinstance(node, nir.Output):
            outputs.append(_sum(nodes, name, srcs))
            continue
        src = _sum(nodes, f"{name}.sum", srcs)
        op: g.Op
        if isinstance(node, nir.Affine):
            op = g.Linear(_t(node.weight), _t(node.bias))
        elif isinstance(node, nir.Linear):
            op = g.Linear(_t(node.weight))
        elif isinstance(node, (nir.Conv1d, nir.Conv2d)):
            d = 2 if isinstance(node, nir.Conv2d) else 1
            pad = node.padding if isinstance(node.padding, str) else tuple(int(p) for p in np.broadcast_to(
                np.asarray(node.padding), (d,)))
            op = g.Conv(_t(node.weight), _t(node.bias), tuple(int(s) for s in np.broadcast_to(node.stride, (d,))),
                        pad, tuple(int(s) for s in np.broadcast_to(node.dilation, (d,))), int(node.groups))
        elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            k = tuple(int(s) for s in np.broadcast_to(node.kernel_size, (2,)))
            op = g.Pool("avg", 2, k, tuple(int(s) for s in np.broadcast_to(node.stride, (2,))),
                        tuple(int(s) for s in np.broadcast_to(node.padding, (2,))),
                        divisor_override=1 if isinstance(node, nir.SumPool2d) else None)
        elif isinstance(node, nir.Flatten):
            end = int(node.end_dim)
            op = g.Flatten(int(node.start_dim) + 2, end if end < 0 else end + 2)
        elif isinstance(node, nir.Scale):
            const = f"{name}.scale"
            nodes[const] = g.Node(g.Constant(_t(node.scale)))
            nodes[name] = g.Node(g.Binary("mul"), [src, const])
            out_of[name] = name
            continue
        elif isinstance(node, (nir.IF, nir.LIF, nir.Threshold)):
            op = _neuron_from_nir(nir, name, node, dt)
        else:
            raise g.GraphError(f"NIR node {name!r}: {type(node).__name__} has no spikeforge equivalent (supported: "
                               "Input, Output, Affine, Linear, Conv1d, Conv2d, AvgPool2d, SumPool2d, Flatten, Scale, "
                               "Threshold, IF, LIF)")
        nodes[name] = g.Node(op, [src])
        out_of[name] = name
    if len(inputs) != 1:
        raise g.GraphError(f"a spikeforge network has one input; the NIR graph has {len(inputs)}")
    if not outputs:
        raise g.GraphError("the NIR graph has no Output node")
    return g.Graph(nodes, inputs[0], outputs, {"source": "nir", "dt": dt})


def _sum(nodes: dict[str, g.Node], name: str, srcs: list[str]) -> str:
    if not srcs:
        raise g.GraphError(f"NIR node {name.split('.sum')[0]!r} has no incoming edge")
    acc = srcs[0]
    for k, s in enumerate(srcs[1:]):
        key = f"{name}.{k}" if len(srcs) > 2 else name
        nodes[key] = g.Node(g.Binary("add"), [acc, s])
        acc = key
    return acc
