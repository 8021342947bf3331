"""Run directories: load and save a run, its checkpoints and manifests — the one home of run I/O, used by the
trainer and by ``spikeforge eval/fold/energy/report``.

Pickle-free checkpoints: safetensors for tensors, JSON for everything else, atomic writes.

Layout of a run directory written by :class:`spikeforge.train.Trainer`::

    RUN/config.yaml                  resolved recipe (every default filled in; rebuilds the model)
    RUN/model.safetensors            final weights (the model that was folded and measured)
    RUN/folded.safetensors           state of the folded inference model (rebuild with spikeforge.fold)
    RUN/checkpoints/last/            resumable state after the last finished epoch
    RUN/checkpoints/best/            weights of the epoch with the best test accuracy
    RUN/metrics.csv, metrics.json, events.out.tfevents.* (TensorBoard)
    RUN/manifest.json                SHA-256 and size of config.yaml, model.safetensors, folded.safetensors

A checkpoint folder holds ``model.safetensors``, ``state.safetensors`` (optimizer moments, RNG states),
``state.json`` (epoch, step, optimizer hyper-parameters, python/numpy RNG scalars, ...) and ``manifest.json``
(SHA-256 and size of each file, written last). Every file is written to a temporary name and moved into place
with ``os.replace``, so a crash never leaves a half-written file under the final name; the manifest makes a
truncated or edited file detectable. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

__all__ = [
    "CheckpointError", "atomic_write_bytes", "save_tensors", "load_tensors", "save_json", "load_json",
    "write_checkpoint", "read_checkpoint", "load_run", "resolve_weights", "read_config", "CONFIG_NAME",
    "update_run_manifest", "verify_run_file", "finished_epochs", "build_model", "fill_model_from_data", "model_kwargs",
]

CONFIG_NAME = "config.yaml"
MANIFEST = "manifest.json"


class CheckpointError(ValueError):
    """A checkpoint or run directory is missing, truncated, corrupted or inconsistent."""


# --- atomic primitives ------------------------------------------------------------------------------------
def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_tensors(path: str | os.PathLike[str], tensors: Mapping[str, Tensor],
                 metadata: Mapping[str, str] | None = None) -> Path:
    """Atomically save a flat ``{name: tensor}`` dict as safetensors (tensors are copied to contiguous CPU)."""
    from safetensors.torch import save

    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return atomic_write_bytes(path, save(flat, metadata=dict(metadata) if metadata else None))


def load_tensors(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Load a safetensors file; a missing, truncated or corrupted file raises :class:`CheckpointError`."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    try:
        return load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own error type for bad headers/sizes
        raise CheckpointError(f"checkpoint file {path} is corrupted or truncated ({exc})") from None


def save_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def load_json(path: str | os.PathLike[str]) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint file {path} is corrupted or truncated ({exc})") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- checkpoint folders ----------------------------------------------------------------------------------
def write_checkpoint(folder: str | os.PathLike[str], model_state: Mapping[str, Tensor],
                     tensors: Mapping[str, Tensor] | None = None, state: Mapping[str, Any] | None = None) -> Path:
    """Write a checkpoint folder: model weights, extra tensors, JSON state, then the manifest (commit marker)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    if manifest_path.exists():  # an interrupted overwrite is then detected as "no manifest", not as valid
        manifest_path.unlink()
    files = {"model.safetensors": save_tensors(folder / "model.safetensors", model_state)}
    if tensors is not None:
        files["state.safetensors"] = save_tensors(folder / "state.safetensors", tensors)
    if state is not None:
        files["state.json"] = save_json(folder / "state.json", state)
    manifest = {name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for name, p in files.items()}
    save_json(manifest_path, {"format": "spikeforge-checkpoint-1", "files": manifest})
    return folder


def _file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": _sha256(path), "bytes": path.stat().st_size}


