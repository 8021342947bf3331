"""Recipes: YAML files with sections, merged over the defaults below, overridable with dotted ``--set`` keys.

A recipe names the model, data, objective, optimiser, schedule and run settings. ``load_recipe`` reads a file or a
bundled recipe name (``spikeforge recipes`` lists them), ``apply_overrides`` applies ``key=value`` strings with
YAML-typed values (``--set optim.lr=0.05 --set data.limit=200``), and ``validate`` rejects unknown keys with the
list of valid ones. The resolved dict (defaults filled in) is stored as ``RUN/config.yaml``.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULTS", "FREE_SECTIONS", "NO_DECAY_KINDS", "RecipeError", "load_recipe", "bundled_recipes",
    "recipe_description", "apply_overrides", "parse_override", "merge", "resolve", "valid_keys", "validate",
]


#: parameter kinds ``optim.no_decay`` may exclude from weight decay (see ``train.builders.param_groups``)
NO_DECAY_KINDS = ("norm", "bias", "neuron")


class RecipeError(ValueError):
    """A recipe or an override is malformed or names an unknown key."""


#: Every key a recipe may set, with its default. ``model`` and ``objective`` are open sections (their keys are
#: checked by the model factory / objective builder), as are ``data.options`` and ``data.augment``.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "model": {"name": "convnet"},
    "data": {
        "name": "digits",   # registered dataset (spikeforge data list)
        "root": None,       # folder holding the files (None: $SPIKEFORGE_DATA and system locations)
        "limit": None,      # first N training and first N test samples
        "train_limit": None,  # first N training samples (overrides limit for the training split)
        "augment": {},      # spikeforge.data.transforms.build spec (random_crop, hflip, autoaugment, cutout, roll)
        "options": {},      # extra keyword arguments of spikeforge.data.get (T, n_points, ...)
        "workers": 4,       # DataLoader worker processes of streamed datasets (imagenet); in-memory data ignore it
    },
    "T": 4,                 # time steps for static/points input (event data use their frame count)
    "eval_T": None,         # time steps at test time (None: T); Spiking PointNet trains at 1, tests at 4
    "objective": {"name": "ce"},
    "optim": {
        "name": "sgd",      # sgd | adam | adamw
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 1e-4,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        # parameter kinds without weight decay: 'norm' (BN/tdBN/TEBN/BNTT/MPBN affine), 'bias',
        # 'neuron' (spike amplitudes, learnable thresholds and decays); [] decays every parameter (the official
        # Joint A-SNN and Spiking PointNet optimisers)
        "no_decay": ["norm", "bias", "neuron"],
    },
    "schedule": {
        "name": "cosine",   # cosine | step | onecycle | constant
        "warmup_epochs": 0.0,
        "warmup_start_factor": 0.01,
        "min_lr": 0.0,
        "step_size": 30,    # step: epochs between decays
        "gamma": 0.1,       # step: decay factor
        "pct_start": 0.3,   # onecycle: fraction of steps rising to lr
        "div_factor": 25.0,
        "final_div_factor": 1e4,
    },
    "epochs": 10,
    "batch_size": 64,       # global batch (split evenly over processes under torchrun)
    "eval_batch_size": 256,
    "seed": 0,
    "device": "auto",       # auto | cpu | cuda | cuda:N
    "amp": False,           # float16 autocast + GradScaler; used on CUDA only
    "grad_clip": None,      # max global gradient L2 norm
    "label_smoothing": 0.0,
    "deterministic": False, # torch.use_deterministic_algorithms
    "sync_bn": False,       # synchronise batch statistics over processes (torchrun)
    # training memory, exact either way (docs/training.md): compress_spikes keeps conv/linear spike inputs as
    # bits for backward; recompute keeps only each spiking segment's input (bits) and reruns it in backward;
    # time_chunk: steps per chunk for segments that do not mix time steps (null = whole sequence)
    "memory": {"compress_spikes": False, "recompute": False, "time_chunk": None},
    # T_sweep: max T (int) or list of T for the final sweep; votes: forward passes averaged per test batch
    # (Spiking PointNet's 3-vote test: fresh random initial membranes per pass); bn_recalibration: re-estimate BN
    # running statistics on that many training batches before each test evaluation (0 = off; train.bn_calibration)
    "eval": {"every": 1, "T_sweep": None, "votes": 1, "bn_recalibration": 0},
    "fold": {"enabled": True, "verify_samples": 64},
    "analysis": {"enabled": True, "samples": 128},
    "log": {"tensorboard": True, "progress": "auto"},  # progress: auto | always | never
}

FREE_SECTIONS = ("model", "objective", "data.options", "data.augment")


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (``update`` wins; nested dicts are merged, everything else replaced)."""
    out = copy.deepcopy(dict(base))
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for k, v in d.items():
        path = f"{prefix}{k}"
        if path in FREE_SECTIONS:
            keys.append(f"{path}.*")
        elif isinstance(v, Mapping) and v:
            keys += _flatten(v, path + ".")
        else:
            keys.append(path)
    return keys


