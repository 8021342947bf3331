"""Compare a network (training model or folded model) with a reloaded :class:`InferenceNetwork`."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..folding.verify import logits_of
from ..neurons import observe, spiking_neurons
from .runtime import InferenceNetwork

__all__ = ["ArtifactReport", "verify_artifact"]


@dataclass
class ArtifactReport:
    """``max_abs`` / ``max_rel``: largest absolute / relative (to ``max |logits|``) output difference;
    ``spikes_equal``: every neuron's spikes identical, neurons matched by name (the network's
    ``source_neuron_names`` map its names to the model's); ``layer_mismatch``: differing entries per neuron."""

    max_abs: float
    max_rel: float
    spikes_equal: bool
    layer_mismatch: dict[str, int] = field(default_factory=dict)

    def ok(self, tol: float = 1e-6) -> bool:
        return self.max_abs <= tol and self.spikes_equal


def verify_artifact(model: nn.Module, network: InferenceNetwork | str | os.PathLike[str], x: Tensor, *,
                    seed: int = 0, dtype: torch.dtype | None = None) -> ArtifactReport:
    """Run ``model`` and ``network`` (or the artifact at that path) on ``x`` (deep copies, eval mode, RNG seeded to
    ``seed`` before each run) and compare outputs and per-neuron spikes. ``dtype`` converts both (default: as they
    are). ``model`` may be the training model or the folded one."""
    if not isinstance(network, InferenceNetwork):
        from .artifact import load_inference

        network = load_inference(network)
    a, b = copy.deepcopy(model).eval(), copy.deepcopy(network).eval()
    if dtype is not None:
        a, b, x = a.to(dtype), b.to(dtype), x.to(dtype)
    names = {id(m): n for n, m in spiking_neurons(a)}
    rec_a: dict[str, list[Tensor]] = {}
    rec_b: dict[str, list[Tensor]] = {}

    def record_a(neuron: nn.Module, _fire_input: Tensor, spikes: Tensor) -> None:
        rec_a.setdefault(names[id(neuron)], []).append(spikes.detach())

    def record_b(name: str, spikes: Tensor) -> None:
        rec_b.setdefault(name, []).append(spikes.detach())

    with torch.no_grad():
        with observe(a, record_a):
            torch.manual_seed(seed)
            la = logits_of(a(x))
        with b.observe(record_b):
            torch.manual_seed(seed)
            lb = logits_of(b(x))
    rename = getattr(b, "source_neuron_names", None) or {}
    sb = {rename.get(k, k): torch.cat([t.flatten() for t in v]) for k, v in rec_b.items()}
    rename_a = getattr(a, "source_neuron_names", None) or {}
    sa = {rename_a.get(k, k): torch.cat([t.flatten() for t in v]) for k, v in rec_a.items()}
    if la.shape != lb.shape:
        raise ValueError(f"the outputs differ in shape: {tuple(la.shape)} vs {tuple(lb.shape)}")
    diff = float((la.double() - lb.double()).abs().max()) if la.numel() else 0.0
    scale = float(la.double().abs().max()) if la.numel() else 0.0
    mismatch: dict[str, int] = {}
    for name in sorted(set(sa) | set(sb)):
        u, v = sa.get(name), sb.get(name)
        if u is None or v is None or u.shape != v.shape:
            mismatch[name] = int((u if u is not None else v).numel())  # type: ignore[union-attr]
        else:
            mismatch[name] = int((u != v).sum())
    return ArtifactReport(diff, diff / max(scale, 1e-30), not any(mismatch.values()), mismatch)
