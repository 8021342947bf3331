"""A typed description of a spiking inference network: small dataclasses (one per operation) in a graph.

Every tensor in the graph is time-first ``[T, B, ...]`` and every operation is defined on that layout:

* stateless layers (:class:`Conv`, :class:`UnsharedConv`, :class:`Pool`, :class:`AdaptivePool`) act on the last
  ``1 + d`` dims (channels and ``d`` spatial dims) and treat every leading dim as batch, so time folds into the
  batch; :class:`Linear` acts on the last dim;
* :class:`Neuron` is the only stateful operation; it runs the exact discrete-time dynamics of
  :mod:`spikeforge.functional.neuron` over the leading time axis (see its docstring);
* :class:`Affine` is a per-channel affine on dim 2, per time step (BNTT/TEBN folded) or shared over time.

A :class:`Graph` is a ``dict`` of :class:`Node` (an operation and the names of its inputs) in topological order,
the name of its input and the names of its outputs. Nothing here runs anything: :mod:`spikeforge.interop.runtime`
executes a graph, :mod:`spikeforge.interop.artifact` saves and loads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor

__all__ = [
    "Op", "Input", "Conv", "Linear", "UnsharedConv", "Pool", "AdaptivePool", "Flatten", "Reshape", "Affine",
    "Neuron", "Binary", "Unary", "Constant", "MatMul", "Transpose", "Permute", "Reduce", "Index", "Concat",
    "Identity", "Node", "Graph", "OPS", "GraphError",
]


class GraphError(ValueError):
    """A network (or a graph) that the inference description cannot represent exactly."""


@dataclass
class Op:
    """Base of every operation. ``kind`` names it in the saved JSON; tensor fields go to safetensors."""

    kind: ClassVar[str] = ""

    def tensors(self) -> dict[str, Tensor]:
        return {f.name: v for f in dataclasses.fields(self) if isinstance(v := getattr(self, f.name), Tensor)}

    def attributes(self) -> dict[str, Any]:
        """The JSON part: every field that is not a tensor (tensor-valued fields that are None are kept as None)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)
                if not isinstance(getattr(self, f.name), Tensor)}


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(u) for u in v]
    if isinstance(v, list):
        return [_jsonable(u) for u in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(u) for k, u in v.items()}
    return v


@dataclass
class Input(Op):
    """The network input ``[T, B, *shape]``; ``None`` marks a per-sample dim of any size."""

    kind: ClassVar[str] = "input"
    shape: tuple[int | None, ...] = ()


@dataclass
class Conv(Op):
    """``y = conv_d(x, weight) + bias`` over the last ``1 + d`` dims, ``d = weight.ndim − 2`` (1 or 2); leading dims
    are batch (time folds into it). Zero padding only."""

    kind: ClassVar[str] = "conv"
    weight: Tensor
    bias: Tensor | None = None
    stride: tuple[int, ...] = (1,)
    padding: tuple[int, ...] | str = (0,)
    dilation: tuple[int, ...] = (1,)
    groups: int = 1


@dataclass
class Linear(Op):
    """``y = x Wᵀ + b`` on the last dim."""

    kind: ClassVar[str] = "linear"
    weight: Tensor
    bias: Tensor | None = None


@dataclass
class UnsharedConv(Op):
    """Locally connected 2-D conv (:func:`spikeforge.layers.unshared_conv2d`): ``weight[O, C, kh, kw, Ho, Wo]``,
    ``bias[O, Ho, Wo]``; the element-wise Real Spike fold (arXiv:2210.06686)."""

    kind: ClassVar[str] = "unshared_conv"
    weight: Tensor
    bias: Tensor | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    in_size: tuple[int, int] = (1, 1)


@dataclass
class Pool(Op):
    """Average or max pooling over the last ``dim`` dims (``torch.nn.functional.{avg,max}_pool{dim}d``)."""

    kind: ClassVar[str] = "pool"
    mode: str = "avg"
    dim: int = 2
    kernel_size: tuple[int, ...] = (2, 2)
    stride: tuple[int, ...] = (2, 2)
    padding: tuple[int, ...] = (0, 0)
    dilation: tuple[int, ...] = (1, 1)
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None


