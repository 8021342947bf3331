"""Readers and writers for event-camera file formats, from the published specs.

All readers return a structured array of :data:`EVENT_DTYPE` (``t`` microseconds int64, ``x``,
``y`` int16, ``p`` uint8 with 1 = ON / brightness increase, 0 = OFF). Damaged files raise
:class:`~spikeforge.data.errors.CorruptFileError` with the path and byte offset.

N-MNIST / N-Caltech101 ``.bin`` (Orchard et al. 2015)
    5 bytes (40 bits) per event, big-endian bit order::

        byte 0: x (8 bits)        byte 1: y (8 bits)
        byte 2: bit 7 = polarity (1 = ON), bits 6..0 = timestamp bits 22..16
        byte 3: timestamp bits 15..8      byte 4: timestamp bits 7..0

    The 23-bit microsecond timestamp wraps every 2**23 us; the camera then inserts an overflow
    marker event with ``y == 240`` (x = 0), after which 2**23 is added to all later timestamps.
    (The reference MATLAB reader adds 2**13 instead; real N-MNIST/N-Caltech101 recordings are
    < 1 s and never contain a marker, so the choice only matters for long synthetic files.)

AEDAT 2.0 (jAER; CIFAR10-DVS, Li et al. 2017)
    ASCII header lines each starting with ``#``, the first being ``#!AER-DAT2.0``; then
    records of a big-endian uint32 address and a big-endian uint32 timestamp (1 us ticks).
    CIFAR10-DVS uses the DVS128 (128x128) address layout of jAER::

        bit 0      polarity bit: 1 = OFF, 0 = ON (jAER's DVS128 extractor: type = 1 - bit)
        bits 1-7   raw x (7 bits)
        bits 8-14  raw y (7 bits)
        bit 15     external/special event flag: such records are dropped

    With ``orientation='upright'`` (default) the output is ``x = 127 - raw_y``,
    ``y = 127 - raw_x``, the convention of the common CIFAR10-DVS loaders that shows the
    displayed CIFAR image upright with row 0 at the top; ``orientation='raw'`` returns
    ``x = raw_x``, ``y = raw_y``. 32-bit timestamp wrap-arounds (a decrease by more than 2**31)
    are unwrapped.

AEDAT 3.1 (iniVation; DVS128 Gesture, Amir et al. 2017)
    Header lines starting with ``#`` (first ``#!AER-DAT3.1``, last ``#!END-HEADER``), then
    packets. Each packet: a 28-byte little-endian header ``int16 eventType, int16 eventSource,
    int32 eventSize, int32 eventTSOffset, int32 eventTSOverflow, int32 eventCapacity,
    int32 eventNumber, int32 eventValid`` followed by ``eventCapacity * eventSize`` bytes.
    Polarity events (type 1, 8 bytes): ``uint32 data`` (bit 0 valid, bit 1 polarity, bits 2-16
    y, bits 17-31 x) and ``int32 timestamp``; the full time is ``timestamp | overflow << 31``.
    Invalid events and other event types (special events etc.) are skipped.

AEDAT 4 (iniVation DV)
    Read through the optional ``aedat`` package (``pip install aedat``) if it is installed.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import CorruptFileError, DatasetNotFoundError, MissingDependencyError

__all__ = [
    "EVENT_DTYPE",
    "make_events",
    "read_events",
    "detect_format",
    "FORMATS",
    "read_nmnist_bin",
    "write_nmnist_bin",
    "read_aedat2",
    "write_aedat2",
    "read_aedat31",
    "write_aedat31",
    "read_aedat4",
]

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
FORMATS = ("nmnist-bin", "aedat2", "aedat3.1", "aedat4")

NMNIST_OVERFLOW_Y = 240
NMNIST_TS_PERIOD = 1 << 23
_AEDAT31_HEADER = struct.Struct("<hhiiiiii")


def make_events(t: Iterable, x: Iterable, y: Iterable, p: Iterable) -> np.ndarray:
    """Build an :data:`EVENT_DTYPE` array from four equally long sequences."""
    t_a = np.asarray(t, dtype=np.int64)
    ev = np.empty(t_a.shape[0], dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t_a, np.asarray(x), np.asarray(y), np.asarray(p)
    return ev


def _read(path: str | os.PathLike[str]) -> tuple[Path, bytes]:
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(p.name, [p])
    return p, p.read_bytes()


# ------------------------------------------------------------------------------------ N-MNIST
def read_nmnist_bin(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an N-MNIST / N-Caltech101 ``.bin`` recording (see module docstring)."""
    p, buf = _read(path)
    if len(buf) % 5:
        raise CorruptFileError(p, f"size {len(buf)} is not a multiple of the 5-byte event record "
                                  f"({len(buf) % 5} trailing bytes)", len(buf) - len(buf) % 5)
    r = np.frombuffer(buf, np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = r[:, 0], r[:, 1]
    pol = r[:, 2] >> 7
    ts = ((r[:, 2] & 0x7F) << 16) | (r[:, 3] << 8) | r[:, 4]
    overflow = y == NMNIST_OVERFLOW_Y
    ts = ts + np.cumsum(overflow) * NMNIST_TS_PERIOD
    keep = ~overflow
    return make_events(ts[keep], x[keep], y[keep], pol[keep])


def write_nmnist_bin(path: str | os.PathLike[str], events: np.ndarray) -> Path:
    """Write events (sorted by ``t`` >= 0, ``x, y < 256``, ``y != 240``) as an N-MNIST ``.bin``;
    overflow markers are inserted every 2**23 us."""
    ev = np.asarray(events)
    t = ev["t"].astype(np.int64)
    if len(t) and (t.min() < 0 or np.any(np.diff(t) < 0)):
        raise ValueError("timestamps must be >= 0 and sorted")
    x, y = ev["x"].astype(np.int64), ev["y"].astype(np.int64)
    if len(t) and (x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 255 or
                   np.any(y == NMNIST_OVERFLOW_Y)):
        raise ValueError("N-MNIST .bin needs 0 <= x, y <= 255 and y != 240 (overflow marker)")
    rec = np.empty((len(t), 5), np.uint8)
    ts = t % NMNIST_TS_PERIOD
    rec[:, 0], rec[:, 1] = x, y
    rec[:, 2] = ((ev["p"].astype(np.int64) & 1) << 7) | (ts >> 16)
    rec[:, 3], rec[:, 4] = (ts >> 8) & 0xFF, ts & 0xFF
    wraps = t // NMNIST_TS_PERIOD
    if len(t) and wraps[-1] > 0:
        pos = np.searchsorted(wraps, np.arange(1, wraps[-1] + 1), side="left")
        marker = np.array([0, NMNIST_OVERFLOW_Y, 0, 0, 0], np.uint8)
        rec = np.insert(rec, pos, marker, axis=0)
    out = Path(path)
    out.write_bytes(rec.tobytes())
    return out


# --------------------------------------------------------------------------------- AEDAT 2.0
def _parse_header(p: Path, buf: bytes, end_marker: bytes | None) -> tuple[list[str], int]:
    """Return the ``#`` header lines and the offset of the first data byte."""
    lines: list[str] = []
    off = 0
    while off < len(buf) and buf[off:off + 1] == b"#":
        nl = buf.find(b"\n", off, off + 4096)
        if nl < 0:
            raise CorruptFileError(p, "header line starting with '#' has no end of line", off)
        line = buf[off:nl].rstrip(b"\r")
        try:
            lines.append(line.decode("ascii"))
        except UnicodeDecodeError:
            raise CorruptFileError(p, "header line is not ASCII", off) from None
        off = nl + 1
        if end_marker is not None and line == end_marker:
            return lines, off
    if end_marker is not None:
        raise CorruptFileError(p, f"header does not end with {end_marker.decode()}", off)
    return lines, off


def read_aedat2(path: str | os.PathLike[str], orientation: str = "upright") -> np.ndarray:
    """Read an AEDAT 2.0 file with the DVS128 address layout (see module docstring)."""
    if orientation not in ("upright", "raw"):
        raise ValueError("orientation must be 'upright' or 'raw'")
    p, buf = _read(path)
    lines, off = _parse_header(p, buf, None)
    if not lines or not lines[0].startswith("#!AER-DAT2.0"):
        first = lines[0] if lines else buf[:12].decode("latin-1")
        raise CorruptFileError(p, f"not an AEDAT 2.0 file: first line {first!r}, expected '#!AER-DAT2.0'", 0)
    n_bytes = len(buf) - off
    if n_bytes % 8:
        raise CorruptFileError(p, f"data section of {n_bytes} bytes is not a multiple of 8 "
                                  "(truncated last event)", len(buf) - n_bytes % 8)
    rec = np.frombuffer(buf, dtype=[("a", ">u4"), ("t", ">u4")], offset=off)
    addr = rec["a"].astype(np.int64)
    t = rec["t"].astype(np.int64)
    if len(t) > 1:  # unwrap 32-bit timestamp wrap-around
        wraps = np.concatenate([[0], np.cumsum(np.diff(t) < -(1 << 31))])
        t = t + (wraps << 32)
    keep = (addr & 0x8000) == 0
    addr = addr[keep]
    rx, ry, p = (addr >> 1) & 0x7F, (addr >> 8) & 0x7F, 1 - (addr & 1)
    if orientation == "upright":
        rx, ry = 127 - ry, 127 - rx
    return make_events(t[keep], rx, ry, p)


def write_aedat2(path: str | os.PathLike[str], events: np.ndarray, orientation: str = "upright") -> Path:
    """Write events (``0 <= x, y < 128``, ``0 <= t < 2**32``) as AEDAT 2.0 with the DVS128 layout;
    the exact inverse of :func:`read_aedat2` with the same ``orientation``."""
    if orientation not in ("upright", "raw"):
        raise ValueError("orientation must be 'upright' or 'raw'")
    ev = np.asarray(events)
    x, y, t = ev["x"].astype(np.int64), ev["y"].astype(np.int64), ev["t"].astype(np.int64)
    if len(t) and (x.min() < 0 or x.max() > 127 or y.min() < 0 or y.max() > 127):
        raise ValueError("DVS128 AEDAT 2.0 needs 0 <= x, y <= 127")
    if len(t) and (t.min() < 0 or t.max() >= 1 << 32):
        raise ValueError("AEDAT 2.0 timestamps must fit in uint32")
    rec = np.empty(len(t), dtype=[("a", ">u4"), ("t", ">u4")])
    if orientation == "upright":
        x, y = 127 - y, 127 - x  # raw_x = 127 - y, raw_y = 127 - x
    rec["a"] = (y << 8) | (x << 1) | (1 - (ev["p"].astype(np.int64) & 1))
    rec["t"] = t
    header = (
        b"#!AER-DAT2.0\r\n"
        b"# This is a raw AE data file created by spikeforge\r\n"
        b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
        b"# Timestamps tick is 1 us\r\n"
    )
    out = Path(path)
    out.write_bytes(header + rec.tobytes())
    return out


# --------------------------------------------------------------------------------- AEDAT 3.1
def read_aedat31(path: str | os.PathLike[str]) -> np.ndarray:
    """Read the polarity events of an AEDAT 3.1 file (see module docstring)."""
    p, buf = _read(path)
    lines, off = _parse_header(p, buf, b"#!END-HEADER")
    if not lines[0].startswith("#!AER-DAT3"):
        raise CorruptFileError(p, f"not an AEDAT 3.x file: first line {lines[0]!r}", 0)
    parts: list[np.ndarray] = []
    pol_dtype = np.dtype([("d", "<u4"), ("t", "<i4")])
    while off < len(buf):
        if len(buf) - off < _AEDAT31_HEADER.size:
            raise CorruptFileError(p, f"truncated packet header ({len(buf) - off} of 28 bytes)", off)
        etype, _src, esize, ts_off, ovf, cap, num, _valid = _AEDAT31_HEADER.unpack_from(buf, off)
        if esize <= 0 or cap < 0 or num < 0 or num > cap or ovf < 0:
            raise CorruptFileError(p, f"invalid packet header (type={etype}, size={esize}, "
                                      f"capacity={cap}, number={num}, overflow={ovf})", off)
        start = off + _AEDAT31_HEADER.size
        end = start + cap * esize
        if end > len(buf):
            raise CorruptFileError(p, f"packet of {cap} x {esize}-byte events needs {end - start} bytes, "
                                      f"only {len(buf) - start} left (truncated)", start)
        if etype == 1:
            if esize != 8 or ts_off != 4:
                raise CorruptFileError(p, f"polarity packet with eventSize={esize}, "
                                          f"eventTSOffset={ts_off} (expected 8, 4)", off)
            rec = np.frombuffer(buf, pol_dtype, count=num, offset=start)
            d = rec["d"].astype(np.int64)
            valid = (d & 1) == 1
            d = d[valid]
            t = rec["t"][valid].astype(np.int64) | (np.int64(ovf) << 31)
            parts.append(make_events(t, (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (d >> 1) & 1))
        off = end
    return np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)


def write_aedat31(path: str | os.PathLike[str], events: np.ndarray, packet_size: int = 4096,
                  source: str = "DVS128") -> Path:
    """Write events (sorted by ``t >= 0``) as AEDAT 3.1 polarity packets of up to ``packet_size``
    events; packets are also split where ``t >> 31`` (the packet's eventTSOverflow) changes."""
    ev = np.asarray(events)
    t = ev["t"].astype(np.int64)
    if len(t) and (t.min() < 0 or np.any(np.diff(t) < 0)):
        raise ValueError("timestamps must be >= 0 and sorted")
    x, y = ev["x"].astype(np.int64), ev["y"].astype(np.int64)
    if len(t) and (x.min() < 0 or x.max() > 0x7FFF or y.min() < 0 or y.max() > 0x7FFF):
        raise ValueError("AEDAT 3.1 needs 0 <= x, y < 32768")
    data = (x << 17) | (y << 2) | ((ev["p"].astype(np.int64) & 1) << 1) | 1
    ovf = t >> 31
    chunks: list[bytes] = [
        ("#!AER-DAT3.1\r\n#Format: RAW\r\n"
         f"#Source 1: {source}\r\n#Start-Time: 1970-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n").encode()
    ]
    # packet boundaries: every packet_size events and wherever the overflow counter changes
    cuts = set(range(0, len(t), packet_size)) | set(np.flatnonzero(np.diff(ovf) != 0) + 1)
    bounds = sorted(cuts) + [len(t)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=False):
        n = b - a
        rec = np.empty(n, dtype=[("d", "<u4"), ("t", "<i4")])
        rec["d"], rec["t"] = data[a:b], t[a:b] & 0x7FFFFFFF
        chunks.append(_AEDAT31_HEADER.pack(1, 1, 8, 4, int(ovf[a]), n, n, n))
        chunks.append(rec.tobytes())
    out = Path(path)
    out.write_bytes(b"".join(chunks))
    return out


# ----------------------------------------------------------------------------------- AEDAT 4
def read_aedat4(path: str | os.PathLike[str]) -> np.ndarray:
    """Read the event packets of an AEDAT 4 file with the optional ``aedat`` package."""
    try:
        import aedat
    except ImportError:
        raise MissingDependencyError("aedat", "reading AEDAT 4 files") from None
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(p.name, [p])
    parts = []
    try:
        for packet in aedat.Decoder(str(p)):
            if "events" in packet:
                e = packet["events"]
                parts.append(make_events(e["t"], e["x"], e["y"], e["on"]))
    except (OSError, RuntimeError) as e:
        raise CorruptFileError(p, f"aedat could not decode the file ({e})") from None
    return np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)


