"""NeuroCLIP heads on frozen per-frame CLIP features (arXiv:2306.12073; docs/methods/neuroclip.md).

An event recording is cut into T frames, each frame is rendered as a grey image and encoded by a frozen CLIP
image encoder, giving features ``f[T, B, D]`` (time first). This module holds the trainable/comparable parts;
the CLIP encoder lives in :mod:`spikeforge.interop.clip` and the protocol (caching, splits, K-shot sampling,
weight search, training) in :mod:`spikeforge.train.neuroclip`.

* :class:`ZeroShotHead` / :func:`zero_shot_logits`: per-frame L2-normalised image features (optionally weighted
  by ``w_t``) concatenated over t, matched against the class text feature repeated T times and L2-normalised::

      logits[b, c] = s * < concat_t(w_t f_t / |f_t|), concat_t(e_c) / |concat_t(e_c)| >
                   = s / sqrt(T) * sum_t w_t cos(f_t, e_c)

  with ``s = exp(logit_scale)`` of the CLIP model, i.e. the sum over time of per-frame cosine similarities.
* :class:`InterTimestepAdapter`: the few-shot adapter; per frame
  ``g_t = Dropout(LIF(BN(Linear_{D->D/8}(Dropout(BN(f_t))))))``, ``h_t = ReLU(Linear_{D/8->D}(g_t))``,
  ``f'_t = r h_t + (1 - r) f_t`` (r = 0.6, dropout 0.5). The LIF membrane (decay 0.25, threshold 0.5, hard reset,
  rectangular surrogate of width 1) runs over the T frames as its time axis, so it is the only path carrying
  information between frames. ``activation="relu"`` is the paper's ANN-adapter baseline (no state).
* :class:`FewShotHead`: the adapter followed by the match of the L2-normalised concatenation ``concat_t f'_t``
  against the repeated text features.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..neurons import Neuron, NeuronConfig, neuron_config

__all__ = [
    "PROMPT_TEMPLATES", "GENERIC_TEMPLATE", "prompt_template", "class_prompts", "frame_cosines", "text_matrix",
    "zero_shot_logits", "sum_of_cosines", "ZeroShotHead", "InterTimestepAdapter", "FewShotHead", "adapter_neuron",
]

#: Prompt templates of the official code (yfguo91/NeuroCLIP), per dataset; ``{}`` is the class name.
PROMPT_TEMPLATES: dict[str, str] = {
    "nmnist": 'A black and white photo of the Arabic numeral number: "{}".',
    "cifar10-dvs": "A low quality stick figure of the object {}.",
    "es-imagenet": "A low quality point cloud image of {}.",
}
#: spikeforge's choice for datasets the paper does not use (not from the paper).
GENERIC_TEMPLATE = "A black and white photo of a {}."
_TEMPLATE_OF = {"nmnist-sim": "nmnist"}  # simulated N-MNIST-style digits use the N-MNIST template


def prompt_template(dataset: str) -> str:
    """The official template of ``dataset`` (``nmnist-sim`` uses N-MNIST's), else :data:`GENERIC_TEMPLATE`."""
    return PROMPT_TEMPLATES.get(_TEMPLATE_OF.get(dataset, dataset), GENERIC_TEMPLATE)


def class_prompts(classes: list[str], template: str) -> list[str]:
    """One prompt per class: ``template.format(name)``."""
    if "{}" not in template:
        raise ValueError(f"prompt template must contain '{{}}' for the class name, got {template!r}")
    return [template.format(c) for c in classes]


def _check_features(f: Tensor, name: str = "features") -> None:
    if f.ndim != 3:
        raise ValueError(f"{name} must be [T, B, D] (time first), got shape {tuple(f.shape)}")


def frame_cosines(features: Tensor, text: Tensor) -> Tensor:
    """Per-frame cosine similarities ``[T, B, C]`` of ``features[T, B, D]`` with ``text[C, D]``."""
    _check_features(features)
    return F.normalize(features, dim=-1) @ F.normalize(text, dim=-1).t()


def text_matrix(text: Tensor, T: int) -> Tensor:
    """``[C, T*D]``: each class feature L2-normalised, repeated T times, and the concatenation L2-normalised."""
    return F.normalize(F.normalize(text, dim=-1).repeat(1, T), dim=-1)


def _concat(features: Tensor) -> Tensor:
    """``[T, B, D] -> [B, T*D]`` with frame t in columns ``t*D:(t+1)*D``."""
    return features.permute(1, 0, 2).reshape(features.shape[1], -1)


def zero_shot_logits(features: Tensor, text: Tensor, logit_scale: float | Tensor = 1.0,
                     weights: Tensor | None = None) -> Tensor:
    """NeuroCLIP zero-shot logits ``[B, C]`` in the official form (normalised concatenation, see module doc).

    ``weights[T]`` are the optional per-frame weights ``w_t`` (default 1)."""
    _check_features(features)
    T = features.shape[0]
    img = F.normalize(features, dim=-1)
    if weights is not None:
        if weights.shape != (T,):
            raise ValueError(f"weights must have shape ({T},) (one per frame), got {tuple(weights.shape)}")
        img = img * weights.to(img)[:, None, None]
    return logit_scale * _concat(img) @ text_matrix(text, T).t()


class ZeroShotHead(nn.Module):
    """Zero-shot NeuroCLIP classifier over frozen per-frame features ``[T, B, D] -> [B, C]``.

    Args:
        text_features: ``[C, D]`` CLIP text features of the class prompts (normalised here).
        logit_scale: ``exp(logit_scale)`` of the CLIP model (100 for OpenAI CLIP); does not change predictions.
        weights: optional per-frame weights ``[T]`` (the grid-searched ``w_t``).
    """

    text: Tensor
    weights: Tensor | None

    def __init__(self, text_features: Tensor, logit_scale: float = 1.0, weights: Tensor | None = None):
        super().__init__()
        if text_features.ndim != 2:
            raise ValueError(f"text_features must be [C, D], got shape {tuple(text_features.shape)}")
        self.register_buffer("text", F.normalize(text_features.detach().float(), dim=-1))
        self.register_buffer("weights", None if weights is None else torch.as_tensor(weights, dtype=torch.float32))
        self.logit_scale = float(logit_scale)

    def forward(self, features: Tensor) -> Tensor:
        return zero_shot_logits(features, self.text, self.logit_scale, self.weights)


def adapter_neuron(config: NeuronConfig | dict[str, Any] | str | None = None, **overrides: Any) -> NeuronConfig:
    """The adapter's LIF: decay 0.25, threshold 0.5, hard reset, rectangular surrogate of width 1 (official
    code); ``config``/``overrides`` change any option."""
    base = {"decay": 0.25, "threshold": 0.5, "reset": "hard", "surrogate": "rectangular", "surrogate_param": 1.0}
    if config is None:
        return neuron_config(base, **overrides)
    return neuron_config(config, **overrides)


class InterTimestepAdapter(nn.Module):
    """NeuroCLIP's inter-timestep adapter ``f[T, B, D] -> f'[T, B, D]`` (see module doc for the equations).

    Args:
        dim: CLIP feature size D.
        reduction: bottleneck factor (hidden size ``D // reduction``; 8 in the paper).
        ratio: residual blend r of ``f'_t = r h_t + (1 - r) f_t`` (0.6).
        dropout: dropout probability of both dropouts (0.5).
        activation: ``"spiking"`` (LIF over the T frames, the paper's adapter) or ``"relu"`` (ANN baseline).
        neuron: neuron options for ``"spiking"`` (default :func:`adapter_neuron`).

    The two BatchNorm1d layers are called once per frame, as the official code does in its loop over time:
    batch statistics per frame in training, one running estimate shared by all frames.
    """

    def __init__(self, dim: int, reduction: int = 8, ratio: float = 0.6, dropout: float = 0.5,
                 activation: Literal["spiking", "relu"] = "spiking",
                 neuron: NeuronConfig | dict[str, Any] | str | None = None):
        super().__init__()
        if dim < 1 or reduction < 1 or dim // reduction < 1:
            raise ValueError(f"need dim >= reduction >= 1, got dim={dim}, reduction={reduction}")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must lie in [0, 1], got {ratio}")
        if activation not in ("spiking", "relu"):
            raise ValueError(f"activation must be 'spiking' or 'relu', got {activation!r}")
        hidden = dim // reduction
        self.dim, self.hidden, self.ratio, self.activation = dim, hidden, float(ratio), activation
        self.bn_in = nn.BatchNorm1d(dim)
        self.drop_in = nn.Dropout(dropout)
        self.down = nn.Linear(dim, hidden)
        self.bn_hidden = nn.BatchNorm1d(hidden)
        self.act: nn.Module = Neuron(adapter_neuron(neuron)) if activation == "spiking" else nn.ReLU()
        self.drop_hidden = nn.Dropout(dropout)
        self.up = nn.Linear(hidden, dim)

    def hidden_input(self, f: Tensor) -> Tensor:
        """``BN(Linear(Dropout(BN(f_t))))`` per frame: the input of the neuron, ``[T, B, D/8]``."""
        _check_features(f)
        if f.shape[-1] != self.dim:
            raise ValueError(f"adapter built for D={self.dim}, got features of size {f.shape[-1]}")
        return torch.stack([self.bn_hidden(self.down(self.drop_in(self.bn_in(f_t)))) for f_t in f])

    def forward(self, f: Tensor) -> Tensor:
        u = self.hidden_input(f)
        g = self.drop_hidden(self.act(u))  # the neuron runs over all T frames from a fresh membrane
        h = F.relu(self.up(g))
        return self.ratio * h + (1.0 - self.ratio) * f


class FewShotHead(nn.Module):
    """Adapter + match against the repeated text features: ``[T, B, D] -> [B, C]``.

    ``logits = s * < concat_t f'_t / |concat_t f'_t|, text_matrix(e, T)_c >`` with ``f' = adapter(f)``."""

    text: Tensor

    def __init__(self, adapter: InterTimestepAdapter, text_features: Tensor, logit_scale: float = 1.0):
        super().__init__()
        if text_features.ndim != 2 or text_features.shape[1] != adapter.dim:
            raise ValueError(f"text_features must be [C, {adapter.dim}], got shape {tuple(text_features.shape)}")
        self.adapter = adapter
        self.register_buffer("text", F.normalize(text_features.detach().float(), dim=-1))
        self.logit_scale = float(logit_scale)

    def forward(self, features: Tensor) -> Tensor:
        adapted = self.adapter(features)
        img = F.normalize(_concat(adapted), dim=-1)
        return self.logit_scale * img @ text_matrix(self.text, features.shape[0]).t()


def sum_of_cosines(features: Tensor, text: Tensor, weights: Tensor | None = None) -> Tensor:
    """``sum_t w_t cos(f_t, e_c) / sqrt(T)`` ``[B, C]``: :func:`zero_shot_logits` at scale 1, written as a sum."""
    cos = frame_cosines(features, text)
    if weights is not None:
        cos = cos * weights.to(cos)[:, None, None]
    return cos.sum(0) / math.sqrt(features.shape[0])