@dataclass
class AdaptivePool(Op):
    """Adaptive average/max pooling of the last ``dim`` dims to ``output_size``."""

    kind: ClassVar[str] = "adaptive_pool"
    mode: str = "avg"
    dim: int = 2
    output_size: tuple[int | None, ...] = (1, 1)


@dataclass
class Flatten(Op):
    """``torch.flatten(x, start_dim, end_dim)`` on the time-first tensor (``start_dim=2``: per sample)."""

    kind: ClassVar[str] = "flatten"
    start_dim: int = 2
    end_dim: int = -1


@dataclass
class Reshape(Op):
    """``x.reshape(T, B, *shape)``: a reshape that keeps the time and batch dims."""

    kind: ClassVar[str] = "reshape"
    shape: tuple[int, ...] = ()


@dataclass
class Affine(Op):
    """Per-channel affine on dim 2: ``y_t = w_t ⊙ x_t + b_t`` with ``weight, bias [S, C]``; ``S = 1`` is shared over
    time, ``S > 1`` holds one affine per step for up to ``S`` steps (BNTT arXiv:2010.01729, TEBN, folded)."""

    kind: ClassVar[str] = "affine"
    weight: Tensor
    bias: Tensor | None = None


@dataclass
class Neuron(Op):
    """A spiking neuron over ``x[T, ...]`` with the exact discrete-time dynamics of
    :mod:`spikeforge.functional.neuron` (``v_{-1} = v0``)::

        h_t = decay · v_{t−1} + g · x_t            g = 1, or 1 − decay with decay_input
        s_t = [h_t ≥ θ_t]                          binary (the firing edge is ≥, never >)
        s_t = [h_t ≥ θ_t] − [h_t ≤ θ⁻_t]           ternary; θ⁻ = threshold_low, or −θ when None
        v_t = h_t (1 − |s_t|) + v_reset |s_t|      reset 'hard'
        v_t = h_t − c · s_t                        reset 'soft', c = soft_reset_amount, or θ_t when None
        v_t = h_t                                  reset 'none'

    ``threshold`` broadcasts against one step ``[B, ...]`` (scalar, per channel ``[C, 1, ...]`` or per element);
    with ``per_step`` it has a leading step dim ``[S, ...]`` and step ``t`` uses ``threshold[t]`` (folded MPBN with
    per-step statistics, arXiv:2308.08359). ``init='uniform'`` draws ``v0 ~ U[0, init_range)`` on every call
    (Spiking PointNet's inference membrane, arXiv:2310.06232); ``'zero'`` starts at rest. ``backend`` is an
    execution hint for :func:`spikeforge.functional.multistep` (the same math either way).
    """

    kind: ClassVar[str] = "neuron"
    threshold: Tensor
    threshold_low: Tensor | None = None
    decay: float = 0.25
    decay_input: bool = False
    per_step: bool = False
    reset: str = "hard"
    v_reset: float = 0.0
    soft_reset_amount: float | None = None
    spike: str = "binary"
    init: str = "zero"
    init_range: float = 0.0
    firing: str = ">="
    backend: str = "auto"

    def __post_init__(self) -> None:
        checks = {"reset": ("hard", "soft", "none"), "spike": ("binary", "ternary"), "init": ("zero", "uniform"),
                  "firing": (">=",), "backend": ("auto", "fused", "reference")}
        for key, allowed in checks.items():
            if getattr(self, key) not in allowed:
                raise GraphError(f"neuron {key}={getattr(self, key)!r} is not one of {list(allowed)}")
        if self.threshold_low is not None and self.spike != "ternary":
            raise GraphError("threshold_low is defined for ternary spikes only")


@dataclass
class Binary(Op):
    """Element-wise ``fn`` of two inputs, or of one input and the constant ``scalar`` (``scalar_first`` puts the
    constant on the left): ``add``, ``sub``, ``mul``, ``div``, ``max``, ``min``. Residual sums are ``add``."""

    kind: ClassVar[str] = "binary"
    fn: str = "add"
    scalar: float | None = None
    scalar_first: bool = False

    def __post_init__(self) -> None:
        if self.fn not in BINARY_FNS:
            raise GraphError(f"binary fn={self.fn!r} is not one of {sorted(BINARY_FNS)}")


BINARY_FNS = ("add", "sub", "mul", "div", "max", "min")
UNARY_FNS = ("neg", "relu", "abs", "sigmoid", "tanh", "exp", "log_softmax", "softmax")


