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
    The address layout depends on the camera, named by the header line
    ``# AEChip: <jAER class>`` (no such line: DVS128, as in CIFAR10-DVS).
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

    DAVIS chips (``AEChip`` class name containing ``DAVIS240``/``DAVIS346``/``DAVIS640``/
    ``DAVIS128``/``DAVIS208``; sensors 240x180, 346x260, 640x480, 128x128, 208x192) use jAER's
    DAVIS layout::

        bit 31       0 = DVS event, 1 = APS (frame ADC) or IMU sample: dropped
        bits 30-22   raw y (9 bits)
        bits 21-12   raw x (10 bits)
        bit 11       polarity: 1 = ON, 0 = OFF
        bit 10       external input / special event: dropped

    jAER displays DVS events at ``x = W - 1 - raw_x``, ``y = raw_y`` with the origin at the
    bottom left; ``orientation='upright'`` returns that image with row 0 at the top,
    ``x = W - 1 - raw_x``, ``y = H - 1 - raw_y``; ``'raw'`` returns the bit fields.

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

Prophesee / Metavision (docs.prophesee.ai, "DAT File Format", "EVT 2.0 Format", "EVT 3.0 Format")
    Both file kinds start with ASCII header lines beginning with ``%`` (a ``.raw`` header ends
    with ``% end``). Width/height come from ``% Width``/``% Height``, ``% geometry WxH`` or the
    ``width=``/``height=`` fields of ``% format EVT3;width=...;height=...``.

    ``.dat`` (N-CARS, the Gen1/1Mpx automotive sets): after the header one byte event type
    (0 = Event2d, 12 = EventCd, 14 = external trigger) and one byte event size (8), then
    little-endian 8-byte records ``uint32 t`` (us) and ``uint32 w`` with ``x = w & 0x3FFF``,
    ``y = (w >> 14) & 0x3FFF``, ``p = (w >> 28) & 1`` (1 = ON; bits 29-31 unused). Files without any ``%``
    line are the old layout without the type/size bytes. 32-bit time wraps are unwrapped.

    ``.raw`` EVT 2.0 (``% evt 2.0`` or ``% format EVT2``): little-endian 32-bit words, type in
    bits 31-28. CD_OFF (0) / CD_ON (1): bits 27-22 timestamp bits 5..0, bits 21-11 x, bits 10-0
    y. EVT_TIME_HIGH (8): bits 27-0 are timestamp bits 33..6. EXT_TRIGGER (10), OTHERS (14),
    CONTINUED (15) are skipped; the other codes are reserved. ``t = time_high << 6 | low``; a
    TIME_HIGH smaller than the previous one is a wrap of the 34-bit clock (+2**34).

    ``.raw`` EVT 3.0 (``% evt 3.0`` or ``% format EVT3``): little-endian 16-bit words, type in
    bits 15-12, decoded with a state (y, base x, polarity, time)::

        0  EVT_ADDR_Y    bits 10-0 y (bit 11 master/slave)          -> sets y
        2  EVT_ADDR_X    bit 11 polarity, bits 10-0 x                -> one event at (x, y)
        3  VECT_BASE_X   bit 11 polarity, bits 10-0 x                -> sets base x, polarity
        4  VECT_12       bits 11-0 valid mask: event at base x + i for each set bit i; base x += 12
        5  VECT_8        bits 7-0 valid mask: likewise; base x += 8
        6  EVT_TIME_LOW  bits 11-0 time bits 11..0
        8  EVT_TIME_HIGH bits 11-0 time bits 23..12
        7 CONTINUED_4, 10 EXT_TRIGGER, 14 OTHERS, 15 CONTINUED_12: skipped; others reserved

    ``t = time_high << 12 | time_low``; a TIME_HIGH smaller than the previous one is a wrap of
    the 24-bit clock (+2**24, every 16.8 s; cameras send TIME_HIGH at least every 4096 us).
    Events before the first TIME_HIGH / EVT_ADDR_Y (or vectors before a VECT_BASE_X) have no
    complete address or time and are dropped, as Metavision's decoders do.