def _check_entry(path: Path, entry: Any, where: str, damaged: str = "corrupted or truncated") -> None:
    if not isinstance(entry, dict):
        raise CheckpointError(f"{where} is malformed (entry for {path.name})")
    if not path.is_file():
        raise CheckpointError(f"{path} is missing (listed in {where})")
    size = path.stat().st_size
    if size != entry.get("bytes"):
        raise CheckpointError(f"checkpoint file {path} is {damaged}: {size} bytes, expected {entry.get('bytes')} "
                              f"({where})")
    if _sha256(path) != entry.get("sha256"):
        raise CheckpointError(f"checkpoint file {path} is corrupted: SHA-256 does not match {where} (corrupted or "
                              "edited since it was written)")


def update_run_manifest(run_dir: str | os.PathLike[str], names: list[str]) -> Path:
    """Record (or refresh) the SHA-256 and size of ``RUN/<name>`` for each name in ``RUN/manifest.json``."""
    run = Path(run_dir)
    path = run / MANIFEST
    files: dict[str, Any] = {}
    if path.is_file():
        old = load_json(path)
        if isinstance(old, dict) and isinstance(old.get("files"), dict):
            files = dict(old["files"])
    for name in names:
        files[name] = _file_entry(run / name)
    return save_json(path, {"format": "spikeforge-run-1", "files": files})


def verify_run_file(run_dir: str | os.PathLike[str], name: str, required: bool | None = None) -> None:
    """Check ``RUN/<name>`` against ``RUN/manifest.json``. With ``required`` (default: the run was written by the
    trainer, i.e. has ``checkpoints/``) a missing manifest or entry is an error too; a hand-assembled run folder
    (config + weights only) is read as it is."""
    run = Path(run_dir)
    path = run / MANIFEST
    if required is None:
        required = (run / "checkpoints").is_dir()
    if not path.is_file():
        if required:
            raise CheckpointError(f"run {run} has no {MANIFEST}: its final files were not completely written "
                                  "(interrupted run?) or come from elsewhere; use --which last/best")
        return
    manifest = load_json(path)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise CheckpointError(f"{path} is malformed")
    if name not in files:
        if required:
            raise CheckpointError(f"{run / name} is not listed in {path}; it was not written by this run")
        return
    _check_entry(run / name, files[name], str(path))


def finished_epochs(run_dir: str | os.PathLike[str]) -> int:
    """Epochs completed by the last checkpoint of a run (0 when it has none)."""
    state = Path(run_dir) / "checkpoints" / "last" / "state.json"
    if not state.is_file():
        return 0
    st = load_json(state)
    return int(st.get("epoch", 0)) if isinstance(st, dict) else 0


