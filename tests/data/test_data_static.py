from __future__ import annotations

import gzip
import os
import pickle
import struct
import tracemalloc

import numpy as np
import pytest

from spikeforge.data import static
from spikeforge.data.errors import CorruptFileError, DatasetNotFoundError


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def test_idx_byte_exact_header_and_gzip(tmp_path):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = tmp_path / "a-idx3-ubyte"
    raw.write_bytes(_idx_bytes(imgs))
    assert raw.read_bytes()[:16] == bytes.fromhex("00000803" "00000002" "00000003" "00000004")
    np.testing.assert_array_equal(static.read_idx(raw), imgs)
    gz = tmp_path / "a-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(_idx_bytes(imgs)))
    np.testing.assert_array_equal(static.read_idx(gz), imgs)
    # writer produces the same bytes as the hand-built file
    static.write_idx(tmp_path / "w", imgs)
    assert (tmp_path / "w").read_bytes() == raw.read_bytes()


def test_idx_other_dtypes_roundtrip(tmp_path):
    for arr in (np.array([-1, 2, -3], np.int32), np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)):
        p = static.write_idx(tmp_path / f"x_{arr.dtype}.gz", arr)
        out = static.read_idx(p)
        assert out.dtype == arr.dtype
        np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize(
    "blob, needle",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "two zero bytes"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "type code"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "header needs"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "need 5 data bytes, found 2"),
        (b"\x00\x00", "shorter than"),
    ],
)
def test_idx_corrupt(tmp_path, blob, needle):
    p = tmp_path / "bad-idx"
    p.write_bytes(blob)
    with pytest.raises(CorruptFileError) as ei:
        static.read_idx(p)
    assert needle in str(ei.value) and str(p) in str(ei.value)


def test_idx_truncated_gzip(tmp_path):
    p = tmp_path / "t.gz"
    p.write_bytes(gzip.compress(_idx_bytes(np.zeros((5, 4, 4), np.uint8)))[:-10])
    with pytest.raises(CorruptFileError, match="gzip"):
        static.read_idx(p)


def test_idx_missing_names_path(tmp_path):
    with pytest.raises(DatasetNotFoundError) as ei:
        static.read_idx(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(ei.value) and "SPIKEFORGE_DATA" in str(ei.value)
    assert isinstance(ei.value, FileNotFoundError)


def test_load_idx_split(tmp_path, fakes):
    ref = fakes.mnist_like(tmp_path, gz=False)
    x, y = static.load_idx_split(tmp_path, "test")
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0] * 255, ref["test"][0], atol=1e-3)
    np.testing.assert_array_equal(y, ref["test"][1])


def test_load_idx_label_count_mismatch(tmp_path, fakes):
    fakes.mnist_like(tmp_path)
    static.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(CorruptFileError, match="4 labels for 5 images"):
        static.load_idx_split(tmp_path, "test")


def test_cifar10_roundtrip(tmp_path, fakes):
    fakes.cifar10(tmp_path)
    x, y, classes = static.load_cifar10(tmp_path, "train")
    assert x.shape == (20, 3, 32, 32) and y.shape == (20,) and classes[0] == "airplane"
    b = fakes.batch(4, 0)
    np.testing.assert_allclose(x[0, 1, 0, :3] * 255, b[b"data"][0, 1024:1027], atol=1e-3)  # G plane row 0


def test_cifar100_fine_and_coarse(tmp_path, fakes):
    for split in ("train", "test"):
        d = fakes.batch(3, 0, b"fine_labels")
        d[b"coarse_labels"] = [1, 2, 3]
        with open(tmp_path / split, "wb") as f:
            pickle.dump(d, f, protocol=2)
    x, y, classes = static.load_cifar100(tmp_path, "test", label="coarse")
    assert y.tolist() == [1, 2, 3] and len(classes) == 20


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code(tmp_path, fakes):
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"data": _Evil()}, protocol=2))
    with pytest.raises(CorruptFileError, match="not allowed"):
        static.read_cifar_batch(p)


def test_cifar_truncated(tmp_path, fakes):
    p = tmp_path / "test_batch"
    p.write_bytes(pickle.dumps(fakes.batch(4, 0), protocol=2)[:500])
    with pytest.raises(CorruptFileError) as ei:
        static.read_cifar_batch(p)
    assert str(p) in str(ei.value)


def test_cifar_bad_shape(tmp_path, fakes):
    p = tmp_path / "b"
    p.write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, protocol=2))
    with pytest.raises(CorruptFileError, match=r"uint8 \[N, 3072\]"):
        static.read_cifar_batch(p)


def test_imagefolder(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    for c, val in (("cat", 10), ("dog", 200)):
        (tmp_path / c).mkdir()
        for i in range(5):
            Image.fromarray(np.full((6, 7, 3), val + i, np.uint8)).save(tmp_path / c / f"{i}.png")
    x, y, classes, _ = static.load_imagefolder(tmp_path, "train")
    xt, yt, _, _ = static.load_imagefolder(tmp_path, "test")
    assert classes == ["cat", "dog"] and x.shape == (8, 3, 6, 7) and y.tolist() == [0] * 4 + [1] * 4
    assert yt.tolist() == [0, 1] and np.isclose(xt[0, 0, 0, 0] * 255, 14)  # last file of 'cat'
    xs, *_ = static.load_imagefolder(tmp_path, "train", size=(4, 4), mode="L")
    assert xs.shape == (8, 1, 4, 4)
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CorruptFileError, match="broken.png"):
        static.load_imagefolder(tmp_path, "test")


