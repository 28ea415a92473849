"""Activations and other layers with Knet's names: relu, sigm, elu, softplus, softmax, dropout, mat.

Conventions: batch-first; softmax and logsoftmax work along ``axis`` (default -1, so scores are
(N, classes)). Everything here is differentiable on every backend: activations are primitives
(knetapi.rules.activations), the rest is built from primitives. Embedding lookup needs no op:
``embeddings[tokens]`` (indexing) is differentiable and its gradient stays sparse until summed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..registry import backend_of
from ..rules import PRIMITIVES
from ..traced import Traced

relu = PRIMITIVES["relu"]
sigm = PRIMITIVES["sigm"]
elu = PRIMITIVES["elu"]
softplus = PRIMITIVES["softplus"]
logsumexp = PRIMITIVES["logsumexp"]


def logsoftmax(x, axis: int = -1):
    """log(softmax(x)) along ``axis``, stable and accurate for large scores; an entry of -inf (a
    masked score) gives -inf and a finite gradient; an all -inf group gives nan (as torch)."""
    return PRIMITIVES["logsoftmax"](x, axis=axis)


def softmax(x, axis: int = -1):
    """exp(x) / sum(exp(x)) along ``axis``, from the max-shifted ``x`` (stable for large scores);
    an entry of -inf gets probability 0; an all -inf group gives nan (as torch)."""
    return PRIMITIVES["softmax"](x, axis=axis)


def dropout(x, p: float, rng: Any = None):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p), while
    differentiating (``x`` traced); the identity when ``p == 0`` or outside ``grad``, as in Knet.
    ``rng``: a numpy Generator or an int seed (None: fresh entropy)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must lie in [0, 1), got {p}")
    if p == 0 or type(x) is not Traced:
        return x
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    xp = backend_of(x).ns
    keep = generator.random(x.shape) >= p
    scale = xp.asarray(keep / (1 - p), dtype=x.dtype, device=x.device)
    return x * scale


def mat(x):
    """Flatten every axis but the first (the batch): (N, d1, d2, ...) -> (N, d1 * d2 * ...)."""
    return PRIMITIVES["reshape"](x, (x.shape[0], -1))
