"""The neuron entry points: :func:`multistep` (a sequence), :func:`fused_multistep`, :func:`single_step`.

They normalise the arguments into a :class:`~spikeforge.functional.kernels.NeuronCall` and run it on the backend
chosen by :func:`~spikeforge.functional.kernels.select_backend` (see :mod:`spikeforge.functional.kernels`).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from . import kernels
from .mpr import mpr
from .neuron import NeuronSpec, NeuronState
from .norm import MembraneNorm

__all__ = ["fused_multistep", "multistep", "single_step"]


def multistep(
    x: Tensor,
    spec: NeuronSpec,
    *,
    decay: Tensor | float,
    threshold: Tensor | float,
    v0: Tensor | None = None,
    pre_fire: Callable[[Tensor, int], Tensor] | None = None,
    return_fire_input: bool = False,
    backend: str = "auto",
    threshold_low: Tensor | float | None = None,
    norm: MembraneNorm | None = None,
) -> tuple[Tensor, NeuronState, Tensor | None]:
    """Run a neuron over ``x[T, B, ...]`` (math: :mod:`spikeforge.functional.neuron`).

    ``backend`` is ``"auto"``, ``"reference"``, ``"fused"``, ``"cpp"`` or ``"triton"``; a named backend that
    cannot run the call raises with the reason. ``norm`` is MPBN's per-step BatchNorm (runs fused);
    ``pre_fire(h_t, t)`` an arbitrary per-step transform (reference only). ``return_fire_input`` returns the
    value compared with the threshold (``phi(h)`` under MPR/MPBN), differentiable.
    """
    call = kernels.make_call(x, spec, decay=decay, threshold=threshold, v0=v0, threshold_low=threshold_low,
                             norm=norm, pre_fire=pre_fire)
    s, state, third, name = kernels.run(call, backend)
    if not return_fire_input:
        return s, state, None
    if name != "reference" and norm is None and spec.pre_fire == "mpr":
        third = mpr(third)
    return s, state, third


def fused_multistep(
    x: Tensor,
    spec: NeuronSpec,
    *,
    decay: Tensor | float,
    threshold: Tensor | float,
    v0: Tensor | None = None,
    backend: str = "auto",
) -> tuple[Tensor, NeuronState, Tensor]:
    """A kernel backend's loop: ``(spikes, final_state, h)`` with ``h[T, ...]`` the pre-spike membrane (before
    any MPR), differentiable and free (the backward keeps it anyway). ``"auto"`` picks the fastest kernel backend
    that runs the call (Triton, C++, else the PyTorch fused loop)."""
    call = kernels.make_call(x, spec, decay=decay, threshold=threshold, v0=v0)
    if backend == "auto":
        order = ("triton", "fused") if x.device.type == "cuda" else ("cpp", "fused")
        backend = next(n for n in order if kernels.get_backend(n).supports(call) is None)
    if backend == "reference":
        raise ValueError("fused_multistep runs a kernel backend ('fused', 'cpp', 'triton'), not 'reference'")
    s, state, h, _ = kernels.run(call, backend)
    return s, state, h


def single_step(
    x_t: Tensor,
    state: NeuronState | None,
    spec: NeuronSpec,
    *,
    decay: Tensor | float,
    threshold: Tensor | float,
    pre_fire: Callable[[Tensor, int], Tensor] | None = None,
    t: int = 0,
    threshold_low: Tensor | float | None = None,
    norm: MembraneNorm | None = None,
    backend: str = "auto",
) -> tuple[Tensor, NeuronState]:
    """One step ``x_t[B, ...]`` for streaming/online use: ``(s_t, new_state)``; ``state=None`` starts from rest.

    ``t`` is the step index seen by ``pre_fire(h, t)`` and by per-step MPBN statistics; per-step thresholds are
    passed already sliced to step ``t`` (:func:`~spikeforge.functional.neuron.step_slice`).
    """
    step_fn = None if pre_fire is None else (lambda h, _t: pre_fire(h, t))
    if norm is not None and norm.per_step:
        norm = _norm_at_step(norm, t)
    s, new_state, _ = multistep(x_t.unsqueeze(0), spec, decay=decay, threshold=threshold,
                                v0=None if state is None else state.v, pre_fire=step_fn, threshold_low=threshold_low,
                                norm=norm, backend=backend)
    return s[0], new_state


def _norm_at_step(norm: MembraneNorm, t: int) -> MembraneNorm:
    """Per-step statistics seen from a one-step call: row ``t`` becomes row 0 (a view: updates land in place)."""
    import dataclasses

    row = norm.row(t)
    return dataclasses.replace(norm, running_mean=norm.running_mean[row:row + 1],
                               running_var=norm.running_var[row:row + 1], per_step=False)
