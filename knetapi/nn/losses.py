"""Losses and metrics with Knet's names: nll, accuracy, bce, logistic.

Conventions: batch-first; class scores lie along ``axis`` (default -1, so scores are
(N, classes) and labels (N,) integers in ``[0, classes)``). The losses are built from primitives,
so they are differentiable on every backend and at every order.
"""

from __future__ import annotations

import math

from ..registry import backend_of, describe, owner
from ..rules import PRIMITIVES
from ..traced import strip
from .activations import logsoftmax, softplus


def _check_labels(scores, labels, axis: int, op: str):
    raw = strip(labels)
    xp = backend_of(scores).ns
    if owner(type(raw)) is None or not xp.isdtype(raw.dtype, "integral"):
        raise TypeError(f"{op}: labels must be an integer array of class indices, got "
                        f"{getattr(raw, 'dtype', describe(raw))}")
    expected = tuple(s for i, s in enumerate(scores.shape) if i != axis % scores.ndim)
    if tuple(raw.shape) != expected:
        raise ValueError(f"{op}: labels of shape {tuple(raw.shape)} do not match scores of shape "
                         f"{tuple(scores.shape)} with classes along axis {axis} (expected {expected})")
    classes = scores.shape[axis]
    if math.prod(raw.shape) and (int(xp.min(raw)) < 0 or int(xp.max(raw)) >= classes):
        raise ValueError(f"{op}: labels must lie in [0, {classes}) for {classes} classes, got values "
                         f"from {int(xp.min(raw))} to {int(xp.max(raw))}")
    return raw


def nll(scores, labels, axis: int = -1, average: bool = True):
    """Negative log likelihood of integer ``labels`` under softmax(``scores``) along ``axis``
    (softmax cross-entropy): the mean over instances, or the sum with ``average=False``."""
    raw = _check_labels(scores, labels, axis, "nll")
    xp = backend_of(scores).ns
    picked = PRIMITIVES["take_along_axis"](logsoftmax(scores, axis), xp.expand_dims(raw, axis=axis),
                                           axis=axis)
    total = -PRIMITIVES["sum"](picked)
    return total / math.prod(raw.shape) if average else total


def accuracy(scores, labels, axis: int = -1) -> float:
    """The fraction of instances whose highest score is at their label."""
    raw = _check_labels(scores, labels, axis, "accuracy")
    xp = backend_of(scores).ns
    hits = xp.argmax(strip(scores), axis=axis) == raw
    return float(xp.mean(xp.astype(hits, xp.float64)))


def bce(scores, labels):
    """Binary cross-entropy of labels in {0, 1} (or probabilities in [0, 1]) under
    sigm(``scores``), averaged: mean((1 - y) softplus(x) + y softplus(-x)), which is
    softplus(x) - y x without its cancellation: accurate for large |x| (a confident right answer
    costs exp(-|x|), not a rounded 0), and its gradient is sigm(x) - y at every x."""
    # the traced values on the left: array-api-strict's arrays do not defer to a traced right operand
    return PRIMITIVES["mean"](softplus(scores) * (1 - labels) + softplus(-scores) * labels)


def logistic(scores, labels):
    """Logistic loss of labels in {-1, +1}: mean(log(1 + exp(-y * x)))."""
    return PRIMITIVES["mean"](softplus(scores * -labels))     # traced on the left (see bce)
