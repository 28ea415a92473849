"""Cotangents in the backward walk: broadcasting, dtype, and sparse index gradients.

The gradient of ``x[key]`` is zero except at ``key``. Materialising it per indexing op would
allocate a full zero array each time (a loop over ``x[t]`` would cost O(T) full arrays), so it
stays an :class:`IndexedCotangent` until the node owning ``x`` is reached; then every part is
scatter-added into one fresh zero array (in place, since that array is ours) and summed with the
dense parts.
"""

from __future__ import annotations

from typing import Any

from .scatter import scatter_add
from .traced import Traced, strip

# The index_add primitive, which records a scatter-add at higher order. knetapi.rules.indexing
# sets it: the rules are built on this module, so it cannot import them.
_index_add = None


def set_index_add(primitive) -> None:
    """Set the primitive that densify records when a sparse part is traced (higher order)."""
    global _index_add
    _index_add = primitive


class IndexedCotangent:
    """The cotangent of ``x`` that is ``values`` at ``x[key]`` and zero elsewhere."""

    __slots__ = ("key", "values")

    def __init__(self, key: Any, values: Any):
        self.key = key
        self.values = values


def unbroadcast(xp, g, shape: tuple) -> Any:
    """Sum ``g`` over the axes that broadcasting added or stretched, giving shape ``shape``."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and g.shape[lead + i] != 1)
    if axes:
        g = xp.sum(g, axis=axes)
    return g if g.shape == shape else xp.reshape(g, shape)


def fit(xp, g, like) -> Any:
    """Give a parent's cotangent ``g`` the shape and dtype of the parent value ``like``."""
    if type(g) is IndexedCotangent:
        return g
    if g.shape != like.shape:
        g = unbroadcast(xp, g, tuple(like.shape))
    if g.dtype != like.dtype:
        g = xp.astype(g, like.dtype)
    return g


def accumulate(total, g) -> Any:
    """Add cotangent ``g`` to ``total`` (None, a dense array, or a list of pending parts)."""
    if total is None:
        return g
    dense = type(g) is not IndexedCotangent and type(total) is not list and type(total) is not IndexedCotangent
    if dense:
        return total + g
    if type(total) is list:
        total.append(g)
        return total
    return [total, g]


def densify(cot, like, backend) -> Any:
    """A dense array for the cotangent ``cot`` of the value ``like``."""
    parts = cot if type(cot) is list else (cot,)
    dense = None
    sparse = []
    for p in parts:
        if type(p) is IndexedCotangent:
            sparse.append(p)
        else:
            dense = p if dense is None else dense + p
    if not sparse:
        return dense
    out = backend.ns.zeros_like(strip(like))
    for p in sparse:
        if type(p.values) is Traced or type(out) is Traced:
            out = _index_add(out, p.values, key=p.key)
        else:
            out = backend_scatter_add(backend, out, p.key, p.values)
    return out if dense is None else out + dense


def backend_scatter_add(backend, out, key, values):
    """``out[key] += values`` with repeated indices accumulating; may write into ``out``."""
    fast = backend.overrides.get("scatter_add")
    if fast is not None:
        return fast(out, key, values)
    return scatter_add(backend.ns, out, key, values)
