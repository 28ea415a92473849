"""Derivative rules of the standard's elementwise functions.

Row format: ``rule(name, vjp_for_arg0, vjp_for_arg1, ...)`` with ``vjp(xp, g, y, *args)``: ``g`` is
the output's cotangent, ``y`` the output, ``args`` the inputs. Rules may return a cotangent of the
broadcast shape; the backward walk sums it down to each argument's shape (one unbroadcast for all).

Kinks, ties and edge points (the full list, with torch's choices, is in docs/design.md,
"Kinks, ties and edge points"; tests/test_edge_points.py pins each):
- ``abs'(0) = 0`` (``sign``), ``copysign(x, s)' = 0`` at ``x = 0`` (as torch);
- ``maximum``/``minimum``: where the arguments are equal each gets half of ``g`` (as torch);
- ``clip``: inside ``[min, max]`` boundaries included, ``x`` gets ``g``; below ``min`` the ``min``
  argument gets it, above ``max`` the ``max`` argument; where ``min > max`` the output is ``max``,
  which gets ``g`` (as torch);
- ``pow(a, b)``: d/da is 0 where ``b == 0``, also at ``a == 0`` (``x ** 0`` is constant); d/db is 0
  where ``a == 0`` and ``b >= 0`` (the limit for ``b > 0``; as torch);
- ``atan2``, ``hypot``: 0 at the origin (``hypot`` like ``abs``; torch gives nan there);
- ``logaddexp``: an argument that is ``-inf`` gets 0, also when both are (torch: nan);
- ``copysign`` has no gradient with respect to its second argument (the sign); its rule reads the
  sign from the output ``y``, which has the sign of ``b`` and is an array even when ``b`` is a
  Python float.
Untaken branches of ``where`` are fed safe inputs, so these rules stay finite at higher order.
"""

from __future__ import annotations

import math

from .table import PRIMITIVES as P, rule


def _log(xp, a):
    return math.log(a) if isinstance(a, (int, float)) else xp.log(a)


def _pow_base(xp, g, y, a, b):
    """``b * a ** (b - 1)``, 0 where ``b == 0`` (without the nan of ``0 * 0 ** -1`` at ``a == 0``)."""
    if isinstance(b, (int, float)):
        return xp.zeros_like(g) if b == 0 else g * b * a ** (b - 1)
    zero = xp.logical_and(a == 0, b == 0)
    return g * xp.where(zero, 0.0, b * xp.where(zero, 1.0, a) ** (b - 1))


def _pow_exponent(xp, g, y, a, b):
    """``a ** b * log(a)``, 0 where ``a == 0`` and ``b >= 0``."""
    if isinstance(a, (int, float)):
        if a == 0:                                      # a factor, not a branch: no nan at higher order
            return g * xp.where(b >= 0, xp.zeros_like(g), xp.full_like(g, -math.inf))
        return g * y * (math.log(a) if a > 0 else math.nan)    # nan below 0, as xp.log of an array
    zero = xp.logical_and(a == 0, b >= 0)
    return g * xp.where(zero, 0.0, y * xp.log(xp.where(zero, 1.0, a)))


def _at_origin(xp, g, a, b, numerator):
    """``g * numerator / (a^2 + b^2)`` (atan2), 0 where ``a == b == 0``."""
    origin = xp.logical_and(a == 0, b == 0)
    r2 = a * a + b * b
    return xp.where(origin, 0.0, g * numerator / xp.where(origin, 1.0, r2))


def _hypot(xp, g, y, a):
    """``g * a / y``, 0 where ``y == 0``."""
    zero = y == 0
    return xp.where(zero, 0.0, g * a / xp.where(zero, 1.0, y))


def _logaddexp(xp, g, a, b):
    """``g * sigm(a - b)``: finite at infinities, 0 where ``a`` is -inf (also when ``b`` is)."""
    both = xp.logical_and(a == -math.inf, b == -math.inf)
    return g * P["sigm"](xp.where(both, -math.inf, a - b))


def _share(xp, g, a, b, wins):
    """``g`` where ``a`` wins, half of it on a tie, zero elsewhere (maximum/minimum)."""
    return xp.where(wins, g, xp.where(a == b, g / 2, xp.zeros_like(g)))


def _clip_x(xp, g, y, x, lo, hi):
    inside = xp.ones_like(x, dtype=xp.bool)
    if lo is not None:
        inside = xp.logical_and(inside, x >= lo)
    if hi is not None:
        inside = xp.logical_and(inside, x <= hi)
    return xp.where(inside, g, xp.zeros_like(g))


