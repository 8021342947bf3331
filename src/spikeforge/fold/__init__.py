"""Fold a trained network into plain binary/ternary spiking inference (training–inference decoupling).

``fold(model)`` returns a deep copy in eval mode in which every training-only part has moved into ordinary
weights, biases and thresholds; ``verify_fold(model, folded, x)`` measures how exactly it reproduces the model.

Rules (each exact in exact arithmetic; formulas in the modules named):

* conv/linear → time-shared BN (``BatchNorm1d/2d``, tdBN with ``γ·α·V_th``): ``W' = W·γ/σ``,
  ``b' = (b − μ)·γ/σ + β``, ``σ = sqrt(σ²_run + ε)`` (:mod:`.linear`). BNTT / TEBN → :class:`StepAffine`
  ``y_t = w_t ⊙ x_t + b_t`` (one per-channel affine per step). A BN with no conv before it → time-shared
  :class:`StepAffine`.
* MPBN (arXiv:2308.08359) → threshold ``Ṽ = (V_th − β)·sqrt(σ² + ε)/λ + μ`` per channel/element, per step with
  per-step running statistics (``threshold_per_step=True``). ``λ ≤ 0`` raises :class:`FoldError` naming the layer
  and channels (methods.md §10.2: the library keeps ``λ ≥ mpbn_min_scale`` in training by default).
* MPR (arXiv:2307.04356) → threshold ``φ⁻¹(V_th)`` (exact; ``= V_th`` at 0.5), ``pre_fire='none'``.
* Amplitudes (Ternary Spike arXiv:2312.06372, Real Spike arXiv:2210.06686) → every consumer of the spike tensor:
  conv/linear weights (input-channel slice or whole tensor), an :class:`~spikeforge.layers.unshared.UnsharedConv2d`
  for element-wise amplitudes; through avg pooling (layer/channel; element-wise: the pool moves into its consumer,
  :mod:`.linear`), max pooling (positive layer/channel), per-sample flatten, dropout, identity; into a neuron that
  reads them directly (threshold ``/ a``, ``a > 0``). Residual blocks: see :mod:`.rules_blocks` (identity shortcut
  of the standard block: ``1/a`` into conv2/bn2 and sn2's threshold ``/ a``; SEW sums of different amplitudes:
  addends concatenated, one weight slice per addend in every consumer; MS).
* Train-only perturbations: a uniform initial membrane with ``init_when='train'`` becomes ``'zero'``
  (``'always'`` is inference semantics and stays).

Extending the fold (rule API). A rule is a function registered for a module type::

    from spikeforge.fold import FoldContext, Scale, fold_rule, fold_conv_norm, fold_sequence

    @fold_rule(MyBlock)
    def fold_my_block(block: MyBlock, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
        s = fold_conv_norm(block, "conv", "bn", scale, ctx)   # conv absorbs `scale`, the BN merges into it
        s = ctx.child(block, "act", s)                         # fold a child in place, get its outgoing amplitude
        return block, s                                         # the (folded) module and its output's amplitude

* ``scale`` is the amplitude multiplying the module's input (``None`` = none); a rule must absorb it or pass it
  on as the outgoing scale, and raise :class:`FoldError` (naming ``scale.source`` and ``ctx.name``) otherwise.
* ``ctx.child(parent, attr, scale)`` folds ``parent.<attr>`` in place and returns its outgoing scale;
  ``ctx.fold(module, scale, name)`` folds a detached module; ``fold_sequence(parent, attrs, scale, ctx)`` folds a
  chain of children; ``fold_conv_norm`` merges a conv→BN pair; ``scale_branch_output`` / :func:`scale_output`
  multiply a folded layer's output; ``scale_input`` absorbs an amplitude into a layer.
* Keep module names: replace a merged BN by ``nn.Identity()`` (``fold_conv_norm`` does), never delete children,
  so ``verify_fold`` can match neurons by qualified name.
* Put the rule in ``spikeforge/fold/rules_<name>.py``: every such module is imported with this package.
  The most specific registered class in a module's MRO wins. Modules without a rule: a leaf passes through (an
  incoming amplitude is an error); a container's children are folded independently (an amplitude leaving one
  is an error, since its forward is unknown).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import types
from typing import Any

from .api import fold, leftovers
from .linear import StepAffine, merge_affine, norm_to_affine, scale_input, scale_output
from .registry import FoldContext, FoldError, Scale, find_rule, fold_rule, registered_rules
from .rules_blocks import scale_branch_output
from .rules_core import fold_conv_norm, fold_sequence, mpbn_threshold
from .verify import FoldReport, verify_fold

__all__ = [
    "FoldContext", "FoldError", "FoldReport", "Scale", "StepAffine", "find_rule", "fold", "fold_conv_norm",
    "fold_rule", "fold_sequence", "leftovers", "merge_affine", "mpbn_threshold", "norm_to_affine",
    "registered_rules", "scale_branch_output", "scale_input", "scale_output", "verify_fold",
]


def _import_rules() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("rules_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_rules()


class _CallableModule(types.ModuleType):
    """Importing this package replaces the function ``spikeforge.fold`` by the module ``spikeforge.fold`` (Python
    binds a subpackage to its parent's attribute); making the module callable keeps ``spikeforge.fold(model)``
    and ``from spikeforge import fold; fold(model)`` working either way."""

    def __call__(self, model: Any, **kwargs: Any) -> Any:
        return fold(model, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
