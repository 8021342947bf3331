from __future__ import annotations

import struct

import numpy as np
import pytest

from spikeforge.data import event_formats as ef
from spikeforge.data.errors import (
    CorruptFileError,
    DatasetNotFoundError,
    MissingDependencyError,
    SpikeforgeDataError,
    UnsupportedFormatError,
)


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


# ------------------------------------------------------------------ robustness (issue 13)
def test_nmnist_rejects_empty_and_random_bytes(tmp_path):
    p = tmp_path / "e.bin"
    p.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="no events"):
        ef.read_nmnist_bin(p)
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 5 * 200, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptFileError, match="outside|back in time"):
        ef.read_events(p)


def test_nmnist_plausibility_checks(tmp_path):
    p = tmp_path / "n.bin"
    p.write_bytes(bytes([1, 241, 0, 0, 1]))  # y = 241 > 240: not on the ATIS sensor
    with pytest.raises(CorruptFileError, match="outside"):
        ef.read_nmnist_bin(p)
    p.write_bytes(bytes([1, 2, 0, 0, 9]) + bytes([1, 2, 0, 0, 3]))  # t 9 -> 3
    with pytest.raises(CorruptFileError, match="back in time at event 1") as ei:
        ef.read_nmnist_bin(p)
    assert "byte offset 5" in str(ei.value)
    assert ef.read_nmnist_bin(p, strict=False)["t"].tolist() == [9, 3]
    p.write_bytes(bytes([40, 2, 0, 0, 9]))
    with pytest.raises(CorruptFileError, match="outside the 34x34"):
        ef.read_nmnist_bin(p, sensor_size=(34, 34))


# ------------------------------------------------------------------- DAVIS AEDAT 2.0 layout
DAVIS240_HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                   b"# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n")


def test_aedat2_davis_layout_from_header(tmp_path):
    recs = [
        ((10 << 22) | (20 << 12) | (1 << 11), 5),  # DVS: raw y 10, raw x 20, ON
        ((1 << 31) | (3 << 22) | 100, 6),  # APS ADC sample: dropped
        ((1 << 31) | (3 << 10), 7),  # IMU sample: dropped
        (1 << 10, 8),  # external input event: dropped
        ((0 << 22) | (239 << 12) | (0 << 11), 9),  # DVS: raw y 0, raw x 239, OFF
    ]
    body = b"".join(struct.pack(">II", a, t) for a, t in recs)
    p = tmp_path / "davis.aedat"
    p.write_bytes(DAVIS240_HEADER + body)
    assert ef.read_aedat2(p, orientation="raw").tolist() == [(5, 20, 10, 1), (9, 239, 0, 0)]
    # upright: jAER's x = 239 - raw_x, and row 0 at the top: y = 179 - raw_y
    assert ef.read_events(p).tolist() == [(5, 219, 169, 1), (9, 0, 179, 0)]
    # the DVS128 layout would have read these bits as other pixels
    assert ef.read_aedat2(p, orientation="raw", chip="dvs128").tolist() != [(5, 20, 10, 1), (9, 239, 0, 0)]
    w = ef.write_aedat2(tmp_path / "w.aedat", ef.read_events(p), chip="davis240")
    assert w.read_bytes().endswith(body[:8] + body[32:]) and b"DAVIS240C" in w.read_bytes()


def test_aedat2_davis_roundtrip_and_bounds(tmp_path):
    rng = np.random.default_rng(3)
    n = 500
    ev = ef.make_events(np.sort(rng.integers(0, 2**32, n)), rng.integers(0, 346, n), rng.integers(0, 260, n),
                        rng.integers(0, 2, n))
    for orient in ("upright", "raw"):
        p = ef.write_aedat2(tmp_path / "d.aedat", ev, orientation=orient, chip="davis346")
        np.testing.assert_array_equal(ef.read_aedat2(p, orientation=orient), ev)
    p.write_bytes(DAVIS240_HEADER + struct.pack(">II", (5 << 22) | (300 << 12), 1))  # x 300 on a 240 sensor
    with pytest.raises(CorruptFileError, match="outside the 240x180"):
        ef.read_aedat2(p)
    p.write_bytes(b"#!AER-DAT2.0\r\n# AEChip: org.example.Mystery\r\n")
    with pytest.raises(UnsupportedFormatError, match="chip="):
        ef.read_aedat2(p)
    assert ef.aedat2_chip(["#!AER-DAT2.0", "# AEChip: eu.seebetter.ini.chips.davis.Davis346B"]) == "davis346"
    assert ef.aedat2_chip(["#!AER-DAT2.0", "# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128"]) == "dvs128"
    assert ef.aedat2_chip(["#!AER-DAT2.0"]) == "dvs128"


# ----------------------------------------------------------------------------- Prophesee .dat
DAT_HEADER = b"% Data file containing CD events\n% Date 2020-09-14 14:18:29\n% Version 2\n% Width 640\n% Height 480\n"


