"""Derivative rules of the activation functions (knetapi.nn.activations), written against the standard.

Kinks: ``relu'(0) = 0`` (as torch.relu), ``elu'(0) = alpha`` (the exponential side, as torch),
and ``elu''(0) = alpha`` from the same side (torch: 0, from the other). ``softplus' = sigm`` is
recorded as ``sigm`` so its own derivative is right at 0 too. See docs/design.md, "Kinks, ties
and edge points".
"""

from __future__ import annotations

from .table import PRIMITIVES as P, rule


def _relu(ns, x):
    return ns.where(x > 0, x, ns.zeros_like(x))


def _sigm(ns, x):
    """1 / (1 + exp(-x)), without overflow: exp of a non-positive number only."""
    e = ns.exp(-ns.abs(x))
    return ns.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _elu(ns, x, *, alpha=1.0):
    return ns.where(x > 0, x, alpha * ns.expm1(ns.minimum(x, ns.zeros_like(x))))


def _softplus(ns, x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), stable for large |x|."""
    return ns.maximum(x, ns.zeros_like(x)) + ns.log1p(ns.exp(-ns.abs(x)))


def _elu_vjp(xp, g, y, x, *, alpha=1.0):
    """``alpha * exp(x)`` for ``x <= 0`` (not ``y + alpha``, which cancels for very negative x)."""
    positive = x > 0
    return xp.where(positive, g, g * alpha * xp.exp(xp.where(positive, xp.zeros_like(x), x)))


rule("relu", lambda xp, g, y, x: xp.where(x > 0, g, xp.zeros_like(g)), impl=_relu,
     doc="relu(x): max(x, 0) elementwise; relu'(0) = 0.")
rule("sigm", lambda xp, g, y, x: g * y * (1 - y), impl=_sigm,
     doc="sigm(x): the logistic sigmoid 1 / (1 + exp(-x)) elementwise.")
rule("elu", _elu_vjp, impl=_elu,
     doc="elu(x, *, alpha=1.0): x for x > 0, alpha * (exp(x) - 1) otherwise.")
rule("softplus", lambda xp, g, y, x: g * P["sigm"](x), impl=_softplus,
     doc="softplus(x): log(1 + exp(x)) elementwise, computed stably.")
