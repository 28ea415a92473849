"""The grad API: pytrees, argnums, has_aux, floats, higher order, operators and traced values."""

import math
import warnings

import numpy as np
import pytest

import knetapi as kn
from knetapi.testing import check_grads


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --- parameters as pytrees -------------------------------------------------------------------

def test_gradient_has_the_structure_of_a_nested_pytree(rng):
    w = {"layer1": [rng.standard_normal((3, 2)), rng.standard_normal(2)],
         "layer2": (rng.standard_normal((2, 1)), 0.5)}
    x = rng.standard_normal((4, 3))

    def loss(w, x):
        h = kn.tanh(x @ w["layer1"][0] + w["layer1"][1])
        return kn.sum((h @ w["layer2"][0] + w["layer2"][1]) ** 2)

    g = kn.grad(loss)(w, x)
    assert set(g) == {"layer1", "layer2"}
    assert isinstance(g["layer1"], list) and isinstance(g["layer2"], tuple)
    assert g["layer1"][0].shape == (3, 2) and g["layer1"][0].dtype == np.float64
    assert isinstance(g["layer2"][1], float)
    check_grads(loss, (w, x))


def test_unreached_leaves_get_zeros_of_their_own_shape_and_dtype(rng):
    w = [rng.standard_normal(3).astype(np.float32), rng.standard_normal((2, 2)).astype(np.float32)]
    g = kn.grad(lambda w: kn.sum(w[0] * 2))(w)
    np.testing.assert_array_equal(g[0], np.full(3, 2, np.float32))
    assert g[1].dtype == np.float32 and g[1].shape == (2, 2) and not np.any(g[1])


def test_named_tuple_parameters_keep_their_type(rng):
    from collections import namedtuple
    Layer = namedtuple("Layer", "w b")
    p = Layer(rng.standard_normal(3), rng.standard_normal(3))
    g = kn.grad(lambda p: kn.sum(p.w * p.b))(p)
    assert isinstance(g, Layer)
    np.testing.assert_allclose(g.w, p.b)


def test_gradient_of_a_float_is_a_float():
    g = kn.grad(lambda x: x * x * 3.0)(2.0)
    assert isinstance(g, float) and g == 12.0


def test_float32_stays_float32(rng):
    w = rng.standard_normal((3, 3)).astype(np.float32)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    g = kn.grad(lambda w: kn.mean(kn.exp(x @ w) * 0.5))(w)
    assert g.dtype == np.float32


# --- argnums, has_aux, value_and_grad ------------------------------------------------------------

