"""Derivative rules of shape manipulation: the cotangent is moved back the inverse way."""

from __future__ import annotations

import math

from .table import rule


def _inverse_permutation(axes) -> tuple[int, ...]:
    return tuple(sorted(range(len(axes)), key=lambda i: axes[i] % len(axes)))


def _negated(shift):
    return tuple(-s for s in shift) if isinstance(shift, tuple) else -shift


def _concat(i, xp, g, y, *xs, axis=0):
    if axis is None:
        start = sum(math.prod(x.shape) for x in xs[:i])
        return xp.reshape(g[start:start + math.prod(xs[i].shape)], tuple(xs[i].shape))
    axis %= g.ndim
    start = sum(x.shape[axis] for x in xs[:i])
    return g[(slice(None),) * axis + (slice(start, start + xs[i].shape[axis]), ...)]


def _flip(xp, g, y, x, *, axis=None):
    return xp.flip(g, axis=axis)


rule("reshape", lambda xp, g, y, x, *, shape, copy=None: xp.reshape(g, tuple(x.shape)),
     positional=("shape",))
rule("expand_dims", lambda xp, g, y, x, *, axis=0: xp.reshape(g, tuple(x.shape)), positional=("axis",))
rule("squeeze", lambda xp, g, y, x, *, axis: xp.reshape(g, tuple(x.shape)), positional=("axis",))
rule("permute_dims", lambda xp, g, y, x, *, axes: xp.permute_dims(g, _inverse_permutation(axes)),
     positional=("axes",))
rule("flip", _flip)
rule("roll", lambda xp, g, y, x, *, shift, axis=None: xp.roll(g, shift=_negated(shift), axis=axis),
     positional=("shift",))
rule("broadcast_to", lambda xp, g, y, x, *, shape: g, positional=("shape",))
rule("concat", variadic_vjp=_concat, impl=lambda ns, *xs, axis=0: ns.concat(xs, axis=axis))
rule("tril", lambda xp, g, y, x, *, k=0: xp.tril(g, k=k))
rule("triu", lambda xp, g, y, x, *, k=0: xp.triu(g, k=k))
