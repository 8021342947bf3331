"""Model zoo: one file per architecture, registered by decorator."""

from .registry import SpikingModel, create_model, list_models, model_entry, register_model

__all__ = ["SpikingModel", "create_model", "list_models", "model_entry", "register_model"]
