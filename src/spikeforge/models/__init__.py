"""Model zoo: one file per architecture, registered by decorator."""

from .outputs import ModelOutput
from .registry import SpikingModel, create_model, list_models, model_entry, register_model

__all__ = ["ModelOutput", "SpikingModel", "create_model", "list_models", "model_entry", "register_model"]
