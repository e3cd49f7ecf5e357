"""Data: the embedded digits, the seeded split, and IDX files written by the tests."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck.models.data import (
    IDX_DTYPES,
    MNIST_FILES,
    load_digits,
    load_mnist,
    read_idx,
    train_test_split,
    write_idx,
)

# ---- digits -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_digits_shapes_range_and_labels(dtype):
    x, y = load_digits(dtype=dtype)
    assert x.shape == (1797, 64) and x.dtype == dtype
    assert y.shape == (1797,) and np.issubdtype(y.dtype, np.integer)
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x * 16, np.round(x * 16))  # pixels were 0..16
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.min() >= 170  # every digit, roughly balanced


def test_digits_returns_fresh_arrays():
    x, y = load_digits()
    x[:] = -1
    y[:] = -1
    x2, y2 = load_digits()
    assert x2.min() == 0.0 and y2.min() == 0


def test_digits_look_like_digits():
    # mean images of 0 and 1 differ where a 0 has its hole: the centre column is dark
    # for zeros and bright for ones (a check that rows and labels are not misaligned)
    x, y = load_digits()
    images = x.reshape(-1, 8, 8)
    centre = images[:, 2:6, 3:5].mean(axis=(1, 2))
    assert centre[y == 1].mean() > 2 * centre[y == 0].mean()


# ---- train_test_split -------------------------------------------------------------------

@settings(max_examples=30)
@given(n=st.integers(2, 50), fraction=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_split_is_a_seeded_partition_keeping_rows_paired(n, fraction, seed):
    x = np.arange(n * 2, dtype=float).reshape(n, 2)
    y = np.arange(n) * 10
    n_test = round(fraction * n)
    if not 0 < n_test < n:
        with pytest.raises(ValueError, match="leaves an empty side"):
            train_test_split(x, y, test_fraction=fraction, seed=seed)
        return
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_fraction=fraction, seed=seed)
    assert len(x_test) == len(y_test) == n_test and len(x_train) == n - n_test
    rows = np.concatenate([x_train[:, 0], x_test[:, 0]]) // 2
    np.testing.assert_array_equal(np.sort(rows), np.arange(n))
    np.testing.assert_array_equal(x_train[:, 0] // 2 * 10, y_train)
    np.testing.assert_array_equal(x_test[:, 0] // 2 * 10, y_test)
    again = train_test_split(x, y, test_fraction=fraction, seed=seed)
    np.testing.assert_array_equal(again[1], x_test)


def test_split_depends_on_the_seed_and_leaves_inputs_alone():
    x, y = np.arange(100.0), np.arange(100)
    a = train_test_split(x, y, test_fraction=0.2, seed=0)[1]
    b = train_test_split(x, y, test_fraction=0.2, seed=1)[1]
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(x, np.arange(100.0))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"test_fraction": 0.0, "seed": 0}, r"test_fraction must be in \(0, 1\)"),
    ({"test_fraction": 1.5, "seed": 0}, r"test_fraction must be in \(0, 1\)"),
])
def test_split_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_test_split(np.zeros(10), np.zeros(10), **kwargs)
    with pytest.raises(ValueError, match=r"same number of rows .* \(10,\) and \(9,\)"):
        train_test_split(np.zeros(10), np.zeros(9), test_fraction=0.5, seed=0)


# ---- IDX --------------------------------------------------------------------------------

# type byte, struct code of one big-endian element, numpy dtype
IDX_CODES = [(0x08, "B", np.uint8), (0x09, "b", np.int8), (0x0B, "h", np.int16),
             (0x0C, "i", np.int32), (0x0D, "f", np.float32), (0x0E, "d", np.float64)]


def handmade_idx(code: int, fmt: str, shape: tuple[int, ...], values: list) -> bytes:
    """IDX bytes built from the format description with ``struct``, independent of write_idx."""
    header = struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)
    return header + struct.pack(f">{len(values)}{fmt}", *values)


@pytest.mark.parametrize(("code", "fmt", "dtype"), IDX_CODES)
@pytest.mark.parametrize("compressed", [False, True])
def test_read_idx_decodes_every_type_byte(tmp_path, code, fmt, dtype, compressed):
    values = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 127]
    data = handmade_idx(code, fmt, (2, 3, 2), values)
    path = tmp_path / ("a.idx.gz" if compressed else "a.idx")
    path.write_bytes(gzip.compress(data) if compressed else data)
    array = read_idx(path)
    assert array.dtype == dtype and array.dtype.isnative
    np.testing.assert_array_equal(array, np.array(values).reshape(2, 3, 2))


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"  # no .gz suffix
    path.write_bytes(gzip.compress(handmade_idx(0x08, "B", (3,), [7, 8, 9])))
    np.testing.assert_array_equal(read_idx(path), [7, 8, 9])


idx_arrays = st.sampled_from([dt for _, _, dt in IDX_CODES]).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4)))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(array=idx_arrays, compress=st.booleans())
def test_write_then_read_round_trips(tmp_path, array, compress):
    path = write_idx(tmp_path / "round.idx", array, compress=compress)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)  # NaNs compare equal here


def test_write_idx_matches_the_handmade_encoding(tmp_path):
    array = np.array([[1, -2], [300, 4]], dtype=np.int16)
    path = write_idx(tmp_path / "w.idx", array)
    assert path.read_bytes() == handmade_idx(0x0B, "h", (2, 2), [1, -2, 300, 4])


@pytest.mark.parametrize(("content", "match"), [
    (b"", "not an IDX file"),
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", r"not an IDX file.*01 00 08 01"),
    (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x05", "unknown IDX type byte 0x0A"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated inside its header"),
    (handmade_idx(0x08, "B", (2, 3), [1, 2, 3, 4, 5, 6])[:-2],
     r"is truncated: shape \(2, 3\) of uint8 needs 18 bytes, the file has 16"),
    (handmade_idx(0x0C, "i", (2,), [1, 2]) + b"\x00", "longer than its header says"),
    (gzip.compress(b"\x00\x00\x08\x01", mtime=0)[:-6], "damaged gzip"),
], ids=["empty", "bad-magic", "bad-type", "short-header", "short-data", "trailing",
        "damaged-gzip"])
def test_read_idx_errors(tmp_path, content, match):
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such file .*nothing\.idx"):
        read_idx(tmp_path / "nothing.idx")


def test_write_idx_rejects_unsupported_dtypes(tmp_path):
    with pytest.raises(TypeError, match=r"IDX stores uint8.*got int64"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.int64))
    assert {dt.newbyteorder("=") for dt in IDX_DTYPES.values()} == {
        np.dtype(dt) for _, _, dt in IDX_CODES}


# ---- MNIST ------------------------------------------------------------------------------

def fake_mnist(directory, *, n_train=5, n_test=3, gz=("x_train",)) -> dict:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 4, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 4, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        name = MNIST_FILES[key] + (".gz" if key in gz else "")
        write_idx(directory / name, array, compress=key in gz)
    return arrays


@pytest.mark.parametrize("flatten", [True, False])
def test_load_mnist_reads_the_four_files(tmp_path, flatten):
    arrays = fake_mnist(tmp_path)
    x_train, y_train, x_test, y_test = load_mnist(tmp_path, flatten=flatten, dtype=np.float32)
    expected_train = arrays["x_train"].astype(np.float32) / 255
    if flatten:
        assert x_train.shape == (5, 12) and x_test.shape == (3, 12)
        expected_train = expected_train.reshape(5, 12)
    else:
        assert x_train.shape == (5, 1, 4, 3) and x_test.shape == (3, 1, 4, 3)
        expected_train = expected_train[:, None]
    assert x_train.dtype == np.float32
    np.testing.assert_allclose(x_train, expected_train, rtol=1e-6)
    np.testing.assert_array_equal(y_train, arrays["y_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    assert y_train.dtype == np.int64


def test_load_mnist_names_the_missing_file(tmp_path):
    fake_mnist(tmp_path)
    (tmp_path / MNIST_FILES["y_test"]).unlink()
    with pytest.raises(FileNotFoundError, match=r"'t10k-labels-idx1-ubyte' .* not found"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_mismatched_counts(tmp_path):
    fake_mnist(tmp_path)
    write_idx(tmp_path / MNIST_FILES["y_train"], np.zeros(4, dtype=np.uint8))
    with pytest.raises(ValueError, match="train images and labels differ in count: 5 vs 4"):
        load_mnist(tmp_path)
