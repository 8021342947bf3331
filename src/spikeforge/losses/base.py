"""The training-objective interface consumed by the trainer, the membrane collector, and ``build_objective``.

An :class:`Objective` turns a model and a time-first batch ``x[T, B, ...]`` into a scalar loss:

.. code-block:: python

    objective = build_objective({"name": "rmp", "weight": 0.1, "schedule": "cosine"})
    with objective.observe(model) as membranes:          # records only if objective.needs_membranes
        outputs = objective.forward(model, x)
    loss, parts = objective.loss(outputs, y, membranes=membranes, progress=epoch / epochs)
    logits = objective.logits(outputs)                   # [T, B, K] per-step logits for accuracy
    prediction = readout(logits, objective.readout).argmax(-1)

``Objective.step`` does exactly these lines. ``progress`` is the fraction of training done, in [0, 1]
(e.g. ``epoch / epochs`` or ``iteration / iterations``); schedules of regularisers are functions of it.

**Recorded membranes.** :func:`collect_membranes` records, for every spiking neuron call inside the block,
``(qualified_name, m)`` where ``m`` is the *threshold-normalised* pre-fire membrane (the neuron's
``fire_input``, i.e. the value compared with the threshold, after MPR/MPBN):

* binary spikes: ``m = r / (2·V_th)`` — the spike levels 0 and 1 of the membrane space (0 and 2·V_th) map to 0
  and 1, and the firing threshold V_th maps to 0.5, so "nearest level" and "fires" agree;
* ternary spikes (levels −1, 0, 1 at −2·V_th, 0, 2·V_th): ``m = |r| / (2·V_th)``. The level set is symmetric,
  so the distance of ``r/(2V_th)`` to the nearest of {−1, 0, 1} equals the distance of ``|r|/(2V_th)`` to the
  nearest of {0, 1}; losses therefore only ever see levels {0, 1}.

``V_th`` is the neuron's threshold buffer as used by the kernel: a scalar, a per-channel/per-element tensor
(e.g. a folded MPBN threshold) broadcasting against ``r[t]``, or per-step thresholds (``threshold_per_step``).
Spike amplitudes (Real/Ternary Spike) scale the *output* only and do not enter the normalisation. A learnable
threshold enters detached (the losses regularise membranes, not thresholds).
Nothing is recorded — and no tensor is kept — outside the ``with`` block or when the objective does not need
membranes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..encode import readout as _readout
from ..neurons import Neuron, observe, spiking_neurons

__all__ = [
    "Objective", "Membranes", "collect_membranes", "normalised_membrane", "build_objective",
    "register_objective", "list_objectives", "READOUTS",
]

Membranes = list[tuple[str, Tensor]]
READOUTS = ("mean", "sum", "log_softmax_mean")


def normalised_membrane(neuron: Neuron, fire_input: Tensor) -> Tensor:
    """Threshold-normalised pre-fire membrane of one neuron call (see the module docstring).

    ``fire_input[T, B, ...]`` -> ``r / (2 V_th)`` (binary) or ``|r| / (2 V_th)`` (ternary), same shape.
    """
    thr = neuron.threshold_for(fire_input.shape[0])
    # detached: the regularisers act on membranes, a learnable threshold is not pulled by them
    thr = thr.detach().to(dtype=fire_input.dtype)
    r = fire_input.abs() if neuron.spec.spike == "ternary" else fire_input
    return r / (2.0 * thr)


@contextlib.contextmanager
def collect_membranes(model: nn.Module, record: Callable[[Neuron, Tensor, Tensor], Tensor] | None = None
                      ) -> Iterator[Membranes]:
    """Record ``(name, normalised membrane)`` for every spiking-neuron call of ``model`` inside the block.

    ``record(neuron, fire_input, spikes)`` may replace what is stored (default :func:`normalised_membrane`).
    The tensors stay in the autograd graph, so a loss on them back-propagates into the network.
    """
    names = {id(m): name for name, m in spiking_neurons(model)}
    if not names:
        raise ValueError(f"{type(model).__name__} has no spiking neurons (spikeforge.neurons.Neuron) whose "
                         "membranes could be collected")
    out: Membranes = []

    def hook(neuron: Neuron, fire_input: Tensor, spikes: Tensor) -> None:
        value = normalised_membrane(neuron, fire_input) if record is None else record(neuron, fire_input, spikes)
        out.append((names.get(id(neuron), type(neuron).__name__), value))

    with observe(model, hook):
        yield out


def check_readout(readout: str) -> str:
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {list(READOUTS[:2])} (over logits) or 'log_softmax_mean' (mean "
                         f"of per-step log-probabilities, Spiking PointNet), got {readout!r}")
    return readout


def check_logits(logits: Any, what: str = "model output") -> Tensor:
    """Per-step logits must be a tensor ``[T, B, K]``."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"{what} must be per-step logits [T, B, K] (a Tensor), got {type(logits).__name__}")
    if logits.ndim != 3:
        raise ValueError(f"{what} must be per-step logits [T, B, K], got shape {tuple(logits.shape)}")
    return logits


