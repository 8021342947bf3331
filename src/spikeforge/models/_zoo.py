"""Imports every architecture file so that its ``@register_model`` factories run."""

from . import convnet  # noqa: F401
