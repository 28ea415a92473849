"""``minibatch``: iterate over a dataset in minibatches along axis 0 (Knet's ``minibatch``).

The dataset is never copied as a whole: without shuffling each batch is a slice (a view on numpy and
torch); with shuffling each pass draws one permutation of the row indices, moves that index array to
the data's backend and device once, and each batch takes its rows with ``take``. Works on the raw
arrays of any registered backend through its Array API namespace.
"""

from __future__ import annotations

import operator
from typing import Any, Iterator

import numpy as np
from array_api_compat import device as device_of

from .. import registry
from ..traced import Traced


class Minibatches:
    """The minibatches of ``x`` (and ``y``), re-iterable: each ``iter()`` is one epoch.

    Yields ``(x_batch, y_batch)`` pairs, or ``x_batch`` alone when ``y`` is None. ``len()`` is the
    number of batches per epoch. Made by :func:`minibatch`.
    """

    def __init__(self, x: Any, y: Any, batchsize: int, shuffle: bool, partial: bool,
                 rng: np.random.Generator | None):
        self.x = x
        self.y = y
        self.batchsize = batchsize
        self.shuffle = shuffle
        self.partial = partial
        self.rng = rng
        self.n = int(x.shape[0])

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batchsize)
        return full + (1 if self.partial and rest else 0)

    def __iter__(self) -> Iterator[Any]:
        arrays = [a for a in (self.x, self.y) if a is not None]
        if self.shuffle:
            order = self.rng.permutation(self.n)
            indices = [_index_array(order, a) for a in arrays]
        stop = len(self) * self.batchsize
        for start in range(0, stop, self.batchsize):
            end = min(start + self.batchsize, self.n)
            if self.shuffle:
                batch = tuple(registry.backend_of(a).ns.take(a, i[start:end], axis=0)
                              for a, i in zip(arrays, indices))
            else:
                batch = tuple(a[start:end, ...] for a in arrays)
            yield batch if self.y is not None else batch[0]

    def __repr__(self) -> str:
        return (f"<minibatch: {self.n} rows in {len(self)} batches of {self.batchsize}"
                f"{', shuffled' if self.shuffle else ''}{', last one partial' if self.partial else ''}>")


def _index_array(order: np.ndarray, a: Any) -> Any:
    """``order`` as an integer array of ``a``'s backend, on ``a``'s device."""
    return registry.backend_of(a).ns.asarray(order, device=device_of(a))


def minibatch(x: Any, y: Any, batchsize: int, *, shuffle: bool = False, partial: bool = False,
              rng: np.random.Generator | int | None = None) -> Minibatches:
    """The minibatches of ``batchsize`` rows of ``x`` and ``y`` along axis 0, for one epoch per pass.

    ``x`` and ``y`` are raw arrays of any registered backends with the same number of rows; ``y``
    may be None, and then the batches are ``x`` batches alone. ``shuffle`` draws a new order of the
    rows at each pass (each ``iter()``) from ``rng`` (a ``numpy.random.Generator`` or an int seed;
    a fresh unseeded generator if None). ``partial`` keeps a last, shorter batch; without it the
    rows left over are skipped (in that pass: shuffled passes skip different ones)."""
    x_rows = _rows(x, "x")
    if y is not None and _rows(y, "y") != x_rows:
        raise ValueError(f"minibatch: x and y must have the same number of rows (axis 0): x has "
                         f"{x_rows}, y has {y.shape[0]}")
    if isinstance(batchsize, bool):
        raise TypeError(f"minibatch: batchsize must be a positive int, got {batchsize!r}")
    try:
        batchsize = operator.index(batchsize)
    except TypeError:
        raise TypeError(f"minibatch: batchsize must be a positive int, got "
                        f"{registry.describe(batchsize)} {batchsize!r}") from None
    if batchsize <= 0:
        raise ValueError(f"minibatch: batchsize must be a positive int, got {batchsize}")
    for name, flag in (("shuffle", shuffle), ("partial", partial)):
        if not isinstance(flag, bool):
            raise TypeError(f"minibatch: {name} must be True or False, got {flag!r}")
    if rng is not None and not shuffle:
        raise ValueError("minibatch: rng is given but shuffle=False; pass shuffle=True to shuffle")
    return Minibatches(x, y, batchsize, shuffle, partial, _generator(rng) if shuffle else None)


def _rows(a: Any, name: str) -> int:
    if type(a) is Traced:
        raise TypeError(f"minibatch: {name} is a traced value; make minibatches outside grad")
    if registry.owner(type(a)) is None:
        raise TypeError(f"minibatch: {name} must be an array of a registered backend "
                        f"({', '.join(sorted(registry.backends()))}), got {registry.describe(a)}; "
                        f"convert it first, e.g. with numpy.asarray")
    if len(a.shape) == 0:
        raise ValueError(f"minibatch: {name} is a 0-dimensional array; its rows (axis 0) are the "
                         f"examples, so it needs at least one dimension")
    return int(a.shape[0])


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"minibatch: rng must be a numpy.random.Generator, an int seed or None, got "
                    f"{registry.describe(rng)}")
