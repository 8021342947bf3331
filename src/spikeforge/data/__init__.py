"""Offline-first datasets for spiking networks: static images, event cameras and point clouds.

Nothing in this package downloads: point it at your own copies (``root=...`` or
``$SPIKEFORGE_DATA``); missing files raise :class:`DatasetNotFoundError`, damaged files
:class:`CorruptFileError`, both naming the path and the fix. See ``docs/data.md``.

Main entry points::

    from spikeforge import data
    data.list_datasets()
    split = data.get("digits", "train")          # DatasetSplit(x [N,1,8,8], y [N], ...)
    print(data.format_info(data.info("nmnist")))

This package imports nothing from the rest of spikeforge.
"""

from __future__ import annotations

from . import event_formats, events, points, simulate, static, transforms
from .base import DatasetSplit
from .errors import (
    CorruptFileError,
    DatasetNotFoundError,
    MissingDependencyError,
    SpikeforgeDataError,
    UnsupportedFormatError,
)
from .event_formats import EVENT_DTYPE, read_events
from .events import events_to_frames, render_grey
from .registry import REGISTRY, DatasetSpec, format_info, get, info, list_datasets, register

__all__ = [
    "DatasetSplit",
    "DatasetSpec",
    "SpikeforgeDataError",
    "DatasetNotFoundError",
    "CorruptFileError",
    "UnsupportedFormatError",
    "MissingDependencyError",
    "EVENT_DTYPE",
    "read_events",
    "events_to_frames",
    "render_grey",
    "get",
    "info",
    "format_info",
    "list_datasets",
    "register",
    "REGISTRY",
    "static",
    "transforms",
    "event_formats",
    "events",
    "simulate",
    "points",
]
