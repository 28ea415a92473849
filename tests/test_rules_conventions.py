"""The documented conventions of the rules at kinks and ties, exactly, where finite differences
cannot judge them; and fixed examples of cases that property tests reach only by chance."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import knetapi as kn
from knetapi import grad
from knetapi.rules import PRIMITIVES as P
from knetapi.testing import check_grads


def _summed(f):
    """``sum(f(*args))``: its gradient is the VJP of ``f`` with a cotangent of ones."""
    return lambda *args: kn.sum(f(*args))


def test_abs_has_zero_derivative_at_zero():
    assert_array_equal(grad(_summed(kn.abs))(np.array([0.0, 1.5, -2.0])), [0.0, 1.0, -1.0])


def test_relu_has_zero_derivative_at_zero():
    assert_array_equal(grad(_summed(P["relu"]))(np.array([0.0, 1.5, -2.0])), [0.0, 1.0, 0.0])


def test_elu_takes_the_exponential_side_at_zero_as_torch():
    # alpha = 2 tells the sides apart: alpha * exp(0) = 2 on the exponential side, 1 on the linear
    gradient = grad(lambda x: kn.sum(P["elu"](x, alpha=2.0)))(np.array([0.0, 1.5]))
    assert_array_equal(gradient, [2.0, 1.0])


@pytest.mark.parametrize("f, first, second", [
    (kn.maximum, [0.5, 1.0, 0.0, 0.5], [0.5, 0.0, 1.0, 0.5]),
    (kn.minimum, [0.5, 0.0, 1.0, 0.5], [0.5, 1.0, 0.0, 0.5]),
])
def test_maximum_and_minimum_share_ties_equally(f, first, second):
    a = np.array([1.0, 3.0, -1.0, 2.0])
    b = np.array([1.0, 2.0, 0.0, 2.0])
    ga, gb = grad(_summed(f), (0, 1))(a, b)
    assert_array_equal(ga, first)
    assert_array_equal(gb, second)


def test_maximum_tie_with_a_broadcast_argument():
    """A 0-d argument tied with two elements gets half of each of their cotangents."""
    ga, gb = grad(_summed(kn.maximum), (0, 1))(np.array(2.0), np.array([2.0, 1.0, 3.0, 2.0]))
    assert_array_equal(ga, 2.0)
    assert_array_equal(gb, [0.5, 0.0, 1.0, 0.5])


def test_clip_gives_the_cotangent_to_x_at_the_boundaries():
    x = np.array([-1.0, 0.0, 1.0, 2.0, -2.0])
    lo, hi = np.full(5, -1.0), np.full(5, 1.0)
    gx, glo, ghi = grad(_summed(P["clip"]), (0, 1, 2))(x, lo, hi)
    assert_array_equal(gx, [1.0, 1.0, 1.0, 0.0, 0.0])
    assert_array_equal(glo, [0.0, 0.0, 0.0, 0.0, 1.0])
    assert_array_equal(ghi, [0.0, 0.0, 0.0, 1.0, 0.0])


def test_clip_with_scalar_bounds_at_the_boundaries():
    f = _summed(lambda x: kn.clip(x, min=-1.0, max=1.0))
    assert_array_equal(grad(f)(np.array([-1.0, 1.0, 1.5])), [1.0, 1.0, 0.0])


@pytest.mark.parametrize("reduce", [kn.max, kn.min])
def test_max_and_min_share_ties_equally(reduce):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]) * (1 if reduce is kn.max else -1)
    assert_array_equal(grad(_summed(lambda x: reduce(x, axis=1)))(x),
                       [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    assert_array_equal(grad(lambda x: reduce(x))(x), [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("x, expected", [
    ([2.0, 0.0, 3.0], [0.0, 6.0, 0.0]),      # one zero: only its own derivative survives
    ([0.0, 2.0, 0.0], [0.0, 0.0, 0.0]),      # two zeros: every derivative is 0 (no nan)
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
])
def test_prod_with_zeros_is_exact(x, expected):
    assert_array_equal(grad(kn.prod)(np.array(x)), expected)


def test_prod_with_zeros_along_an_axis_is_exact():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 2.0, 0.0], [1.0, 2.0, 3.0]])
    assert_array_equal(grad(_summed(lambda x: kn.prod(x, axis=1)))(x),
                       [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [6.0, 3.0, 2.0]])


def test_cumulative_prod_with_zeros_is_exact():
    # out = [x0, x0 x1, x0 x1 x2]: d/dx0 = 1 + x1 + x1 x2, d/dx1 = x0 + x0 x2, d/dx2 = x0 x1
    assert_array_equal(grad(_summed(kn.cumulative_prod))(np.array([2.0, 0.0, 3.0])), [1.0, 8.0, 0.0])
    assert_array_equal(grad(_summed(kn.cumulative_prod))(np.array([0.0, 2.0, 0.0])), [3.0, 0.0, 0.0])


def test_pow_with_respect_to_the_exponent_is_zero_at_a_zero_base():
    a, b = np.array([0.0, 2.0]), np.array([2.0, 3.0])
    ga, gb = grad(_summed(kn.pow), (0, 1))(a, b)
    assert_array_equal(ga, [0.0, 12.0])
    assert_allclose(gb, [0.0, 8.0 * math.log(2.0)], rtol=1e-15)


def test_pow_with_a_zero_scalar_base():
    assert_array_equal(grad(_summed(lambda b: 0.0 ** b))(np.array([1.0, 2.0])), [0.0, 0.0])


def test_copysign_has_no_gradient_with_respect_to_the_sign():
    gx, gs = grad(_summed(kn.copysign), (0, 1))(np.array([1.5, -2.0]), np.array([-1.0, -3.0]))
    assert_array_equal(gx, [-1.0, 1.0])
    assert_array_equal(gs, [0.0, 0.0])


@pytest.mark.parametrize("select, expected", [
    (lambda w: w[np.array([0, 0, 1])], [2.0, 1.0, 0.0]),
    (lambda w: w[[0, 0, 1]], [2.0, 1.0, 0.0]),
    (lambda w: kn.take(w, np.array([0, 0, 1])), [2.0, 1.0, 0.0]),
    (lambda w: kn.take_along_axis(w, np.array([0, 0, 1]), axis=0), [2.0, 1.0, 0.0]),
    (lambda w: w[np.array([[0, 0], [1, -3]])], [3.0, 1.0, 0.0]),          # -3 is 0 again
    (lambda w: kn.index_add(np.zeros(2), w, key=np.array([1, 1, 0])), [1.0, 1.0, 1.0]),
], ids=["index array", "index list", "take", "take_along_axis", "2-d index", "index_add values"])
def test_repeated_indices_accumulate(select, expected):
    assert_array_equal(grad(_summed(select))(np.array([1.0, 2.0, 3.0])), expected)


def test_index_add_accumulates_repeated_indices():
    out = kn.index_add(np.zeros(3), np.array([1.0, 10.0, 100.0]), key=np.array([0, 0, 2]))
    assert_array_equal(out, [11.0, 0.0, 100.0])


def test_index_add_accumulates_values_broadcast_along_a_2d_index():
    """numpy's add.at adds broadcast values only partly into a 1-d array (see backends/numpy.py)."""
    out = kn.index_add(np.zeros(2), np.array([1.0, 10.0]), key=np.array([[0, 0], [0, 1]]))
    assert_array_equal(out, [12.0, 10.0])


