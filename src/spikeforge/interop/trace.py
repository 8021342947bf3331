"""Build a :class:`~spikeforge.interop.graph.Graph` from a folded ``nn.Module`` by ``torch.fx`` symbolic tracing.

Leaf modules (conv/linear/unshared conv, pools, flatten, dropout/identity, per-step affine, spiking neuron) become
single nodes; the forwards of containers and custom modules are traced through, so residual adds, PointNet's max
over points and its T-Net matrix product appear as graph nodes. Every traced value also carries its concrete value
on an example input: shape checks in a forward (``if x.ndim != 4: raise ...``) evaluate normally, and shape
arithmetic (``x.reshape(x.shape[:-1] + (k, k))``) is recorded by its result. Tracing runs twice, with two
different time/batch sizes, and refuses a network whose description depends on them.

An operation without an exact description raises :class:`~spikeforge.interop.graph.GraphError` naming the node.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..folding import StepAffine
from ..layers.unshared import UnsharedConv2d
from ..neurons import Neuron
from . import graph as g
from .runtime import encode_index

__all__ = ["graph_from_module", "LEAF_TYPES"]

LEAF_TYPES: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Linear, UnsharedConv2d, nn.AvgPool1d, nn.AvgPool2d, nn.MaxPool1d, nn.MaxPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Dropout,
    nn.Identity, nn.ReLU, StepAffine, Neuron, _BatchNorm,
)


class _ConcreteTracer(fx.Tracer):
    """An fx tracer whose every node also holds its value on the example input (``self.values``)."""

    def __init__(self, example: Tensor, options: list[Any] | None = None):
        super().__init__()
        self.example = example
        self.options = list(options or [])  # values of the forward's traced-at-default options, in order
        self.values: dict[fx.Node, Any] = {}
        self._evaluating = False

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, LEAF_TYPES) or super().is_leaf_module(m, module_qualified_name)

    def create_node(self, kind: str, target: Any, args: Any, kwargs: Any, name: str | None = None,
                    type_expr: Any | None = None) -> fx.Node:
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        if kind != "output":
            self._evaluating = True
            try:
                with torch.no_grad():
                    self.values[node] = self._evaluate(node)
            finally:
                self._evaluating = False
        return node

    # while a node's value is computed, modules and parameters behave as outside tracing
    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        if self._evaluating:
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if self._evaluating:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def _evaluate(self, node: fx.Node) -> Any:
        args = fx.node.map_arg(node.args, lambda n: self.values[n])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: self.values[n])
        if node.op == "placeholder":
            if self.values and self.options:  # an option traced at its default (fx keeps a placeholder for it)
                return self.options.pop(0)
            if self.values:
                raise g.GraphError(f"the network's forward takes more than one input ({node.target!r}); an inference "
                                   "graph has one input tensor")
            return self.example
        if node.op == "get_attr":
            obj: Any = self.root
            for part in str(node.target).split("."):
                obj = getattr(obj, part)
            return obj
        if node.op == "call_module":
            return self.root.get_submodule(str(node.target)).forward(*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)  # type: ignore[operator]
        if node.op == "call_method":
            return getattr(args[0], str(node.target))(*args[1:], **kwargs)
        raise g.GraphError(f"unexpected fx node kind {node.op!r}")

    def to_bool(self, obj: fx.Proxy) -> bool:
        return bool(self.values[obj.node])

    def iter(self, obj: fx.Proxy) -> Any:
        value = self.values[obj.node]
        if isinstance(value, Tensor):
            raise g.GraphError(f"the forward iterates over the tensor {obj.node.name}; not supported")
        return iter(value)


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(u) for u in v) if isinstance(v, (tuple, list)) else (int(v),) * n


def _neuron_op(m: Neuron, name: str) -> g.Neuron:
    if m.mpbn is not None or m.amplitude is not None or m.spec.pre_fire != "none":
        raise g.GraphError(f"{name}: the neuron still has training-only parts (MPBN, amplitude or MPR); fold the "
                           "model first (spikeforge.fold(model))")
    cfg = m.config
    uniform = cfg.init == "uniform" and cfg.init_when == "always"
    low = m.threshold_low
    return g.Neuron(
        threshold=m.threshold.detach().clone(), threshold_low=None if low is None else low.detach().clone(),
        decay=float(m.decay.detach()), decay_input=bool(m.spec.decay_input), per_step=bool(m.threshold_per_step),
        reset=m.spec.reset, v_reset=float(m.spec.v_reset),
        soft_reset_amount=None if m.spec.soft_reset_amount is None else float(m.spec.soft_reset_amount),
        spike=m.spec.spike, init="uniform" if uniform else "zero", init_range=float(cfg.init_range) if uniform else 0.0,
        backend=cfg.backend)


def _module_op(m: nn.Module, name: str) -> g.Op:
    if isinstance(m, Neuron):
        return _neuron_op(m, name)
    if isinstance(m, UnsharedConv2d):
        return g.UnsharedConv(m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone(),
                              m.stride, m.padding, m.dilation, m.in_size)
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        if m.padding_mode != "zeros":
            raise g.GraphError(f"{name}: padding_mode={m.padding_mode!r}; only zero padding is described")
        d = 1 if isinstance(m, nn.Conv1d) else 2
        pad = m.padding if isinstance(m.padding, str) else _tuple(m.padding, d)
        return g.Conv(m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone(),
                      _tuple(m.stride, d), pad, _tuple(m.dilation, d), int(m.groups))
    if isinstance(m, nn.Linear):
        return g.Linear(m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone())
    if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)):
        d = 1 if isinstance(m, nn.AvgPool1d) else 2
        return g.Pool("avg", d, _tuple(m.kernel_size, d), _tuple(m.stride, d), _tuple(m.padding, d), (1,) * d,
                      bool(m.ceil_mode), bool(m.count_include_pad), getattr(m, "divisor_override", None))
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
        if m.return_indices:
            raise g.GraphError(f"{name}: max pooling with return_indices=True is not described")
        d = 1 if isinstance(m, nn.MaxPool1d) else 2
        return g.Pool("max", d, _tuple(m.kernel_size, d), _tuple(m.stride, d), _tuple(m.padding, d),
                      _tuple(m.dilation, d), bool(m.ceil_mode))
    if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        d = 1 if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)) else 2
        if getattr(m, "return_indices", False):
            raise g.GraphError(f"{name}: adaptive max pooling with return_indices=True is not described")
        size = m.output_size
        out = tuple(size) if isinstance(size, (tuple, list)) else (size,) * d
        mode = "avg" if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)) else "max"
        return g.AdaptivePool(mode, d, out)
    if isinstance(m, nn.Flatten):
        return g.Flatten(int(m.start_dim), int(m.end_dim))
    if isinstance(m, nn.Dropout):
        if m.training and m.p > 0:
            raise g.GraphError(f"{name}: dropout in training mode; call model.eval() (inference drops nothing)")
        return g.Identity()
    if isinstance(m, nn.Identity):
        return g.Identity()
    if isinstance(m, nn.ReLU):
        return g.Unary("relu")
    if isinstance(m, StepAffine):
        return g.Affine(m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone())
    if isinstance(m, _BatchNorm):
        raise g.GraphError(f"{name}: {type(m).__name__} is a training-time layer; fold the model first "
                           "(spikeforge.fold(model)) so it merges into the preceding conv/linear")
    raise g.GraphError(f"{name}: no inference description for module type {type(m).__name__}")


_BINARY: dict[Any, str] = {
    operator.add: "add", torch.add: "add", "add": "add", "__add__": "add", operator.iadd: "add",
    operator.sub: "sub", torch.sub: "sub", "sub": "sub", "__sub__": "sub",
    operator.mul: "mul", torch.mul: "mul", "mul": "mul", "__mul__": "mul",
    operator.truediv: "div", torch.div: "div", "div": "div", "__truediv__": "div",
    torch.maximum: "max", "maximum": "max", torch.minimum: "min", "minimum": "min",
}
_UNARY: dict[Any, str] = {
    operator.neg: "neg", torch.neg: "neg", "neg": "neg", torch.relu: "relu", F.relu: "relu", "relu": "relu",
    torch.abs: "abs", "abs": "abs", torch.sigmoid: "sigmoid", "sigmoid": "sigmoid", torch.tanh: "tanh",
    "tanh": "tanh", torch.exp: "exp", "exp": "exp", F.log_softmax: "log_softmax", torch.log_softmax: "log_softmax",
    "log_softmax": "log_softmax", F.softmax: "softmax", torch.softmax: "softmax", "softmax": "softmax",
}
_REDUCE: dict[Any, str] = {torch.amax: "amax", "amax": "amax", torch.amin: "amin", "amin": "amin",
                           torch.mean: "mean", "mean": "mean", torch.sum: "sum", "sum": "sum"}
_MATMUL = {torch.matmul, operator.matmul, torch.bmm, "matmul", "bmm", "__matmul__"}
_RESHAPE = {torch.reshape, "reshape", "view", "unsqueeze", "squeeze", torch.unsqueeze, torch.squeeze}
_IDENTITY_METHODS = {"contiguous", "clone", "detach"}


class _Converter:
    def __init__(self, tracer: _ConcreteTracer, fx_graph: fx.Graph, root: nn.Module):
        self.values = tracer.values
        self.fx_graph = fx_graph
        self.root = root
        self.names: dict[fx.Node, str] = {}
        self.nodes: dict[str, g.Node] = {}

    def is_tensor(self, n: Any) -> bool:
        return isinstance(n, fx.Node) and isinstance(self.values.get(n), Tensor)

    def concrete(self, a: Any) -> Any:
        return fx.node.map_arg(a, lambda n: self.values[n])

    def name_for(self, n: fx.Node) -> str:
        base = str(n.target) if n.op == "call_module" else n.name
        name, k = base, 1
        while name in self.nodes:
            name, k = f"{base}#{k}", k + 1
        return name

    def add(self, n: fx.Node, op: g.Op, inputs: list[fx.Node]) -> None:
        name = self.name_for(n)
        self.names[n] = name
        self.nodes[name] = g.Node(op, [self.names[i] for i in inputs])

    def convert(self) -> g.Graph:
        out_node = next(n for n in self.fx_graph.nodes if n.op == "output")
        needed = self._needed(out_node)
        input_name = ""
        for n in self.fx_graph.nodes:
            if n not in needed:
                continue
            if n.op == "placeholder":
                shape = tuple(int(s) for s in self.values[n].shape[2:])
                self.add(n, g.Input(shape), [])
                input_name = self.names[n]
            elif n.op == "get_attr":
                self.add(n, g.Constant(self.values[n].detach().clone()), [])
            else:
                op, inputs = self._op(n)
                self.add(n, op, inputs)
        result = out_node.args[0]
        outs = list(result) if isinstance(result, (tuple, list)) else [result]
        for o in outs:
            if not self.is_tensor(o):
                raise g.GraphError(f"the network output {o} is not a tensor computed by the network")
        return _drop_identities(g.Graph(self.nodes, input_name, [self.names[o] for o in outs]))

    def _needed(self, out_node: fx.Node) -> set[fx.Node]:
        """Nodes the output depends on through tensor-valued arguments (shape arithmetic is baked in)."""
        needed: set[fx.Node] = set()
        stack = [a for a in out_node.all_input_nodes]
        while stack:
            n = stack.pop()
            if n in needed:
                continue
            needed.add(n)
            stack += [a for a in n.all_input_nodes if self.is_tensor(a)]
        return {n for n in needed if self.is_tensor(n)}

    def _op(self, n: fx.Node) -> tuple[g.Op, list[fx.Node]]:
        where = f"node {n.name!r} ({n.op} {getattr(n.target, '__name__', n.target)!s})"
        if n.op == "call_module":
            tensor_args = [a for a in n.args if isinstance(a, fx.Node) and self.is_tensor(a)]
            if len(tensor_args) != 1 or n.kwargs:
                raise g.GraphError(f"{where}: a module call needs exactly one tensor argument")
            return _module_op(self.root.get_submodule(str(n.target)), str(n.target)), tensor_args
        target: Any = n.target
        args = list(n.args)
        kwargs = dict(n.kwargs)
        try:
            return self._function_op(target, args, kwargs, n)
        except g.GraphError as exc:
            raise g.GraphError(f"{where}: {exc}") from None

    def _function_op(self, target: Any, args: list[Any], kwargs: dict[str, Any],
                     n: fx.Node) -> tuple[g.Op, list[fx.Node]]:
        first: Any = args[0] if args else None
        if target in _BINARY:
            if kwargs.get("alpha", 1) != 1 or set(kwargs) - {"alpha"}:
                raise g.GraphError("keyword arguments are not supported")
            a, b = args[0], args[1]
            ta, tb = self.is_tensor(a), self.is_tensor(b)
            fn = _BINARY[target]
            if ta and tb:
                return g.Binary(fn), [a, b]
            if ta or tb:
                scalar = self.concrete(b if ta else a)
                if not isinstance(scalar, (int, float)) or isinstance(scalar, bool):
                    raise g.GraphError(f"{fn} with a non-scalar constant {type(scalar).__name__}")
                return g.Binary(fn, float(scalar), scalar_first=not ta), [a if ta else b]
            raise g.GraphError(f"{fn} without a tensor operand")
        if target in _UNARY:
            fn = _UNARY[target]
            dim = kwargs.pop("dim", args[1] if len(args) > 1 else None)
            kwargs.pop("inplace", None)
            if kwargs.pop("dtype", None) is not None or kwargs:
                raise g.GraphError(f"unsupported keyword arguments {sorted(kwargs)}")
            return g.Unary(fn, None if dim is None else int(self.concrete(dim))), [first]
        if target in _MATMUL:
            return g.MatMul(), [args[0], args[1]]
        if target in _REDUCE:
            fn = _REDUCE[target]
            dim = kwargs.pop("dim", args[1] if len(args) > 1 else None)
            keepdim = bool(self.concrete(kwargs.pop("keepdim", args[2] if len(args) > 2 else False)))
            if dim is None or kwargs:
                raise g.GraphError(f"{fn} needs explicit dims and no other options")
            dim = self.concrete(dim)
            dims = tuple(int(d) for d in dim) if isinstance(dim, (tuple, list)) else (int(dim),)
            return g.Reduce(fn, dims, keepdim), [first]
        if target in (torch.transpose, "transpose"):
            d0, d1 = (self.concrete(a) for a in args[1:3])
            return g.Transpose(int(d0), int(d1)), [first]
        if target in (torch.permute, "permute"):
            perm: Any = self.concrete(args[1:] if target == "permute" else args[1])
            perm = perm[0] if len(perm) == 1 and isinstance(perm[0], (tuple, list)) else perm
            return g.Permute(tuple(int(d) for d in perm)), [first]
        if target in (torch.flatten, "flatten"):
            start = self.concrete(kwargs.get("start_dim", args[1] if len(args) > 1 else 0))
            end = self.concrete(kwargs.get("end_dim", args[2] if len(args) > 2 else -1))
            return g.Flatten(int(start), int(end)), [first]
        if target in _RESHAPE:
            x, y = self.values[first], self.values[n]
            if x.ndim < 2 or y.ndim < 2 or tuple(y.shape[:2]) != tuple(x.shape[:2]):
                raise g.GraphError(f"a reshape from {tuple(x.shape)} to {tuple(y.shape)} changes the time/batch "
                                   "dims [T, B]; only per-sample reshapes are described")
            return g.Reshape(tuple(int(s) for s in y.shape[2:])), [first]
        if target in (torch.cat, torch.concat, "cat"):
            seq = args[0]
            dim = self.concrete(kwargs.get("dim", args[1] if len(args) > 1 else 0))
            if not isinstance(seq, (list, tuple)) or not all(self.is_tensor(s) for s in seq):
                raise g.GraphError("concatenation of non-tensor values")
            return g.Concat(int(dim)), [s for s in seq if isinstance(s, fx.Node)]
        if target is operator.getitem:
            if not self.is_tensor(first):
                raise g.GraphError(f"indexing into a {type(self.values.get(first)).__name__} value (e.g. a "
                                   "tuple returned by torch.max); use amax")
            return g.Index(encode_index(self.concrete(args[1]))), [first]
        if target in _IDENTITY_METHODS or (target in ("to", "float", "type_as") and self._same_dtype(n, first)):
            return g.Identity(), [first]
        raise g.GraphError("no inference description for this operation")

    def _same_dtype(self, n: fx.Node, first: Any) -> bool:
        x, y = self.values.get(first), self.values.get(n)
        return isinstance(x, Tensor) and isinstance(y, Tensor) and x.dtype == y.dtype and x.device == y.device


def _drop_identities(graph: g.Graph) -> g.Graph:
    """Remove Identity nodes (merged norms, inference dropout), rewiring their consumers."""
    alias: dict[str, str] = {}
    nodes: dict[str, g.Node] = {}
    for name, node in graph.nodes.items():
        inputs = [alias.get(i, i) for i in node.inputs]
        if isinstance(node.op, g.Identity) and name not in graph.outputs:
            alias[name] = inputs[0]
            continue
        nodes[name] = g.Node(node.op, inputs)
    return g.Graph(nodes, graph.input, list(graph.outputs), graph.metadata)


def _trace_once(model: nn.Module, example: Tensor) -> g.Graph:
    # options after the input (e.g. ``aux=False``) are traced at their defaults: inference takes one tensor
    options = list(inspect.signature(model.forward).parameters.values())[1:]
    concrete = {p.name: p.default for p in options if p.default is not inspect.Parameter.empty}
    tracer = _ConcreteTracer(example, list(concrete.values()))
    try:
        fx_graph = tracer.trace(model, concrete_args=concrete or None)
    except g.GraphError:
        raise
    except Exception as exc:  # fx raises TraceError/TypeError/NotImplementedError for untraceable forwards
        raise g.GraphError(f"torch.fx cannot trace {type(model).__name__}: {exc}") from exc
    return _Converter(tracer, fx_graph, model).convert()


def _describe(graph: g.Graph) -> list[tuple[str, str, Any, list[str]]]:
    return [(k, n.op.kind, n.op.attributes(), n.inputs) for k, n in graph.nodes.items()]


def graph_from_module(model: nn.Module, input_shape: tuple[int, ...] | None = None, *,
                      example: Tensor | None = None, metadata: dict[str, Any] | None = None,
                      check: Callable[[g.Graph], None] | None = None) -> g.Graph:
    """The inference description of a folded network.

    ``input_shape`` is the per-sample input shape (default: the model's ``input_shape`` attribute); ``example``
    an input ``[T, B, ...]`` used for tracing instead. The model runs in eval mode on the example (twice, with
    two time/batch sizes); the global RNG state is restored afterwards.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"graph_from_module expects an nn.Module, got {type(model).__name__}")
    if example is None:
        if input_shape is None:
            input_shape = getattr(model, "input_shape", None)
        if input_shape is None:
            raise ValueError(f"{type(model).__name__} has no input_shape attribute; pass input_shape=(C, ...) (the "
                             "per-sample input shape) or example=x[T, B, ...]")
        ref = next(iter(model.parameters()), None)
        dtype = ref.dtype if ref is not None else torch.get_default_dtype()
        device = ref.device if ref is not None else None
        gen = torch.Generator().manual_seed(0)
        example = torch.randn((2, 3) + tuple(int(s) for s in input_shape), generator=gen).to(device=device,
                                                                                               dtype=dtype)
    if example.ndim < 2:
        raise ValueError(f"example must be time-first [T, B, ...], got shape {tuple(example.shape)}")
    T, B = example.shape[:2]
    other = example[:1, :1].expand((T + 1, B + 1) + tuple(example.shape[2:])).clone()
    was_training = model.training
    rng = torch.get_rng_state()
    model.eval()
    try:
        graph = _trace_once(model, example)
        again = _trace_once(model, other)
    finally:
        torch.set_rng_state(rng)
        model.train(was_training)
    if _describe(graph) != _describe(again):
        diff = next((a, b) for a, b in zip(_describe(graph), _describe(again)) if a != b) if len(
            graph.nodes) == len(again.nodes) else ("node count", f"{len(graph.nodes)} vs {len(again.nodes)}")
        raise g.GraphError(f"the traced network depends on the time or batch size (first difference: {diff}); "
                           "only per-sample shape arithmetic is described")
    meta: dict[str, Any] = {"source": type(model).__name__}
    for key in ("num_classes", "input_kind"):
        value = getattr(model, key, None)
        if isinstance(value, (int, str)):
            meta[key] = value
    names = getattr(model, "source_neuron_names", None)
    if isinstance(names, dict):
        meta["source_neuron_names"] = {str(k): str(v) for k, v in names.items()}
    meta.update(metadata or {})
    graph.metadata = meta
    if check is not None:
        check(graph)
    return graph
