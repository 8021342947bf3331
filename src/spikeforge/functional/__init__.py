"""Pure neuron math: dynamics, surrogates, MPR and MPBN's membrane norm, and the neuron kernels. Knows no nn.Module."""

from .dispatch import fused_multistep, multistep, single_step
from .kernels import BACKENDS, NeuronCall, backend_support, get_backend, make_call, select_backend
from .mpr import mpr, mpr_grad, mpr_inverse
from .neuron import (
    NeuronSpec,
    NeuronState,
    NonFiniteError,
    check_sequence,
    reference_multistep,
    step_slice,
    uniform_membrane,
)
from .norm import MembraneNorm, membrane_norm
from .surrogate import Surrogate, list_surrogates, register_surrogate, surrogate

__all__ = [
    "BACKENDS", "MembraneNorm", "NeuronCall", "NeuronSpec", "NeuronState", "NonFiniteError", "Surrogate",
    "backend_support", "check_sequence", "fused_multistep", "get_backend", "list_surrogates", "make_call",
    "membrane_norm", "mpr", "mpr_grad", "mpr_inverse", "multistep", "reference_multistep", "register_surrogate",
    "select_backend", "single_step", "step_slice", "surrogate", "uniform_membrane",
]