Plausibility (``strict=True``, the default)
    N-MNIST: at least one event, ``y <= 240`` (ATIS sensor), timestamps non-decreasing after the
    overflow markers. Prophesee ``.dat``/EVT 2.0/EVT 3.0: coordinates inside the header's
    width/height, polarity 0/1, no reserved word types, timestamps non-decreasing after the
    documented wrap handling. DAVIS: coordinates inside the chip. ``strict=False`` keeps
    implausible events (for damaged but still useful recordings). Files above
    ``EVENT_MAX_BYTES`` (4 GiB) are refused before reading.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CorruptFileError, DatasetNotFoundError, MissingDependencyError, UnsupportedFormatError

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
    "aedat2_chip",
    "AEDAT2_CHIPS",
    "read_prophesee_dat",
    "write_prophesee_dat",
    "read_evt2",
    "write_evt2",
    "read_evt3",
    "write_evt3",
    "prophesee_header",
    "EVENT_MAX_BYTES",
]

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
FORMATS = ("nmnist-bin", "aedat2", "aedat3.1", "aedat4", "prophesee-dat", "evt2", "evt3")
#: Largest event file the readers load (checked with stat() before reading).
EVENT_MAX_BYTES = 1 << 32

NMNIST_OVERFLOW_Y = 240
NMNIST_TS_PERIOD = 1 << 23
_AEDAT31_HEADER = struct.Struct("<hhiiiiii")


