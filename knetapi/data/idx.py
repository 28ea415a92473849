"""``read_idx``: one file of the IDX format (MNIST's), raw or gzip-compressed, fully validated.

An IDX file is a 4-byte magic number (two zero bytes, a data type code, the number of dimensions),
one big-endian uint32 per dimension, then the values, big-endian, in row-major order. Nothing here
trusts the header without checking it against the file's length.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

# IDX data type code -> the big-endian numpy dtype of the values
DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(file: str | os.PathLike[str]) -> np.ndarray:
    """The array stored in the IDX file ``file``, gzip-compressed or not (told by its content).

    Returns a new, writeable numpy array with the header's shape (any number of dimensions) and its
    type in native byte order: uint8, int8, int16, int32, float32 or float64. Raises
    ``FileNotFoundError`` if there is no such file, and ``ValueError`` naming the file and what is
    wrong when it is not a valid IDX file: corrupt gzip data, a wrong magic number, an unknown type
    code, or a length that differs from the one the header's dimensions give (truncated or extra
    bytes).
    """
    file = Path(file)
    data = file.read_bytes()
    gzipped = data[:2] == GZIP_MAGIC
    if gzipped:
        data = _gunzip(file, data)
    size = f"{len(data)} bytes{' once decompressed' if gzipped else ''}"
    if len(data) < 4:
        raise ValueError(f"{file}: {size}, too short for an IDX header (4 bytes of "
                         f"magic number, then 4 per dimension)")
    magic = int.from_bytes(data[:4], "big")
    if data[:2] != b"\0\0":
        what = (" once decompressed" if gzipped else
                " nor gzip data, though named .gz" if file.suffix == ".gz" else "")
        raise ValueError(f"{file}: not an IDX file{what}: magic number 0x{magic:08X}, expected "
                         f"0x0000TTDD (two zero bytes, type code TT, number of dimensions DD)")
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in DTYPES)
        raise ValueError(f"{file}: magic number 0x{magic:08X} has an unknown IDX type code "
                         f"0x{code:02X} (known: {known})")
    start = 4 + 4 * ndim
    if len(data) < start:
        raise ValueError(f"{file}: truncated: {size}, but a header of {ndim} dimensions "
                         f"takes {start}")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = DTYPES[code]
    count = math.prod(shape)
    expected = start + count * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else f"{len(data) - expected} extra bytes"
        raise ValueError(f"{file}: {what}: {size}, but its header gives shape {shape} "
                         f"of {dtype.newbyteorder('=').name}, which takes {expected}")
    values = np.frombuffer(data, dtype=dtype, count=count, offset=start)
    return values.astype(dtype.newbyteorder("=")).reshape(shape)


def _gunzip(file: Path, data: bytes) -> bytes:
    """The gzip data ``data`` of ``file``, decompressed; ValueError naming the file if corrupt."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:    # gzip.BadGzipFile is an OSError
        raise ValueError(f"{file}: corrupt gzip data ({err})") from None
