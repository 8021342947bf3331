"""ONNX export: onnxruntime reproduces the PyTorch network (sequence graph, and the streaming step graph)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import spikeforge
from spikeforge.interop import InferenceNetwork, export_onnx, graph_from_module

from ._models import folded_recipe_model, make_net, net_inputs, sample

ort = pytest.importorskip("onnxruntime", reason="ONNX tests need onnxruntime")
pytest.importorskip("onnxscript", reason="the ONNX exporter needs onnxscript")


def _run(path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def _no_custom_ops(path) -> None:
    import onnx

    model = onnx.load(str(path))
    assert {op.domain for op in model.opset_import} <= {"", "ai.onnx"}
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)


def test_quickstart_sequence_graph_matches_pytorch(tmp_path) -> None:
    _, folded, shape, T = folded_recipe_model("quickstart")
    net = InferenceNetwork(graph_from_module(folded, shape))
    path = export_onnx(net, tmp_path / "q.onnx", T=T)
    _no_custom_ops(path)
    x = sample(shape, T, B=5)  # a batch size other than the export's
    (y,) = _run(path, {"x": x.numpy()})
    ref = net(x)
    assert float(ref.abs().max()) > 0
    np.testing.assert_allclose(y, ref.numpy(), atol=1e-5, rtol=0)


def test_resnet_sequence_and_streaming_graphs_match_pytorch(tmp_path) -> None:
    folded = spikeforge.fold(make_net("lif"))
    net = InferenceNetwork(graph_from_module(folded, example=net_inputs()))
    x = net_inputs(1)
    ref = net(x)
    (y,) = _run(export_onnx(net, tmp_path / "r.onnx", T=x.shape[0], dynamo=False), {"x": x.numpy()})
    np.testing.assert_allclose(y, ref.numpy(), atol=1e-5, rtol=0)
    # streaming: one call per step, the membranes carried by the caller (both via the faster TorchScript exporter)
    path = export_onnx(net, tmp_path / "s.onnx", T=1, streaming=True, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = net.stateful_neurons()
    feeds = {i.name: np.zeros([x.shape[1] if isinstance(d, str) else d for d in i.shape], np.float32)
             for i in sess.get_inputs()}
    assert len(feeds) == 1 + len(names)
    steps = []
    for t in range(x.shape[0]):
        feeds["x"] = x[t].numpy()
        res = sess.run(None, feeds)
        steps.append(res[0])
        feeds.update({f"v{k}": res[1 + k] for k in range(len(names))})
    np.testing.assert_allclose(np.stack(steps), ref.numpy(), atol=1e-5, rtol=0)
    # the PyTorch step API agrees too
    membranes = {n: torch.zeros(0) for n in names}
    with torch.no_grad():
        shapes = {}
        with net.observe(lambda n, s: shapes.__setitem__(n, s.shape[1:])):
            net(x)
        membranes = {n: torch.zeros(shapes[n]) for n in names}
        outs = []
        for t in range(x.shape[0]):
            o, membranes = net.step(x[t], membranes)
            outs.append(o)
    assert torch.equal(torch.stack(outs), ref)


def test_streaming_refuses_per_step_parameters(tmp_path) -> None:
    folded = spikeforge.fold(make_net("lif", norm="bntt"))
    with pytest.raises(ValueError, match="per-step parameters"):
        export_onnx(folded, tmp_path / "b.onnx", T=1, streaming=True, example=net_inputs())
