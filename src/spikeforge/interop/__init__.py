"""Deployable inference networks: a typed graph description, the spikeforge artifact, NIR and ONNX.

* :func:`graph_from_module` describes a folded network as a :class:`Graph` of small dataclasses;
* :class:`InferenceNetwork` runs a graph (no training code needed);
* :func:`save_inference` / :func:`load_inference` write and read the checksummed safetensors artifact;
* :func:`to_nir` / :func:`from_nir` convert to and from NIR, :func:`export_onnx` writes ONNX (see
  ``docs/deployment.md``);
* :mod:`.clip`: CLIP encoders for NeuroCLIP (optional ``transformers``).
"""

from __future__ import annotations

from typing import Any

from .artifact import ArtifactError, load_graph, load_inference, save_inference
from .graph import Graph, GraphError, Node
from .runtime import InferenceNetwork
from .trace import graph_from_module
from .verify import ArtifactReport, verify_artifact

__all__ = [
    "ArtifactError", "ArtifactReport", "Graph", "GraphError", "InferenceNetwork", "Node", "export_onnx", "from_nir",
    "graph_from_module", "load_graph", "load_inference", "save_inference", "to_nir", "verify_artifact",
]


def to_nir(model_or_graph: Any, **kwargs: Any) -> Any:
    """See :func:`spikeforge.interop.nir.to_nir` (imports ``nir`` on first use)."""
    from .nir import to_nir as _to_nir

    return _to_nir(model_or_graph, **kwargs)


def from_nir(nir_graph: Any, **kwargs: Any) -> Any:
    """See :func:`spikeforge.interop.nir.from_nir`."""
    from .nir import from_nir as _from_nir

    return _from_nir(nir_graph, **kwargs)


def export_onnx(model_or_graph: Any, path: Any, **kwargs: Any) -> Any:
    """See :func:`spikeforge.interop.onnx.export_onnx` (needs ``onnx``/``onnxscript``)."""
    from .onnx import export_onnx as _export

    return _export(model_or_graph, path, **kwargs)
