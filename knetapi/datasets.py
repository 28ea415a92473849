"""Small data sets shipped with knetapi (see knetapi/data/README.md for their sources)."""

from __future__ import annotations

from importlib import resources

import numpy as np


def housing() -> tuple[np.ndarray, np.ndarray]:
    """The UCI Boston Housing data, as in the Knet paper's linear regression example.

    Returns ``(x, y)``, float32 numpy arrays, one row per house (batch-first):
    ``x`` (506, 13) holds the 13 features, each standardized to mean 0 and standard deviation 1;
    ``y`` (506, 1) holds the median house value in $1000s, as recorded (not standardized).
    """
    with (resources.files("knetapi") / "data" / "housing.data").open("r") as f:
        table = np.loadtxt(f, dtype=np.float64)
    x, y = table[:, :13], table[:, 13:]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x.astype(np.float32), y.astype(np.float32)
