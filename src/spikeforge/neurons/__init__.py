"""Spiking neuron modules (thin wrappers over :mod:`spikeforge.functional`)."""

from .amplitude import Amplitude
from .base import Neuron, NeuronInference, input_validation_enabled, observe, set_input_validation, spiking_neurons
from .config import PRESETS, NeuronConfig, neuron_config
from .mpbn import MembraneBN
from .presets import IF, LIF, MPBNLIF, PLIF, RealSpikeLIF, SoftResetMPRNeuron, TernaryLIF

__all__ = [
    "IF", "LIF", "MPBNLIF", "PLIF", "PRESETS", "Amplitude", "MembraneBN", "Neuron", "NeuronConfig", "NeuronInference",
    "RealSpikeLIF", "SoftResetMPRNeuron", "TernaryLIF", "input_validation_enabled", "neuron_config", "observe",
    "set_input_validation",
    "spiking_neurons",
]
