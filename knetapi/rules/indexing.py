"""Derivative rules of indexing. Their cotangents stay sparse (knetapi.cotangent.IndexedCotangent)
until summed, and become dense through one scatter-add, which accumulates repeated indices.
``index_add`` is that scatter-add as a primitive, so that higher-order derivatives of indexing work.
"""

from __future__ import annotations

from ..cotangent import IndexedCotangent, backend_scatter_add, set_index_add
from ..registry import backend_of
from ..scatter import select
from .table import PRIMITIVES, rule


def take_key(x, indices, axis):
    """The ``__getitem__`` key equivalent to ``take(x, indices, axis=axis)`` (see scatter.select)."""
    axis = 0 if axis is None else axis % x.ndim
    return (slice(None),) * axis + (indices, ...)


def take_along_axis_key(xp, x, indices, axis):
    """The ``__getitem__`` key equivalent to ``take_along_axis(x, indices, axis=axis)``.

    Off ``axis``, ``x`` and ``indices`` broadcast: a size-1 axis of ``x`` is read at position 0
    for every position of the result, and a size-1 axis of ``indices`` is broadcast by indexing."""
    axis %= x.ndim
    key = []
    for d in range(x.ndim):
        if d == axis:
            key.append(indices)
        else:
            n = max(x.shape[d], indices.shape[d])
            shape = [1] * x.ndim
            shape[d] = n
            positions = (xp.arange(n, device=indices.device) if x.shape[d] == n
                         else xp.zeros(n, dtype=indices.dtype, device=indices.device))
            key.append(xp.reshape(positions, tuple(shape)))
    return tuple(key)


def _index_add(ns, base, values, *, key):
    return backend_scatter_add(backend_of(base), ns.asarray(base, copy=True), key, values)


def _sort(xp, g, y, x, *, axis=-1, descending=False, stable=True):
    order = xp.argsort(x, axis=axis, descending=descending, stable=True)
    return xp.take_along_axis(g, xp.argsort(order, axis=axis), axis=axis)


rule("getitem", lambda xp, g, y, x, *, key: IndexedCotangent(key, g),
     impl=lambda ns, x, *, key: select(ns, x, key))
rule("take", lambda xp, g, y, x, indices, *, axis=None: IndexedCotangent(take_key(x, indices, axis), g),
     None)
rule("take_along_axis", lambda xp, g, y, x, indices, *, axis=-1:
     IndexedCotangent(take_along_axis_key(xp, x, indices, axis), g),
     None)
rule("index_add", lambda xp, g, y, base, values, *, key: g,
     lambda xp, g, y, base, values, *, key: PRIMITIVES["getitem"](g, key=key),
     impl=_index_add,
     doc="index_add(base, values, /, *, key): a copy of base with values added at base[key]; "
         "repeated indices accumulate.")
rule("sort", _sort)
set_index_add(PRIMITIVES["index_add"])
