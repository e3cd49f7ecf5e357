"""Data: the embedded 8×8 digits set, a seeded split, and MNIST IDX files.

The digits (1,797 images of 8×8 pixels, UCI "Optical Recognition of Handwritten
Digits", CC BY 4.0; see ``data/DIGITS_SOURCE.md``) ship inside the package, so the
classic example runs offline. MNIST itself is not shipped: point :func:`load_mnist` at a
directory holding the four standard IDX files (plain or gzip-compressed).

>>> x, y = load_digits()
>>> x.shape, y.shape, float(x.min()), float(x.max())
((1797, 64), (1797,), 0.0, 1.0)
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .base import check_dtype

__all__ = ["IDX_DTYPES", "MNIST_FILES", "load_digits", "load_mnist", "read_idx",
           "train_test_split", "write_idx"]


# ---- the embedded digits ---------------------------------------------------------------

@lru_cache(maxsize=1)
def _digits_table() -> np.ndarray:
    resource = resources.files(__package__) / "data" / "digits.csv.gz"
    with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    table.flags.writeable = False  # cached: callers get copies
    return table


def load_digits(*, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """The 8×8 handwritten digits: ``x: (1797, 64)`` pixels scaled to [0, 1] (16 → 1.0),
    ``y: (1797,)`` integer labels 0..9. Fresh arrays on every call."""
    table = _digits_table()
    x = (table[:, :64] / 16.0).astype(check_dtype("load_digits", dtype))
    return x, table[:, 64].copy()


def train_test_split(x: Any, y: Any, *, test_fraction: float,
                     seed: int | np.random.Generator) -> tuple[np.ndarray, ...]:
    """Shuffle rows with ``seed`` and hold out ``test_fraction`` of them.

    Returns ``(x_train, x_test, y_train, y_test)``; the inputs are not modified.

    >>> import numpy as np
    >>> parts = train_test_split(np.arange(10), np.arange(10), test_fraction=0.3, seed=0)
    >>> [len(p) for p in parts]
    [7, 3, 7, 3]
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(f"train_test_split: x and y need the same number of rows (axis 0), "
                         f"got shapes {x.shape} and {y.shape}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"train_test_split: test_fraction must be in (0, 1), "
                         f"got {test_fraction!r}")
    n_test = round(test_fraction * len(x))
    if not 0 < n_test < len(x):
        raise ValueError(f"train_test_split: test_fraction={test_fraction} of {len(x)} rows "
                         f"leaves an empty side; use more rows or another fraction")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    order = rng.permutation(len(x))
    test, train = order[:n_test], order[n_test:]
    return x[train], x[test], y[train], y[test]


# ---- MNIST IDX files -------------------------------------------------------------------

# IDX type byte -> big-endian element type
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}

MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"read_idx: no such file {str(path)!r}; download the IDX "
                                f"files (e.g. MNIST) and pass their path")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"read_idx: {str(path)!r} is a damaged gzip file ({exc})") from exc
    return data


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format; gzip-compressed too) into an array.

    The header is two zero bytes, a type byte (see ``IDX_DTYPES``), the number of
    dimensions, then each dimension as a big-endian uint32; the data follow in C order.
    Returns the array in native byte order, e.g. ``(60000, 28, 28)`` uint8 images.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise ValueError(f"read_idx: {str(path)!r} is not an IDX file: it must start with two "
                         f"zero bytes, a type byte and a dimension count, got "
                         f"{data[:4].hex(' ') or 'an empty file'}")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"read_idx: {str(path)!r} has unknown IDX type byte 0x{code:02X}; "
                         f"expected one of {known}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"read_idx: {str(path)!r} is truncated inside its header: "
                         f"{ndim} dimensions need {header} bytes, the file has {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(f"read_idx: {str(path)!r} is {problem}: shape {shape} of {dtype.name} "
                         f"needs {expected} bytes, the file has {len(data)}")
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: Any, *, compress: bool = False) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if ``compress``); returns the path.

    The array's dtype must be one of ``IDX_DTYPES`` (uint8, int8, int16, int32, float32,
    float64).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "labels-idx1-ubyte.gz"
    ...     read_idx(write_idx(path, np.array([3, 1, 4], dtype=np.uint8), compress=True))
    array([3, 1, 4], dtype=uint8)
    """
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise TypeError(f"write_idx: IDX stores uint8, int8, int16, int32, float32 or "
                        f"float64, got {array.dtype}; convert with array.astype(...)")
    header = bytes([0, 0, codes[native], array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=native.newbyteorder(">")).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(header + body) if compress else header + body)
    return path


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"load_mnist: {stem!r} (or {stem}.gz) not found in "
                            f"{str(directory)!r}; it needs the four files "
                            f"{', '.join(MNIST_FILES.values())}")


def load_mnist(directory: str | os.PathLike[str], *, flatten: bool = True,
               dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read MNIST from the four standard IDX files in ``directory`` (plain or ``.gz``).

    Returns ``(x_train, y_train, x_test, y_test)``: uint8 images scaled to [0, 1], shaped
    ``(N, rows·cols)`` if ``flatten`` else ``(N, 1, rows, cols)`` (NCHW); labels ``(N,)``
    int64.
    """
    directory = Path(directory)
    dtype = check_dtype("load_mnist", dtype)
    out = {}
    for key, stem in MNIST_FILES.items():
        array = read_idx(_find(directory, stem))
        if key.startswith("x"):
            if array.ndim != 3:
                raise ValueError(f"load_mnist: {stem} must hold (N, rows, cols) images, got "
                                 f"shape {array.shape}")
            scale = 255.0 if array.dtype == np.uint8 else 1.0  # uint8 pixels -> [0, 1]
            array = (array / scale).astype(dtype)
            array = array.reshape(len(array), -1) if flatten else array[:, None]
        else:
            array = array.astype(np.int64)
        out[key] = array
    for part in ("train", "test"):
        if len(out[f"x_{part}"]) != len(out[f"y_{part}"]):
            raise ValueError(f"load_mnist: {part} images and labels differ in count: "
                             f"{len(out[f'x_{part}'])} vs {len(out[f'y_{part}'])}")
    return out["x_train"], out["y_train"], out["x_test"], out["y_test"]