@dataclass
class Unary(Op):
    """Element-wise (or along ``dim`` for the softmaxes) ``fn`` of one input."""

    kind: ClassVar[str] = "unary"
    fn: str = "relu"
    dim: int | None = None

    def __post_init__(self) -> None:
        if self.fn not in UNARY_FNS:
            raise GraphError(f"unary fn={self.fn!r} is not one of {sorted(UNARY_FNS)}")


@dataclass
class Constant(Op):
    """A constant tensor (e.g. the identity offset of PointNet's T-Net head)."""

    kind: ClassVar[str] = "constant"
    value: Tensor


@dataclass
class MatMul(Op):
    """``torch.matmul(a, b)`` (batched over the leading dims, e.g. PointNet's ``Aᵀ x``)."""

    kind: ClassVar[str] = "matmul"


@dataclass
class Transpose(Op):
    kind: ClassVar[str] = "transpose"
    dim0: int = -2
    dim1: int = -1


@dataclass
class Permute(Op):
    kind: ClassVar[str] = "permute"
    dims: tuple[int, ...] = ()


@dataclass
class Reduce(Op):
    """``amax`` / ``amin`` / ``mean`` / ``sum`` over ``dims`` (e.g. PointNet's max over points, ``dims=(-1,)``)."""

    kind: ClassVar[str] = "reduce"
    fn: str = "amax"
    dims: tuple[int, ...] = (-1,)
    keepdim: bool = False

    def __post_init__(self) -> None:
        if self.fn not in ("amax", "amin", "mean", "sum"):
            raise GraphError(f"reduce fn={self.fn!r} is not one of ['amax', 'amin', 'mean', 'sum']")


@dataclass
class Index(Op):
    """Basic indexing ``x[items]``; each item is an int, ``None`` (new axis), ``"..."`` or a slice
    ``{"slice": [start, stop, step]}``."""

    kind: ClassVar[str] = "index"
    items: tuple[Any, ...] = ()


@dataclass
class Concat(Op):
    kind: ClassVar[str] = "concat"
    dim: int = 0


@dataclass
class Identity(Op):
    """Passes its input through (inference-time dropout, merged norms)."""

    kind: ClassVar[str] = "identity"


OPS: dict[str, type[Op]] = {cls.kind: cls for cls in (
    Input, Conv, Linear, UnsharedConv, Pool, AdaptivePool, Flatten, Reshape, Affine, Neuron, Binary, Unary, Constant,
    MatMul, Transpose, Permute, Reduce, Index, Concat, Identity)}


@dataclass
class Node:
    """One operation and the names of the nodes feeding it (in argument order)."""

    op: Op
    inputs: list[str] = field(default_factory=list)


@dataclass
class Graph:
    """Nodes in topological order (``nodes[input]`` is an :class:`Input`), and the names of the outputs.

    ``metadata`` holds free-form JSON facts (the source model's name, number of classes, input kind, the names
    of the training model's neurons for :func:`~spikeforge.interop.verify_artifact`).
    """

    nodes: dict[str, Node]
    input: str
    outputs: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for name, node in self.nodes.items():
            for i in node.inputs:
                if i not in seen:
                    raise GraphError(f"node {name!r} reads {i!r}, which is not defined before it")
            seen.add(name)
        if self.input not in self.nodes or not isinstance(self.nodes[self.input].op, Input):
            raise GraphError(f"the graph input {self.input!r} is not an Input node")
        for o in self.outputs:
            if o not in self.nodes:
                raise GraphError(f"the graph output {o!r} is not a node")

    def neurons(self) -> dict[str, Neuron]:
        return {k: n.op for k, n in self.nodes.items() if isinstance(n.op, Neuron)}

    def summary(self) -> str:
        lines = []
        for name, node in self.nodes.items():
            attrs = ", ".join(f"{k}={v}" for k, v in node.op.attributes().items() if v not in (None, ()))
            shapes = ", ".join(f"{k}{tuple(t.shape)}" for k, t in node.op.tensors().items())
            lines.append(f"{name} = {node.op.kind}({', '.join(node.inputs)}){' [' + attrs + ']' if attrs else ''}"
                         f"{' {' + shapes + '}' if shapes else ''}")
        return "\n".join(lines + [f"outputs: {', '.join(self.outputs)}"])
