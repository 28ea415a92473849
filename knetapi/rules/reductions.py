"""Derivative rules of reductions and cumulative functions (and the ``logsumexp`` helper).

The cotangent of a reduction is spread back over the reduced axes by :func:`unreduce`.
Ties in ``max``/``min``: the elements equal to the extreme share ``g`` equally (as torch.amax).
``prod`` and ``cumulative_prod`` are exact when inputs contain zeros (no division by the input).
"""

from __future__ import annotations

import math

from .table import rule


def reduced_axes(ndim: int, axis) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple, negatives allowed) as sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(a % ndim for a in axes))


def unreduce(xp, g, x, axis, keepdims: bool):
    """Broadcast the cotangent ``g`` of a reduction of ``x`` back to ``x``'s shape."""
    shape = tuple(x.shape)
    if not keepdims:
        axes = reduced_axes(len(shape), axis)
        g = xp.reshape(g, tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return xp.broadcast_to(g, shape)


def count(x, axis) -> int:
    return math.prod(x.shape[a] for a in reduced_axes(x.ndim, axis))


def _extreme(xp, g, y, x, *, axis=None, keepdims=False):
    hits = xp.astype(x == unreduce(xp, y, x, axis, keepdims), g.dtype)
    ties = xp.sum(hits, axis=axis, keepdims=True)
    return unreduce(xp, g, x, axis, keepdims) * hits / ties


def _others_product(xp, x, axis):
    """For each element of ``x``, the product of the other elements in its reduction group."""
    axes = reduced_axes(x.ndim, axis)
    kept = tuple(i for i in range(x.ndim) if i not in axes)
    moved = xp.permute_dims(x, kept + axes)
    flat = xp.reshape(moved, tuple(x.shape[i] for i in kept) + (-1,))
    left = xp.cumulative_prod(flat, axis=-1, include_initial=True)[..., :-1]
    right = xp.flip(xp.cumulative_prod(xp.flip(flat, axis=-1), axis=-1, include_initial=True)[..., :-1],
                    axis=-1)
    others = xp.reshape(left * right, tuple(moved.shape))
    inverse = tuple(sorted(range(x.ndim), key=(kept + axes).__getitem__))
    return xp.permute_dims(others, inverse)


def _prod(xp, g, y, x, *, axis=None, dtype=None, keepdims=False):
    return unreduce(xp, g, x, axis, keepdims) * _others_product(xp, x, axis)


def _var(xp, g, y, x, *, axis=None, correction=0.0, keepdims=False):
    centred = x - xp.mean(x, axis=axis, keepdims=True)
    return unreduce(xp, g, x, axis, keepdims) * centred * (2 / (count(x, axis) - correction))


def _std(xp, g, y, x, *, axis=None, correction=0.0, keepdims=False):
    centred = x - xp.mean(x, axis=axis, keepdims=True)
    return unreduce(xp, g * (1 / (count(x, axis) - correction)) / y, x, axis, keepdims) * centred


def _along(x, axis, index):
    """A key selecting ``index`` (an int or slice) along ``axis``."""
    return (slice(None),) * (axis % x.ndim) + (index, ...)


def _cumulative_sum(xp, g, y, x, *, axis=None, dtype=None, include_initial=False):
    axis = 0 if axis is None else axis
    if include_initial:
        g = g[_along(g, axis, slice(1, None))]
    return xp.flip(xp.cumulative_sum(xp.flip(g, axis=axis), axis=axis), axis=axis)


def _cumulative_prod(xp, g, y, x, *, axis=None, dtype=None, include_initial=False):
    """d/dx_i = before_i * after_i with before_i = prod_{k<i} x_k and the backward recurrence
    after_i = g_i + x_{i+1} * after_{i+1}: exact with zeros, one step per position along the axis."""
    axis = 0 if axis is None else axis % x.ndim
    if include_initial:
        g = g[_along(g, axis, slice(1, None))]
    n = x.shape[axis]
    after = [g[_along(g, axis, n - 1)]]
    for i in range(n - 2, -1, -1):
        after.append(g[_along(g, axis, i)] + x[_along(x, axis, i + 1)] * after[-1])
    after = xp.stack(after[::-1], axis=axis)
    before = xp.cumulative_prod(x, axis=axis, include_initial=True)[_along(x, axis, slice(None, -1))]
    return before * after


def _logsumexp(ns, x, *, axis=None, keepdims=False):
    top = ns.max(x, axis=axis, keepdims=True)
    top = ns.where(ns.isfinite(top), top, ns.zeros_like(top))
    out = ns.log(ns.sum(ns.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else ns.squeeze(out, axis=reduced_axes(x.ndim, axis))


rule("sum", lambda xp, g, y, x, *, axis=None, dtype=None, keepdims=False:
     unreduce(xp, g, x, axis, keepdims))
rule("mean", lambda xp, g, y, x, *, axis=None, keepdims=False:
     unreduce(xp, g, x, axis, keepdims) / count(x, axis))
rule("prod", _prod)
rule("max", _extreme)
rule("min", _extreme)
rule("var", _var)
rule("std", _std)
rule("cumulative_sum", _cumulative_sum)
rule("cumulative_prod", _cumulative_prod)
rule("logsumexp", lambda xp, g, y, x, *, axis=None, keepdims=False:
     unreduce(xp, g, x, axis, keepdims) * xp.exp(x - unreduce(xp, y, x, axis, keepdims)),
     impl=_logsumexp,
     doc="logsumexp(x, /, *, axis=None, keepdims=False): log(sum(exp(x))) over axis, computed "
         "stably (the maximum is subtracted first). Not in the Array API standard.")
