"""Standard functions built from primitives when an argument is traced.

On raw arrays each runs the backend's own function (same values as the backend); on traced values
it is written with primitives, so it needs no derivative rule of its own and works at any order.
Primitives are called as functions, not through operators: a raw array-api-strict array on the
left of an operator refuses a traced right operand.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from . import registry
from .rules import PRIMITIVES as P
from .traced import Traced, strip


def _traced(*args) -> bool:
    return any(type(a) is Traced for a in args)


def _raw_ns(*args):
    """The raw namespace of the backend owning ``args`` (the default backend if none)."""
    return (registry.backend_of_arrays([strip(a) for a in args]) or registry.default_backend()).ns


def astype(x, dtype, /, *, copy: bool = True, device=None):
    xp = _raw_ns(x)
    if _traced(x) and xp.isdtype(dtype, "real floating") and xp.isdtype(x.dtype, "real floating"):
        return P["astype"](x, dtype, copy=copy, device=device)
    return xp.astype(strip(x), dtype, copy=copy, device=device)   # to an integer dtype: no gradient


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    if type(obj) is Traced:
        return obj if dtype is None or dtype == obj.dtype else astype(obj, dtype)
    refuse_traced_items(obj, "asarray")
    xp = _raw_ns(obj) if registry.owner(type(obj)) else registry.default_backend().ns
    return xp.asarray(obj, dtype=dtype, device=device, copy=copy)


def clip(x, /, min=None, max=None):
    return P["clip"](x, min, max)


def concat(arrays: Sequence, /, *, axis: int | None = 0):
    return P["concat"](*arrays, axis=axis)


def stack(arrays: Sequence, /, *, axis: int = 0):
    if not _traced(*arrays):
        return _raw_ns(*arrays).stack(list(arrays), axis=axis)
    return P["concat"](*[P["expand_dims"](a, axis=axis) for a in arrays], axis=axis)


def unstack(x, /, *, axis: int = 0) -> tuple:
    if not _traced(x):
        return _raw_ns(x).unstack(x, axis=axis)
    axis %= x.ndim
    return tuple(x[(slice(None),) * axis + (i, ...)] for i in range(x.shape[axis]))


def moveaxis(x, source, destination, /):
    if not _traced(x):
        return _raw_ns(x).moveaxis(x, source, destination)
    src = [s % x.ndim for s in (source if isinstance(source, tuple) else (source,))]
    dst = [d % x.ndim for d in (destination if isinstance(destination, tuple) else (destination,))]
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return P["permute_dims"](x, tuple(order))


def broadcast_arrays(*arrays) -> list:
    if not _traced(*arrays):
        return _raw_ns(*arrays).broadcast_arrays(*arrays)
    shape = _raw_ns(*arrays).broadcast_shapes(*(tuple(a.shape) for a in arrays))
    return [P["broadcast_to"](a, shape) for a in arrays]


def meshgrid(*arrays, indexing: str = "xy") -> list:
    if not _traced(*arrays):
        return _raw_ns(*arrays).meshgrid(*arrays, indexing=indexing)
    sizes = [a.shape[0] for a in arrays]
    if indexing == "xy" and len(arrays) > 1:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, a in enumerate(arrays):
        axis = {0: 1, 1: 0}.get(i, i) if indexing == "xy" and len(arrays) > 1 else i
        shape = [1] * len(arrays)
        shape[axis] = a.shape[0]
        out.append(P["broadcast_to"](P["reshape"](a, tuple(shape)), tuple(sizes)))
    return out


def tile(x, repetitions: tuple, /):
    if not _traced(x):
        return _raw_ns(x).tile(x, repetitions)
    n = max(x.ndim, len(repetitions))
    shape = (1,) * (n - x.ndim) + tuple(x.shape)
    reps = (1,) * (n - len(repetitions)) + tuple(repetitions)
    spread = P["reshape"](x, tuple(d for s in shape for d in (1, s)))
    spread = P["broadcast_to"](spread, tuple(d for r, s in zip(reps, shape) for d in (r, s)))
    return P["reshape"](spread, tuple(r * s for r, s in zip(reps, shape)))


def repeat(x, repeats, /, *, axis: int | None = None):
    if not _traced(x):
        return _raw_ns(x).repeat(x, strip(repeats), axis=axis)
    xp = _raw_ns(x)
    if axis is None:
        x, axis = P["reshape"](x, (-1,)), 0
    index = xp.repeat(xp.arange(x.shape[axis], device=x.device), strip(repeats))
    return P["take"](x, index, axis=axis)


def diff(x, /, *, axis: int = -1, n: int = 1, prepend=None, append=None):
    if not _traced(x, prepend, append):
        # the standard's None means "nothing"; numpy's diff would take None as a value to prepend
        edges = {k: v for k, v in (("prepend", prepend), ("append", append)) if v is not None}
        return _raw_ns(x).diff(x, axis=axis, n=n, **edges)
    parts = [p for p in (prepend, x, append) if p is not None]
    if len(parts) > 1:
        x = P["concat"](*parts, axis=axis)
    axis %= x.ndim
    head = (slice(None),) * axis
    for _ in range(n):   # explicit in-bounds slices: the standard leaves out-of-bounds ones unspecified
        m = x.shape[axis]
        x = x[head + (slice(min(1, m), m), ...)] - x[head + (slice(0, max(m - 1, 0)), ...)]
    return x


def tensordot(x1, x2, /, *, axes=2):
    if not _traced(x1, x2):
        return _raw_ns(x1, x2).tensordot(x1, x2, axes=axes)
    if isinstance(axes, int):
        a1 = tuple(range(x1.ndim - axes, x1.ndim))
        a2 = tuple(range(axes))
    else:
        a1 = tuple(a % x1.ndim for a in axes[0])
        a2 = tuple(a % x2.ndim for a in axes[1])
    free1 = tuple(a for a in range(x1.ndim) if a not in a1)
    free2 = tuple(a for a in range(x2.ndim) if a not in a2)
    k = math.prod(x1.shape[a] for a in a1)
    left = P["reshape"](P["permute_dims"](x1, free1 + a1), (-1, k))
    right = P["reshape"](P["permute_dims"](x2, a2 + free2), (k, -1))
    shape = tuple(x1.shape[a] for a in free1) + tuple(x2.shape[a] for a in free2)
    return P["reshape"](P["matmul"](left, right), shape)


def vecdot(x1, x2, /, *, axis: int = -1):
    if not _traced(x1, x2):
        return _raw_ns(x1, x2).vecdot(x1, x2, axis=axis)
    return P["sum"](P["multiply"](x1, x2), axis=axis)


def outer(x1, x2, /) -> Any:
    """The outer product of two 1-d arrays: (m,), (n,) -> (m, n). (The standard's ``linalg.outer``.)"""
    if not _traced(x1, x2):
        return _raw_ns(x1, x2).linalg.outer(x1, x2)
    return P["multiply"](P["reshape"](x1, (-1, 1)), P["reshape"](x2, (1, -1)))


def refuse_traced_items(obj, op: str, path: str = "") -> None:
    """Raise if a list or tuple ``obj`` holds a traced value (asarray would drop it from the tape)."""
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            if type(item) is Traced:
                raise TypeError(f"kn.{op}: item {path}[{i}] is a traced value, which {op} would take "
                                f"off the tape; build the array with kn.stack([...]) (or kn.concat) to "
                                f"keep its gradient")
            refuse_traced_items(item, op, f"{path}[{i}]")


# Creation functions differentiable in the values they take; ``ns`` is the raw namespace of the
# backend that the dispatching function chose (knetapi.namespace.creation). A value given as an
# array (traced or not) is computed by one formula, so a traced call and a raw one agree exactly,
# and the result's dtype defaults to the value's.

def full(ns, shape, fill_value, *, dtype=None, device=None):
    if isinstance(fill_value, (bool, int, float, complex)):
        return ns.full(shape, fill_value, dtype=dtype, device=device)
    return _filled(ns, _shape(shape), fill_value, dtype or fill_value.dtype, device, "full")


def full_like(ns, x, /, fill_value, *, dtype=None, device=None):
    if isinstance(fill_value, (bool, int, float, complex)):
        return ns.full_like(strip(x), fill_value, dtype=dtype, device=device)
    return _filled(ns, tuple(x.shape), fill_value, dtype or x.dtype, device or x.device, "full_like")


def linspace(ns, start, stop, /, num: int, *, dtype=None, device=None, endpoint: bool = True):
    """start * (1 - t) + stop * t for t evenly spaced in [0, 1] (or [0, 1) without the endpoint)
    when an end point is an array: the end points are exact, the gradient in them (1 - t, t)."""
    arrays = [v for v in (start, stop) if not isinstance(v, (bool, int, float, complex))]
    if not arrays:
        return ns.linspace(start, stop, num, dtype=dtype, device=device, endpoint=endpoint)
    for value, name in zip(arrays, ("start", "stop")):
        _check_scalar(value, f"linspace's {name}")
    device = device or arrays[0].device
    if dtype is None:
        dtype = ns.result_type(*(strip(a).dtype for a in arrays))
        if not ns.isdtype(dtype, "real floating"):
            dtype = ns.__array_namespace_info__().default_dtypes(device=device)["real floating"]
    steps = max(num - 1, 1) if endpoint else max(num, 1)
    t = ns.astype(ns.arange(num, device=device), dtype) / steps
    start, stop = (_as(ns, v, dtype, device) for v in (start, stop))
    # primitives, not operators: a raw array-api-strict array refuses a traced right operand
    return P["add"](P["multiply"](start, 1 - t), P["multiply"](stop, t))


def _filled(ns, shape: tuple, value, dtype, device, op: str):
    """An array of ``shape`` filled with the 0-d array ``value`` (recorded when it is traced)."""
    _check_scalar(value, op)
    if _traced(value):
        return P["broadcast_to"](asarray(value, dtype=dtype), shape)
    return ns.zeros(shape, dtype=dtype, device=device) + ns.astype(value, dtype)


def _as(ns, value, dtype, device):
    """``value`` (a Python scalar, a raw array or a traced one) as an array of ``dtype``."""
    if type(value) is Traced:
        return asarray(value, dtype=dtype)
    if isinstance(value, (bool, int, float, complex)):
        return ns.asarray(value, dtype=dtype, device=device)
    return ns.astype(value, dtype)


def _check_scalar(value, op: str) -> None:
    if value.ndim != 0:
        raise ValueError(f"kn.{op}: the value must be a scalar (0-d), got an array of shape "
                         f"{tuple(value.shape)}; use kn.broadcast_to for an array")


def _shape(shape) -> tuple:
    return (shape,) if isinstance(shape, int) else tuple(shape)


RECORDED_CREATION = {"full": full, "full_like": full_like, "linspace": linspace}

COMPOSITES = {f.__name__: f for f in (
    astype, asarray, clip, concat, stack, unstack, moveaxis, broadcast_arrays, meshgrid, tile,
    repeat, diff, tensordot, vecdot, outer)}
