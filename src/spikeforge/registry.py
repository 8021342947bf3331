"""One generic name -> entry registry for every extensible table of the library.

Used by the model zoo (``register_model``), the datasets (``spikeforge.data.register``), the objectives
(``register_objective``), the surrogate families (``register_surrogate``), the fold rules (``fold_rule``, keyed by
module type) and the neuron presets. It is a ``dict`` (lookups, ``in``, iteration work as usual) that refuses a
second registration under the same key and reports an unknown key with the registered ones. This module imports
nothing from spikeforge, so every package (even ``functional`` and ``data``) may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["Registry"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Registry(dict[K, V], Generic[K, V]):
    """``Registry("model")``: ``add(key, value)`` (duplicates raise), ``lookup(key)`` (unknown keys raise a
    ``error_type`` naming the registered ones), ``decorator(key)``, ``names()``."""

    def __init__(self, kind: str, *, error_type: type[Exception] = ValueError, hint: str = "choose one of"):
        super().__init__()
        self.kind = kind
        self.error_type = error_type
        self.hint = hint

    def _label(self, key: Any) -> str:
        return key.__qualname__ if isinstance(key, type) else repr(key)

    def add(self, key: K, value: V, *, replace: bool = False) -> V:
        """Register ``value`` under ``key``; an existing different entry raises unless ``replace``."""
        if not replace and key in self and self[key] is not value:
            raise ValueError(f"{self.kind} {self._label(key)} is already registered")
        self[key] = value
        return value

    def decorator(self, key: K | None = None) -> Callable[[V], V]:
        """``@registry.decorator("name")`` registers the decorated object (under its ``__name__`` if no key)."""
        def wrap(value: V) -> V:
            return self.add(key if key is not None else getattr(value, "__name__"), value)  # noqa: B009

        return wrap

    def names(self) -> list[Any]:
        """Registered keys, sorted (types by name)."""
        return sorted(self, key=lambda k: k.__qualname__ if isinstance(k, type) else str(k))

    def lookup(self, key: K) -> V:
        """The entry of ``key``; an unknown key raises ``error_type`` listing the registered ones."""
        try:
            return self[key]
        except KeyError:
            raise self.error_type(f"unknown {self.kind} {self._label(key)}; {self.hint} {self.names()}") from None