def test_prophesee_dat_hand_built(tmp_path):
    recs = [(100, 5 | (7 << 14) | (1 << 28)),  # t 100, x 5, y 7, ON
            (0xFFFFFFF0, 639 | (479 << 14)),  # t 2**32 - 16, x 639, y 479, OFF
            (0x10, 1 | (2 << 14) | (1 << 28))]  # the 32-bit clock wrapped: t = 2**32 + 16
    body = b"".join(struct.pack("<II", t, w) for t, w in recs)
    p = tmp_path / "cars_0001_td.dat"
    p.write_bytes(DAT_HEADER + bytes([12, 8]) + body)
    assert ef.detect_format(p) == "prophesee-dat"
    assert ef.read_events(p).tolist() == [(100, 5, 7, 1), (0xFFFFFFF0, 639, 479, 0), ((1 << 32) + 16, 1, 2, 1)]
    w = ef.write_prophesee_dat(tmp_path / "w.dat", ef.read_events(p)[:2], 640, 480)
    assert w.read_bytes().endswith(bytes([12, 8]) + body[:16])


def test_prophesee_dat_checks(tmp_path):
    p = tmp_path / "x.dat"
    p.write_bytes(DAT_HEADER + bytes([12, 8]) + struct.pack("<II", 1, 700))  # x 700 >= width 640
    with pytest.raises(CorruptFileError, match="outside the 640x480"):
        ef.read_events(p)
    p.write_bytes(DAT_HEADER + bytes([14, 8]) + struct.pack("<II", 1, 0))
    with pytest.raises(CorruptFileError, match="external-trigger"):
        ef.read_events(p)
    p.write_bytes(DAT_HEADER + bytes([12, 8]) + bytes(11))
    with pytest.raises(CorruptFileError, match="truncated last event"):
        ef.read_events(p)
    p.write_bytes(DAT_HEADER + bytes([12, 8]) + struct.pack("<IIII", 9, 0, 3, 0))
    with pytest.raises(CorruptFileError, match="back in time"):
        ef.read_events(p)


def test_prophesee_dat_roundtrip(tmp_path):
    ev = _random_events(2000, 1280, 720, t_max=2**32)
    p = ef.write_prophesee_dat(tmp_path / "r.dat", ev, 1280, 720)
    np.testing.assert_array_equal(ef.read_events(p), ev)


def _random_events(n, w, h, t_max, seed=0):
    rng = np.random.default_rng(seed)
    ev = ef.make_events(np.sort(rng.integers(0, t_max, n)), rng.integers(0, w, n), rng.integers(0, h, n),
                        rng.integers(0, 2, n))
    # a run sharing time, row and polarity with increasing x (EVT 3.0 vectorises it)
    ev[10:20]["t"], ev[10:20]["y"], ev[10:20]["p"] = ev[10]["t"], 3, 1
    ev[10:20]["x"] = [0, 1, 2, 11, 12, 13, 30, 33, 40, 41]
    return ev


# ------------------------------------------------------------------------------ EVT 2.0 .raw
def test_evt2_hand_built(tmp_path):
    words = [
        (8 << 28) | 1,  # TIME_HIGH 1: time base 64
        (1 << 28) | (5 << 22) | (10 << 11) | 20,  # CD_ON  t 69, x 10, y 20
        (0 << 28) | (63 << 22) | (2047 << 11) | 0,  # CD_OFF t 127, x 2047, y 0
        (10 << 28) | 1,  # EXT_TRIGGER: skipped
        (8 << 28) | 2,  # TIME_HIGH 2
        (0 << 28) | (0 << 22) | (1 << 11) | 1,  # CD_OFF t 128, x 1, y 1
        (8 << 28) | 0,  # TIME_HIGH back to 0: the 34-bit clock wrapped
        (1 << 28) | (3 << 22) | (0 << 11) | 5,  # CD_ON t 2**34 + 3
    ]
    p = tmp_path / "rec.raw"
    p.write_bytes(b"% camera_integrator_name Prophesee\n% evt 2.0\n% geometry 2048x720\n% end\n"
                  + struct.pack(f"<{len(words)}I", *words))
    assert ef.detect_format(p) == "evt2"
    assert ef.read_events(p).tolist() == [(69, 10, 20, 1), (127, 2047, 0, 0), (128, 1, 1, 0),
                                          ((1 << 34) + 3, 0, 5, 1)]


def test_evt2_roundtrip_and_checks(tmp_path):
    ev = _random_events(3000, 1280, 720, t_max=2**35)  # crosses the 2**34 us wrap
    p = ef.write_evt2(tmp_path / "r.raw", ev, 1280, 720)
    np.testing.assert_array_equal(ef.read_events(p), ev)
    p.write_bytes(b"% evt 2.0\n% end\n" + struct.pack("<2I", 8 << 28, 3 << 28))
    with pytest.raises(CorruptFileError, match="reserved EVT 2.0 type 3"):
        ef.read_evt2(p)
    p.write_bytes(b"% evt 2.0\n% end\n" + bytes(6))
    with pytest.raises(CorruptFileError, match="truncated"):
        ef.read_evt2(p)


