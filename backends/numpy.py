"""The numpy backend (CPU): numpy arrays and numpy scalars, through array_api_compat.numpy."""

from __future__ import annotations

import array_api_compat.numpy as compat_numpy
import numpy as np

from knetapi.scatter import is_basic_key

NAME = "numpy"
ARRAY_TYPES = (np.ndarray, np.generic)


def namespace():
    return compat_numpy


def scatter_add(out: np.ndarray, key, values) -> np.ndarray:
    """``out[key] += values`` with repeated indices accumulating (numpy's ``add.at``), in place."""
    if is_basic_key(key):
        out[key] += values
    else:
        if out.ndim == 1:
            # numpy's fast path of add.at for a 1-d target steps through ``values`` as if it had
            # the index's shape: ``values`` broadcast along a multi-dimensional index are added
            # only partly (numpy 2.4: add.at(zeros(1), [[0, 0], [0, 0]], [1., 10.]) gives 11.)
            values = np.broadcast_to(values, out[key].shape)
        np.add.at(out, key, values)
    return out


def logsumexp(x, *, axis=None, keepdims=False):
    """log(sum(exp(x))) with the maximum subtracted first; -inf for an empty or all -inf group."""
    top = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    top = np.where(np.isfinite(top), top, 0)        # a 0-d max is a numpy scalar: no item assignment
    with np.errstate(divide="ignore"):              # log(0) = -inf is the answer there
        out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


def getitem(x: np.ndarray, *, key) -> np.ndarray:
    return x[key]


OVERRIDES = {"scatter_add": scatter_add, "logsumexp": logsumexp, "getitem": getitem}


def to_numpy(x) -> np.ndarray:
    """The host array of ``x`` (numpy scalars become 0-d arrays), for kn.convert."""
    return np.asarray(x)
