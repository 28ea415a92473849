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
        np.add.at(out, key, values)
    return out


def logsumexp(x, *, axis=None, keepdims=False):
    top = np.max(x, axis=axis, keepdims=True)
    top[~np.isfinite(top)] = 0
    out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


OVERRIDES = {"scatter_add": scatter_add, "logsumexp": logsumexp}
