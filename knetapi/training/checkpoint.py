"""``save`` and ``load``: parameters to and from safetensors files, a format that holds only data.

A checkpoint is a standard safetensors file: one tensor per array leaf, named by its pytree path
(``params['layer1'][0]``), and in the file's metadata, under ``knetapi``, the pytree as JSON:

- ``{"list": [...]}``, ``{"tuple": [...]}``, ``{"dict": {key: ...}}`` (string keys),
  ``{"namedtuple": name, "fields": {field: ...}}``,
- ``{"array": tensor name, "backend": backend name}`` for an array leaf,
- JSON numbers, booleans and null for Python int, float, bool and None leaves.

Loading parses that JSON and reads raw tensor bytes; nothing in the file is ever executed (no
pickle), and a file that is not such a checkpoint raises :class:`CheckpointError` naming the file
and what is wrong with it. Every entry of the safetensors header is checked against the file's
length before a tensor is read, so a header that lies about sizes or offsets costs nothing. A
safetensors file written by other tools (no ``knetapi`` metadata) loads as a dict from tensor name
to array. ``safetensors`` is imported only when saving or loading.
"""

from __future__ import annotations

import collections
import json
import math
import os
import uuid
from typing import Any, NoReturn

import numpy as np

from .. import registry
from ..convert import convert, to_numpy
from ..pytree import MAX_DEPTH, enter, is_namedtuple
from ..traced import Traced

METADATA_KEY = "knetapi"
FORMAT_KEY = "knetapi_format"
FORMAT = "1"
ROOT = "params"
MAX_HEADER_BYTES = 100_000_000        # safetensors' own limit on the JSON header

_FOREIGN_FORMATS = (   # leading bytes of files people may mistake for checkpoints
    (b"\x80", "a Python pickle (pickle, joblib, or torch.save's legacy format)"),
    (b"PK\x03\x04", "a zip archive (torch.save or numpy.savez)"),
    (b"\x93NUMPY", "a numpy .npy file"),
    (b"\x89HDF", "an HDF5 file"),
)

# safetensors' dtype names -> the numpy dtypes they hold: what a checkpoint stores and loads
DTYPES = {name: np.dtype(t) for name, t in (
    ("BOOL", np.bool_), ("U8", np.uint8), ("I8", np.int8), ("U16", np.uint16), ("I16", np.int16),
    ("U32", np.uint32), ("I32", np.int32), ("U64", np.uint64), ("I64", np.int64),
    ("F16", np.float16), ("F32", np.float32), ("F64", np.float64), ("C64", np.complex64))}


class CheckpointError(ValueError):
    """The file is not a valid knetapi checkpoint (truncated, corrupt, foreign or inconsistent)."""


