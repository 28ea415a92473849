"""The Boston Housing table shipped with knetapi, and a random train/test split of rows."""

from __future__ import annotations

from importlib import resources

import numpy as np


def housing() -> tuple[np.ndarray, np.ndarray]:
    """The UCI Boston Housing data, as in the Knet paper's linear regression example.

    Returns ``(x, y)``, float32 numpy arrays, one row per house (batch-first):
    ``x`` (506, 13) holds the 13 features, each standardized to mean 0 and standard deviation 1;
    ``y`` (506, 1) holds the median house value in $1000s, as recorded (not standardized).
    The file ships inside the package (``knetapi/data/housing.data``; its README gives the source).
    """
    with (resources.files(__package__) / "housing.data").open("r") as f:
        table = np.loadtxt(f, dtype=np.float64)
    x, y = table[:, :13], table[:, 13:]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x.astype(np.float32), y.astype(np.float32)


def split(x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2,
          rng: np.random.Generator | int | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random split of the rows (axis 0) of ``x`` and ``y`` into a training and a test part.

    ``x`` and ``y`` are numpy arrays with the same number of rows N; the same rows go to the same
    part in both. ``round(N * test_fraction)`` rows, drawn at random without replacement, form the
    test part, the others the training part, each in a random order. ``rng`` is a
    ``numpy.random.Generator`` or an int seed (the same seed gives the same split); None draws
    from a fresh unseeded generator. Returns ``(xtrain, ytrain, xtest, ytest)``, new arrays with
    the dtypes of ``x`` and ``y``.
    """
    n = _rows(x, "x")
    if _rows(y, "y") != n:
        raise ValueError(f"split: x and y must have the same number of rows (axis 0): x has {n}, "
                         f"y has {y.shape[0]}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise TypeError(f"split: test_fraction must be a number between 0 and 1, got "
                        f"{test_fraction!r}")
    ntest = round(n * test_fraction)
    if not 0 < ntest < n:
        raise ValueError(f"split: test_fraction={test_fraction} of {n} rows leaves "
                         f"{ntest} test and {n - ntest} training rows; each part needs one")
    order = _generator(rng).permutation(n)
    train, test = order[ntest:], order[:ntest]
    return x[train], y[train], x[test], y[test]


def _rows(a: np.ndarray, name: str) -> int:
    if not isinstance(a, np.ndarray) or a.ndim == 0:
        raise TypeError(f"split: {name} must be a numpy array with at least one dimension (its "
                        f"rows are axis 0), got {type(a).__name__} {getattr(a, 'shape', '')}")
    return a.shape[0]


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"split: rng must be a numpy.random.Generator, an int seed or None, got "
                    f"{type(rng).__name__} {rng!r}")
