"""spikeforge — directly trained deep spiking neural networks that lose less information.

Time-first tensors ``[T, B, ...]``. ``create_model`` builds a registered network, ``fold`` turns a trained
network into plain binary/ternary spiking inference and ``verify_fold`` measures the difference.
"""

from __future__ import annotations

from typing import Any

from . import encode, folding, functional, layers, neurons
from .encode import readout
from .folding import FoldReport, fold, verify_fold
from .models import create_model, list_models, register_model
from .neurons import Neuron, NeuronConfig, neuron_config

__version__ = "0.1.0"

__all__ = [
    "FoldReport", "Neuron", "NeuronConfig", "__version__", "create_model", "encode", "fold", "folding", "functional",
    "layers", "list_models", "load_inference", "neuron_config", "neurons", "readout", "register_model",
    "verify_fold",
]


def load_inference(path: Any, map_location: Any = None) -> Any:
    """A saved inference artifact (``.sfnet``, see :mod:`spikeforge.interop`) as a runnable ``nn.Module``."""
    from .interop import load_inference as _load

    return _load(path, map_location)