def _clip_min(xp, g, y, x, lo, hi):
    below = x < lo
    if hi is not None:
        below = xp.logical_and(below, lo <= hi)
    return xp.where(below, g, xp.zeros_like(g))


def _clip_max(xp, g, y, x, lo, hi):
    above = x > hi
    if lo is not None:
        above = xp.logical_or(above, lo > hi)
    return xp.where(above, g, xp.zeros_like(g))


rule("negative", lambda xp, g, y, x: -g)
rule("positive", lambda xp, g, y, x: g)
rule("abs", lambda xp, g, y, x: g * xp.sign(x))
rule("square", lambda xp, g, y, x: g * (2 * x))
rule("sqrt", lambda xp, g, y, x: g / (2 * y))
rule("reciprocal", lambda xp, g, y, x: -g * y * y)
rule("exp", lambda xp, g, y, x: g * y)
rule("expm1", lambda xp, g, y, x: g * (y + 1))
rule("log", lambda xp, g, y, x: g / x)
rule("log1p", lambda xp, g, y, x: g / (x + 1))
rule("log2", lambda xp, g, y, x: g / (x * math.log(2.0)))
rule("log10", lambda xp, g, y, x: g / (x * math.log(10.0)))
rule("sin", lambda xp, g, y, x: g * xp.cos(x))
rule("cos", lambda xp, g, y, x: -g * xp.sin(x))
rule("tan", lambda xp, g, y, x: g * (1 + y * y))
rule("asin", lambda xp, g, y, x: g / xp.sqrt(1 - x * x))
rule("acos", lambda xp, g, y, x: -g / xp.sqrt(1 - x * x))
rule("atan", lambda xp, g, y, x: g / (1 + x * x))
rule("sinh", lambda xp, g, y, x: g * xp.cosh(x))
rule("cosh", lambda xp, g, y, x: g * xp.sinh(x))
rule("tanh", lambda xp, g, y, x: g * (1 - y * y))
rule("asinh", lambda xp, g, y, x: g / xp.sqrt(x * x + 1))
rule("acosh", lambda xp, g, y, x: g / xp.sqrt(x * x - 1))
rule("atanh", lambda xp, g, y, x: g / (1 - x * x))

rule("add", lambda xp, g, y, a, b: g,
            lambda xp, g, y, a, b: g)
rule("subtract", lambda xp, g, y, a, b: g,
                 lambda xp, g, y, a, b: -g)
rule("multiply", lambda xp, g, y, a, b: g * b,
                 lambda xp, g, y, a, b: g * a)
rule("divide", lambda xp, g, y, a, b: g / b,
               lambda xp, g, y, a, b: -g * y / b)
rule("pow", _pow_base,
            _pow_exponent)
rule("atan2", lambda xp, g, y, a, b: _at_origin(xp, g, a, b, b),
              lambda xp, g, y, a, b: _at_origin(xp, g, a, b, -a))
rule("hypot", lambda xp, g, y, a, b: _hypot(xp, g, y, a),
              lambda xp, g, y, a, b: _hypot(xp, g, y, b))
rule("logaddexp", lambda xp, g, y, a, b: _logaddexp(xp, g, a, b),
                  lambda xp, g, y, a, b: _logaddexp(xp, g, b, a))
rule("maximum", lambda xp, g, y, a, b: _share(xp, g, a, b, a > b),
                lambda xp, g, y, a, b: _share(xp, g, b, a, b > a))
rule("minimum", lambda xp, g, y, a, b: _share(xp, g, a, b, a < b),
                lambda xp, g, y, a, b: _share(xp, g, b, a, b < a))
rule("remainder", lambda xp, g, y, a, b: g,
                  lambda xp, g, y, a, b: -g * xp.floor_divide(a, b))
rule("copysign", lambda xp, g, y, a, b:
                 xp.where(a == 0, 0.0, xp.where(xp.signbit(a) == xp.signbit(y), g, -g)),
                 None)

rule("where", None,
              lambda xp, g, y, c, a, b: xp.where(c, g, xp.zeros_like(g)),
              lambda xp, g, y, c, a, b: xp.where(c, xp.zeros_like(g), g))
rule("clip", _clip_x,
             _clip_min,
             _clip_max,
     impl=lambda ns, x, lo=None, hi=None: ns.clip(x, min=lo, max=hi))
rule("astype", lambda xp, g, y, x, *, dtype, copy=True, device=None: g, positional=("dtype",),
     impl=lambda ns, x, *, dtype, copy=True, device=None: ns.astype(x, dtype, copy=copy, device=device))
