"""Fold rule of the Joint A-SNN dual-mode network (arXiv:2305.02099): inference runs the SNN branch only.

The model folds to its SNN export (:meth:`~spikeforge.models.joint_asnn.JointASNN.export_snn`: materialised
``W_snn = U diag(σ_snn) V``, the SNN BNs and linear weights, no ANN parameters, no exits), which is then folded
like any plain spiking ResNet. The export carries ``source_neuron_names`` so that :func:`verify_fold` compares
each of its neurons with the one it copies.
"""

from __future__ import annotations

from torch import nn

from ..models.joint_asnn import JointASNN
from .registry import FoldContext, FoldError, Scale, fold_rule

__all__: list[str] = []


@fold_rule(JointASNN)
def _joint_asnn(model: JointASNN, scale: Scale | None, ctx: FoldContext) -> tuple[nn.Module, Scale | None]:
    if scale is not None:
        raise ctx.error_unconsumed(scale, "JointASNN")
    if ctx.name:
        raise FoldError(f"{ctx.name}: a JointASNN nested in another module cannot be replaced by its SNN export; "
                        "fold the JointASNN itself")
    exported = model.export_snn().eval()
    return ctx.fold(exported, None, ctx.name)
