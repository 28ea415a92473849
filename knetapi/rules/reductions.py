"""Derivative rules of reductions and cumulative functions (and the ``logsumexp`` helper).

The cotangent of a reduction is spread back over the reduced axes by :func:`unreduce`.
Ties in ``max``/``min``: the elements equal to the extreme share ``g`` equally (as torch.amax).
``prod`` and ``cumulative_prod`` are exact when inputs contain zeros (no division by the input).
``std`` of constant inputs (``std == 0``) has gradient 0 (as torch). ``logsumexp``'s gradient is
the softmax of the input, normalised so that it is accurate in float32 at large ``|x|``; an entry
of ``-inf`` gets 0, also in an all ``-inf`` group (torch: nan). Empty reductions work: the
gradient of an empty input is empty (``logsumexp`` of nothing is ``-inf``, as torch).
See docs/design.md, "Kinks, ties and edge points".
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
    flat = xp.reshape(moved, tuple(x.shape[i] for i in kept) + (math.prod(x.shape[i] for i in axes),))
    left = xp.cumulative_prod(flat, axis=-1, include_initial=True)[..., :-1]
    right = xp.flip(xp.cumulative_prod(xp.flip(flat, axis=-1), axis=-1, include_initial=True)[..., :-1],
                    axis=-1)
    others = xp.reshape(left * right, tuple(moved.shape))
    inverse = tuple(sorted(range(x.ndim), key=(kept + axes).__getitem__))
    return xp.permute_dims(others, inverse)


def _prod(xp, g, y, x, *, axis=None, dtype=None, keepdims=False):
    return unreduce(xp, g, x, axis, keepdims) * _others_product(xp, x, axis)


def _per_degree(x, axis, correction) -> float:
    """``1 / (n - correction)``: inf where there are no degrees of freedom left (the gradient
    is then nan, like the value, and as torch), not a ZeroDivisionError."""
    dof = count(x, axis) - correction
    return 1 / dof if dof else math.inf


def _var(xp, g, y, x, *, axis=None, correction=0.0, keepdims=False):
    centred = x - xp.mean(x, axis=axis, keepdims=True)
    return unreduce(xp, g, x, axis, keepdims) * centred * (2 * _per_degree(x, axis, correction))


def _std(xp, g, y, x, *, axis=None, correction=0.0, keepdims=False):
    """``centred / ((n - correction) std)``, 0 where ``std == 0`` (constant inputs, as torch)."""
    centred = x - xp.mean(x, axis=axis, keepdims=True)
    zero = y == 0
    scale = xp.where(zero, 0.0, g * _per_degree(x, axis, correction) / xp.where(zero, 1.0, y))
    return unreduce(xp, scale, x, axis, keepdims) * centred


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
    if n == 0:
        return g
    after = [g[_along(g, axis, n - 1)]]
    for i in range(n - 2, -1, -1):
        after.append(g[_along(g, axis, i)] + x[_along(x, axis, i + 1)] * after[-1])
    after = xp.stack(after[::-1], axis=axis)
    before = xp.cumulative_prod(x, axis=axis, include_initial=True)[_along(x, axis, slice(None, -1))]
    return before * after


def _logsumexp_vjp(xp, g, y, x, *, axis=None, keepdims=False):
    """``g * softmax(x)``, as ``e / sum(e)`` with ``e = exp(x - y)``: the rounding of ``y`` (1e-3
    at 1e4 in float32, which ``exp(x - y)`` alone would keep) is a common factor of ``e`` that
    the division removes. An all ``-inf`` group gets 0: where ``y`` is not finite it is taken as
    0, so ``e`` is 0 there, not ``exp(nan)`` (with ``+inf`` the finite entries get 0, as torch)."""
    if math.prod(x.shape) == 0:
        return xp.zeros_like(x)
    e = xp.exp(x - unreduce(xp, xp.where(xp.isfinite(y), y, 0.0), x, axis, keepdims))
    total = xp.sum(e, axis=axis, keepdims=True)
    return unreduce(xp, g, x, axis, keepdims) * (e / xp.where(total == 0, 1.0, total))


def _logsumexp(ns, x, *, axis=None, keepdims=False):
    if count(x, axis) == 0:                            # an empty sum: log(0) = -inf (as torch)
        return ns.full_like(ns.sum(x, axis=axis, keepdims=keepdims), -ns.inf)
    top = ns.max(x, axis=axis, keepdims=True)
    top = ns.where(ns.isfinite(top), top, ns.zeros_like(top))
    total = ns.sum(ns.exp(x - top), axis=axis, keepdims=True)
    none = total == 0                                  # all -inf: -inf, without log(0)'s warning
    out = ns.where(none, -ns.inf, ns.log(ns.where(none, ns.ones_like(total), total)) + top)
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
rule("logsumexp", _logsumexp_vjp,
     impl=_logsumexp,
     doc="logsumexp(x, /, *, axis=None, keepdims=False): log(sum(exp(x))) over axis, computed "
         "stably (the maximum is subtracted first). Not in the Array API standard.")
