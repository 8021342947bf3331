"""Imports every architecture module of this package so that its ``@register_model`` factories run."""

import importlib
import pkgutil

_SKIP = {"registry", "_zoo"}

from . import __path__ as _pkg_path  # noqa: E402

for _info in pkgutil.iter_modules(_pkg_path):
    if _info.name not in _SKIP and not _info.name.startswith("_"):
        importlib.import_module(f"{__package__}.{_info.name}")
