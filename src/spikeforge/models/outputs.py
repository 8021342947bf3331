"""The explicit output of a model asked for more than its logits.

``model(x)`` returns per-step logits ``[T, B, K]`` (the registry contract). A model with auxiliary outputs also
accepts ``model(x, aux=True)`` and then returns a :class:`ModelOutput`: the same logits plus named auxiliary
values of *that* call (so a loss never fetches them from the model afterwards). Keys used by the zoo:

* ``"feature_transform"`` — Spiking PointNet's feature transform ``A[T, B, k, k]`` (the loss's orthogonality
  regulariser reads it; arXiv:2310.06232, ``docs/methods/pointnet_scheme.md``);
* ``"joint"`` — Joint A-SNN's :class:`~spikeforge.models.joint_asnn.JointOutputs` (both branches, all exits;
  arXiv:2305.02099, ``docs/methods/joint_asnn.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

__all__ = ["ModelOutput"]


@dataclass
class ModelOutput:
    """Per-step ``logits`` ``[T, B, K]`` and the auxiliary outputs ``aux`` of the same forward call."""

    logits: Tensor
    aux: dict[str, Any] = field(default_factory=dict)

    def need(self, key: str, who: str) -> Any:
        """``aux[key]``, or a clear error naming ``who`` needed it and what the model returned."""
        if key not in self.aux:
            raise KeyError(f"{who} needs the auxiliary output {key!r}; the model returned {sorted(self.aux)}")
        return self.aux[key]