def _verify(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist")
    manifest = load_json(folder / MANIFEST) if (folder / MANIFEST).exists() else None
    if manifest is None:
        raise CheckpointError(f"checkpoint {folder} has no {MANIFEST}: it was not completely written "
                              "(interrupted save?)")
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise CheckpointError(f"checkpoint {folder}/{MANIFEST} is malformed")
    for name, entry in files.items():
        p = folder / name
        if not p.is_file():
            raise CheckpointError(f"checkpoint {folder} is missing {name}")
        _check_entry(p, entry, f"the manifest of checkpoint {folder}", damaged="truncated or corrupted")
    return files


def read_checkpoint(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Verify and read a checkpoint folder -> ``{'model': state_dict, 'tensors': {...}, 'state': {...}}``."""
    folder = Path(folder)
    files = _verify(folder)
    out: dict[str, Any] = {"model": load_tensors(folder / "model.safetensors"), "tensors": {}, "state": {}}
    if "state.safetensors" in files:
        out["tensors"] = load_tensors(folder / "state.safetensors")
    if "state.json" in files:
        out["state"] = load_json(folder / "state.json")
    return out


# --- run directories -------------------------------------------------------------------------------------
def model_kwargs(cfg: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(model name, model options)`` of a recipe's ``model`` section."""
    m = dict(cfg["model"])
    name = m.pop("name")
    return str(name), m


def build_model(cfg: Mapping[str, Any]) -> nn.Module:
    """``create_model(model.name, **model options)`` from a (resolved) recipe."""
    from .models import create_model

    name, kw = model_kwargs(cfg)
    for k in ("input_size", "widths", "hidden"):
        if isinstance(kw.get(k), list):
            kw[k] = tuple(kw[k])
    return create_model(name, **kw)


def fill_model_from_data(cfg: dict[str, Any], train: Any) -> None:
    """Fill ``num_classes``, ``in_channels``/``input_size`` (images, events) or ``in_features``/``in_channels``
    (points) from the data when the model factory accepts them and the recipe left them unset."""
    name, _ = model_kwargs(cfg)
    from .models import model_entry

    params = inspect.signature(model_entry(name)).parameters
    x = train.x
    facts: dict[str, Any] = {"num_classes": int(train.num_classes)}
    if train.kind == "static":
        facts.update(in_channels=int(x.shape[1]), input_size=[int(x.shape[2]), int(x.shape[3])],
                     in_features=int(x[0].numel()))
    elif train.kind == "events":
        facts.update(in_channels=int(x.shape[2]), input_size=[int(x.shape[3]), int(x.shape[4])],
                     in_features=int(x[0, 0].numel()))
    elif train.kind == "points":
        facts.update(in_channels=int(x.shape[1]), num_points=int(x.shape[2]))
    for key, value in facts.items():
        if key in params and key not in cfg["model"]:
            cfg["model"][key] = value


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The resolved recipe ``RUN/config.yaml`` of a run directory."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a spikeforge run directory: {CONFIG_NAME} is missing")
    verify_run_file(run_dir, CONFIG_NAME, required=False)
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{path} is not valid YAML ({exc})") from None
    if not isinstance(cfg, dict) or "model" not in cfg:
        raise CheckpointError(f"{path} is not a resolved spikeforge recipe (no 'model' section)")
    return cfg


def _run_and_weights(path: Path, which: str | None) -> tuple[Path, Path]:
    """``(run_dir, weights_file)`` for a run directory, a checkpoint folder or a ``.safetensors`` file."""
    if not path.exists():
        raise CheckpointError(f"{path} does not exist (expected a run directory, checkpoint folder or weights file)")
    if path.is_file():  # RUN/model.safetensors or RUN/checkpoints/<name>/model.safetensors
        if (path.parent / CONFIG_NAME).exists():
            verify_run_file(path.parent, path.name)
            return path.parent, path
        _verify(path.parent)
        return path.parent.parent.parent, path
    if ((path / MANIFEST).exists() or (path / "model.safetensors").exists()) and not (path / CONFIG_NAME).exists():
        _verify(path)
        return path.parent.parent, path / "model.safetensors"
    read_config(path)  # a clear error for a folder that is not a run directory
    return path, resolve_weights(path, which)


def resolve_weights(run_dir: str | os.PathLike[str], which: str | None = None) -> Path:
    """Weights file of a run: ``which`` = 'final' (RUN/model.safetensors), 'best', 'last' or None (final if
    the run finished, else the last checkpoint)."""
    run = Path(run_dir)
    choices = {"final": run / "model.safetensors", "best": run / "checkpoints" / "best" / "model.safetensors",
               "last": run / "checkpoints" / "last" / "model.safetensors"}
    if which is not None:
        if which not in choices:
            raise ValueError(f"which must be one of {sorted(choices)}, got {which!r}")
        order = [which]
    else:
        order = ["final", "last"]
    for key in order:
        p = choices[key]
        if p.is_file():
            if key != "final":
                _verify(p.parent)
            else:
                verify_run_file(run, p.name)
            return p
    raise CheckpointError(f"run {run} has no {' or '.join(order)} weights (looked for "
                          f"{', '.join(str(choices[k]) for k in order)})")


def load_run(run_dir: str | os.PathLike[str], which: str | None = None,
             map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained model of a run directory -> ``(model in eval mode, resolved recipe dict)``.

    ``run_dir`` may also be a checkpoint folder (``RUN/checkpoints/best``) or a weights file. The model is built
    from ``config.yaml`` with :func:`spikeforge.create_model` and the safetensors weights are loaded strictly.
    """
    run, weights = _run_and_weights(Path(run_dir), which)
    cfg = read_config(run)
    model = build_model(cfg)
    state = load_tensors(weights)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights {weights} do not match the model of {run / CONFIG_NAME}: {exc}") from None
    model.to(map_location).eval()
    return model, cfg
