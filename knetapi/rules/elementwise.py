"""Derivative rules of the standard's elementwise functions.

Row format: ``rule(name, vjp_for_arg0, vjp_for_arg1, ...)`` with ``vjp(xp, g, y, *args)``: ``g`` is
the output's cotangent, ``y`` the output, ``args`` the inputs. Rules may return a cotangent of the
broadcast shape; the backward walk sums it down to each argument's shape (one unbroadcast for all).

Kinks and ties (documented conventions):
- ``abs'(0) = 0`` (``sign``);
- ``maximum``/``minimum``: where the arguments are equal each gets half of ``g`` (as torch);
- ``clip``: inside ``[min, max]`` boundaries included, ``x`` gets ``g``; below ``min`` the ``min``
  argument gets it, above ``max`` the ``max`` argument;
- ``pow(a, b)`` with respect to ``b`` is 0 where ``a == 0`` (the limit for ``b > 0``);
- ``copysign`` has no gradient with respect to its second argument (the sign).
"""

from __future__ import annotations

import math

from .table import rule


def _log(xp, a):
    return math.log(a) if isinstance(a, (int, float)) else xp.log(a)


def _pow_exponent(xp, g, y, a, b):
    if isinstance(a, (int, float)):
        if a == 0:
            return xp.zeros_like(g)
        return g * y * (math.log(a) if a > 0 else math.nan)    # nan below 0, as xp.log of an array
    zero = a == 0
    return g * xp.where(zero, 0.0, y * xp.log(xp.where(zero, 1.0, a)))


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
rule("pow", lambda xp, g, y, a, b: g * b * a ** (b - 1),
            _pow_exponent)
rule("atan2", lambda xp, g, y, a, b: g * b / (a * a + b * b),
              lambda xp, g, y, a, b: -g * a / (a * a + b * b))
rule("hypot", lambda xp, g, y, a, b: g * a / y,
              lambda xp, g, y, a, b: g * b / y)
rule("logaddexp", lambda xp, g, y, a, b: g * xp.exp(a - y),
                  lambda xp, g, y, a, b: g * xp.exp(b - y))
rule("maximum", lambda xp, g, y, a, b: _share(xp, g, a, b, a > b),
                lambda xp, g, y, a, b: _share(xp, g, b, a, b > a))
rule("minimum", lambda xp, g, y, a, b: _share(xp, g, a, b, a < b),
                lambda xp, g, y, a, b: _share(xp, g, b, a, b < a))
rule("remainder", lambda xp, g, y, a, b: g,
                  lambda xp, g, y, a, b: -g * xp.floor_divide(a, b))
rule("copysign", lambda xp, g, y, a, b: xp.where(xp.signbit(a) == xp.signbit(b), g, -g),
                 None)

rule("where", None,
              lambda xp, g, y, c, a, b: xp.where(c, g, xp.zeros_like(g)),
              lambda xp, g, y, c, a, b: xp.where(c, xp.zeros_like(g), g))
rule("clip", _clip_x,
             lambda xp, g, y, x, lo, hi: xp.where(x < lo, g, xp.zeros_like(g)),
             lambda xp, g, y, x, lo, hi: xp.where(x > hi, g, xp.zeros_like(g)),
     impl=lambda ns, x, lo=None, hi=None: ns.clip(x, min=lo, max=hi))
rule("astype", lambda xp, g, y, x, *, dtype, copy=True, device=None: g, positional=("dtype",),
     impl=lambda ns, x, *, dtype, copy=True, device=None: ns.astype(x, dtype, copy=copy, device=device))