def test_argnums_tuple_returns_a_tuple(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    ga, gb = kn.grad(lambda a, b: kn.sum(a * b * b), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, b * b)
    np.testing.assert_allclose(gb, 2 * a * b)
    gb_only = kn.grad(lambda a, b: kn.sum(a * b * b), argnums=1)(a, b)
    np.testing.assert_allclose(gb_only, 2 * a * b)


def test_negative_argnums(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    np.testing.assert_allclose(kn.grad(lambda a, b: kn.sum(a * b), argnums=-1)(a, b), a)


def test_has_aux_returns_the_aux_value_untraced(rng):
    w = rng.standard_normal(3)

    def loss(w):
        y = w * 2
        return kn.sum(y), {"y": y, "n": 3}

    g, aux = kn.grad(loss, has_aux=True)(w)
    np.testing.assert_allclose(g, 2 * np.ones(3))
    assert type(aux["y"]) is np.ndarray and aux["n"] == 3
    (value, aux2), g2 = kn.value_and_grad(loss, has_aux=True)(w)
    assert math.isclose(float(value), 2 * float(np.sum(w)))
    np.testing.assert_allclose(aux2["y"], 2 * w)


def test_value_and_grad(rng):
    w = rng.standard_normal(4)
    value, g = kn.value_and_grad(lambda w: kn.sum(w ** 3))(w)
    assert math.isclose(float(value), float(np.sum(w ** 3)))
    np.testing.assert_allclose(g, 3 * w ** 2)


def test_keyword_arguments_are_passed_through(rng):
    w = rng.standard_normal(3)
    g = kn.grad(lambda w, *, scale: kn.sum(w) * scale)(w, scale=4.0)
    np.testing.assert_allclose(g, np.full(3, 4.0))


# --- plain Python control flow -------------------------------------------------------------------

def test_loops_conditionals_closures_and_recursion(rng):
    w = rng.standard_normal(3)

    def power(x, n):
        return x if n == 1 else x * power(x, n - 1)

    def f(w):
        total = 0.0
        for i, wi in enumerate(w):           # __iter__ over axis 0
            if wi > 0:                       # __bool__ on a 0-d traced value
                total = total + power(wi, 3)
            else:
                total = total - wi * i
        return total

    expected = np.where(w > 0, 3 * w ** 2, -np.arange(3.0))
    np.testing.assert_allclose(kn.grad(f)(w), expected)


def test_augmented_assignment_rebinds_and_never_writes_into_the_callers_array(rng):
    w = rng.standard_normal(3)
    saved = w.copy()

    def f(v):
        v += 1
        v *= v
        return kn.sum(v)

    np.testing.assert_allclose(kn.grad(f)(w), 2 * (saved + 1))
    np.testing.assert_array_equal(w, saved)


def test_raw_numpy_operands_on_the_left_defer_to_traced_values(rng):
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal(3)

    def f(w):
        for y in (x @ w, 2 * w, np.float32(2) * w, 1.0 - w, x + w, 2 ** w, x / (w + 5)):
            assert type(y) is kn.Traced, type(y)
        return kn.sum(x @ w) + kn.sum(2 ** w)

    np.testing.assert_allclose(kn.grad(f)(w), x.sum(0) + np.log(2) * 2 ** w)


def test_comparisons_return_raw_boolean_arrays(rng):
    w = rng.standard_normal(3)

    def f(w):
        for mask in (w > 0, w >= 0, w < 0, w <= 0, w == w, w != 0):
            assert type(mask) is np.ndarray and mask.dtype == np.bool_
        return kn.sum(w[w > 0])

    np.testing.assert_allclose(kn.grad(f)(w), (w > 0).astype(float))


def test_traced_value_attributes(rng):
    w = rng.standard_normal((2, 3))

    def f(w):
        assert w.shape == (2, 3) and w.ndim == 2 and w.size == 6 and len(w) == 2
        assert w.dtype == np.float64 and w.device == "cpu"
        assert w.T.shape == (3, 2) and w.mT.shape == (3, 2)
        assert float(w[0, 0]) == float(np.asarray(w[0, 0]._value)) and int(w[0, 0] * 0) == 0
        return kn.sum(w.T * w.mT)

    np.testing.assert_allclose(kn.grad(f)(w), 2 * w)


# --- higher order ------------------------------------------------------------------------------

def test_perturbation_confusion():
    assert kn.grad(lambda x: x * kn.grad(lambda y: x + y)(x))(5.0) == 1.0


def test_nested_closure_over_outer_parameter():
    # d/dx [x * d/dy (x * y)] = d/dx x^2 = 2x
    assert kn.grad(lambda x: x * kn.grad(lambda y: x * y)(x))(3.0) == 6.0


def test_third_derivative():
    f = lambda x: kn.sin(x) * x  # noqa: E731
    d3 = kn.grad(kn.grad(kn.grad(f)))(np.float64(0.7))
    x = 0.7
    assert math.isclose(float(d3), -3 * math.sin(x) - x * math.cos(x), rel_tol=1e-12)


def test_hessian_vector_product(rng):
    a = rng.standard_normal((4, 4))
    a = a + a.T
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    f = lambda x: kn.sum(x * (a @ x)) / 2 + kn.sum(kn.sin(x))  # noqa: E731
    hvp = kn.grad(lambda x: kn.sum(kn.grad(f)(x) * v))(x)
    np.testing.assert_allclose(hvp, a @ v - np.sin(x) * v, rtol=1e-12)


def test_grad_of_grad_through_pytrees(rng):
    w = {"a": rng.standard_normal(3), "b": 0.3}

    def f(w):
        return kn.sum(kn.exp(w["a"] * w["b"]))

    def g_norm(w):
        g = kn.grad(f)(w)
        return kn.sum(g["a"] * g["a"]) + g["b"] * g["b"]

    check_grads(g_norm, (w,))


# --- the paper's idioms -------------------------------------------------------------------------

def test_array_namespace_style_code_is_differentiable(rng):
    def softplus_sum(x):
        xp = kn.array_namespace(x)
        return xp.sum(xp.log1p(xp.exp(x)))

    x = rng.standard_normal(5)
    np.testing.assert_allclose(kn.grad(softplus_sum)(x), 1 / (1 + np.exp(-x)))


def test_indexing_in_a_loop_accumulates_sparse_cotangents(rng):
    x = rng.standard_normal((6, 3, 4))

    def f(x):
        total = 0.0
        for t in range(x.shape[0]):
            total = total + kn.sum(x[t] ** 2) + kn.sum(x[t, :, 1])
        return total

    expected = 2 * x
    expected[:, :, 1] += 1
    np.testing.assert_allclose(kn.grad(f)(x), expected)


# --- memory -------------------------------------------------------------------------------------

def test_tape_is_released_after_the_backward_pass(rng):
    import gc
    import weakref

    refs = []
    w = rng.standard_normal(50)

    def f(w):
        h = kn.exp(w)
        hh = h * h
        refs.extend(weakref.ref(v._value) for v in (h, hh))
        return kn.sum(hh)

    kn.grad(f)(w)
    gc.collect()
    assert refs and all(r() is None for r in refs)


def test_saved_values_are_dropped_as_soon_as_their_gradient_is_propagated(rng):
    from knetapi.tape import Trace, backward

    trace = Trace(kn.backend_of(np.zeros(1)))
    w = trace.leaf(rng.standard_normal(4))
    h = kn.exp(w)
    out = kn.sum(h * 3)
    exp_node = h._node
    assert exp_node.value is not None
    backward(trace, out, np.ones(()))
    assert exp_node.value is None and exp_node.args is None and exp_node.parents == ()
    np.testing.assert_allclose(w._node.cotangent, 3 * np.exp(w._value))
    trace.close()


def test_threads_differentiate_independently(rng):
    from concurrent.futures import ThreadPoolExecutor

    xs = [rng.standard_normal(100) for _ in range(8)]

    def work(x):
        return kn.grad(lambda w: kn.sum(kn.sin(w) * w))(x)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, xs * 4))
    for x, g in zip(xs * 4, results):
        np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x))


# --- zero gradients ---------------------------------------------------------------------------

def test_independent_function_returns_zeros_and_warns_once(rng):
    w = rng.standard_normal(3).astype(np.float32)
    g_f = kn.grad(lambda w: kn.sum(np.ones(3)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = g_f(w)
        g_f(w)
    assert [c.category for c in caught] == [kn.IndependentOutputWarning]
    assert g.dtype == np.float32 and not np.any(g)
    with pytest.warns(kn.IndependentOutputWarning):
        assert kn.grad(lambda x: 3.0)(1.0) == 0.0
