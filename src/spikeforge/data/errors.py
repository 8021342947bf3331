"""Error types of :mod:`spikeforge.data`.

Every reader raises one of these with a message that names the offending path and says how
to fix the problem, because nothing in this package ever downloads data: users bring their
own copies of the datasets.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "SpikeforgeDataError", "DatasetNotFoundError", "CorruptFileError", "UnsupportedFormatError",
    "MissingDependencyError",
]


class SpikeforgeDataError(Exception):
    """Common base of every error a :mod:`spikeforge.data` reader raises on bad input.

    ``except SpikeforgeDataError`` catches a missing dataset, a damaged or implausible file and a
    missing optional package; each subclass also keeps its built-in base (``FileNotFoundError``,
    ``ValueError``, ``ImportError``) so existing ``except`` clauses keep working.
    """


class DatasetNotFoundError(SpikeforgeDataError, FileNotFoundError):
    """A dataset (or one of its files) is not where it was expected.

    Args:
        name: registered dataset name (or a short description of the file).
        searched: every path that was looked at, in order.
        hint: how to obtain / where to put the files.
    """

    def __init__(self, name: str, searched: Iterable[str | Path], hint: str = "") -> None:
        self.name = name
        self.hint = hint
        self.searched = [str(p) for p in searched]
        lines = [f"dataset {name!r} not found; looked in:"]
        lines += [f"  - {p}" for p in self.searched] or ["  (nowhere)"]
        lines.append(
            "fix: pass root=... (or --root), or set SPIKEFORGE_DATA to a folder that contains it; "
            "spikeforge never downloads data."
        )
        if hint:
            lines.append(f"hint: {hint}")
        super().__init__("\n".join(lines))

    def __reduce__(self):  # keep picklable (multiprocessing data loaders)
        return (type(self), (self.name, self.searched, self.hint))


class CorruptFileError(SpikeforgeDataError, ValueError):
    """A file exists but does not follow its format (bad magic, truncated, inconsistent sizes).

    Args:
        path: the offending file.
        problem: what was wrong, ideally with the byte offset.
        offset: byte offset at which the problem was detected, if known.
    """

    def __init__(self, path: str | Path, problem: str, offset: int | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.offset = offset
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(
            f"corrupt or truncated file {self.path}{where}: {problem}. "
            "fix: re-copy the file from the official release (checksum it) or delete it."
        )

    def __reduce__(self):
        return (type(self), (self.path, self.problem, self.offset))


class UnsupportedFormatError(SpikeforgeDataError, ValueError):
    """A file is readable but in a format (or format variant) spikeforge has no reader for, or its
    format cannot be told from its header and name."""


class MissingDependencyError(SpikeforgeDataError, ImportError):
    """An optional third-party package needed for one format/feature is not installed."""

    def __init__(self, package: str, feature: str) -> None:
        self.package = package
        self.feature = feature
        super().__init__(
            f"{feature} needs the optional package {package!r}, which is not installed. "
            f"fix: pip install {package}"
        )

    def __reduce__(self):
        return (type(self), (self.package, self.feature))
