"""Derivative rules of the activation functions (knetapi.nn.activations), written against the standard.

Kinks: ``relu'(0) = 0`` (as torch.relu), ``elu'(0) = alpha`` (the exponential side, as torch),
and ``elu''(0) = alpha`` from the same side (torch: 0, from the other). ``softplus' = sigm`` is
recorded as ``sigm`` so its own derivative is right at 0 too. See docs/design.md, "Kinks, ties
and edge points". ``softmax`` and ``logsoftmax`` are primitives of their own (one node each),
computed from the max-shifted input, so they stay accurate for large scores.
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


def _shifted(ns, x, axis):
    """``x`` minus its maximum along ``axis`` (a finite maximum; empty axes stay as they are)."""
    if x.shape[axis] == 0:
        return x
    return x - ns.max(x, axis=axis, keepdims=True)


def _logsoftmax(ns, x, *, axis=-1):
    """``s - log(sum(exp(s)))`` with ``s = x - max(x)``: accurate for large scores, where
    ``x - logsumexp(x)`` loses digits (at 1e4 in float32)."""
    s = _shifted(ns, x, axis)
    return s - ns.log(ns.sum(ns.exp(s), axis=axis, keepdims=True))


def _softmax(ns, x, *, axis=-1):
    e = ns.exp(_shifted(ns, x, axis))
    return e / ns.sum(e, axis=axis, keepdims=True)


rule("relu", lambda xp, g, y, x: xp.where(x > 0, g, xp.zeros_like(g)), impl=_relu,
     doc="relu(x): max(x, 0) elementwise; relu'(0) = 0.")
rule("sigm", lambda xp, g, y, x: g * y * (1 - y), impl=_sigm,
     doc="sigm(x): the logistic sigmoid 1 / (1 + exp(-x)) elementwise.")
rule("elu", _elu_vjp, impl=_elu,
     doc="elu(x, *, alpha=1.0): x for x > 0, alpha * (exp(x) - 1) otherwise.")
rule("softplus", lambda xp, g, y, x: g * P["sigm"](x), impl=_softplus,
     doc="softplus(x): log(1 + exp(x)) elementwise, computed stably.")
# One node each (not the several ops of their formulas); the VJPs use the saved output y.
rule("logsoftmax", lambda xp, g, y, x, *, axis=-1:
     g - xp.exp(y) * xp.sum(g, axis=axis, keepdims=True), impl=_logsoftmax,
     doc="logsoftmax(x, *, axis=-1): log(softmax(x)) along axis; an entry of -inf gives -inf, an "
         "all -inf group nan (as torch).")
rule("softmax", lambda xp, g, y, x, *, axis=-1:
     y * (g - xp.sum(g * y, axis=axis, keepdims=True)), impl=_softmax,
     doc="softmax(x, *, axis=-1): exp(x) / sum(exp(x)) along axis, from the max-shifted x; an "
         "all -inf group gives nan (as torch).")