def _model_keys(model_name: str) -> list[str] | None:
    """Option names of a registered model factory plus neuron options; None if the model is unknown."""
    from ..models.registry import model_entry
    from ..neurons import NeuronConfig

    try:
        factory = model_entry(model_name)
    except ValueError:
        return None
    params = inspect.signature(factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return sorted(set(params) | {f.name for f in dataclasses.fields(NeuronConfig)} | {"name"})


def valid_keys(recipe: Mapping[str, Any] | None = None) -> list[str]:
    """Dotted keys accepted by ``--set`` (``model.*``: the model's options when the model is known)."""
    keys = [k for k in _flatten(DEFAULTS) if not k.startswith("model.")]
    name = (recipe or {}).get("model", {}).get("name", DEFAULTS["model"]["name"])
    mk = _model_keys(str(name))
    keys += [f"model.{k}" for k in mk] if mk is not None else ["model.*"]
    return sorted(set(keys))


def _check_key(path: list[str], recipe: Mapping[str, Any]) -> None:
    dotted = ".".join(path)
    for free in FREE_SECTIONS:
        if dotted.startswith(free + ".") and free != "model":
            return
    if path[0] == "model" and len(path) >= 2:
        mk = _model_keys(str(recipe.get("model", {}).get("name", "")))
        if mk is None or path[1] in mk:
            return
        raise RecipeError(f"unknown key {dotted!r} for model {recipe['model'].get('name')!r}; valid keys: "
                          f"{', '.join(valid_keys(recipe))}")
    node: Any = DEFAULTS
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            raise RecipeError(f"unknown key {dotted!r}; valid keys: {', '.join(valid_keys(recipe))}")
        node = node[part]


def validate(recipe: Mapping[str, Any]) -> None:
    """Reject keys that are not part of the recipe schema (message lists the valid keys)."""

    def walk(d: Mapping[str, Any], prefix: list[str]) -> None:
        for k, v in d.items():
            path = prefix + [str(k)]
            _check_key(path, recipe)
            dotted = ".".join(path)
            if isinstance(v, Mapping) and dotted not in FREE_SECTIONS and dotted != "model" and \
                    isinstance(_lookup(DEFAULTS, path), Mapping):
                walk(v, path)

    if not isinstance(recipe, Mapping):
        raise RecipeError(f"a recipe must be a mapping of sections, got {type(recipe).__name__}")
    walk(recipe, [])
    if not isinstance(recipe.get("model", {}), Mapping) or "name" not in recipe.get("model", {}):
        raise RecipeError("recipe section 'model' must be a mapping with a 'name'")


def _lookup(d: Any, path: list[str]) -> Any:
    for p in path:
        if not isinstance(d, Mapping) or p not in d:
            return None
        d = d[p]
    return d


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'optim.lr=0.05'`` -> ``(['optim', 'lr'], 0.05)``; the value is parsed as YAML (``1e-3``, ``[1, 2]``)."""
    if "=" not in text:
        raise RecipeError(f"--set expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise RecipeError(f"--set has an empty key in {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise RecipeError(f"--set {key}: value {raw!r} is not valid YAML ({exc})") from None
    if isinstance(value, str):  # YAML 1.1 reads '1e-3' as a string; accept it as a float
        try:
            value = float(value) if any(c in value for c in "eE.") and value.lower() not in ("inf", "nan") \
                else value
        except ValueError:
            pass
    return key.split("."), value


def apply_overrides(recipe: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set`` strings to a recipe; unknown keys raise :class:`RecipeError` listing the valid keys."""
    out = copy.deepcopy(dict(recipe))
    for text in overrides:
        path, value = parse_override(text)
        _check_key(path, out)
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return out


def _fix_floats(d: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; recipes mean a number."""
    if isinstance(d, dict):
        return {k: _fix_floats(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_fix_floats(v) for v in d]
    if isinstance(d, str):
        try:
            if any(c in d for c in "eE") and d[0] in "+-.0123456789":
                return float(d)
        except ValueError:
            return d
    return d


def bundled_recipes() -> dict[str, Path]:
    """Bundled recipe name -> path (the YAML files in ``spikeforge/recipes``)."""
    folder = resources.files("spikeforge") / "recipes"
    out: dict[str, Path] = {}
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".yaml") and not name.startswith("_"):
            out[name[:-5]] = Path(str(entry))
    return dict(sorted(out.items()))


def recipe_description(path: str | Path) -> str:
    data = yaml.safe_load(Path(path).read_text()) or {}
    return str(data.get("description", "")).strip().splitlines()[0] if data.get("description") else ""


def load_recipe(name_or_path: str | Path) -> dict[str, Any]:
    """Read a recipe file, or a bundled recipe by name; validates its keys (defaults are not yet merged)."""
    p = Path(name_or_path)
    if not p.is_file():
        bundled = bundled_recipes()
        key = str(name_or_path)
        if key.endswith(".yaml") and key[:-5] in bundled and not p.exists():
            key = key[:-5]
        if key not in bundled:
            raise RecipeError(f"no recipe file or bundled recipe named {str(name_or_path)!r}; bundled recipes: "
                              f"{', '.join(bundled)}")
        p = bundled[key]
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe {p} is not valid YAML: {exc}") from None
    if data is None or data == {}:
        raise RecipeError(f"recipe {p} is empty; a recipe needs at least its model and data sections (see "
                          "`spikeforge recipes` for complete examples)")
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {p} must be a mapping of sections")
    data = _fix_floats(data)
    validate(merge({"model": DEFAULTS["model"]}, data))
    return data


def resolve(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults merged with the recipe, validated, with basic value checks."""
    cfg = merge(DEFAULTS, _fix_floats(dict(recipe)))
    validate(cfg)
    checks = [
        (isinstance(cfg["epochs"], int) and cfg["epochs"] >= 1, "epochs must be an integer >= 1"),
        (isinstance(cfg["batch_size"], int) and cfg["batch_size"] >= 1, "batch_size must be an integer >= 1"),
        (isinstance(cfg["eval_batch_size"], int) and cfg["eval_batch_size"] >= 1,
         "eval_batch_size must be an integer >= 1"),
        (isinstance(cfg["T"], int) and cfg["T"] >= 1, "T must be an integer >= 1"),
        (cfg["eval_T"] is None or (isinstance(cfg["eval_T"], int) and cfg["eval_T"] >= 1),
         "eval_T must be null or an integer >= 1"),
        (isinstance(cfg["seed"], int), "seed must be an integer"),
        (cfg["data"]["limit"] is None or (isinstance(cfg["data"]["limit"], int) and cfg["data"]["limit"] >= 1),
         "data.limit must be null or an integer >= 1"),
        (cfg["data"]["train_limit"] is None or (isinstance(cfg["data"]["train_limit"], int)
                                                and cfg["data"]["train_limit"] >= 1),
         "data.train_limit must be null or an integer >= 1"),
        (isinstance(cfg["data"]["workers"], int) and cfg["data"]["workers"] >= 0,
         "data.workers must be an integer >= 0"),
        (cfg["optim"]["name"] in ("sgd", "adam", "adamw"), "optim.name must be sgd, adam or adamw"),
        (isinstance(cfg["optim"]["lr"], (int, float)) and cfg["optim"]["lr"] > 0, "optim.lr must be > 0"),
        (cfg["schedule"]["name"] in ("cosine", "step", "onecycle", "constant"),
         "schedule.name must be cosine, step, onecycle or constant"),
        (cfg["grad_clip"] is None or (isinstance(cfg["grad_clip"], (int, float)) and cfg["grad_clip"] > 0),
         "grad_clip must be null or > 0"),
        (isinstance(cfg["label_smoothing"], (int, float)) and 0 <= cfg["label_smoothing"] < 1,
         "label_smoothing must be in [0, 1)"),
        (isinstance(cfg["optim"]["no_decay"], list) and set(cfg["optim"]["no_decay"]) <= set(NO_DECAY_KINDS),
         "optim.no_decay must be a list of parameter kinds among norm, bias, neuron ([] decays every parameter)"),
        (isinstance(cfg["eval"]["votes"], int) and not isinstance(cfg["eval"]["votes"], bool)
         and cfg["eval"]["votes"] >= 1, "eval.votes must be an integer >= 1"),
        (isinstance(cfg["eval"]["bn_recalibration"], int) and not isinstance(cfg["eval"]["bn_recalibration"], bool)
         and cfg["eval"]["bn_recalibration"] >= 0, "eval.bn_recalibration must be an integer >= 0 (batches)"),
        (cfg["log"]["progress"] in ("auto", "always", "never"), "log.progress must be auto, always or never"),
        (isinstance(cfg["memory"]["compress_spikes"], bool) and isinstance(cfg["memory"]["recompute"], bool),
         "memory.compress_spikes and memory.recompute must be true or false"),
        (cfg["memory"]["time_chunk"] is None or (isinstance(cfg["memory"]["time_chunk"], int)
                                                 and not isinstance(cfg["memory"]["time_chunk"], bool)
                                                 and cfg["memory"]["time_chunk"] >= 1),
         "memory.time_chunk must be null or an integer >= 1 (time steps per chunk)"),
        (cfg["memory"]["time_chunk"] is None or cfg["memory"]["recompute"],
         "memory.time_chunk needs memory.recompute: true"),
    ]
    for ok, msg in checks:
        if not ok:
            raise RecipeError(f"{msg} (recipe has: {_summary(cfg, msg)})")
    return cfg


def _summary(cfg: Mapping[str, Any], msg: str) -> str:
    key = msg.split(" ")[0]
    return f"{key}={_lookup(cfg, key.split('.'))!r}"
