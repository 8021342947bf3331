"""The spikeforge inference artifact: one safetensors file holding a :class:`~spikeforge.interop.graph.Graph`.

Layout (no pickle anywhere; any safetensors reader can list the tensors)::

    tensors      "<node>.<field>"  (weights, biases, thresholds, constants; dtype as saved)
    __metadata__ "format"  = "spikeforge-inference-1"
                 "graph"   = JSON {"input", "outputs", "metadata", "nodes": [{"name", "kind", "inputs", "attrs"}]}
                 "sha256"  = SHA-256 of the graph JSON, the header's tensor table and the tensor data

Loading verifies the checksum before building anything, so a truncated, corrupted or edited file gives an
:class:`ArtifactError` naming the file. The reloaded network (:class:`~spikeforge.interop.runtime.InferenceNetwork`)
needs nothing of the training code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..runs import atomic_write_bytes
from . import graph as g
from .runtime import InferenceNetwork

__all__ = ["ArtifactError", "FORMAT", "save_inference", "load_inference", "load_graph", "graph_to_json",
           "graph_from_json"]

FORMAT = "spikeforge-inference-1"


class ArtifactError(ValueError):
    """A missing, truncated, corrupted or unknown inference artifact."""


def graph_to_json(graph: g.Graph) -> tuple[str, dict[str, Tensor]]:
    """``(json_text, tensors)``: the graph's structure and its tensors keyed ``"<node>.<field>"``."""
    nodes = []
    tensors: dict[str, Tensor] = {}
    for name, node in graph.nodes.items():
        for field_name, t in node.op.tensors().items():
            tensors[f"{name}.{field_name}"] = t.detach().to("cpu").contiguous().clone()
        nodes.append({"name": name, "kind": node.op.kind, "inputs": list(node.inputs),
                      "attrs": node.op.attributes()})
    doc = {"input": graph.input, "outputs": list(graph.outputs), "metadata": graph.metadata, "nodes": nodes}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")), tensors


def _tupled(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tupled(u) for u in v)
    return v


def graph_from_json(text: str, tensors: dict[str, Tensor], source: str = "<graph>") -> g.Graph:
    try:
        doc = json.loads(text)
        nodes: dict[str, g.Node] = {}
        for entry in doc["nodes"]:
            name, kind = entry["name"], entry["kind"]
            cls = g.OPS.get(kind)
            if cls is None:
                raise ArtifactError(f"{source}: node {name!r} has unknown operation kind {kind!r} (known: "
                                    f"{sorted(g.OPS)}); was it written by a newer spikeforge?")
            fields = {f.name for f in dataclasses.fields(cls)}
            kwargs: dict[str, Any] = {}
            for key, value in entry["attrs"].items():
                if key not in fields:
                    raise ArtifactError(f"{source}: node {name!r} ({kind}) has unknown attribute {key!r}")
                kwargs[key] = value if key == "metadata" else _tupled(value)
            for key in fields:
                t = tensors.get(f"{name}.{key}")
                if t is not None:
                    kwargs[key] = t
            try:
                op = cls(**kwargs)
            except TypeError as exc:
                raise ArtifactError(f"{source}: node {name!r} ({kind}) is incomplete: {exc}") from None
            nodes[name] = g.Node(op, list(entry["inputs"]))
        return g.Graph(nodes, doc["input"], list(doc["outputs"]), dict(doc.get("metadata") or {}))
    except (KeyError, TypeError, json.JSONDecodeError, g.GraphError) as exc:
        raise ArtifactError(f"{source}: the graph description is invalid ({type(exc).__name__}: {exc})") from None


def _header(data: bytes, source: str) -> tuple[dict[str, Any], int]:
    if len(data) < 8:
        raise ArtifactError(f"{source} is truncated ({len(data)} bytes) or not a spikeforge artifact")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ArtifactError(f"{source} is truncated or not a spikeforge artifact (header of {n} bytes, file of "
                            f"{len(data)})")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{source} is corrupted: unreadable header ({exc})") from None
    if not isinstance(header, dict):
        raise ArtifactError(f"{source} is corrupted: the header is not a JSON object")
    return header, 8 + n


def _digest(graph_json: str, header: dict[str, Any], payload: bytes) -> str:
    table = {k: v for k, v in header.items() if k != "__metadata__"}
    h = hashlib.sha256()
    h.update(graph_json.encode("utf-8"))
    h.update(json.dumps(table, sort_keys=True).encode("utf-8"))
    h.update(payload)
    return h.hexdigest()


def save_inference(model_or_graph: nn.Module | g.Graph, path: str | os.PathLike[str], *,
                   input_shape: tuple[int, ...] | None = None, example: Tensor | None = None,
                   metadata: dict[str, Any] | None = None) -> Path:
    """Write a folded network (or a :class:`Graph`, or an :class:`InferenceNetwork`) to ``path``; returns it.

    An ``nn.Module`` is described with :func:`~spikeforge.interop.trace.graph_from_module` (``input_shape`` /
    ``example`` as there); it must already be folded (``spikeforge.fold(model)``).
    """
    from safetensors.torch import save

    graph = as_graph(model_or_graph, input_shape=input_shape, example=example)
    if metadata:
        graph = dataclasses.replace(graph, metadata={**graph.metadata, **metadata})
    text, tensors = graph_to_json(graph)
    first = save(tensors, metadata={"format": FORMAT})
    header, start = _header(first, str(path))
    digest = _digest(text, header, first[start:])
    data = save(tensors, metadata={"format": FORMAT, "graph": text, "sha256": digest})
    out = Path(path)
    atomic_write_bytes(out, data)
    return out


def as_graph(obj: nn.Module | g.Graph, **kwargs: Any) -> g.Graph:
    if isinstance(obj, g.Graph):
        return obj
    if isinstance(obj, InferenceNetwork):
        return obj.to_graph()
    if isinstance(obj, nn.Module):
        from .trace import graph_from_module

        return graph_from_module(obj, **kwargs)
    raise TypeError(f"expected a folded nn.Module, an InferenceNetwork or a Graph, got {type(obj).__name__}")


def load_graph(path: str | os.PathLike[str]) -> g.Graph:
    """Read and verify an artifact; returns its :class:`Graph` (tensors on the CPU)."""
    from safetensors.torch import load

    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"inference artifact {p} does not exist")
    data = p.read_bytes()
    header, start = _header(data, str(p))
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise ArtifactError(f"{p} is not a spikeforge inference artifact (format {meta.get('format')!r}, expected "
                            f"{FORMAT!r})")
    text, digest = meta.get("graph"), meta.get("sha256")
    if not isinstance(text, str) or not isinstance(digest, str):
        raise ArtifactError(f"{p} is corrupted: the graph or its checksum is missing")
    if _digest(text, header, data[start:]) != digest:
        raise ArtifactError(f"{p} is corrupted or truncated: SHA-256 does not match the checksum in its header")
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error type
        raise ArtifactError(f"{p} is corrupted ({exc})") from None
    return graph_from_json(text, tensors, str(p))


def load_inference(path: str | os.PathLike[str], map_location: str | torch.device | None = None) -> InferenceNetwork:
    """Load an artifact written by :func:`save_inference` (or ``spikeforge export``) as a runnable network."""
    net = InferenceNetwork(load_graph(path))
    return net.to(map_location) if map_location is not None else net
