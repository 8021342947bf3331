"""``verify_fold``: how exactly a folded model reproduces the trained one."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..neurons import observe, spiking_neurons
from .protocols import source_names

__all__ = ["FoldReport", "LayerCheck", "verify_fold"]


@dataclass(frozen=True)
class LayerCheck:
    """One spiking layer in :func:`verify_fold` (float64 run): ``mismatches`` of ``size`` spike entries differ
    between the trained and the folded model; ``spike_values`` are the distinct values the folded layer emitted."""

    mismatches: int
    size: int
    spike_values: tuple[float, ...] = ()


@dataclass(eq=False, repr=False)
class FoldReport(float):
    """The result of :func:`verify_fold`.

    * ``max_dev`` — ``max |Δ logits| / max |logits|`` in float64;
    * ``logits_max_abs`` — ``max |logits|`` of the trained model (float64);
    * ``spikes_equal`` — every spiking layer's spikes identical (float64), layers matched by qualified name;
    * ``layers`` — per spiking layer a :class:`LayerCheck` (``layer_mismatch`` / ``layer_size`` /
      ``spike_values`` are the same as dicts); ``spike_values_ok`` — all folded spikes within {0, 1} (binary
      neurons) or {−1, 0, 1} (ternary);
    * ``float32_spike_agreement`` — fraction of equal spike entries over all layers in float32;
    * ``float32_prediction_agreement`` — fraction of equal predicted classes (argmax of the mean over T) in
      float32.

    For compatibility with code written against the earlier float result, the report's numeric value (``float``,
    comparisons) is ``max_dev``; use the fields.
    """

    max_dev: float
    logits_max_abs: float
    spikes_equal: bool
    layers: dict[str, LayerCheck]
    spike_values_ok: bool
    float32_spike_agreement: float
    float32_prediction_agreement: float

    def __new__(cls, max_dev: float, *args: Any, **kwargs: Any) -> FoldReport:
        return super().__new__(cls, max_dev)

    @property
    def layer_mismatch(self) -> dict[str, int]:
        return {k: v.mismatches for k, v in self.layers.items()}

    @property
    def layer_size(self) -> dict[str, int]:
        return {k: v.size for k, v in self.layers.items()}

    @property
    def spike_values(self) -> dict[str, list[float]]:
        return {k: list(v.spike_values) for k, v in self.layers.items() if v.spike_values}

    def ok(self, tol: float = 1e-5) -> bool:
        """Logits within ``tol`` (relative), identical spikes and plain spike values."""
        return self.max_dev <= tol and self.spikes_equal and self.spike_values_ok

    def __repr__(self) -> str:
        bad = {k: v for k, v in self.layer_mismatch.items() if v}
        return (f"FoldReport(max_dev={self.max_dev:.3g}, spikes_equal={self.spikes_equal}, "
                f"spike_values_ok={self.spike_values_ok}, float32_spike_agreement={self.float32_spike_agreement:.6f}, "
                f"float32_prediction_agreement={self.float32_prediction_agreement:.4f}"
                + (f", mismatching_layers={bad}" if bad else "") + ")")

    __str__ = __repr__


def logits_of(out: Any) -> Tensor:
    """The logits tensor of a model output (a tensor, a tuple starting with one, a dict with 'logits' or a
    :class:`~spikeforge.models.ModelOutput`)."""
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        return out[0]
    if isinstance(out, dict) and isinstance(out.get("logits"), Tensor):
        return out["logits"]
    if isinstance(getattr(out, "logits", None), Tensor):  # spikeforge.models.ModelOutput
        return out.logits
    raise TypeError(f"verify_fold needs the model to return logits (a tensor, a tuple starting with one, or a dict "
                    f"with 'logits'), got {type(out).__name__}")


def _run(model: nn.Module, x: Any, seed: int) -> tuple[Tensor, dict[str, Tensor], dict[str, str]]:
    names = {id(m): n for n, m in spiking_neurons(model)}
    kinds: dict[str, str] = {n: m.spec.spike for n, m in spiking_neurons(model)}
    rec: dict[str, list[Tensor]] = {}

    def record(neuron: nn.Module, _fire_input: Tensor, spikes: Tensor) -> None:
        rec.setdefault(names[id(neuron)], []).append(spikes.detach())

    with torch.no_grad(), observe(model, record):
        torch.manual_seed(seed)
        out = logits_of(model(x))
    return out, {k: torch.cat([t.flatten() for t in v]) for k, v in rec.items()}, kinds


def _renamed(folded: nn.Module, by_name: dict[str, Any]) -> dict[str, Any]:
    """Key per-neuron records by the source model's names when a network was rebuilt under other names
    (:class:`~spikeforge.folding.RenamesNeurons`, e.g. Joint A-SNN's SNN export and its folded form)."""
    names = source_names(folded)
    return by_name if not names else {names.get(k, k): v for k, v in by_name.items()}


def _cast(x: Any, dtype: torch.dtype) -> Any:
    if isinstance(x, Tensor):
        return x.to(dtype) if x.is_floating_point() else x
    if isinstance(x, (tuple, list)):
        return type(x)(_cast(v, dtype) for v in x)
    return x


def _predictions(logits: Tensor) -> Tensor:
    return (logits.mean(0) if logits.ndim >= 3 else logits).argmax(-1)


def verify_fold(model: nn.Module, folded: nn.Module, x: Any, *, seed: int = 0) -> FoldReport:
    """Compare ``model`` and ``folded`` on input ``x`` (``[T, B, ...]``); see :class:`FoldReport`.

    Both run on deep copies in eval mode with the RNG seeded to ``seed`` before each forward (so a random initial
    membrane used at inference, e.g. Spiking PointNet's, draws the same values), first in float64, then in float32.
    """
    a64, f64 = (copy.deepcopy(m).double().eval() for m in (model, folded))
    xa = _cast(x, torch.float64)
    la, sa, _ = _run(a64, xa, seed)
    lf, sf, kinds = _run(f64, xa, seed)
    sa, sf, kinds = _renamed(model, sa), _renamed(folded, sf), _renamed(folded, kinds)
    if la.shape != lf.shape:
        raise ValueError(f"the models disagree on the output shape: {tuple(la.shape)} vs {tuple(lf.shape)}")
    scale = float(la.abs().max())
    max_dev = float((la - lf).abs().max()) / max(scale, 1e-30)
    mismatch: dict[str, int] = {}
    size: dict[str, int] = {}
    for name in sorted(set(sa) | set(sf)):
        s1, s2 = sa.get(name), sf.get(name)
        size[name] = int(s1.numel()) if s1 is not None else int(s2.numel())  # type: ignore[union-attr]
        if s1 is None or s2 is None or s1.shape != s2.shape:
            mismatch[name] = size[name]
        else:
            mismatch[name] = int((s1 != s2).sum())
    values: dict[str, list[float]] = {}
    values_ok = True
    for name, s in sf.items():
        vals = sorted(float(v) for v in torch.unique(s))
        values[name] = vals
        allowed = {0.0, 1.0} if kinds.get(name) == "binary" else {-1.0, 0.0, 1.0}
        values_ok &= set(vals) <= allowed

    a32, f32 = (copy.deepcopy(m).float().eval() for m in (model, folded))
    x32 = _cast(x, torch.float32)
    l1, s1_, _ = _run(a32, x32, seed)
    l2, s2_, _ = _run(f32, x32, seed)
    s1_, s2_ = _renamed(model, s1_), _renamed(folded, s2_)
    equal = total = 0
    for name in set(s1_) | set(s2_):
        u, v = s1_.get(name), s2_.get(name)
        n = int(u.numel()) if u is not None else int(v.numel())  # type: ignore[union-attr]
        total += n
        if u is not None and v is not None and u.shape == v.shape:
            equal += int((u == v).sum())
    pred_agree = float((_predictions(l1) == _predictions(l2)).double().mean())
    layers = {k: LayerCheck(mismatch[k], size[k], tuple(values.get(k, ()))) for k in mismatch}
    return FoldReport(
        max_dev, logits_max_abs=scale, spikes_equal=not any(mismatch.values()), layers=layers,
        spike_values_ok=values_ok, float32_spike_agreement=equal / total if total else 1.0,
        float32_prediction_agreement=pred_agree)