def check_progress(progress: float) -> float:
    p = float(progress)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"progress must lie in [0, 1] (fraction of training done), got {progress}")
    return p


class Objective:
    """Base training objective. Subclasses override :meth:`loss` (and :meth:`forward` / :meth:`logits` when the
    model's output is not plain per-step logits).

    ``needs_membranes``: the trainer must run :meth:`forward` inside :meth:`observe` and pass the recorded list
    to :meth:`loss`. ``readout``: how per-step logits collapse over T for accuracy (``mean``, ``sum`` or
    ``log_softmax_mean``, see :func:`spikeforge.encode.readout`).
    """

    name: str = "objective"
    needs_membranes: bool = False
    readout: str = "mean"

    def forward(self, model: nn.Module, x: Tensor) -> Any:
        """Run the model on ``x[T, B, ...]``; returns what :meth:`loss` consumes (default: ``model(x)``)."""
        return model(x)

    def loss(self, outputs: Any, target: Tensor, *, membranes: Membranes | None = None,
             progress: float = 0.0) -> tuple[Tensor, dict[str, float]]:
        """Total loss and its named parts (floats, for logging)."""
        raise NotImplementedError

    def logits(self, outputs: Any) -> Tensor:
        """Per-step logits ``[T, B, K]`` used for accuracy."""
        return check_logits(outputs)

    def predict(self, outputs: Any) -> Tensor:
        """Class predictions ``[B]``: argmax of the readout of :meth:`logits`."""
        return _readout(self.logits(outputs), self.readout).argmax(-1)

    @contextlib.contextmanager
    def observe(self, model: nn.Module) -> Iterator[Membranes | None]:
        """Collect membranes while the block runs if this objective needs them; yields ``None`` otherwise."""
        if not self.needs_membranes:
            yield None
            return
        with collect_membranes(model) as recorded:
            yield recorded

    def step(self, model: nn.Module, x: Tensor, target: Tensor, progress: float = 0.0
             ) -> tuple[Tensor, dict[str, float], Any]:
        """forward + loss in one call: ``(loss, parts, outputs)``."""
        with self.observe(model) as membranes:
            outputs = self.forward(model, x)
        total, parts = self.loss(outputs, target, membranes=membranes, progress=progress)
        return total, parts, outputs

    def config(self) -> dict[str, Any]:
        """The options this objective was built with (``build_objective(obj.config())`` rebuilds it)."""
        return {"name": self.name}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({opts})"


# --- registry -------------------------------------------------------------------------------------------

_OBJECTIVES: dict[str, Callable[..., Objective]] = {}


def register_objective(name: str) -> Callable[[Callable[..., Objective]], Callable[..., Objective]]:
    def wrap(factory: Callable[..., Objective]) -> Callable[..., Objective]:
        if name in _OBJECTIVES:
            raise ValueError(f"objective {name!r} is already registered")
        _OBJECTIVES[name] = factory
        return factory

    return wrap


def list_objectives() -> list[str]:
    _import_all()
    return sorted(_OBJECTIVES)


def build_objective(cfg: dict[str, Any] | str | Objective | None = None, **overrides: Any) -> Objective:
    """``build_objective("tet")`` or ``build_objective({"name": "rmp", "weight": 0.1, "schedule": "linear"})``.

    ``None`` means plain cross-entropy. Unknown names or options raise an error listing the valid ones.
    """
    if isinstance(cfg, Objective):
        if overrides:
            raise ValueError("cannot apply option overrides to an already built Objective")
        return cfg
    _import_all()
    if cfg is None:
        cfg = "ce"
    if isinstance(cfg, str):
        cfg = {"name": cfg}
    if not isinstance(cfg, dict):
        raise TypeError(f"objective config must be a name, a dict or an Objective, got {type(cfg).__name__}")
    opts = {**cfg, **overrides}
    name = opts.pop("name", None)
    if name is None:
        raise ValueError(f"objective config needs a 'name'; choose one of {sorted(_OBJECTIVES)}")
    if name not in _OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(_OBJECTIVES)}")
    return _OBJECTIVES[name](**opts)


def reject_unknown(name: str, opts: dict[str, Any], valid: set[str] | list[str]) -> None:
    unknown = sorted(set(opts) - set(valid))
    if unknown:
        raise ValueError(f"objective {name!r} has no option(s) {unknown}; valid options: {sorted(valid)}")


def _import_all() -> None:
    from . import classification, joint, membrane  # noqa: F401  (register the objectives)


def mean_over(values: list[Tensor], like: Tensor | None = None) -> Tensor:
    """Mean of a list of scalar tensors (0 on the right device/dtype for an empty list)."""
    if values:
        return torch.stack(values).mean()
    if like is None:
        return torch.zeros(())
    return like.new_zeros(())
