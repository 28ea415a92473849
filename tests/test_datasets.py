"""The shipped data sets load with the documented shapes, dtypes and scaling."""

import numpy as np

from knetapi.datasets import housing


def test_housing_shapes_and_dtypes():
    x, y = housing()
    assert (x.shape, y.shape) == ((506, 13), (506, 1))
    assert x.dtype == y.dtype == np.float32
    assert np.isfinite(x).all() and np.isfinite(y).all()


def test_housing_features_are_standardized():
    x, _ = housing()
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-5)


def test_housing_targets_are_median_values_in_thousands():
    _, y = housing()
    assert y[0, 0] == 24.0 and y[-1, 0] == np.float32(11.9)     # first and last rows of the file
    assert y.min() == 5.0 and y.max() == 50.0
    np.testing.assert_allclose(y.mean(), 22.5328, atol=1e-3)