def test_digits_split_is_deterministic_and_stratified():
    x, y = static.load_digits_split("train")
    xt, yt = static.load_digits_split("test")
    assert x.shape == (1437, 1, 8, 8) and xt.shape == (360, 1, 8, 8)
    assert 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(static.load_digits_split("test")[1], yt)
    frac = np.bincount(yt, minlength=10) / np.bincount(np.concatenate([y, yt]), minlength=10)
    assert np.all(np.abs(frac - 0.2) < 0.02)


def test_normalize_and_stats():
    x = np.random.default_rng(0).random((10, 3, 4, 4)).astype(np.float32)
    m, s = static.channel_stats(x)
    z = static.normalize(x, m, s)
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-4)


# ------------------------------------------------------------------ robustness (issue 13)
def test_idx_dim_product_overflowing_int64_is_corrupt(tmp_path):
    # 4 dims of 2**16: the product 2**64 wraps to 0 in int64, which matched the empty data section
    p = tmp_path / "wrap-idx"
    p.write_bytes(b"\x00\x00\x08\x04" + struct.pack(">4I", 1 << 16, 1 << 16, 1 << 16, 1 << 16))
    with pytest.raises(CorruptFileError, match="max_bytes"):
        static.read_idx(p)


def test_idx_gzip_declaring_more_than_deflate_can_hold(tmp_path):
    p = tmp_path / "bomb-idx.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 1 << 31) + bytes(1000)))
    with pytest.raises(CorruptFileError, match="gzip file can hold"):
        static.read_idx(p)


def test_idx_gzip_is_streamed_with_a_budget_from_the_header(tmp_path):
    # declares 1 MB, decompresses to 64 MB: only the declared size (+1 byte) may be inflated
    p = tmp_path / "long-idx.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 1 << 20) + bytes(64 << 20), 1))
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFileError, match=f"need {1 << 20} data bytes, found more"):
            static.read_idx(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_idx_gzip_roundtrip_big_endian(tmp_path):
    a = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 1000003
    static.write_idx(tmp_path / "a.gz", a)
    b = static.read_idx(tmp_path / "a.gz")
    assert b.dtype == np.int32 and b.dtype.isnative and b.flags.writeable
    np.testing.assert_array_equal(b, a)


def _pickled(tmp_path, obj_or_bytes):
    p = tmp_path / "data_batch_1"
    p.write_bytes(obj_or_bytes if isinstance(obj_or_bytes, bytes) else pickle.dumps(obj_or_bytes, protocol=2))
    return p


@pytest.mark.parametrize("labels, needle", [
    ([0, 10], r"range \[0, 10\] is outside the 10 classes"),
    ([-1, 3], r"range \[-1, 3\]"),
    ([0, 1.5], "non-integer label"),
    (["a", "b"], "non-integer label"),
    ([True, False], "non-integer label"),
    (np.array([[0, 1]]), "1-D integers"),
    (np.array([0.0, 1.0]), "1-D integers"),
    ({b"x": 1}, "list of integers"),
])
def test_cifar_bad_labels(tmp_path, labels, needle):
    p = _pickled(tmp_path, {b"data": np.zeros((2, 3072), np.uint8), b"labels": labels})
    with pytest.raises(CorruptFileError, match=needle):
        static.read_cifar_batch(p)


def test_cifar100_label_ranges(tmp_path):
    d = {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 99], b"coarse_labels": [0, 20]}
    p = _pickled(tmp_path, d)
    assert static.read_cifar_batch(p, "fine_labels")[1].tolist() == [0, 99]
    with pytest.raises(CorruptFileError, match="20 classes"):
        static.read_cifar_batch(p, "coarse_labels")


@pytest.mark.parametrize("data", [np.zeros((2, 3072), np.int64), np.zeros(3072 * 2, np.uint8), [[0] * 3072] * 2])
def test_cifar_bad_data(tmp_path, data):
    p = _pickled(tmp_path, {b"data": data, b"labels": [0, 1]})
    with pytest.raises(CorruptFileError, match=r"uint8 \[N, 3072\]"):
        static.read_cifar_batch(p)


@pytest.mark.parametrize("blob, needle", [
    # _codecs.encode('x', 'nope'): a LookupError escaped before
    (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00nope\x86R.", "latin1"),
    # BINBYTES8 announcing 2**62 bytes: the C unpickler allocated first (MemoryError)
    (b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b".", "bytes8"),
    # numpy _reconstruct(ndarray, (10**12,), b'b'): a 1 TB allocation
    (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85"
     b"C\x01b\x87R.", "placeholder"),
    # calling numpy.ndarray((10**12,)) directly
    (b"\x80\x02cnumpy\nndarray\n\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85R.", "not callable|invalid pickle"),
    # numpy.dtype('O'): object arrays
    (b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00O8\x85R.", "numbers only"),
])
def test_cifar_hostile_pickles_raise_corrupt(tmp_path, blob, needle):
    with pytest.raises(CorruptFileError, match=needle):
        static.read_cifar_batch(_pickled(tmp_path, blob))


def test_cifar_numpy_pickles_still_load(tmp_path):
    d = {b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), b"labels": np.array([3, 7], np.int32)}
    for labels in (np.array([3, 7], np.int32), [np.int64(3), np.uint8(7)]):  # arrays or numpy scalars
        d[b"labels"] = labels
        for proto in (2, 4, 5):
            x, y = static.read_cifar_batch(_pickled(tmp_path, pickle.dumps(d, protocol=proto)))
            assert y.tolist() == [3, 7] and x.shape == (2, 3, 32, 32) and x[1, 2, 31, 31] == (2 * 3072 - 1) % 256
