from __future__ import annotations

import struct

import numpy as np
import pytest

from spikeforge.data import event_formats as ef
from spikeforge.data.errors import CorruptFileError, DatasetNotFoundError, MissingDependencyError


def _ev(rows):
    t, x, y, p = zip(*rows, strict=True)
    return ef.make_events(t, x, y, p)


# ----------------------------------------------------------------------------------- N-MNIST
def test_nmnist_hand_built_bytes(tmp_path):
    # event 1: x=3, y=7, ON, t=0x12345 ; event 2: x=33, y=0, OFF, t=0x7FFFFF (max 23-bit)
    raw = bytes([3, 7, 0x80 | 0x01, 0x23, 0x45]) + bytes([33, 0, 0x7F, 0xFF, 0xFF])
    p = tmp_path / "00001.bin"
    p.write_bytes(raw)
    ev = ef.read_nmnist_bin(p)
    assert ev.dtype == ef.EVENT_DTYPE
    assert ev.tolist() == [(0x12345, 3, 7, 1), (0x7FFFFF, 33, 0, 0)]
    ef.write_nmnist_bin(tmp_path / "w.bin", ev)
    assert (tmp_path / "w.bin").read_bytes() == raw


def test_nmnist_overflow_marker(tmp_path):
    raw = bytes([1, 2, 0x00, 0x00, 0x10]) + bytes([0, 240, 0, 0, 0]) + bytes([4, 5, 0x80, 0x00, 0x05])
    p = tmp_path / "o.bin"
    p.write_bytes(raw)
    ev = ef.read_nmnist_bin(p)
    assert ev.tolist() == [(16, 1, 2, 0), ((1 << 23) + 5, 4, 5, 1)]
    ef.write_nmnist_bin(tmp_path / "w.bin", ev)
    assert (tmp_path / "w.bin").read_bytes() == raw


def test_nmnist_truncated(tmp_path):
    p = tmp_path / "t.bin"
    p.write_bytes(bytes(5 * 3 + 2))
    with pytest.raises(CorruptFileError) as ei:
        ef.read_events(p)
    assert "byte offset 15" in str(ei.value) and str(p) in str(ei.value)


def test_nmnist_writer_validates(tmp_path):
    with pytest.raises(ValueError, match="240"):
        ef.write_nmnist_bin(tmp_path / "x.bin", _ev([(0, 1, 240, 1)]))


# --------------------------------------------------------------------------------- AEDAT 2.0
def test_aedat2_hand_built(tmp_path):
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Timestamps tick is 1 us\r\n"
    # DVS128 address: raw_y << 8 | raw_x << 1 | bit0 (1 = OFF); one external event (bit 15) is dropped
    recs = [((5 << 8) | (100 << 1) | 0, 10), ((127 << 8) | (0 << 1) | 1, 20), (0x8000, 25), ((1 << 8) | 3, 30)]
    body = b"".join(struct.pack(">II", a, t) for a, t in recs)
    p = tmp_path / "cifar10_cat_0.aedat"
    p.write_bytes(header + body)
    raw = ef.read_aedat2(p, orientation="raw")
    assert raw.tolist() == [(10, 100, 5, 1), (20, 0, 127, 0), (30, 1, 1, 0)]
    up = ef.read_events(p)  # upright: x = 127 - raw_y, y = 127 - raw_x
    assert up.tolist() == [(10, 122, 27, 1), (20, 0, 127, 0), (30, 126, 126, 0)]
    for orient, ev in (("raw", raw), ("upright", up)):
        ef.write_aedat2(tmp_path / "w.aedat", ev, orientation=orient)
        w = (tmp_path / "w.aedat").read_bytes()
        assert w.startswith(b"#!AER-DAT2.0\r\n")
        assert w.endswith(body[:8 * 2] + body[8 * 3:])  # byte-exact records (external one dropped)


def test_aedat2_timestamp_wrap(tmp_path):
    body = struct.pack(">II", 2, 0xFFFFFFF0) + struct.pack(">II", 2, 0x10)  # one address, two times
    p = tmp_path / "w.aedat"
    p.write_bytes(b"#!AER-DAT2.0\r\n" + body)
    assert ef.read_aedat2(p)["t"].tolist() == [0xFFFFFFF0, (1 << 32) + 0x10]


