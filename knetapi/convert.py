"""``convert``: move a pytree of arrays to another backend (the paper's ``KnetArray(w)`` step)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import registry
from .pytree import map_with_path
from .traced import Traced


def convert(tree: Any, backend: str, device: Any = None) -> Any:
    """A copy of ``tree`` with every array leaf on ``backend`` (a registered name such as
    ``"numpy"`` or ``"torch"``), on ``device`` if given; structure and dtypes are kept, Python
    scalars and None pass through. Arrays go through host memory (numpy) when backends differ.
    TypeError names the path of a leaf that is not an array; ValueError a cyclic or too deep
    tree."""
    target = registry.get_backend(backend)

    def move(path: str, x: Any) -> Any:
        if type(x) is Traced:
            raise TypeError(f"convert: {path} is a traced value; convert parameters outside grad")
        if x is None or isinstance(x, registry.SCALAR_TYPES):
            return x
        source = registry.owner(type(x))
        if source is None:
            raise TypeError(f"convert: {path} is a {registry.describe(x)}, not an array of a "
                            f"registered backend ({', '.join(sorted(registry.backends()))})")
        if source is target:
            return x if device is None else target.ns.asarray(x, device=device, copy=True)
        return target.ns.asarray(to_numpy(x), device=device, copy=True)

    return map_with_path(move, tree, "tree")


def to_numpy(x: Any) -> np.ndarray:
    """The raw array ``x`` of any registered backend as a numpy array in host memory (no copy
    where the backend allows it): the backend's ``to_numpy`` if it has one, else DLPack."""
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    return getattr(registry.backend_of(x).module, "to_numpy", np.from_dlpack)(x)
