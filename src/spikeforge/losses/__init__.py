"""Training objectives: cross-entropy on the readout, TET, RMP-Loss, IM-Loss and the Joint A-SNN loss.

``build_objective(cfg)`` returns an :class:`Objective`; see :mod:`spikeforge.losses.base` for the interface the
trainer consumes and for how membranes are recorded and normalised.
"""

from .base import (
    READOUTS,
    Membranes,
    Objective,
    build_objective,
    collect_membranes,
    list_objectives,
    normalised_membrane,
    register_objective,
)
from .classification import CrossEntropyObjective, TETObjective, tet_loss
from .joint import JointASNNObjective, joint_asnn_loss, kd_soft_ce
from .membrane import (
    SCHEDULES,
    IMObjective,
    MembraneRegularisedObjective,
    RMPObjective,
    im_loss,
    rmp_layer_loss,
    rmp_loss,
    schedule_weight,
)

__all__ = [
    "READOUTS", "SCHEDULES", "CrossEntropyObjective", "IMObjective", "JointASNNObjective", "Membranes",
    "MembraneRegularisedObjective", "Objective", "RMPObjective", "TETObjective", "build_objective",
    "collect_membranes", "im_loss", "joint_asnn_loss", "kd_soft_ce", "list_objectives", "normalised_membrane",
    "register_objective", "rmp_layer_loss", "rmp_loss", "schedule_weight", "tet_loss",
]
