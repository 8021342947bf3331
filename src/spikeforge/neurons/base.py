"""The spiking neuron module: a thin wrapper over :mod:`spikeforge.functional.neuron`.

State is explicit: ``neuron(x)`` on a sequence ``x[T, B, ...]`` always starts from a fresh membrane (zero, or
the configured random initial membrane), so no state can leak from one batch into the next. Streaming users
carry the state themselves with :meth:`Neuron.step` / :meth:`Neuron.run`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..functional import (
    NeuronSpec,
    NeuronState,
    check_sequence,
    multistep,
    single_step,
    step_slice,
    surrogate,
    uniform_membrane,
)
from .amplitude import Amplitude
from .config import NeuronConfig, neuron_config
from .mpbn import MembraneBN

__all__ = ["Neuron", "input_validation_enabled", "observe", "spiking_neurons", "set_input_validation"]

Observer = Callable[["Neuron", Tensor, Tensor], None]
_VALIDATE = True


def set_input_validation(enabled: bool) -> None:
    """Turn the per-call input checks (rank, dtype, T >= 1, NaN/Inf) on or off globally (on by default)."""
    global _VALIDATE
    _VALIDATE = bool(enabled)


def input_validation_enabled() -> bool:
    """Whether neurons and models check their inputs (see :func:`set_input_validation`)."""
    return _VALIDATE


class Neuron(nn.Module):
    """A multi-step spiking neuron over ``[T, B, ...]``. See :class:`NeuronConfig` for every option.

    ``feature_shape`` is the per-sample shape ``(C, ...)`` of the input; it is required by channel- or
    element-wise amplitudes and MPBN. Output: spikes ``s`` (binary or ternary), times the amplitude if any.
    """

    # buffers/parameters registered in __init__ (declared here for type checkers)
    threshold: Tensor
    threshold_low: Tensor | None
    decay_const: Tensor
    mpbn: MembraneBN | None
    amplitude: Amplitude | None

    def __init__(self, config: NeuronConfig | dict[str, Any] | str | None = None,
                 feature_shape: tuple[int | None, ...] | None = None, **overrides: Any):
        super().__init__()
        cfg = neuron_config(config, **overrides)
        self.config = cfg
        self.feature_shape = None if feature_shape is None else tuple(None if v is None else int(v)
                                                                      for v in feature_shape)
        sp = cfg.surrogate_param
        self.spec = NeuronSpec(
            reset=cfg.reset,  # type: ignore[arg-type]
            v_reset=cfg.v_reset,
            soft_reset_amount=cfg.soft_reset_amount,
            spike=cfg.spike,  # type: ignore[arg-type]
            surrogate=surrogate(cfg.surrogate) if sp is None else _surrogate_with(cfg.surrogate, sp),
            pre_fire="mpr" if cfg.pre_fire == "mpr" else "none",
            detach_reset=cfg.detach_reset,
            decay_input=cfg.decay_input,
        )
        if cfg.learn_decay:
            # PLIF: decay = sigmoid(w), one learnable value per layer
            d = min(max(cfg.decay, 1e-4), 1 - 1e-4)
            self.decay_logit = nn.Parameter(torch.tensor(math.log(d / (1 - d))))
        else:
            self.register_buffer("decay_const", torch.tensor(float(cfg.decay)), persistent=False)
        thr = torch.tensor(float(cfg.threshold))
        if cfg.learn_threshold:
            self.threshold = nn.Parameter(thr)
        else:
            self.register_buffer("threshold", thr)
        # ternary only: a separate negative threshold (None = -threshold); set by folding MPBN
        self.register_buffer("threshold_low", None)
        self.threshold_per_step = False
        self.mpbn = None
        if cfg.pre_fire == "mpbn":
            if self.feature_shape is None:
                raise ValueError("an MPBN neuron needs feature_shape=(C, ...)")
            self.mpbn = MembraneBN(self.feature_shape, mode=cfg.mpbn, running=cfg.mpbn_running,
                                   max_steps=cfg.max_steps, momentum=cfg.mpbn_momentum, eps=cfg.mpbn_eps,
                                   min_scale=cfg.mpbn_min_scale)
        self.amplitude = None
        if cfg.amplitude is not None:
            self.amplitude = Amplitude(cfg.amplitude, self.feature_shape, cfg.amplitude_init)
        self._observers: list[Observer] = []

    # --- parameters seen by the kernel ----------------------------------------------------------------
    @property
    def decay(self) -> Tensor:
        if hasattr(self, "decay_logit"):
            return torch.sigmoid(self.decay_logit)
        return self.decay_const

    def threshold_for(self, T: int, thr: Tensor | None = None, t: int | None = None) -> Tensor:
        """The threshold (or ``threshold_low``) for a ``T``-step call, or for step ``t`` of a streaming call."""
        return step_slice(self.threshold if thr is None else thr, T, self.threshold_per_step, t)

    def _initial_membrane(self, x: Tensor) -> Tensor | None:
        cfg = self.config
        if cfg.init == "uniform" and (self.training or cfg.init_when == "always"):
            return uniform_membrane(x[0], cfg.init_range)
        return None

    # --- execution ------------------------------------------------------------------------------------
    def run(self, x: Tensor, state: NeuronState | None = None) -> tuple[Tensor, NeuronState]:
        """Process ``x[T, B, ...]`` from ``state`` (fresh if None); returns ``(output, final_state)``."""
        if _VALIDATE:
            check_sequence(x)
            self._check_features(x)
        v0 = state.v if state is not None else self._initial_membrane(x)
        want_fire_input = bool(self._observers)
        T = x.shape[0]
        low = self.threshold_low
        s, new_state, fire_input = multistep(
            x, self.spec, decay=self.decay, threshold=self.threshold_for(T), v0=v0,
            norm=None if self.mpbn is None else self.mpbn.norm(), return_fire_input=want_fire_input,
            backend=self.config.backend, threshold_low=None if low is None else self.threshold_for(T, low),
        )
        for fn in self._observers:
            fn(self, fire_input, s)  # type: ignore[arg-type]
        out = self.amplitude(s) if self.amplitude is not None else s
        return out, new_state

    def forward(self, x: Tensor, state: NeuronState | None = None) -> Tensor:
        return self.run(x, state)[0]

    def step(self, x_t: Tensor, state: NeuronState | None = None, t: int = 0) -> tuple[Tensor, NeuronState]:
        """One time step ``x_t[B, ...]`` for online use; ``t`` indexes per-step statistics/thresholds."""
        if state is None:
            init = self._initial_membrane(x_t.unsqueeze(0))
            state = None if init is None else NeuronState(init)
        low = self.threshold_low
        s, new_state = single_step(
            x_t, state, self.spec, decay=self.decay, threshold=self.threshold_for(1, t=t), t=t,
            threshold_low=None if low is None else self.threshold_for(1, low, t=t),
            norm=None if self.mpbn is None else self.mpbn.norm(), backend=self.config.backend,
        )
        out = self.amplitude(s) if self.amplitude is not None else s
        return out, new_state

    def _check_features(self, x: Tensor) -> None:
        fs = self.feature_shape
        if fs is not None and (self.mpbn is not None or self.amplitude is not None):
            got = tuple(x.shape[2:])
            if len(got) != len(fs) or any(f is not None and f != g for f, g in zip(fs, got)):
                raise ValueError(f"{type(self).__name__} was built for per-sample features {fs}, got input "
                                 f"{tuple(x.shape)} (features {got})")

    def extra_repr(self) -> str:
        c = self.config
        thr = self.threshold
        thr_s = f"{float(thr):.4g}" if thr.ndim == 0 else f"tensor{tuple(thr.shape)}"
        decay_s = "learned" if c.learn_decay else f"{c.decay:.4g}"
        if self.threshold_low is not None:
            thr_s += f", threshold_low=tensor{tuple(self.threshold_low.shape)}"
        parts = [f"spike={c.spike}", f"decay={decay_s}", f"threshold={thr_s}", f"reset={c.reset}",
                 f"surrogate={self.spec.surrogate.name}"]
        if self.spec.pre_fire == "mpr":
            parts.append("pre_fire=mpr")
        return ", ".join(parts)


def _surrogate_with(name: str, param: float):
    from ..functional.surrogate import _FAMILIES

    if name not in _FAMILIES:
        return surrogate(name)  # raises the helpful error
    return surrogate(name, **{_FAMILIES[name].param: param})


def spiking_neurons(model: nn.Module) -> Iterator[tuple[str, Neuron]]:
    """All spiking neurons of a model with their qualified names."""
    for name, m in model.named_modules():
        if isinstance(m, Neuron):
            yield name, m


@contextlib.contextmanager
def observe(model: nn.Module, fn: Observer) -> Iterator[None]:
    """Call ``fn(neuron, fire_input[T, ...], spikes[T, ...])`` after every neuron forward inside the block.

    ``fire_input`` is the value compared with the threshold (after MPR/MPBN), kept in the autograd graph, so
    a loss (RMP-Loss) can use it. Nothing is recorded, and nothing extra is kept, outside the block.
    """
    neurons = [m for _, m in spiking_neurons(model)]
    for m in neurons:
        m._observers.append(fn)
    try:
        yield
    finally:
        for m in neurons:
            if fn in m._observers:
                m._observers.remove(fn)
