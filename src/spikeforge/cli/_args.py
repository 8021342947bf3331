"""Argument types and checks shared by the sub-commands: every numeric option is range-checked by argparse (the
error names the option), every output path is checked before any work starts."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

__all__ = ["positive_int", "nonnegative_float", "writable_dir", "writable_file"]


def positive_int(text: str) -> int:
    """``type=`` for options that must be an integer >= 1 (argparse adds the option's name to the error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def writable_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Check, before any work and without creating anything, that the folder ``path`` can be created or written;
    ``ValueError`` naming ``option`` and the reason otherwise (a file in the way, a special file, no permission,
    a read-only file system)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        kind = "a file" if p.is_file() else "a special file"
        raise ValueError(f"{option} {p} is {kind}, not a folder")
    if p.is_dir():
        try:
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=p)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise ValueError(f"{option} {p}: cannot write there ({exc.strerror or exc})") from None
        return p
    existing = _first_existing(p.absolute())
    if not existing.is_dir():
        raise ValueError(f"{option} {p}: {existing} is a file, so no folder can be created under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {p}: cannot create it, {existing} is not writable")
    return p


def writable_file(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """An output file: its folder must be creatable and writable, and the path must not be a folder."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{option} {p} is a folder; give a file name")
    writable_dir(p.parent if str(p.parent) else Path("."), option=f"{option} {p}: folder")
    return p