def save(path: str | os.PathLike, params: Any) -> None:
    """Save the pytree ``params`` to the safetensors file ``path`` (replaced atomically if it exists).

    Array leaves of any registered backend keep their dtype and backend name (arrays are stored from
    host memory: device placement is not kept; numpy scalars come back as 0-d numpy arrays); Python
    int, float, bool and None leaves are kept exactly; lists, tuples, named tuples and dicts with
    string keys keep their structure. Nothing is written when ``params`` cannot be saved (a leaf
    of another type, a cyclic tree or one nested too deeply: TypeError or ValueError naming its
    path)."""
    path = _check_path(path, "save")
    if os.path.isdir(path):
        raise IsADirectoryError(f"kn.save: {path} is a folder; give a file name")
    tensors: dict[str, np.ndarray] = {}
    structure = _encode(params, ROOT, tensors, {})
    metadata = {METADATA_KEY: json.dumps(structure), FORMAT_KEY: FORMAT}
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"kn.save: cannot write {path}: the folder {folder} does not exist")
    safetensors = _safetensors()
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        safetensors.numpy.save_file(tensors, temporary, metadata=metadata)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def load(path: str | os.PathLike, backend: str | None = None) -> Any:
    """The pytree saved by :func:`save` in ``path``: same structure, dtypes and leaf backends, or
    every array on ``backend`` (a registered name such as ``"numpy"`` or ``"torch"``) if given.

    Raises FileNotFoundError for a missing file and :class:`CheckpointError` for a file that is not
    a valid checkpoint; never executes anything from the file."""
    path = _check_path(path, "load")
    if backend is not None:
        registry.get_backend(backend)               # a clear error for an unknown name, up front
    if not os.path.exists(path):
        raise FileNotFoundError(f"kn.load: no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"kn.load: {path} is a folder, not a checkpoint file")
    _check_header(path)
    tensors, metadata = _read(path)
    if metadata is None or METADATA_KEY not in metadata:
        return {name: _on_backend(t, backend or "numpy", path, name) for name, t in tensors.items()}
    if metadata.get(FORMAT_KEY) != FORMAT:
        raise CheckpointError(f"kn.load: {path} has knetapi format {metadata.get(FORMAT_KEY)!r}; "
                              f"this version reads format {FORMAT}")
    try:
        structure = json.loads(metadata[METADATA_KEY])
    except RecursionError:
        raise _too_deep(path, ROOT) from None
    except ValueError as e:
        raise CheckpointError(f"kn.load: {path}: the pytree in its metadata is not valid JSON "
                              f"({e})") from None
    used: set[str] = set()
    tree = _decode(structure, ROOT, 0, tensors, used, backend, path)
    unused = sorted(set(tensors) - used)
    if unused:
        raise CheckpointError(f"kn.load: {path}: the metadata's pytree does not use the tensor(s) "
                              f"{', '.join(map(repr, unused[:5]))}{' ...' if len(unused) > 5 else ''}; "
                              f"the file is inconsistent")
    return tree


def _check_path(path: Any, what: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"kn.{what}: path must be a str or os.PathLike, got {registry.describe(path)}")
    return os.fspath(path)


def _safetensors():
    """The safetensors package (with its numpy module), imported on first use."""
    try:
        import safetensors
        import safetensors.numpy
    except ImportError:
        raise ImportError("kn.save and kn.load need the safetensors package, which is not "
                          "installed: pip install safetensors") from None
    return safetensors


# --- saving -------------------------------------------------------------------------------------
def _encode(tree: Any, path: str, tensors: dict[str, np.ndarray], ancestors: dict[int, str]) -> Any:
    """The metadata's JSON for ``tree``, adding its arrays to ``tensors``; ``ancestors`` are the
    containers above it (knetapi.pytree.enter: a cyclic or too deep tree is a ValueError)."""
    if isinstance(tree, (dict, list, tuple)):
        ancestors = enter(tree, path, ancestors)
    if isinstance(tree, dict):
        for k in tree:
            if not isinstance(k, str):
                raise TypeError(f"kn.save: {path} has the key {k!r} of type {registry.describe(k)}; "
                                f"checkpoints keep dicts with string keys only")
        return {"dict": {k: _encode(v, f"{path}[{k!r}]", tensors, ancestors)
                         for k, v in tree.items()}}
    if is_namedtuple(tree):
        return {"namedtuple": type(tree).__name__,
                "fields": {f: _encode(v, f"{path}.{f}", tensors, ancestors)
                           for f, v in zip(tree._fields, tree)}}
    if isinstance(tree, (list, tuple)):
        kind = "list" if isinstance(tree, list) else "tuple"
        return {kind: [_encode(v, f"{path}[{i}]", tensors, ancestors) for i, v in enumerate(tree)]}
    if tree is None or isinstance(tree, (bool, int, float)) and not isinstance(tree, np.generic):
        return tree
    if type(tree) is Traced:
        raise TypeError(f"kn.save: {path} is a traced value (saved inside grad?); save the "
                        f"parameters outside the differentiated function")
    backend = registry.owner(type(tree))
    if backend is None:
        raise TypeError(f"kn.save: {path} is a {registry.describe(tree)}; checkpoints hold arrays of "
                        f"registered backends ({', '.join(sorted(registry.backends()))}), Python "
                        f"int, float, bool and None, in lists, tuples and dicts with string keys")
    try:
        host = np.asarray(to_numpy(tree), order="C")
    except (TypeError, RuntimeError, BufferError) as e:
        raise TypeError(f"kn.save: {path} (dtype {tree.dtype}) cannot be copied to a numpy array "
                        f"({e}); cast it first, e.g. to float32") from None
    if host.dtype not in DTYPES.values():
        raise TypeError(f"kn.save: {path} has dtype {tree.dtype}, which safetensors cannot store")
    tensors[path] = host
    return {"array": path, "backend": backend.name}


# --- loading ------------------------------------------------------------------------------------
def _check_header(path: str) -> None:
    """Check the safetensors framing (an 8-byte little-endian header length, then a JSON object)
    and every tensor entry of the header against the data after it, before safetensors parses
    the file, so that foreign, truncated, corrupt and hostile files get an error naming the
    file, the tensor and the field at fault."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        start = f.read(8)
        length = int.from_bytes(start, "little") if len(start) == 8 else None
        plausible = length is not None and length <= min(MAX_HEADER_BYTES, size - 8)
        text = f.read(length) if plausible else b""
    if not text.startswith(b"{"):
        _refuse_framing(path, start, length, size)
    try:
        header = json.loads(text)
    except RecursionError:
        raise _invalid(path, "its header is nested too deeply") from None
    except ValueError as e:                   # UnicodeDecodeError is a ValueError
        raise _invalid(path, f"its header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise _invalid(path, "its header is not a JSON object")
    _check_tensors(header, size - 8 - length, path)


def _invalid(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"kn.load: {path} is not a valid safetensors file: {what}; the file is "
                           f"corrupt or truncated (save it again, or restore a good copy)")


def _refuse_framing(path: str, start: bytes, length: int | None, size: int) -> NoReturn:
    """Raise the CheckpointError saying why ``path`` (whose first bytes are ``start``) has no
    safetensors header: a foreign format, too short, a header length out of bounds, not JSON."""
    for magic, what in _FOREIGN_FORMATS:
        if start.startswith(magic):
            raise CheckpointError(f"kn.load: {path} looks like {what}, not a safetensors "
                                  f"checkpoint; knetapi never unpickles or runs code from a file")
    if length is None:
        raise CheckpointError(f"kn.load: {path} has {size} byte(s): too short for a safetensors "
                              f"file (truncated or empty)")
    if length > MAX_HEADER_BYTES:
        raise CheckpointError(f"kn.load: {path}: its header claims {length} bytes, more than the "
                              f"{MAX_HEADER_BYTES} safetensors allows; the file is corrupt, "
                              f"hostile or not a safetensors file")
    if length > size - 8:
        raise CheckpointError(f"kn.load: {path}: its header claims {length} bytes but only "
                              f"{size - 8} follow; the file is truncated or corrupt")
    raise CheckpointError(f"kn.load: {path} is not a safetensors file: its header is not a JSON "
                          f"object")


def _check_tensors(header: dict, data_size: int, path: str) -> None:
    """Check the tensor entries of the safetensors ``header`` against the ``data_size`` bytes after
    it: a dtype numpy holds, a shape of non-negative ints, ``data_offsets`` inside the data that
    span the shape's byte size, and spans that tile the data (no overlap, gap or extra bytes)."""
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise _invalid(path, "its __metadata__ is not a JSON object of strings")
            continue
        if not isinstance(entry, dict):
            raise _invalid(path, f"the entry of tensor {name!r} is not a JSON object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPES:
            raise CheckpointError(f"kn.load: {path}: tensor {name!r} has the dtype {dtype!r}, "
                                  f"which knetapi does not load (it loads {', '.join(DTYPES)}: "
                                  f"numpy's); read such a file with safetensors.torch.load_file")
        if not _ints(shape):
            raise _invalid(path, f"tensor {name!r} has the shape {shape!r}, not a list of "
                                 f"non-negative integers")
        if not (_ints(offsets) and len(offsets) == 2 and offsets[0] <= offsets[1] <= data_size):
            raise _invalid(path, f"tensor {name!r} has the data_offsets {offsets!r}, not [begin, "
                                 f"end] with 0 <= begin <= end <= {data_size}, the bytes of data "
                                 f"after the header")
        nbytes = math.prod(shape) * DTYPES[dtype].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise _invalid(path, f"tensor {name!r} has the shape {shape} of {dtype}, {nbytes} "
                                 f"bytes, but its data_offsets {offsets} span "
                                 f"{offsets[1] - offsets[0]}")
        spans.append((offsets[0], offsets[1], name))
    end, before = 0, "the start of the data"
    for begin, stop, name in sorted(spans):
        if begin != end:
            what = "overlaps" if begin < end else f"leaves bytes {end} to {begin} unused after"
            raise _invalid(path, f"the data of tensor {name!r} {what} {before} (safetensors "
                                 f"stores the tensors back to back)")
        end, before = stop, f"tensor {name!r}"
    if end != data_size:
        raise _invalid(path, f"its tensors' data ends at byte {end}, but {data_size} bytes follow "
                             f"the header")


def _ints(x: Any) -> bool:
    """Whether ``x`` is a JSON list of non-negative integers."""
    return isinstance(x, list) and all(type(i) is int and i >= 0 for i in x)


def _read(path: str) -> tuple[dict[str, np.ndarray], dict[str, str] | None]:
    safetensors = _safetensors()
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            return {name: f.get_tensor(name) for name in f.keys()}, f.metadata()
    except safetensors.SafetensorError as e:
        raise CheckpointError(f"kn.load: {path} is not a valid safetensors file: {e}") from None


def _decode(node: Any, path: str, depth: int, tensors: dict[str, np.ndarray], used: set[str],
            backend: str | None, file: str) -> Any:
    """The pytree that the metadata's JSON ``node`` describes, checked against ``tensors``;
    ``node`` is inside ``depth`` containers."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"kn.load: {file}: malformed metadata at {path}: {what}; kn.save "
                               f"never writes that: the file is corrupt or hostile")

    def items(key: str, kind: type) -> Any:
        if not isinstance(node[key], kind):
            raise bad(f"{key!r} must hold a JSON {'array' if kind is list else 'object'}")
        return node[key]

    def child(value: Any, child_path: str) -> Any:
        return _decode(value, child_path, depth + 1, tensors, used, backend, file)

    if node is None or isinstance(node, (bool, int, float)):
        return node
    if not isinstance(node, dict):
        raise bad(f"{node!r} is neither a container, an array entry nor a number")
    keys = set(node)
    if depth >= MAX_DEPTH and keys != {"array", "backend"}:   # kn.save nests no deeper
        raise _too_deep(file, path)
    if keys == {"list"}:
        return [child(v, f"{path}[{i}]") for i, v in enumerate(items("list", list))]
    if keys == {"tuple"}:
        return tuple(child(v, f"{path}[{i}]") for i, v in enumerate(items("tuple", list)))
    if keys == {"dict"}:
        return {k: child(v, f"{path}[{k!r}]") for k, v in items("dict", dict).items()}
    if keys == {"namedtuple", "fields"}:
        fields = items("fields", dict)
        try:   # namedtuple accepts only identifiers as names
            cls = collections.namedtuple(node["namedtuple"], list(fields))
        except (TypeError, ValueError) as e:
            raise bad(f"named tuple: {e}") from None
        return cls(*(child(v, f"{path}.{f}") for f, v in fields.items()))
    if keys == {"array", "backend"}:
        name, saved_backend = node["array"], node["backend"]
        if not isinstance(name, str) or not isinstance(saved_backend, str):
            raise bad("an array entry's tensor and backend must be strings")
        if name not in tensors:
            raise CheckpointError(f"kn.load: {file}: the metadata's pytree names the tensor {name!r} "
                                  f"at {path}, which the file does not hold; the file is inconsistent")
        if name in used:
            raise CheckpointError(f"kn.load: {file}: the tensor {name!r} appears twice in the "
                                  f"metadata's pytree (again at {path}); the file is inconsistent")
        used.add(name)
        return _on_backend(tensors[name], backend or saved_backend, file, path)
    raise bad(f"unexpected keys {sorted(keys)}")


def _too_deep(file: str, path: str) -> CheckpointError:
    return CheckpointError(f"kn.load: {file}: the pytree in its metadata is nested too deeply (at "
                           f"{path}; kn.save writes at most {MAX_DEPTH} levels); the file is "
                           f"corrupt or hostile")


def _on_backend(array: np.ndarray, backend: str, file: str, path: str) -> Any:
    if backend == "numpy":
        return array
    try:
        registry.get_backend(backend)
    except ValueError as e:
        raise CheckpointError(f"kn.load: {file}: {path} was saved from the {backend} backend, which "
                              f"is not available here ({e}); pass backend='numpy' to load it as "
                              f"numpy arrays") from None
    return convert(array, backend)
