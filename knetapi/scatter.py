"""Scatter-add written with standard functions only: the backward of indexing on any backend.

The standard has no scatter-add, and its integer-array ``__setitem__`` is implementation-defined,
so the generic version is exact but not fast: basic keys (ints, slices, ellipsis, None) use
``out[key] = out[key] + values`` (such a key never repeats an element); keys with integer or
boolean arrays go through the flat positions they select and a one-hot matrix product, which
accumulates repeated indices exactly at O(k * n) memory. Backends override it (numpy's
``add.at``).
"""

from __future__ import annotations

import math
from typing import Any


def is_basic_key(key: Any) -> bool:
    """True when ``key`` holds only ints, slices, ellipsis and None (no index arrays)."""
    parts = key if isinstance(key, tuple) else (key,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice)) for p in parts)


def select(xp, x, key: Any):
    """``x[key]`` for the standard's keys and for the keys knetapi builds for ``take``:
    full slices, one integer array, then ``...``. The standard does not require integer arrays
    mixed with slices in a key, so those go through ``take`` (which wants 1-d indices: they are
    flattened and their shape put back)."""
    if isinstance(key, tuple) and len(key) > 1 and key[-1] is Ellipsis:
        *leading, last, _ = key
        if all(isinstance(p, slice) and p == slice(None) for p in leading) and \
                hasattr(last, "dtype") and xp.isdtype(last.dtype, "integral"):
            axis = len(leading)
            picked = xp.take(x, xp.reshape(last, (-1,)), axis=axis)
            return xp.reshape(picked, tuple(x.shape[:axis]) + tuple(last.shape) + tuple(x.shape[axis + 1:]))
    return x[key]


def flat_positions(xp, shape: tuple, key: Any, device: Any = None):
    """The flat (row-major) positions in an array of ``shape`` that ``x[key]`` selects."""
    return select(xp, xp.reshape(xp.arange(math.prod(shape), device=device), shape), key)


def scatter_add(xp, out, key, values):
    """Return ``out`` with ``values`` added at ``out[key]``; may write into ``out``."""
    if is_basic_key(key):
        parts = key if isinstance(key, tuple) else (key,)
        where = tuple(p for p in parts if p is not None)    # the standard's setitem takes no None
        target = out[where]
        out[where] = target + xp.reshape(xp.broadcast_to(values, tuple(out[key].shape)), tuple(target.shape))
        return out
    shape = tuple(out.shape)
    pos = flat_positions(xp, shape, key, out.device)
    size = math.prod(shape)
    onehot = xp.astype(xp.reshape(pos, (-1, 1)) == xp.reshape(xp.arange(size, device=out.device), (1, -1)),
                       out.dtype)
    vals = xp.reshape(xp.broadcast_to(values, pos.shape), (1, -1))
    return out + xp.reshape(vals @ onehot, shape)