def test_second_derivative_through_repeated_indices():
    """d/dw sum(w[[0, 0, 1]] ** 3) = [6 w0^2, 3 w1^2, 0], whose gradient along v is
    [12 w0 v0, 6 w1 v1, 0]."""
    f = _summed(lambda w: w[np.array([0, 0, 1])] ** 3)
    v = np.array([1.0, -2.0, 5.0])
    hv = grad(lambda w: kn.sum(grad(f)(w) * v))(np.array([1.0, 2.0, 3.0]))
    assert_allclose(hv, [12.0, -24.0, 0.0], rtol=1e-14)


@pytest.mark.parametrize("shapes", [((2, 1, 3, 4), (5, 4, 2)), ((4,), (5, 4, 2)), ((2, 1, 3, 4), (4,)),
                                    ((4,), (4,))])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matmul_with_broadcast_batch_axes(shapes, dtype):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    check_grads(kn.matmul, (a, b), argnums=(0, 1), order=2)


def test_two_dimensional_index_arrays_on_array_api_strict():
    """The generic (standard-only) scatter-add gives ``take`` 1-d indices, as the standard asks."""
    xp = pytest.importorskip("array_api_strict")
    v = xp.asarray([0.0, 1.0, 2.0])
    tokens = xp.asarray([[0, 0], [2, 0]])
    assert_array_equal(np.asarray(grad(_summed(lambda v: v[tokens] ** 2))(v)), [0.0, 0.0, 4.0])
    out = kn.index_add(xp.zeros(3, dtype=xp.float64), xp.asarray([1.0, 10.0]), key=tokens)
    assert_array_equal(np.asarray(out), [21.0, 0.0, 1.0])