# ------------------------------------------------------------------------------ EVT 3.0 .raw
def test_evt3_hand_built(tmp_path):
    words = [
        0x2001,  # EVT_ADDR_X before any time/row: no complete address, dropped
        0x8001,  # TIME_HIGH 1
        0x6005,  # TIME_LOW 5 -> t = 4096 + 5 = 4101
        0x0007,  # EVT_ADDR_Y y 7
        0x2803,  # EVT_ADDR_X ON x 3 -> (4101, 3, 7, 1)
        0x3010,  # VECT_BASE_X OFF base 16
        0x4005,  # VECT_12 bits 0, 2 -> x 16, 18; base 28
        0x5081,  # VECT_8 bits 0, 7 -> x 28, 35; base 36
        0x7000,  # CONTINUED_4: skipped
        0xE000,  # OTHERS: skipped
        0x6FFF,  # TIME_LOW 4095 -> t 8191
        0x0809,  # EVT_ADDR_Y y 9 (bit 11: system type)
        0x2001,  # EVT_ADDR_X OFF x 1 -> (8191, 1, 9, 0)
        0x8000,  # TIME_HIGH 0 < 1: the 24-bit clock wrapped -> t = 2**24 + 4095
        0x6000,  # TIME_LOW 0 -> t = 2**24
        0x2802,  # EVT_ADDR_X ON x 2 -> (2**24, 2, 9, 1)
    ]
    p = tmp_path / "rec.raw"
    p.write_bytes(b"% format EVT3;height=720;width=1280\n% end\n" + struct.pack(f"<{len(words)}H", *words))
    assert ef.detect_format(p) == "evt3"
    assert ef.read_events(p).tolist() == [
        (4101, 3, 7, 1), (4101, 16, 7, 0), (4101, 18, 7, 0), (4101, 28, 7, 0), (4101, 35, 7, 0),
        (8191, 1, 9, 0), (1 << 24, 2, 9, 1)]


def test_evt3_roundtrip_and_checks(tmp_path):
    ev = _random_events(3000, 1280, 720, t_max=40_000_000)  # two 24-bit wraps
    p = ef.write_evt3(tmp_path / "r.raw", ev, 1280, 720)
    words = np.frombuffer(p.read_bytes()[p.read_bytes().index(b"% end\n") + 6:], "<u2")
    assert np.any(words >> 12 == 4) and np.any(words >> 12 == 3)  # the run was vectorised
    np.testing.assert_array_equal(ef.read_events(p), ev)
    p.write_bytes(b"% format EVT3;height=10;width=10\n% end\n" + struct.pack("<3H", 0x8000, 0x0000, 0x2000 | 15))
    with pytest.raises(CorruptFileError, match="outside the 10x10"):
        ef.read_evt3(p)
    assert ef.read_evt3(p, strict=False).tolist() == [(0, 15, 0, 0)]
    # a vector running past x = 2047 (the 11-bit address space) would wrap in int16
    p.write_bytes(b"% evt 3.0\n% end\n" + struct.pack("<5H", 0x8000, 0x0001, 0x3000 | 2040, 0x4000 | 0x801, 0x6000))
    with pytest.raises(CorruptFileError, match="x=2051"):
        ef.read_evt3(p)
    assert ef.read_evt3(p, strict=False).tolist() == [(0, 2040, 1, 0)]
    p.write_bytes(b"% evt 3.0\n% end\n" + struct.pack("<1H", 0x9000))
    with pytest.raises(CorruptFileError, match="reserved EVT 3.0 type 9"):
        ef.read_evt3(p)


def test_raw_detection(tmp_path):
    p = tmp_path / "x.raw"
    p.write_bytes(b"% format EVT21;height=720;width=1280\n% end\n" + bytes(8))
    with pytest.raises(UnsupportedFormatError, match="EVT 2.1"):
        ef.read_events(p)
    p.write_bytes(b"% date 2024\n% end\n" + bytes(8))
    with pytest.raises(CorruptFileError, match="evt"):
        ef.read_events(p)
    q = tmp_path / "x.dat"  # a .dat is a Prophesee file now, not a corrupt AER-DAT file
    ef.write_prophesee_dat(q, _random_events(30, 304, 240, 10**6), 304, 240)
    assert ef.detect_format(q) == "prophesee-dat" and len(ef.read_events(q)) == 30
    assert issubclass(UnsupportedFormatError, SpikeforgeDataError) and issubclass(CorruptFileError, ValueError)
    b = tmp_path / "image_0001.bin"  # N-Caltech101 event at x = 37 ('%'), y = 32 (' ') comes first
    b.write_bytes(bytes([37, 32, 0x80, 0, 1]) + bytes([10, 10, 0, 0, 2]))
    assert ef.detect_format(b) == "nmnist-bin" and ef.read_events(b).tolist() == [(1, 37, 32, 1), (2, 10, 10, 0)]
