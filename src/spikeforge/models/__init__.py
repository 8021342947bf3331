"""Model zoo: one file per architecture, registered by decorator. NeuroCLIP's heads (arXiv:2306.12073,
``docs/methods/neuroclip.md``) are not registered classifiers; they are re-exported here for the protocol code."""

from .neuroclip import (
    FewShotHead,
    InterTimestepAdapter,
    ZeroShotHead,
    class_prompts,
    frame_cosines,
    prompt_template,
    zero_shot_logits,
)
from .outputs import ModelOutput
from .registry import SpikingModel, create_model, list_models, model_entry, register_model, to_ann

__all__ = [
    "FewShotHead", "InterTimestepAdapter", "ModelOutput", "SpikingModel", "ZeroShotHead", "class_prompts",
    "create_model", "frame_cosines", "list_models", "model_entry", "prompt_template", "register_model",
    "to_ann", "zero_shot_logits",
]
