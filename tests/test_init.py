"""kn.init: fan conventions, bounds and statistics, reproducible seeds, the same values on every
backend, and bad input."""

import math

import array_api_strict as xs
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import knetapi as kn
from knetapi import init
from knetapi.convert import convert

shapes = st.lists(st.integers(1, 6), max_size=4).map(tuple)
seeds = st.integers(0, 2**32 - 1)


def to_numpy(x):
    return convert(x, "numpy")


def test_fans():
    assert init.fans((3, 5)) == (3, 5)                    # (in, out), used as x @ w
    assert init.fans((8, 3, 5, 5)) == (75, 200)           # conv (O, C, kh, kw): C*kh*kw, O*kh*kw
    assert init.fans((8, 3, 5)) == (15, 40)               # conv1d (O, C, k)
    assert init.fans(7) == init.fans((7,)) == (7, 7)      # biases: fan_in = fan_out = size
    assert init.fans(()) == (1, 1)


@given(shape=shapes, seed=seeds)
def test_xavier_is_bounded_and_reproducible(shape, seed):
    w = init.xavier(shape, rng=seed)
    fan_in, fan_out = init.fans(shape)
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert isinstance(w, np.ndarray) and w.shape == shape and w.dtype == np.float32
    assert np.all(np.abs(w) <= np.float32(bound))
    np.testing.assert_array_equal(w, init.xavier(shape, rng=seed))
    np.testing.assert_array_equal(w, init.xavier(shape, rng=np.random.default_rng(seed)))


def test_xavier_statistics():
    w = init.xavier((300, 500), dtype="float64", rng=0)
    bound = math.sqrt(6 / 800)
    assert abs(w.mean()) < 0.01 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)   # U(-a, a) has std a / sqrt(3)
    assert w.max() == pytest.approx(bound, rel=1e-3) and w.min() == pytest.approx(-bound, rel=1e-3)


def test_a_generator_is_advanced():
    rng = np.random.default_rng(5)
    a, b = init.xavier((4, 4), rng=rng), init.xavier((4, 4), rng=rng)
    assert not np.array_equal(a, b)
    assert not np.array_equal(init.xavier((4, 4)), init.xavier((4, 4)))   # rng=None: fresh entropy


def test_gaussian_statistics():
    w = init.gaussian((400, 500), mean=2.0, std=0.5, dtype="float64", rng=1)
    assert w.mean() == pytest.approx(2.0, abs=0.005)
    assert w.std() == pytest.approx(0.5, rel=0.01)
    assert init.gaussian(10000, rng=2).std() == pytest.approx(0.01, rel=0.05)   # Knet's default std
    np.testing.assert_array_equal(init.gaussian((2, 3), std=0.0, mean=4.0), np.full((2, 3), 4.0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fn", [init.xavier, init.gaussian])
def test_every_backend_gets_the_same_values(fn, dtype):
    expected = fn((3, 4), dtype=dtype, rng=7)
    assert expected.dtype == np.dtype(dtype)
    t = fn((3, 4), dtype=dtype, backend="torch", device="cpu", rng=7)
    s = fn((3, 4), dtype=dtype, backend="strict", rng=7)
    assert isinstance(t, torch.Tensor) and t.dtype == getattr(torch, dtype)
    assert s.dtype == getattr(xs, dtype) and kn.backend_of(s).name == "strict"
    np.testing.assert_array_equal(to_numpy(t), expected)
    np.testing.assert_array_equal(to_numpy(s), expected)


def test_dtype_spellings():
    assert init.xavier(2, dtype=torch.float64, backend="torch", rng=0).dtype == torch.float64
    assert init.xavier(2, dtype=kn.float64, backend="torch", rng=0).dtype == torch.float64
    assert init.xavier(2, dtype=np.dtype("float64"), backend="strict", rng=0).dtype == xs.float64
    assert init.xavier(2, dtype=xs.float64, backend="strict", rng=0).dtype == xs.float64


@pytest.mark.parametrize("backend", ["numpy", "strict", "torch"])
def test_zeros_and_ones(backend):
    z = init.zeros((2, 3), backend=backend)
    o = init.ones(4, dtype="float64", backend=backend)
    assert kn.backend_of(z).name == backend and tuple(z.shape) == (2, 3)
    np.testing.assert_array_equal(to_numpy(z), np.zeros((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(to_numpy(o), np.ones(4))
    assert to_numpy(z).dtype == np.float32 and to_numpy(o).dtype == np.float64


def test_exposed_as_kn_init():
    assert kn.init is init and kn.init.xavier is init.xavier


# ---- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [init.xavier, init.gaussian, init.zeros, init.ones])
def test_non_positive_dimensions(fn):
    for shape in [(0, 3), (2, -1), -4]:
        with pytest.raises(ValueError, match=rf"init.{fn.__name__}: every dimension must be positive"):
            fn(shape)
    for shape in [(2.0, 3), "3", (True,), None]:
        with pytest.raises(TypeError, match="shape must be an int or a tuple of ints"):
            fn(shape)


def test_unknown_backend_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"init.xavier: no backend named 'jax'; registered: .*numpy.*strict"):
        init.xavier((2, 2), backend="jax")
    with pytest.raises(TypeError, match="backend must be a backend name"):
        init.xavier((2, 2), backend=np)


def test_non_float_dtypes():
    for dtype in ["int32", np.int64, np.float16, "bool", "complex64"]:
        with pytest.raises(TypeError, match=r"dtype must be a real floating dtype of the numpy backend "
                                            r"\(float32, float64\)"):
            init.xavier(2, dtype=dtype)
    with pytest.raises(TypeError, match="real floating dtype of the torch backend"):
        init.gaussian(2, dtype=torch.int32, backend="torch")


def test_bad_rng_and_gaussian_parameters():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator, an int seed or None, got float"):
        init.xavier(2, rng=1.5)
    with pytest.raises(TypeError, match="got bool"):
        init.gaussian(2, rng=True)
    with pytest.raises(ValueError, match="std must be a finite number >= 0"):
        init.gaussian(2, std=-1.0)
    with pytest.raises(ValueError, match="mean must be a finite number"):
        init.gaussian(2, mean=math.nan)
