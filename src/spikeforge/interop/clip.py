"""Frozen CLIP encoders for NeuroCLIP (arXiv:2306.12073; docs/methods/neuroclip.md) through Hugging Face
``transformers`` (``pip install spikeforge[clip]``).

Nothing downloads implicitly: :func:`load_clip` reads a local folder written by ``save_pretrained`` (or a
``huggingface-cli download ... --local-dir`` copy), or a model id already in the Hugging Face cache. Only
``allow_download=True`` lets ``transformers`` fetch a model id from the network.

Any object with the :class:`ClipEncoder` attributes works in :mod:`spikeforge.train.neuroclip` (e.g. a wrapper
around another CLIP implementation). ``open_clip`` is not offered: ``open_clip_torch`` (3.3) requires
``torchvision`` and ``timm``, which pull a CUDA build of torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["ClipEncoder", "HFClip", "ClipNotFoundError", "load_clip", "save_tiny_random_clip", "DOWNLOAD_HINT"]

DOWNLOAD_HINT = (
    "spikeforge never downloads weights implicitly. On a machine with network access run e.g.\n"
    "    huggingface-cli download openai/clip-vit-base-patch32 --local-dir ./clip-vit-b32\n"
    "(or openai/clip-vit-base-patch16), copy the folder here and pass it (--clip ./clip-vit-b32); "
    "or pass a model id with --allow-download to let transformers fetch it."
)

Tokenizer = Callable[[list[str]], Mapping[str, Tensor]]


class ClipNotFoundError(FileNotFoundError):
    """The CLIP model (folder or cached model id) is not available offline."""


@runtime_checkable
class ClipEncoder(Protocol):
    """What NeuroCLIP needs from a CLIP model.

    ``encode_images(pixels[N, 3, S, S]) -> [N, D]`` and ``encode_text(prompts) -> [C, D]`` return raw
    (unnormalised) projected features; ``image_size`` is S; ``logit_scale`` is ``exp`` of the model's
    learned temperature; ``fingerprint`` identifies the weights (a JSON-able dict used as a cache key)."""

    image_size: int
    feature_dim: int
    logit_scale: float
    fingerprint: dict[str, Any]

    def encode_images(self, pixels: Tensor) -> Tensor: ...

    def encode_text(self, prompts: Sequence[str]) -> Tensor: ...


def _pooled(out: Any) -> Tensor:
    """transformers >= 5 returns a model output whose ``pooler_output`` is the projected feature; 4.x a tensor."""
    return out if isinstance(out, Tensor) else out.pooler_output


class HFClip:
    """A ``transformers`` ``CLIPModel`` (frozen, eval mode) with its tokenizer, as a :class:`ClipEncoder`.

    ``tokenizer`` is any callable ``prompts -> {"input_ids", "attention_mask"}`` tensors, or a Hugging Face
    tokenizer (called with padding and truncation to the text model's context length)."""

    def __init__(self, model: Any, tokenizer: Any, fingerprint: dict[str, Any], device: str | torch.device = "cpu"):
        self.model = model.eval().requires_grad_(False).to(device)
        self.device = torch.device(device)
        self.tokenizer = tokenizer
        cfg = model.config
        self.image_size = int(cfg.vision_config.image_size)
        self.feature_dim = int(cfg.projection_dim)
        self.context_length = int(cfg.text_config.max_position_embeddings)
        self.logit_scale = float(model.logit_scale.detach().exp())
        self.fingerprint = fingerprint

    def _tokenize(self, prompts: list[str]) -> Mapping[str, Tensor]:
        tok = self.tokenizer
        if hasattr(tok, "pad_token_id") or hasattr(tok, "model_input_names"):  # a transformers tokenizer
            return tok(prompts, padding=True, truncation=True, max_length=self.context_length, return_tensors="pt")
        return tok(prompts)

    @torch.inference_mode()
    def encode_text(self, prompts: Sequence[str]) -> Tensor:
        enc = self._tokenize(list(prompts))
        kw = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        return _pooled(self.model.get_text_features(**kw)).float().cpu()

    @torch.inference_mode()
    def encode_images(self, pixels: Tensor) -> Tensor:
        if pixels.ndim != 4 or pixels.shape[1] != 3 or tuple(pixels.shape[2:]) != (self.image_size,) * 2:
            raise ValueError(f"CLIP images must be [N, 3, {self.image_size}, {self.image_size}], "
                             f"got {tuple(pixels.shape)}")
        dtype = next(self.model.parameters()).dtype
        return _pooled(self.model.get_image_features(pixel_values=pixels.to(self.device, dtype))).float().cpu()


def _folder_fingerprint(folder: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Config hash plus name/size/mtime of the weight files: changes whenever the weights are replaced."""
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".pth"))
    weights = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return {"source": str(folder.resolve()), "config": hashlib.sha256(blob).hexdigest()[:16], "weights": weights}


def load_clip(name_or_path: str | os.PathLike[str], *, allow_download: bool = False,
              device: str | torch.device = "cpu", tokenizer: Any = None) -> HFClip:
    """Load a ``transformers`` CLIP model (+ tokenizer) from a folder or an offline-cached model id.

    Args:
        name_or_path: a folder with ``config.json`` + weights (+ tokenizer files), or a Hugging Face model id.
        allow_download: let ``transformers`` fetch a model id from the network (off by default).
        device: where the encoder runs.
        tokenizer: overrides the tokenizer stored with the model (any callable, see :class:`HFClip`).

    Raises:
        ClipNotFoundError: the folder does not exist / holds no CLIP model, or the id is not cached offline.
        ImportError: ``transformers`` is not installed (``pip install spikeforge[clip]``).
    """
    try:
        import transformers
        from transformers import AutoTokenizer, CLIPModel
    except ImportError as exc:
        raise ImportError("the NeuroCLIP CLIP backend needs transformers: pip install 'spikeforge[clip]'") from exc
    transformers.utils.logging.disable_progress_bar()
    name = os.fspath(name_or_path)
    folder = Path(name).expanduser()
    local = folder.is_dir()
    looks_like_path = folder.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or folder.exists()
    if not local and looks_like_path:
        raise ClipNotFoundError(f"CLIP model folder {name!r} does not exist (or is not a folder).\n{DOWNLOAD_HINT}")
    if local and not (folder / "config.json").is_file():
        raise ClipNotFoundError(f"{folder} is not a saved CLIP model (no config.json; expected the files of "
                                f"CLIPModel.save_pretrained or huggingface-cli download).\n{DOWNLOAD_HINT}")
    source = str(folder) if local else name
    offline = local or not allow_download
    try:
        model = CLIPModel.from_pretrained(source, local_files_only=offline)
    except OSError as exc:
        where = f"folder {folder}" if local else \
            f"{name!r}: no such folder, and no model id {name!r} in the offline Hugging Face cache"
        raise ClipNotFoundError(f"cannot load a CLIP model from {where} ({str(exc).splitlines()[0]})\n"
                                f"{DOWNLOAD_HINT}") from None
    if tokenizer is None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        except (OSError, ValueError, TypeError) as exc:
            raise ClipNotFoundError(f"no tokenizer found with the CLIP model at {source} ({str(exc).splitlines()[0]});"
                                    f" save one next to it (tokenizer.save_pretrained) or pass tokenizer=.") from None
    cfg = model.config.to_dict()
    if local:
        fp = _folder_fingerprint(folder, cfg)
    else:
        fp = {"source": name, "commit": getattr(model.config, "_commit_hash", None),
              "config": hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]}
    return HFClip(model, tokenizer, fp, device)


def save_tiny_random_clip(folder: str | os.PathLike[str], *, image_size: int = 32, patch_size: int = 8,
                          width: int = 32, projection_dim: int = 16, seed: int = 0) -> Path:
    """Write a tiny, **randomly initialised** CLIP model and a character-level tokenizer to ``folder``.

    For smoke tests of the NeuroCLIP pipeline without real weights (its accuracies mean nothing). The
    tokenizer's vocabulary holds the printable ASCII characters (lower-cased by CLIP's normaliser), each as a
    word-inner and a word-final (``</w>``) token, with no BPE merges. Returns the folder."""
    import transformers
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    transformers.utils.logging.disable_progress_bar()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for code in range(33, 127):
        vocab[chr(code)] = len(vocab)
        vocab[chr(code) + "</w>"] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer.from_pretrained(str(out)).save_pretrained(str(out))
    small = {"hidden_size": width, "intermediate_size": 2 * width, "num_hidden_layers": 1, "num_attention_heads": 2}
    cfg = CLIPConfig(
        text_config={**small, "vocab_size": len(vocab), "max_position_embeddings": 77, "bos_token_id": 0,
                     "eos_token_id": 1, "pad_token_id": 1},
        vision_config={**small, "image_size": image_size, "patch_size": patch_size},
        projection_dim=projection_dim,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(cfg)
    model.save_pretrained(str(out))
    return out
