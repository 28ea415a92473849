"""``read_idx``: one file of the IDX format (MNIST's), raw or gzip-compressed, fully validated.

An IDX file is a 4-byte magic number (two zero bytes, a data type code, the number of dimensions),
one big-endian uint32 per dimension, then the values, big-endian, in row-major order. Nothing here
trusts the header: the values are read in chunks up to the size the header gives, so a header that
claims more than the file holds costs no more memory than the file's content, and a gzip stream
that decompresses to more than the header gives is counted, never held.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

# IDX data type code -> the big-endian numpy dtype of the values
DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20     # bytes read at a time


def read_idx(file: str | os.PathLike[str]) -> np.ndarray:
    """The array stored in the IDX file ``file``, gzip-compressed or not (told by its content).

    Returns a new, writeable numpy array with the header's shape (any number of dimensions) and its
    type in native byte order: uint8, int8, int16, int32, float32 or float64. Raises
    ``FileNotFoundError`` if there is no such file, and ``ValueError`` naming the file and what is
    wrong when it is not a valid IDX file: corrupt gzip data, a wrong magic number, an unknown type
    code, or a length that differs from the one the header's dimensions give (truncated or extra
    bytes). Memory use is bounded by the file's (decompressed) content, whatever its header claims.
    """
    file = Path(file)
    with open(file, "rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if not gzipped:
            return _parse(file, raw, "")
        try:
            with gzip.GzipFile(fileobj=raw) as stream:
                return _parse(file, stream, " once decompressed")
        except (OSError, EOFError, zlib.error) as err:    # gzip.BadGzipFile is an OSError
            raise ValueError(f"{file}: corrupt gzip data ({err})") from None


def _parse(file: Path, stream: BinaryIO, unzipped: str) -> np.ndarray:
    """The array in the IDX ``stream`` read from ``file``; ``unzipped`` qualifies the sizes that
    errors give."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise ValueError(f"{file}: {len(magic)} bytes{unzipped}, too short for an IDX header (4 "
                         f"bytes of magic number, then 4 per dimension)")
    number = int.from_bytes(magic, "big")
    if magic[:2] != b"\0\0":
        what = unzipped or (" nor gzip data, though named .gz" if file.suffix == ".gz" else "")
        raise ValueError(f"{file}: not an IDX file{what}: magic number 0x{number:08X}, expected "
                         f"0x0000TTDD (two zero bytes, type code TT, number of dimensions DD)")
    code, ndim = magic[2], magic[3]
    if code not in DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in DTYPES)
        raise ValueError(f"{file}: magic number 0x{number:08X} has an unknown IDX type code "
                         f"0x{code:02X} (known: {known})")
    start = 4 + 4 * ndim
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{file}: truncated: {4 + len(dims)} bytes{unzipped}, but a header of "
                         f"{ndim} dimensions takes {start}")
    shape = tuple(int.from_bytes(dims[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = DTYPES[code]
    expected = start + math.prod(shape) * dtype.itemsize
    values = _read_up_to(stream, expected - start)
    length = start + len(values) + _count_rest(stream)
    if length != expected:
        what = "truncated" if length < expected else f"{length - expected} extra bytes"
        raise ValueError(f"{file}: {what}: {length} bytes{unzipped}, but its header gives shape "
                         f"{shape} of {dtype.newbyteorder('=').name}, which takes {expected}")
    return np.frombuffer(values, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(shape)


def _read_up_to(stream: BinaryIO, size: int) -> bytearray:
    """The next ``size`` bytes of ``stream``, or all that is left if fewer, read chunk by chunk:
    never more memory than the stream holds, whatever ``size`` is."""
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(min(CHUNK, size - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _count_rest(stream: BinaryIO) -> int:
    """The number of bytes left in ``stream``, read chunk by chunk and dropped."""
    count = 0
    while chunk := stream.read(CHUNK):
        count += len(chunk)
    return count
