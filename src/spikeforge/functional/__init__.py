"""Pure neuron math: dynamics, surrogates and the MPR rectifier. Knows no nn.Module."""

from .mpr import mpr, mpr_grad, mpr_inverse
from .neuron import (
    NeuronSpec,
    NeuronState,
    NonFiniteError,
    check_sequence,
    fused_multistep,
    multistep,
    reference_multistep,
    single_step,
    uniform_membrane,
)
from .surrogate import Surrogate, list_surrogates, register_surrogate, surrogate

__all__ = [
    "NeuronSpec", "NeuronState", "NonFiniteError", "Surrogate", "check_sequence", "fused_multistep",
    "list_surrogates", "mpr",
    "mpr_grad", "mpr_inverse", "multistep", "reference_multistep", "register_surrogate", "single_step",
    "surrogate", "uniform_membrane",
]
