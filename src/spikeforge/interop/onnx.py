"""ONNX export of a folded network (needs ``onnx`` and ``onnxscript``; run it with ``onnxruntime``).

* **Sequence graph** (default): input ``x[T, B, ...]`` for a fixed ``T`` -> the network's output. The time loop is
  unrolled, every spike is a comparison (``h ≥ θ`` -> ``Cast``), so the graph uses standard operators only (opset
  18) and needs no custom op. The batch dim is dynamic.
* **Streaming graph** (``streaming=True``): inputs ``x[B, ...]`` and one membrane per neuron ``v_<k>[B, ...]``
  (zeros at rest), outputs the step's output and the new membranes; call it once per time step.

Both are exported with ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export``-based exporter; works offline
with onnxscript installed); ``dynamo=False`` selects the TorchScript exporter. A random initial membrane
(Spiking PointNet) becomes ``RandomUniformLike``: the ONNX graph draws its own random numbers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import graph as g
from .artifact import as_graph
from .runtime import InferenceNetwork, check_streamable

__all__ = ["export_onnx", "OPSET"]

OPSET = 18


class _Streaming(nn.Module):
    def __init__(self, net: InferenceNetwork):
        super().__init__()
        self.net = net
        self.names = net.stateful_neurons()

    def forward(self, x: Tensor, *membranes: Tensor) -> tuple[Tensor, ...]:
        out, new = self.net.step(x, dict(zip(self.names, membranes)))
        outs = out if isinstance(out, tuple) else (out,)
        return tuple(outs) + tuple(new[n] for n in self.names)


def export_onnx(model_or_graph: Any, path: str | os.PathLike[str], *, T: int, batch_size: int = 1,
                streaming: bool = False, dynamo: bool = True, opset: int = OPSET,
                input_shape: tuple[int, ...] | None = None, example: Tensor | None = None) -> Path:
    """Write ``model_or_graph`` (folded ``nn.Module``, :class:`InferenceNetwork` or :class:`Graph`) as ONNX.

    ``T`` fixes the number of unrolled steps of the sequence graph (and bounds per-step parameters); the streaming
    graph ignores it. Returns the path. Input names: ``x`` (and ``v0``, ``v1``, ... in step order of
    ``InferenceNetwork.stateful_neurons()``); outputs ``y`` (and ``v0_out``, ...).
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    graph = as_graph(model_or_graph, input_shape=input_shape, example=example)
    net = InferenceNetwork(graph).float().eval()
    net.export_mode = True
    inp = graph.nodes[graph.input].op
    assert isinstance(inp, g.Input)
    if any(s is None for s in inp.shape):
        raise g.GraphError(f"the input shape {inp.shape} has unknown dims; ONNX export needs concrete shapes")
    sample_shape = tuple(int(s) for s in inp.shape if s is not None)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n_out = len(graph.outputs)
    y_names = ["y"] if n_out == 1 else [f"y{k}" for k in range(n_out)]
    if streaming:
        check_streamable(graph)
        module: nn.Module = _Streaming(net)
        names = net.stateful_neurons()
        x = torch.zeros((batch_size,) + sample_shape)
        with torch.no_grad():
            v_shapes = _membrane_shapes(net, x)
        args: tuple[Tensor, ...] = (x,) + tuple(torch.zeros((batch_size,) + v_shapes[n]) for n in names)
        in_names = ["x"] + [f"v{k}" for k in range(len(names))]
        out_names = y_names + [f"v{k}_out" for k in range(len(names))]
    else:
        module = net
        args = (torch.zeros((T, batch_size) + sample_shape),)
        in_names, out_names = ["x"], y_names
    kwargs: dict[str, Any] = {"input_names": in_names, "output_names": out_names, "opset_version": opset}
    batch_dim = 0 if streaming else 1
    if dynamo:
        batch = torch.export.Dim("batch")
        dyn: tuple[Any, ...] = ({batch_dim: batch},)
        if streaming:  # forward(x, *membranes): the varargs form one entry
            dyn += (tuple({0: batch} for _ in args[1:]),)
        kwargs.update(dynamo=True, external_data=False, dynamic_shapes=dyn)
    else:
        axes = {name: {batch_dim if k == 0 else 0: "batch"} for k, name in enumerate(in_names)}
        axes.update({name: {0 if streaming else 1: "batch"} for name in out_names})
        kwargs.update(dynamo=False, dynamic_axes=axes)
    with torch.no_grad():
        torch.onnx.export(module, args, str(out), **kwargs)
    return out


def _membrane_shapes(net: InferenceNetwork, x: Tensor) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    with net.observe(lambda name, s: shapes.__setitem__(name, tuple(s.shape[2:]))):
        net(x.unsqueeze(0))
    return shapes