# ------------------------------------------------------------------------------------ dispatch
def detect_format(path: str | os.PathLike[str]) -> str:
    """Guess the format from the header (``#!AER-DAT<version>``) or else the extension."""
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(p.name, [p])
    with open(p, "rb") as f:
        head = f.read(16)
    if head.startswith(b"#!AER-DAT2"):
        return "aedat2"
    if head.startswith(b"#!AER-DAT3"):
        return "aedat3.1"
    if head.startswith(b"#!AER-DAT4"):
        return "aedat4"
    ext = p.suffix.lower()
    if ext == ".bin":
        return "nmnist-bin"
    if ext == ".aedat4":
        return "aedat4"
    if ext in (".aedat", ".dat"):
        raise CorruptFileError(p, f"{ext} file without an '#!AER-DAT' version header", 0)
    raise ValueError(f"cannot tell the event format of {p}; pass format= one of {FORMATS}")


def read_events(path: str | os.PathLike[str], format: str | None = None) -> np.ndarray:
    """Read an event file into an :data:`EVENT_DTYPE` array.

    Args:
        path: the recording.
        format: one of :data:`FORMATS`; detected with :func:`detect_format` when ``None``.
    """
    fmt = format or detect_format(path)
    readers = {"nmnist-bin": read_nmnist_bin, "aedat2": read_aedat2, "aedat3.1": read_aedat31,
               "aedat4": read_aedat4}
    if fmt not in readers:
        raise ValueError(f"unknown event format {fmt!r}; valid: {', '.join(FORMATS)}")
    return readers[fmt](path)
