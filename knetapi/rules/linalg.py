"""Derivative rules of matrix products (``tensordot``, ``vecdot`` and ``outer`` are built from
these in knetapi.composite, so they need no rule of their own).

``matmul`` follows the standard's 1-d cases: a 1-d left argument is a row vector, a 1-d right one
a column vector, and the added axis is removed from the result. Batch axes broadcast; the backward
walk sums the cotangent back over them.
"""

from __future__ import annotations

from .table import rule


def _matmul_left(xp, g, y, a, b):
    if a.ndim == 1 and b.ndim == 1:
        return g * b
    if b.ndim == 1:                                    # (..., n, k) @ (k,) -> (..., n)
        return xp.expand_dims(g, axis=-1) * b
    if a.ndim == 1:                                    # (k,) @ (..., k, m) -> (..., m)
        return (b @ xp.expand_dims(g, axis=-1))[..., 0]
    return g @ xp.matrix_transpose(b)


def _matmul_right(xp, g, y, a, b):
    if a.ndim == 1 and b.ndim == 1:
        return g * a
    if a.ndim == 1:                                    # (k,) @ (..., k, m) -> (..., m)
        return xp.expand_dims(a, axis=-1) * xp.expand_dims(g, axis=-2)
    if b.ndim == 1:                                    # (..., n, k) @ (k,) -> (..., n)
        return (xp.matrix_transpose(a) @ xp.expand_dims(g, axis=-1))[..., 0]
    return xp.matrix_transpose(a) @ g


rule("matmul", _matmul_left, _matmul_right)
rule("matrix_transpose", lambda xp, g, y, x: xp.matrix_transpose(g))