def make_events(t: Iterable, x: Iterable, y: Iterable, p: Iterable) -> np.ndarray:
    """Build an :data:`EVENT_DTYPE` array from four equally long sequences."""
    t_a = np.asarray(t, dtype=np.int64)
    ev = np.empty(t_a.shape[0], dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t_a, np.asarray(x), np.asarray(y), np.asarray(p)
    return ev


def _read(path: str | os.PathLike[str], max_bytes: int = EVENT_MAX_BYTES) -> tuple[Path, bytes]:
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(p.name, [p])
    size = p.stat().st_size
    if size > max_bytes:
        raise CorruptFileError(p, f"{size} bytes is above the limit EVENT_MAX_BYTES={max_bytes}")
    return p, p.read_bytes()


def _check_monotonic(p: Path, t: np.ndarray, record_offsets: np.ndarray | None, what: str) -> None:
    """Raise if ``t`` ever decreases (after the format's own wrap handling)."""
    if len(t) > 1:
        d = np.flatnonzero(np.diff(t) < 0)
        if len(d):
            i = int(d[0]) + 1
            off = int(record_offsets[i]) if record_offsets is not None else None
            raise CorruptFileError(p, f"timestamp goes back in time at event {i} ({int(t[i - 1])} -> {int(t[i])} us) "
                                      f"{what}; pass strict=False to keep such events", off)


def _check_inside(p: Path, x: np.ndarray, y: np.ndarray, width: int | None, height: int | None,
                  record_offsets: np.ndarray | None) -> None:
    bad = np.zeros(len(x), bool)
    if width is not None:
        bad |= x >= width
    if height is not None:
        bad |= y >= height
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        off = int(record_offsets[i]) if record_offsets is not None else None
        raise CorruptFileError(p, f"event {i} at x={int(x[i])}, y={int(y[i])} lies outside the "
                                  f"{width}x{height} (WxH) sensor; pass strict=False to keep such events", off)


# ------------------------------------------------------------------------------------ N-MNIST
def read_nmnist_bin(path: str | os.PathLike[str], sensor_size: tuple[int, int] | None = None,
                    strict: bool = True) -> np.ndarray:
    """Read an N-MNIST / N-Caltech101 ``.bin`` recording (see module docstring).

    Args:
        sensor_size: ``(H, W)``; with ``strict`` every event must lie inside (N-MNIST: (34, 34)).
            Default: the ATIS sensor bound ``y < 240`` only.
        strict: reject implausible files: no events, ``y > 240``, events outside ``sensor_size``,
            timestamps that decrease (after the overflow markers).
    """
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
    if strict:
        if not keep.any():
            raise CorruptFileError(p, f"holds no events ({len(buf)} bytes); an N-MNIST/N-Caltech101 "
                                      "recording has at least one", 0)
        offsets = np.flatnonzero(keep) * 5
        h, w = sensor_size if sensor_size is not None else (NMNIST_OVERFLOW_Y, None)
        _check_inside(p, x[keep], y[keep], w, h, offsets)
        _check_monotonic(p, ts[keep], offsets, "(N-MNIST timestamps only grow; 2**23 us is added per overflow "
                                               "marker y=240)")
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


#: Address layout and sensor size ``(H, W)`` of the AEDAT 2.0 chips, with the jAER class
#: name written by :func:`write_aedat2`.
AEDAT2_CHIPS: dict[str, tuple[str, tuple[int, int], str]] = {
    "dvs128": ("dvs128", (128, 128), "ch.unizh.ini.jaer.chip.retina.DVS128"),
    "davis128": ("davis", (128, 128), "eu.seebetter.ini.chips.davis.DAVIS128"),
    "davis208": ("davis", (192, 208), "eu.seebetter.ini.chips.davis.Davis208PixelParade"),
    "davis240": ("davis", (180, 240), "eu.seebetter.ini.chips.davis.DAVIS240C"),
    "davis346": ("davis", (260, 346), "eu.seebetter.ini.chips.davis.Davis346B"),
    "davis640": ("davis", (480, 640), "eu.seebetter.ini.chips.davis.Davis640"),
}


def aedat2_chip(header_lines: list[str]) -> str | None:
    """Key of :data:`AEDAT2_CHIPS` named by an ``# AEChip: <class>`` header line, ``'dvs128'``
    when there is no such line, ``None`` for a chip class spikeforge has no layout for."""
    for line in header_lines:
        m = re.match(r"#\s*AEChip:\s*(\S+)", line)
        if m:
            name = m.group(1).rsplit(".", 1)[-1].lower()
            d = re.search(r"davis(\d+)", name)
            if d:
                key = f"davis{d.group(1)}"
                return key if key in AEDAT2_CHIPS else None
            if "dvs128" in name or "tmpdiff128" in name:
                return "dvs128"
            return None
    return "dvs128"


def read_aedat2(path: str | os.PathLike[str], orientation: str = "upright", chip: str | None = None,
                strict: bool = True) -> np.ndarray:
    """Read an AEDAT 2.0 file; the address layout (DVS128 or DAVIS) comes from the ``AEChip``
    header line unless ``chip`` (a key of :data:`AEDAT2_CHIPS`) is given (see module docstring)."""
    if orientation not in ("upright", "raw"):
        raise ValueError("orientation must be 'upright' or 'raw'")
    if chip is not None and chip not in AEDAT2_CHIPS:
        raise ValueError(f"chip must be one of {', '.join(AEDAT2_CHIPS)}, got {chip!r}")
    p, buf = _read(path)
    lines, off = _parse_header(p, buf, None)
    if not lines or not lines[0].startswith("#!AER-DAT2.0"):
        first = lines[0] if lines else buf[:12].decode("latin-1")
        raise CorruptFileError(p, f"not an AEDAT 2.0 file: first line {first!r}, expected '#!AER-DAT2.0'", 0)
    key = chip or aedat2_chip(lines)
    if key is None:
        named = next(ln for ln in lines if "AEChip" in ln)
        raise UnsupportedFormatError(f"{p}: no address layout for {named.strip()!r}; pass chip= one of "
                                     f"{', '.join(AEDAT2_CHIPS)} if it uses one of theirs")
    layout, (h, w), _ = AEDAT2_CHIPS[key]
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
    if layout == "dvs128":
        keep = (addr & 0x8000) == 0
        addr = addr[keep]
        rx, ry, pol = (addr >> 1) & 0x7F, (addr >> 8) & 0x7F, 1 - (addr & 1)
        if orientation == "upright":
            rx, ry = 127 - ry, 127 - rx
        return make_events(t[keep], rx, ry, pol)
    keep = ((addr >> 31) == 0) & (((addr >> 10) & 1) == 0)  # DVS events only (no APS/IMU/external)
    addr = addr[keep]
    rx, ry, pol = (addr >> 12) & 0x3FF, (addr >> 22) & 0x1FF, (addr >> 11) & 1
    if strict:
        _check_inside(p, rx, ry, w, h, off + 8 * np.flatnonzero(keep))
    if orientation == "upright":
        rx, ry = w - 1 - rx, h - 1 - ry
    return make_events(t[keep], rx, ry, pol)


def write_aedat2(path: str | os.PathLike[str], events: np.ndarray, orientation: str = "upright",
                 chip: str = "dvs128") -> Path:
    """Write events as AEDAT 2.0 with the address layout of ``chip`` (``0 <= x < W``,
    ``0 <= y < H``, ``0 <= t < 2**32``) and an ``# AEChip:`` line naming it; the exact inverse of
    :func:`read_aedat2` with the same ``orientation``."""
    if orientation not in ("upright", "raw"):
        raise ValueError("orientation must be 'upright' or 'raw'")
    if chip not in AEDAT2_CHIPS:
        raise ValueError(f"chip must be one of {', '.join(AEDAT2_CHIPS)}, got {chip!r}")
    layout, (h, w), jaer_class = AEDAT2_CHIPS[chip]
    ev = np.asarray(events)
    x, y, t = ev["x"].astype(np.int64), ev["y"].astype(np.int64), ev["t"].astype(np.int64)
    if len(t) and (x.min() < 0 or x.max() >= w or y.min() < 0 or y.max() >= h):
        raise ValueError(f"{chip} AEDAT 2.0 needs 0 <= x < {w} and 0 <= y < {h}")
    if len(t) and (t.min() < 0 or t.max() >= 1 << 32):
        raise ValueError("AEDAT 2.0 timestamps must fit in uint32")
    pol = ev["p"].astype(np.int64) & 1
    rec = np.empty(len(t), dtype=[("a", ">u4"), ("t", ">u4")])
    if layout == "dvs128":
        if orientation == "upright":
            x, y = 127 - y, 127 - x  # raw_x = 127 - y, raw_y = 127 - x
        rec["a"] = (y << 8) | (x << 1) | (1 - pol)
    else:
        if orientation == "upright":
            x, y = w - 1 - x, h - 1 - y
        rec["a"] = (y << 22) | (x << 12) | (pol << 11)
    rec["t"] = t
    header = (
        b"#!AER-DAT2.0\r\n"
        b"# This is a raw AE data file created by spikeforge\r\n"
        b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
        b"# Timestamps tick is 1 us\r\n"
        + f"# AEChip: {jaer_class}\r\n".encode()
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


# --------------------------------------------------------------------------- Prophesee header
_PCT_LINE_MAX = 1 << 16


def _percent_header(p: Path, buf: bytes) -> tuple[list[str], int]:
    """The ``%`` header lines of a Prophesee ``.dat``/``.raw`` and the offset of the first data
    byte (a ``% end`` line, when present, ends the header)."""
    lines: list[str] = []
    off = 0
    while off < len(buf) and buf[off] == 0x25:  # '%'
        nl = buf.find(b"\n", off, off + _PCT_LINE_MAX)
        if nl < 0:
            raise CorruptFileError(p, "header line starting with '%' has no end of line", off)
        line = buf[off:nl].rstrip(b"\r").decode("latin-1")
        lines.append(line)
        off = nl + 1
        if line.strip() == "% end":
            break
    return lines, off


def prophesee_header(lines: list[str]) -> dict[str, Any]:
    """``{'evt': '2.0' | '3.0' | '2.1' | ... | None, 'width': int | None, 'height': int | None,
    'dat': bool}`` from Prophesee ``%`` header lines."""
    info: dict[str, Any] = {"evt": None, "width": None, "height": None, "dat": False}
    for line in lines:
        body = line[1:].strip()
        low = body.lower()
        m = re.match(r"evt\s+(\d(?:\.\d)?)\s*$", low)
        if m:
            info["evt"] = m.group(1) if "." in m.group(1) else m.group(1) + ".0"
        m = re.match(r"format\s+evt(\d+)", low)
        if m:
            info["evt"] = {"2": "2.0", "3": "3.0", "21": "2.1"}.get(m.group(1), m.group(1))
            for k in ("width", "height"):
                f = re.search(rf"{k}=(\d{{1,6}})", low)
                if f:
                    info[k] = int(f.group(1))
        m = re.match(r"geometry\s+(\d{1,6})x(\d{1,6})", low)
        if m:
            info["width"], info["height"] = int(m.group(1)), int(m.group(2))
        m = re.match(r"(width|height)\s+(\d{1,6})\s*$", low)
        if m:
            info[m.group(1)] = int(m.group(2))
        if low.startswith("data file containing") or re.match(r"version\s+\d", low):
            info["dat"] = True
    return info


def _header_text(width: int | None, height: int | None, evt: str | None) -> bytes:
    lines = ["% spikeforge event file"]
    if evt is None:
        lines += ["% Data file containing CD events", "% Version 2"]
        if width is not None and height is not None:
            lines += [f"% Width {width}", f"% Height {height}"]
    else:
        lines += [f"% evt {evt}"]
        if width is not None and height is not None:
            lines += [f"% format EVT{evt[0]};height={height};width={width}", f"% geometry {width}x{height}"]
        lines += ["% end"]
    return ("\n".join(lines) + "\n").encode()


def _check_xyp(ev: np.ndarray, x_bits: int, y_bits: int, fmt: str,
               width: int | None, height: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = ev["t"].astype(np.int64)
    x, y, p = ev["x"].astype(np.int64), ev["y"].astype(np.int64), ev["p"].astype(np.int64)
    if len(t):
        if t.min() < 0 or np.any(np.diff(t) < 0):
            raise ValueError(f"{fmt} needs timestamps >= 0 in non-decreasing order")
        xmax = min(1 << x_bits, width or 1 << x_bits)
        ymax = min(1 << y_bits, height or 1 << y_bits)
        if x.min() < 0 or x.max() >= xmax or y.min() < 0 or y.max() >= ymax:
            raise ValueError(f"{fmt} needs 0 <= x < {xmax} and 0 <= y < {ymax}")
        if not np.isin(p, (0, 1)).all():
            raise ValueError(f"{fmt} needs polarity p in {{0, 1}}")
    return t, x, y, p


# ------------------------------------------------------------------------------ Prophesee .dat
_DAT_CD_TYPES = (0, 12)


def read_prophesee_dat(path: str | os.PathLike[str], strict: bool = True) -> np.ndarray:
    """Read the CD events of a Prophesee ``.dat`` file (see module docstring)."""
    p, buf = _read(path)
    lines, off = _percent_header(p, buf)
    info = prophesee_header(lines)
    if info["evt"] is not None:
        raise CorruptFileError(p, f"header says EVT {info['evt']}: this is a .raw stream, not a .dat file", 0)
    if lines:
        if len(buf) - off < 2:
            raise CorruptFileError(p, "missing the 2-byte event type/size after the header", off)
        ev_type, ev_size = buf[off], buf[off + 1]
        if ev_size != 8:
            raise CorruptFileError(p, f"event size {ev_size}, expected 8", off + 1)
        if ev_type not in _DAT_CD_TYPES:
            kind = "external-trigger events (type 14)" if ev_type == 14 else f"unknown event type {ev_type}"
            raise CorruptFileError(p, f"holds {kind}, not CD events (type 0 or 12)", off)
        off += 2
    n_bytes = len(buf) - off
    if n_bytes % 8:
        raise CorruptFileError(p, f"data section of {n_bytes} bytes is not a multiple of 8 "
                                  "(truncated last event)", len(buf) - n_bytes % 8)
    rec = np.frombuffer(buf, dtype=[("t", "<u4"), ("w", "<u4")], offset=off)
    t = rec["t"].astype(np.int64)
    if len(t) > 1:  # unwrap the 32-bit microsecond counter
        t = t + (np.concatenate([[0], np.cumsum(np.diff(t) < -(1 << 31))]) << 32)
    w = rec["w"].astype(np.int64)
    x, y, pol = w & 0x3FFF, (w >> 14) & 0x3FFF, (w >> 28) & 1  # bits 29-31 unused by CD events
    if strict:
        offsets = off + 8 * np.arange(len(t))
        _check_inside(p, x, y, info["width"], info["height"], offsets)
        _check_monotonic(p, t, offsets, "(.dat events are stored in time order)")
    return make_events(t, x, y, pol)


def write_prophesee_dat(path: str | os.PathLike[str], events: np.ndarray, width: int | None = None,
                        height: int | None = None) -> Path:
    """Write CD events (sorted, ``0 <= t < 2**32``, ``x, y < 2**14``) as a Prophesee ``.dat``
    (``% Version 2`` header, EventCd type 12, size 8); the inverse of :func:`read_prophesee_dat`."""
    t, x, y, pol = _check_xyp(np.asarray(events), 14, 14, "Prophesee .dat", width, height)
    if len(t) and t.max() >= 1 << 32:
        raise ValueError("Prophesee .dat timestamps must fit in uint32")
    rec = np.empty(len(t), dtype=[("t", "<u4"), ("w", "<u4")])
    rec["t"], rec["w"] = t, x | (y << 14) | (pol << 28)
    out = Path(path)
    out.write_bytes(_header_text(width, height, None) + bytes([12, 8]) + rec.tobytes())
    return out


# -------------------------------------------------------------------------------- EVT 2.0 raw
_EVT2_KNOWN = (0, 1, 8, 10, 14, 15)
_EVT3_KNOWN = (0, 2, 3, 4, 5, 6, 7, 8, 10, 14, 15)


def _raw_words(p: Path, buf: bytes, evt: str, width_bytes: int,
               widen: bool = True) -> tuple[np.ndarray, int, dict[str, Any]]:
    lines, off = _percent_header(p, buf)
    info = prophesee_header(lines)
    if info["evt"] != evt:
        raise CorruptFileError(p, f"header announces EVT {info['evt']}, expected EVT {evt} "
                                  f"('% evt {evt}' or '% format EVT{evt[0]}' line)", 0)
    n_bytes = len(buf) - off
    if n_bytes % width_bytes:
        raise CorruptFileError(p, f"data section of {n_bytes} bytes is not a multiple of the "
                                  f"{width_bytes}-byte EVT {evt} word (truncated)", len(buf) - n_bytes % width_bytes)
    dt = "<u4" if width_bytes == 4 else "<u2"
    words = np.frombuffer(buf, dt, offset=off)
    return (words.astype(np.int64) if widen else words), off, info


def _reserved(p: Path, typ: np.ndarray, known: tuple[int, ...], off: int, width_bytes: int, evt: str) -> None:
    lut = np.zeros(16, bool)
    lut[list(known)] = True
    bad = ~lut[typ]
    if bad.any():
        i = int(np.argmax(bad))
        raise CorruptFileError(p, f"word {i} has the reserved EVT {evt} type {int(typ[i])}; "
                                  "pass strict=False to skip such words", off + width_bytes * i)


def _unwrap_time_high(th: np.ndarray, bits: int) -> np.ndarray:
    """Each decrease of the ``bits``-bit TIME_HIGH counter is one wrap of the clock."""
    if len(th) < 2:
        return th
    return th + (np.concatenate([[0], np.cumsum(np.diff(th) < 0)]) << bits)


def read_evt2(path: str | os.PathLike[str], strict: bool = True) -> np.ndarray:
    """Read the CD events of a Prophesee EVT 2.0 ``.raw`` file (see module docstring)."""
    p, buf = _read(path)
    w, off, info = _raw_words(p, buf, "2.0", 4)
    typ = w >> 28
    if strict:
        _reserved(p, typ, _EVT2_KNOWN, off, 4, "2.0")
    is_th = typ == 8
    th = _unwrap_time_high(w[is_th] & 0x0FFFFFFF, 28)
    th_rank = np.cumsum(is_th) - 1  # index of the last TIME_HIGH at or before each word
    cd = np.flatnonzero((typ <= 1) & (th_rank >= 0))
    wc = w[cd]
    t = (th[th_rank[cd]] << 6) | ((wc >> 22) & 0x3F)
    x, y = (wc >> 11) & 0x7FF, wc & 0x7FF
    if strict:
        offsets = off + 4 * cd
        _check_inside(p, x, y, info["width"], info["height"], offsets)
        _check_monotonic(p, t, offsets, "(EVT 2.0 time only grows; a smaller TIME_HIGH is a 2**34 us wrap)")
    return make_events(t, x, y, typ[cd])


def _time_high_steps(th: np.ndarray, max_step: int) -> tuple[np.ndarray, np.ndarray]:
    """TIME_HIGH values to emit for the per-event unwrapped values ``th`` (sorted): one before the
    first event of each new value, starting from 0 and with extra values so that consecutive
    emitted values differ by at most ``max_step`` (then each wrap shows as exactly one decrease).
    Returns (insert positions into the event array, values)."""
    new = np.flatnonzero(np.concatenate([[True], np.diff(th) != 0])) if len(th) else np.zeros(0, np.int64)
    vals = th[new]
    prev = np.concatenate([[0], vals[:-1]])
    pos: list[np.ndarray] = []
    out: list[np.ndarray] = []
    for i in np.flatnonzero(vals - prev > max_step):  # rare: long gaps (or a late start)
        extra = np.arange(prev[i] + max_step if i else 0, vals[i], max_step, dtype=np.int64)
        pos.append(np.full(len(extra), new[i]))
        out.append(extra)
    pos.append(new)
    out.append(vals)
    all_pos, all_vals = np.concatenate(pos), np.concatenate(out)
    order = np.lexsort((all_vals, all_pos))  # by position, then value (extras precede the target)
    return all_pos[order], all_vals[order]


def write_evt2(path: str | os.PathLike[str], events: np.ndarray, width: int | None = None,
               height: int | None = None) -> Path:
    """Write CD events (sorted, ``t >= 0``, ``x, y < 2048``) as an EVT 2.0 ``.raw``: a TIME_HIGH
    word before the first event of every new ``t >> 6``, then CD_OFF/CD_ON words; the inverse of
    :func:`read_evt2`."""
    t, x, y, pol = _check_xyp(np.asarray(events), 11, 11, "EVT 2.0", width, height)
    cd = (pol << 28) | ((t & 0x3F) << 22) | (x << 11) | y
    pos, th = _time_high_steps(t >> 6, 1 << 27)
    words = np.insert(cd, pos, (8 << 28) | (th & 0x0FFFFFFF)).astype("<u4")
    out = Path(path)
    out.write_bytes(_header_text(width, height, "2.0") + words.tobytes())
    return out


# -------------------------------------------------------------------------------- EVT 3.0 raw
def read_evt3(path: str | os.PathLike[str], strict: bool = True) -> np.ndarray:
    """Read the CD events of a Prophesee EVT 3.0 ``.raw`` file (see module docstring); vectorised
    over the whole stream (the decoder state is rebuilt with forward fills and cumulative sums)."""
    p, buf = _read(path)
    w16, off, info = _raw_words(p, buf, "3.0", 2, widen=False)
    typ = (w16 >> 12).astype(np.uint8)
    if strict:
        _reserved(p, typ, _EVT3_KNOWN, off, 2, "3.0")
    w = w16.astype(np.int32)
    n = len(w)
    it = np.int32 if n < 2**31 - 1 else np.int64  # word indices; small types keep ~10^7-event files light
    idx = np.arange(n, dtype=it)

    def last(sel: np.ndarray) -> np.ndarray:  # index of the last word with `sel` at or before each word
        a = np.where(sel, idx, it(-1))
        return np.maximum.accumulate(a, out=a) if n else a

    last_y, last_tl, last_base = last(typ == 0), last(typ == 6), last(typ == 3)
    is_th = typ == 8
    th = _unwrap_time_high(w[is_th].astype(np.int64) & 0xFFF, 12)
    th_rank = np.cumsum(is_th, dtype=it) - 1
    del is_th
    inc = np.zeros(n, np.int8)
    inc[typ == 4], inc[typ == 5] = 12, 8
    vec_ok = (inc > 0) & (last_base >= 0)
    ev_words = np.flatnonzero(((typ == 2) | vec_ok) & (last_y >= 0) & (th_rank >= 0))
    del vec_ok
    before = np.cumsum(inc, dtype=np.int64)  # x advance of the vectors up to and including each word
    base = last_base[ev_words]
    del last_base
    we, te = w[ev_words], typ[ev_words]
    vec = te != 2
    base_c = np.maximum(base, 0)
    # x advance of the vectors between the base word and this one (inc[base] is 0)
    shift = before[ev_words] - inc[ev_words] - before[base_c]
    del before, inc
    start = np.where(vec, (w[base_c] & 0x7FF) + shift, we & 0x7FF)
    pol = np.where(vec, (w[base_c] >> 11) & 1, (we >> 11) & 1).astype(np.uint8)
    mask = np.where(te == 4, we & 0xFFF, np.where(te == 5, we & 0xFF, 1)).astype("<u2")
    bits = np.unpackbits(mask.view(np.uint8).reshape(-1, 2), axis=1, bitorder="little")[:, :12]
    rows, cols = np.nonzero(bits)
    del bits, mask, shift, base_c, base
    tl_idx = last_tl[ev_words]
    tl = np.where(tl_idx >= 0, w[np.maximum(tl_idx, 0)] & 0xFFF, 0)
    t_word = (th[th_rank[ev_words]] << 12) | tl
    y_word = w[last_y[ev_words]] & 0x7FF
    del tl_idx, tl, last_tl, last_y, th_rank
    x = start[rows] + cols
    y = y_word[rows]
    t = t_word[rows]
    if strict:
        offsets = off + 2 * ev_words[rows].astype(np.int64)
        _check_inside(p, x, y, info["width"] or 2048, info["height"], offsets)
        _check_monotonic(p, t, offsets, "(EVT 3.0 time only grows; a smaller TIME_HIGH is a 2**24 us wrap)")
    else:  # vectors running past the 11-bit address space cannot be real pixels
        keep = x < 2048
        rows, x, y, t = rows[keep], x[keep], y[keep], t[keep]
    return make_events(t, x, y, pol[rows])


def write_evt3(path: str | os.PathLike[str], events: np.ndarray, width: int | None = None,
               height: int | None = None) -> Path:
    """Write CD events (sorted, ``t >= 0``, ``x, y < 2048``) as an EVT 3.0 ``.raw``; the inverse of
    :func:`read_evt3`. TIME_HIGH (with extra words so no step exceeds 2048, i.e. each 24-bit wrap
    is one decrease), TIME_LOW and EVT_ADDR_Y are emitted when they change; a run of events with
    the same time, row and polarity and increasing x becomes VECT_BASE_X + VECT_12/VECT_8 words,
    a lone event an EVT_ADDR_X word."""
    t, x, y, pol = _check_xyp(np.asarray(events), 11, 11, "EVT 3.0", width, height)
    out_words: list[int] = []
    put = out_words.append
    cur_th = cur_tl = cur_y = -1
    n, i = len(t), 0
    tl_all, th_all = (t & 0xFFF).tolist(), (t >> 12).tolist()
    xs, ys, ps, ts = x.tolist(), y.tolist(), pol.tolist(), t.tolist()
    while i < n:
        th, tl = th_all[i], tl_all[i]
        if th != cur_th:
            k = cur_th + 2048 if cur_th >= 0 else 0
            while k < th:
                put(0x8000 | (k & 0xFFF))
                k += 2048
            put(0x8000 | (th & 0xFFF))
            cur_th, cur_tl = th, -1
        if tl != cur_tl:
            put(0x6000 | tl)
            cur_tl = tl
        if ys[i] != cur_y:
            put(ys[i])
            cur_y = ys[i]
        j = i + 1
        while j < n and ts[j] == ts[i] and ys[j] == ys[i] and ps[j] == ps[i] and xs[j] > xs[j - 1]:
            j += 1
        if j == i + 1:
            put(0x2000 | (ps[i] << 11) | xs[i])
        else:
            x0 = xs[i]
            put(0x3000 | (ps[i] << 11) | x0)
            rel = [v - x0 for v in xs[i:j]]
            span, pos, k = rel[-1] + 1, 0, 0
            while pos < span:
                width_v = 8 if span - pos <= 8 else 12
                m = 0
                while k < len(rel) and rel[k] < pos + width_v:
                    m |= 1 << (rel[k] - pos)
                    k += 1
                put((0x5000 if width_v == 8 else 0x4000) | m)
                pos += width_v
        i = j
    out = Path(path)
    out.write_bytes(_header_text(width, height, "3.0") + np.asarray(out_words, "<u2").tobytes())
    return out


# ------------------------------------------------------------------------------------ dispatch
_HEAD_BYTES = 1 << 20


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of an event file, from its header (``#!AER-DAT<version>``; a first line of
    printable text starting with ``%``: Prophesee, ``% evt 2.0|3.0`` / ``% format EVT2|EVT3`` for
    ``.raw``, otherwise ``.dat``) or else its extension (``.bin`` N-MNIST, which has no header and
    is checked before the ``%`` rule; ``.dat`` headerless Prophesee, ``.aedat4``)."""
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(p.name, [p])
    with open(p, "rb") as f:
        head = f.read(_HEAD_BYTES)
    if head.startswith(b"#!AER-DAT2"):
        return "aedat2"
    if head.startswith(b"#!AER-DAT3"):
        return "aedat3.1"
    if head.startswith(b"#!AER-DAT4"):
        return "aedat4"
    ext = p.suffix.lower()
    if ext == ".bin":  # N-MNIST has no header; its first byte (x) may well be '%' (37)
        return "nmnist-bin"
    first = head.split(b"\n", 1)[0]
    if head[:1] == b"%" and all(32 <= c < 127 or c in (9, 13) for c in first[:4096]):
        lines, _ = _percent_header(p, head)
        evt = prophesee_header(lines)["evt"]
        if evt == "2.0":
            return "evt2"
        if evt == "3.0":
            return "evt3"
        if evt is not None:
            raise UnsupportedFormatError(f"{p}: Prophesee encoding EVT {evt} is not supported "
                                         "(supported: EVT 2.0, EVT 3.0, .dat)")
        if ext == ".raw":
            raise CorruptFileError(p, "Prophesee .raw header has no '% evt <version>' or '% format EVT<n>' line", 0)
        return "prophesee-dat"
    if ext == ".aedat4":
        return "aedat4"
    if ext == ".dat":
        return "prophesee-dat"  # Prophesee's first .dat layout had no header
    if ext == ".aedat":
        raise CorruptFileError(p, f"{ext} file without an '#!AER-DAT' version header", 0)
    if ext == ".raw":
        raise CorruptFileError(p, "Prophesee .raw file without its '%' header (no '% evt' line)", 0)
    raise UnsupportedFormatError(f"cannot tell the event format of {p}; pass format= one of {FORMATS}")


_READERS: dict[str, Any] = {
    "nmnist-bin": read_nmnist_bin, "aedat2": read_aedat2, "aedat3.1": read_aedat31, "aedat4": read_aedat4,
    "prophesee-dat": read_prophesee_dat, "evt2": read_evt2, "evt3": read_evt3,
}


def read_events(path: str | os.PathLike[str], format: str | None = None, **options: Any) -> np.ndarray:
    """Read an event file into an :data:`EVENT_DTYPE` array.

    Args:
        path: the recording.
        format: one of :data:`FORMATS`; detected with :func:`detect_format` when ``None``.
        options: passed to the format's reader (e.g. ``strict=False``, ``orientation='raw'``).
    """
    if format is not None and format not in _READERS:
        raise ValueError(f"unknown event format {format!r}; valid: {', '.join(FORMATS)}")
    fmt = format or detect_format(path)
    return _READERS[fmt](path, **options)
