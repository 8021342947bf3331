"""The fold machinery: :class:`Scale`, :class:`FoldError`, the rule registry and the traversal context.

A rule folds one module given the amplitude ``scale`` multiplying its input and returns the folded module and the
amplitude multiplying its output (see the package docstring for the contract).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import torch
from torch import Tensor, nn

__all__ = ["FoldError", "PendingPool", "Scale", "FoldContext", "Rule", "fold_rule", "find_rule", "registered_rules"]


class FoldError(ValueError):
    """A model (or a combination of options) that has no exact plain-spiking inference form."""


@dataclass(frozen=True)
class PendingPool:
    """An average pool of an element-wise-scaled tensor that the fold moved into the pool's consumers.

    The folded model carries the unpooled spikes ``z[C, H, W]``; the consumer's true input is
    ``q[c, i, j] = Σ_{u, v} weight[c, u, v, i, j] · z[c, s_h·i + u − p_h, s_w·j + v − p_w]`` (the amplitude, the
    pool's ``1/divisor`` and zeros for positions outside the map are in ``weight[C, kh, kw, Ho, Wo]``).
    ``name`` is the pool's qualified name (for error messages).
    """

    weight: Tensor
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    name: str


@dataclass(frozen=True)
class Scale:
    """The amplitude ``a`` of a tensor on its way to its consumers: the tensor is ``a ⊙ x̂`` and the folded model
    carries ``x̂`` (plain spikes, or a linear function of them).

    ``value`` is detached and broadcasts against one sample: ``()`` for ``layer``, ``(C, 1, …)`` for ``channel``,
    the per-sample shape (``(C, H, W)`` or ``(F,)``) for ``element``. ``source`` is the qualified name of the neuron
    whose amplitude it is (for error messages). ``flat`` marks a tensor whose per-sample dims were flattened into
    features after the neuron (a channel scale then repeats over the spatial positions of its channel).

    ``terms = k > 1``: the true tensor is a sum of ``k`` spike tensors with different amplitudes (a SEW block's
    output); the folded model carries them concatenated along channels (``k·C`` channels, term-major) and
    ``value`` holds the ``k`` amplitudes concatenated the same way. A consumer reading ``C`` channels (or ``F``
    features) absorbs it by tiling its weights ``k`` times along the input and scaling each slice by its term's
    amplitude. ``pool``: an average pool of an element-wise amplitude still to be applied (see :class:`PendingPool`).
    """

    value: Tensor
    granularity: str
    source: str
    flat: bool = False
    terms: int = 1
    pool: PendingPool | None = None

    def __post_init__(self) -> None:
        if self.granularity not in ("layer", "channel", "element"):
            raise ValueError(f"scale granularity must be 'layer', 'channel' or 'element', got {self.granularity!r}")

    def positive(self) -> bool:
        return bool((self.value > 0).all())

    def flattened(self) -> Scale:
        if self.granularity == "element":
            return replace(self, value=self.value.reshape(-1), flat=True)
        return replace(self, flat=True)

    def vector(self, n: int, consumer: str) -> Tensor:
        """The amplitude per index of dim 2 of ``[T, B, n, …]`` (input channels of a conv, features of a linear).

        Element-wise amplitudes over a spatial map have no such vector (they need an unshared conv). With
        ``terms = k``, ``n`` counts the concatenated terms (``k`` times the consumer's own input size).
        """
        if self.pool is not None:
            raise FoldError(f"the {self.describe()} reaches {consumer}, which needs one amplitude per channel/feature")
        v = self.value.detach()
        if self.granularity == "layer":
            return v.reshape(()).expand(n).clone()
        if self.granularity == "channel":
            flat_v = v.reshape(-1)
            if not self.flat:
                if flat_v.numel() != n:
                    raise FoldError(f"the channel-wise amplitude of {self.source} has {flat_v.numel()} channels, "
                                    f"its consumer {consumer} reads {n}")
                return flat_v.clone()
            if n % flat_v.numel():
                raise FoldError(f"the flattened channel-wise amplitude of {self.source} ({flat_v.numel()} channels) "
                                f"does not divide the {n} input features of {consumer}")
            return flat_v.repeat_interleave(n // flat_v.numel())
        if v.ndim > 1:
            raise FoldError(f"the element-wise amplitude of {self.source} (shape {tuple(v.shape)}) reaches "
                            f"{consumer}, which needs one amplitude per channel/feature; only a 2-D conv (unshared "
                            "fold) or a linear layer after a flatten can absorb it")
        if v.numel() != n:
            raise FoldError(f"the element-wise amplitude of {self.source} has {v.numel()} entries, its consumer "
                            f"{consumer} reads {n}")
        return v.reshape(-1).clone()

    def describe(self) -> str:
        """E.g. ``channel-wise amplitude of layer1.0.sn2`` (with the terms / pending pool, if any)."""
        what = f"{self.granularity}-wise amplitude of {self.source}"
        if self.terms > 1:
            what += f" (a sum of {self.terms} spike tensors with different amplitudes)"
        if self.pool is not None:
            what += f" (average-pooled by {self.pool.name})"
        return what

    def check_plain(self, consumer: str, what: str = "") -> None:
        """Raise :class:`FoldError` if this is a sum of terms or carries a pending pool: ``consumer`` (e.g. a
        neuron or a max pool) needs the tensor as one amplitude times plain spikes."""
        if self.terms > 1 or self.pool is not None:
            raise FoldError(f"the {self.describe()} reaches {consumer}{' (' + what + ')' if what else ''}, which "
                            "cannot read it: only conv/linear consumers (and channel-wise pooling, flatten, "
                            "dropout, identity, SEW sums) fold a sum of spike tensors or a pooled element-wise "
                            "amplitude")

    def sample_tensor(self, feature_shape: tuple[int | None, ...] | None, consumer: str) -> Tensor:
        """The amplitude shaped to broadcast against one sample of ``consumer``'s input (a neuron's feature map)."""
        self.check_plain(consumer)
        if self.granularity == "layer":
            return self.value.detach().reshape(())
        if not self.flat:
            return self.value.detach()
        if feature_shape is None or len(feature_shape) != 1 or feature_shape[0] is None:
            raise FoldError(f"the flattened amplitude of {self.source} reaches {consumer}, whose feature shape "
                            f"{feature_shape} is not a known feature vector (F,)")
        return self.vector(int(feature_shape[0]), consumer)

    def same_as(self, other: Scale | None) -> bool:
        return (other is not None and self.flat == other.flat and self.terms == other.terms
                and self.pool is None and other.pool is None and self.value.shape == other.value.shape
                and bool(torch.equal(self.value, other.value.to(self.value))))


class FoldContext:
    """Carries the qualified name of the module being folded and dispatches to the rules."""

    def __init__(self) -> None:
        self.name = ""
        self.unfused_norms: list[str] = []

    def qualified(self, attr: str) -> str:
        return f"{self.name}.{attr}" if self.name else attr

    def fold(self, module: nn.Module, scale: Scale | None, name: str) -> tuple[nn.Module, Scale | None]:
        """Fold ``module`` (qualified name ``name``) whose input carries ``scale``."""
        saved = self.name
        self.name = name
        try:
            rule = find_rule(module)
            if rule is not None:
                return rule(module, scale, self)
            return self._fold_unregistered(module, scale)
        finally:
            self.name = saved

    def child(self, parent: nn.Module, attr: str, scale: Scale | None) -> Scale | None:
        """Fold ``parent.<attr>`` in place (the folded module replaces it) and return its outgoing scale."""
        module = getattr(parent, attr)
        new, out = self.fold(module, scale, self.qualified(attr))
        if new is not module:
            setattr(parent, attr, new)
        return out

    def error_unconsumed(self, scale: Scale, what: str = "") -> FoldError:
        where = self.name or "the model"
        return FoldError(f"the amplitude of {scale.source} ({scale.granularity}-wise) reaches {where}"
                         f"{' (' + what + ')' if what else ''}, which no fold rule can absorb it into; keep that "
                         "layer's input free of amplitudes or register a rule (see spikeforge.fold)")

    def _fold_unregistered(self, module: nn.Module, scale: Scale | None) -> tuple[nn.Module, Scale | None]:
        kind = type(module).__name__
        if scale is not None:
            raise self.error_unconsumed(scale, kind)
        for attr in list(module._modules):
            if module._modules[attr] is None:
                continue
            out = self.child(module, attr, None)
            if out is not None:
                raise FoldError(
                    f"{self.name or 'the model'} ({kind}) has a custom forward, so the fold cannot tell which "
                    f"layers consume the amplitude of {out.source}; register a rule for {kind} with "
                    "@spikeforge.fold.fold_rule in a module spikeforge/fold/rules_<name>.py")
        return module, None


Rule = Callable[[nn.Module, "Scale | None", FoldContext], "tuple[nn.Module, Scale | None]"]
_RULES: dict[type, Rule] = {}
# A rule's first parameter is its own module class (a subclass of nn.Module), which Rule's nn.Module parameter
# does not accept (parameters are contravariant); the decorator therefore only fixes the return type.
R = TypeVar("R", bound=Callable[..., "tuple[nn.Module, Scale | None]"])


def fold_rule(*types: type) -> Callable[[R], R]:
    """Register ``fn(module, scale, ctx) -> (folded_module, out_scale)`` for modules of the given types.

    The most specific registered class in the module's MRO wins, so subclasses can override a parent's rule.
    """
    if not types:
        raise ValueError("fold_rule needs at least one module type")

    def wrap(fn: R) -> R:
        for t in types:
            if t in _RULES and _RULES[t] is not fn:
                raise ValueError(f"a fold rule for {t.__name__} is already registered ({_RULES[t].__module__})")
            _RULES[t] = fn
        return fn

    return wrap


def find_rule(module: nn.Module) -> Rule | None:
    for cls in type(module).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None


def registered_rules() -> dict[str, str]:
    """``{type name: rule function name}`` of every registered rule (for documentation and debugging)."""
    return {t.__qualname__: f"{fn.__module__}.{fn.__name__}" for t, fn in _RULES.items()}
