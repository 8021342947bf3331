"""spikeforge — directly trained deep spiking neural networks that lose less information.

Time-first tensors ``[T, B, ...]``. ``create_model`` builds a registered network, ``fold`` turns a trained
network into plain binary/ternary spiking inference and ``verify_fold`` measures the difference.
"""

from __future__ import annotations

from typing import Any

from . import encode, functional, layers, neurons
from .encode import readout
from .models import create_model, list_models, register_model
from .neurons import Neuron, NeuronConfig, neuron_config

__version__ = "0.1.0"

__all__ = [
    "Neuron", "NeuronConfig", "__version__", "create_model", "encode", "fold", "functional", "layers",
    "list_models", "load_inference", "neuron_config", "neurons", "readout", "register_model", "verify_fold",
]


def fold(model: Any, **kwargs: Any) -> Any:
    """Training model -> inference model with plain spikes (see :mod:`spikeforge.fold`)."""
    from .fold import fold as _fold

    return _fold(model, **kwargs)


def verify_fold(model: Any, folded: Any, x: Any, **kwargs: Any) -> Any:
    """Max deviation between a model and its folded form on input ``x`` (see :mod:`spikeforge.fold`)."""
    from .fold import verify_fold as _verify

    return _verify(model, folded, x, **kwargs)


def load_inference(path: Any, map_location: Any = None) -> Any:
    """A saved inference artifact (``.sfnet``, see :mod:`spikeforge.interop`) as a runnable ``nn.Module``."""
    from .interop import load_inference as _load

    return _load(path, map_location)
