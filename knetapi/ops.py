"""Deep-learning ops with Knet's names: activations, softmax, losses, dropout, ``mat``.

Conventions: batch-first; class scores lie along ``axis`` (default -1, so scores are
(N, classes) and labels (N,) integers in ``[0, classes)``). Everything here is differentiable on
every backend: activations are primitives (knetapi.rules.activations), the rest is built from
primitives. Embedding lookup needs no op: ``embeddings[tokens]`` (indexing) is differentiable and
its gradient stays sparse until summed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import registry
from .rules import PRIMITIVES
from .traced import Traced, strip

relu = PRIMITIVES["relu"]
sigm = PRIMITIVES["sigm"]
elu = PRIMITIVES["elu"]
softplus = PRIMITIVES["softplus"]
logsumexp = PRIMITIVES["logsumexp"]


def _ns(x):
    return registry.backend_of(x).ns


def logsoftmax(x, axis: int = -1):
    """log(softmax(x)) along ``axis``: x - logsumexp(x), stable for large scores."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x, axis: int = -1):
    """exp(x) / sum(exp(x)) along ``axis``, computed from the max-shifted logsoftmax."""
    return PRIMITIVES["exp"](logsoftmax(x, axis))


def _check_labels(scores, labels, axis: int, op: str):
    raw = strip(labels)
    xp = _ns(scores)
    if registry.owner(type(raw)) is None or not xp.isdtype(raw.dtype, "integral"):
        raise TypeError(f"{op}: labels must be an integer array of class indices, got "
                        f"{getattr(raw, 'dtype', registry.describe(raw))}")
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
    xp = _ns(scores)
    picked = PRIMITIVES["take_along_axis"](logsoftmax(scores, axis), xp.expand_dims(raw, axis=axis),
                                           axis=axis)
    total = -PRIMITIVES["sum"](picked)
    return total / math.prod(raw.shape) if average else total


def accuracy(scores, labels, axis: int = -1) -> float:
    """The fraction of instances whose highest score is at their label."""
    raw = _check_labels(scores, labels, axis, "accuracy")
    xp = _ns(scores)
    hits = xp.argmax(strip(scores), axis=axis) == raw
    return float(xp.mean(xp.astype(hits, xp.float64)))


def bce(scores, labels):
    """Binary cross-entropy of labels in {0, 1} (or probabilities in [0, 1]) under
    sigm(``scores``), averaged: mean(softplus(x) - y * x), stable for large |x|."""
    return PRIMITIVES["mean"](softplus(scores) - labels * scores)


def logistic(scores, labels):
    """Logistic loss of labels in {-1, +1}: mean(log(1 + exp(-y * x)))."""
    return PRIMITIVES["mean"](softplus(-labels * scores))


def dropout(x, p: float, rng: Any = None):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p), while
    differentiating (``x`` traced); the identity when ``p == 0`` or outside ``grad``, as in Knet.
    ``rng``: a numpy Generator or an int seed (None: fresh entropy)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must lie in [0, 1), got {p}")
    if p == 0 or type(x) is not Traced:
        return x
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    xp = _ns(x)
    keep = generator.random(x.shape) >= p
    scale = xp.asarray(keep / (1 - p), dtype=x.dtype, device=x.device)
    return x * scale


def mat(x):
    """Flatten every axis but the first (the batch): (N, d1, d2, ...) -> (N, d1 * d2 * ...)."""
    return PRIMITIVES["reshape"](x, (x.shape[0], -1))