def test_aedat2_truncated_and_bad_header(tmp_path):
    p = tmp_path / "t.aedat"
    p.write_bytes(b"#!AER-DAT2.0\r\n" + bytes(8 * 2 + 3))
    with pytest.raises(CorruptFileError, match="truncated last event") as ei:
        ef.read_events(p)
    assert "byte offset 30" in str(ei.value)
    p.write_bytes(b"#!AER-DAT1.0\r\n" + bytes(8))
    with pytest.raises(CorruptFileError, match="AER-DAT"):
        ef.read_aedat2(p)
    p.write_bytes(b"#!AER-DAT2.0 no newline" + bytes(4))
    with pytest.raises(CorruptFileError, match="no end of line"):
        ef.read_aedat2(p)


# --------------------------------------------------------------------------------- AEDAT 3.1
HEADER31 = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


def _pol(x, y, p, valid=1):
    return (x << 17) | (y << 2) | (p << 1) | valid


def test_aedat31_hand_built(tmp_path):
    pk1 = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 3, 3, 2) + b"".join(
        struct.pack("<Ii", d, t) for d, t in [(_pol(10, 20, 1), 100), (_pol(1, 2, 0, valid=0), 150),
                                              (_pol(127, 0, 0), 200)])
    special = struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", 0xABCDEF, 210)
    pk2 = struct.pack("<hhiiiiii", 1, 1, 8, 4, 1, 1, 1, 1) + struct.pack("<Ii", _pol(3, 4, 1), 7)
    p = tmp_path / "user01_fluorescent.aedat"
    p.write_bytes(HEADER31 + pk1 + special + pk2)
    ev = ef.read_events(p)
    assert ev.tolist() == [(100, 10, 20, 1), (200, 127, 0, 0), ((1 << 31) | 7, 3, 4, 1)]


def test_aedat31_writer_roundtrip_with_overflow(tmp_path):
    ev = _ev([(5, 1, 2, 1), (10, 127, 127, 0), ((1 << 31) + 3, 64, 9, 1), ((1 << 31) + 4, 0, 0, 0)])
    p = ef.write_aedat31(tmp_path / "r.aedat", ev, packet_size=3)
    raw = p.read_bytes()
    assert raw.startswith(b"#!AER-DAT3.1\r\n") and b"#!END-HEADER\r\n" in raw
    off = raw.index(b"#!END-HEADER\r\n") + 14
    assert struct.unpack_from("<hhiiiiii", raw, off) == (1, 1, 8, 4, 0, 2, 2, 2)  # split at overflow
    np.testing.assert_array_equal(ef.read_events(p), ev)


def test_aedat31_truncated_packet(tmp_path):
    pk = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 4, 4, 4) + bytes(8 * 3)
    p = tmp_path / "t.aedat"
    p.write_bytes(HEADER31 + pk)
    with pytest.raises(CorruptFileError, match="truncated") as ei:
        ef.read_events(p)
    assert f"byte offset {len(HEADER31) + 28}" in str(ei.value)
    p.write_bytes(HEADER31 + pk[:20])
    with pytest.raises(CorruptFileError, match="packet header"):
        ef.read_events(p)
    p.write_bytes(HEADER31 + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1, 2, 1) + bytes(16))
    with pytest.raises(CorruptFileError, match="invalid packet header"):
        ef.read_events(p)
    p.write_bytes(b"#!AER-DAT3.1\r\n#no end\r\n")
    with pytest.raises(CorruptFileError, match="END-HEADER"):
        ef.read_events(p)


# ------------------------------------------------------------------------------------ dispatch
def test_detect_and_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        ef.read_events(tmp_path / "missing.bin")
    q = tmp_path / "x.xyz"
    q.write_bytes(b"hello")
    with pytest.raises(ValueError, match="nmnist-bin"):
        ef.read_events(q)
    q2 = tmp_path / "x.aedat"
    q2.write_bytes(b"\x00" * 16)
    with pytest.raises(CorruptFileError, match="version header"):
        ef.read_events(q2)
    with pytest.raises(ValueError, match="unknown event format"):
        ef.read_events(q, format="avi")


def test_aedat4_without_package(tmp_path):
    p = tmp_path / "r.aedat4"
    p.write_bytes(b"#!AER-DAT4.0\r\n")
    try:
        import aedat  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="pip install aedat"):
            ef.read_events(p)
    else:  # pragma: no cover
        pytest.skip("aedat installed")
