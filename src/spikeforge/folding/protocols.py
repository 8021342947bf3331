"""What a module can declare about its own fold, so that this package imports no architecture.

* :class:`FoldsItself` — ``module.fold_inference(scale, ctx) -> (folded_module, outgoing_scale)``: the module's
  fold rule written as a method. ``scale`` is the amplitude multiplying its input (None = none); ``ctx`` is the
  :class:`~spikeforge.folding.FoldContext`, whose methods (``child``, ``fold``, ``scope``, ``fold_sequence``,
  ``merge_affine``, ``check_max_commutes``, ``error``, ``error_unconsumed``, ``is_conv_like``, ``is_norm_like``,
  ``qualified``, ``name``) are all a model file needs — it does not import ``spikeforge.folding``. A registered
  :func:`~spikeforge.folding.fold_rule` and a ``fold_inference`` method compete by specificity: the first class
  in the module's MRO that has either wins. Used by Spiking PointNet (the network, its max-pool over points and its
  T-Net matrix head) and by Joint A-SNN (which folds into its SNN export).
* :class:`RenamesNeurons` — a network rebuilt under other module names (Joint A-SNN's SNN export) carries
  ``source_neuron_names: Mapping[str, str]``, *qualified neuron name in this network -> qualified name of the
  neuron it copies in the source model*; :func:`~spikeforge.folding.verify_fold` uses it to compare every neuron
  with the one it copies. Names missing from the mapping are compared under their own name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from torch import nn

if TYPE_CHECKING:  # typing only
    from .registry import FoldContext, Scale

__all__ = ["FoldsItself", "RenamesNeurons", "source_names"]


@runtime_checkable
class FoldsItself(Protocol):
    """A module whose fold rule is its own method (see the module docstring)."""

    def fold_inference(self, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]: ...


@runtime_checkable
class RenamesNeurons(Protocol):
    """A network that maps its neuron names to those of the model it was rebuilt from."""

    source_neuron_names: Mapping[str, str]


def source_names(model: nn.Module) -> Mapping[str, str]:
    """``model.source_neuron_names`` for a :class:`RenamesNeurons` network, else an empty mapping; a clear error for
    a malformed mapping."""
    if not isinstance(model, RenamesNeurons):
        return {}
    names = model.source_neuron_names
    if not isinstance(names, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in names.items()):
        raise TypeError(f"{type(model).__name__}.source_neuron_names must map str -> str (neuron name in this network "
                        f"-> name in the source model), got {type(names).__name__}")
    return names
