"""The grad API: pytrees, argnums, has_aux, floats, higher order, operators and traced values,
on every backend (numpy, torch, array-api-strict) where the property is not numpy's own.

Data is drawn with numpy and moved with ``on`` (kn.convert); results come back with ``host``.
Models write ``kn.matmul(x, w)`` rather than ``x @ w`` where ``x`` is raw: a raw array-api-strict
array on the left of an operator raises instead of deferring to a traced value."""

import math
import warnings

import numpy as np
import pytest

import knetapi as kn
from knetapi.testing import check_grads


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=["numpy", "torch", "strict"])
def on(request):
    """Move a pytree of numpy data to the backend under test."""
    return lambda tree: kn.convert(tree, request.param)


def host(tree):
    return kn.convert(tree, "numpy")


# --- parameters as pytrees -------------------------------------------------------------------

def test_gradient_has_the_structure_of_a_nested_pytree(rng, on):
    w = on({"layer1": [rng.standard_normal((3, 2)), rng.standard_normal(2)],
            "layer2": (rng.standard_normal((2, 1)), 0.5)})
    x = on(rng.standard_normal((4, 3)))

    def loss(w, x):
        h = kn.tanh(kn.matmul(x, w["layer1"][0]) + w["layer1"][1])
        return kn.sum((h @ w["layer2"][0] + w["layer2"][1]) ** 2)

    g = kn.grad(loss)(w, x)
    assert set(g) == {"layer1", "layer2"}
    assert isinstance(g["layer1"], list) and isinstance(g["layer2"], tuple)
    assert g["layer1"][0].shape == (3, 2) and g["layer1"][0].dtype == w["layer1"][0].dtype
    assert kn.backend_of(g["layer1"][0]) is kn.backend_of(x)
    assert isinstance(g["layer2"][1], float)
    check_grads(loss, (w, x))


def test_unreached_leaves_get_zeros_of_their_own_shape_and_dtype(rng, on):
    w = on([rng.standard_normal(3).astype(np.float32), rng.standard_normal((2, 2)).astype(np.float32)])
    g = kn.grad(lambda w: kn.sum(w[0] * 2))(w)
    np.testing.assert_array_equal(host(g[0]), np.full(3, 2, np.float32))
    assert g[1].dtype == w[1].dtype and g[1].shape == (2, 2) and not np.any(host(g[1]))
    assert kn.backend_of(g[1]) is kn.backend_of(w[1])


def test_named_tuple_parameters_keep_their_type(rng, on):
    from collections import namedtuple
    Layer = namedtuple("Layer", "w b")
    p = on(Layer(rng.standard_normal(3), rng.standard_normal(3)))
    g = kn.grad(lambda p: kn.sum(p.w * p.b))(p)
    assert isinstance(g, Layer)
    np.testing.assert_allclose(host(g.w), host(p.b))


def test_gradient_of_a_float_is_a_float():
    g = kn.grad(lambda x: x * x * 3.0)(2.0)
    assert isinstance(g, float) and g == 12.0


def test_float32_stays_float32(rng, on):
    w = on(rng.standard_normal((3, 3)).astype(np.float32))
    x = on(rng.standard_normal((5, 3)).astype(np.float32))
    g = kn.grad(lambda w: kn.mean(kn.exp(kn.matmul(x, w)) * 0.5))(w)
    assert g.dtype == w.dtype and host(g).dtype == np.float32


# --- argnums, has_aux, value_and_grad ------------------------------------------------------------

def test_argnums_tuple_returns_a_tuple(rng, on):
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    ga, gb = kn.grad(lambda a, b: kn.sum(kn.multiply(a, b * b)), argnums=(0, 1))(on(a), on(b))
    np.testing.assert_allclose(host(ga), b * b)
    np.testing.assert_allclose(host(gb), 2 * a * b)
    gb_only = kn.grad(lambda a, b: kn.sum(kn.multiply(a, b * b)), argnums=1)(on(a), on(b))
    np.testing.assert_allclose(host(gb_only), 2 * a * b)


def test_negative_argnums(rng, on):
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    g = kn.grad(lambda a, b: kn.sum(kn.multiply(a, b)), argnums=-1)(on(a), on(b))
    np.testing.assert_allclose(host(g), a)


def test_has_aux_returns_the_aux_value_untraced(rng, on):
    w = rng.standard_normal(3)

    def loss(w):
        y = w * 2
        return kn.sum(y), {"y": y, "n": 3}

    g, aux = kn.grad(loss, has_aux=True)(on(w))
    np.testing.assert_allclose(host(g), 2 * np.ones(3))
    assert type(aux["y"]) is type(on(w)) and aux["n"] == 3
    (value, aux2), g2 = kn.value_and_grad(loss, has_aux=True)(on(w))
    assert math.isclose(float(value), 2 * float(np.sum(w)))
    np.testing.assert_allclose(host(aux2["y"]), 2 * w)


def test_value_and_grad(rng, on):
    w = rng.standard_normal(4)
    value, g = kn.value_and_grad(lambda w: kn.sum(w ** 3))(on(w))
    assert math.isclose(float(value), float(np.sum(w ** 3)))
    np.testing.assert_allclose(host(g), 3 * w ** 2)


def test_keyword_arguments_are_passed_through(rng, on):
    w = rng.standard_normal(3)
    g = kn.grad(lambda w, *, scale: kn.sum(w) * scale)(on(w), scale=4.0)
    np.testing.assert_allclose(host(g), np.full(3, 4.0))


# --- plain Python control flow -------------------------------------------------------------------

def test_loops_conditionals_closures_and_recursion(rng, on):
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
    np.testing.assert_allclose(host(kn.grad(f)(on(w))), expected)


def test_augmented_assignment_rebinds_and_never_writes_into_the_callers_array(rng, on):
    saved = rng.standard_normal(3)
    w = on(saved)

    def f(v):
        v += 1
        v *= v
        return kn.sum(v)

    np.testing.assert_allclose(host(kn.grad(f)(w)), 2 * (saved + 1))
    np.testing.assert_array_equal(host(w), saved)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_raw_operands_on_the_left_defer_to_traced_values(rng, library):
    """numpy arrays and torch tensors defer (array-api-strict's arrays raise instead)."""
    x = kn.convert(rng.standard_normal((4, 3)), library)
    w = kn.convert(rng.standard_normal(3), library)
    scalar = np.float32(2) if library == "numpy" else 2.0

    def f(w):
        for y in (x @ w, 2 * w, scalar * w, 1.0 - w, x + w, 2 ** w, x / (w + 5)):
            assert type(y) is kn.Traced, type(y)
        return kn.sum(x @ w) + kn.sum(2 ** w)

    expected = host(x).sum(0) + np.log(2) * 2 ** host(w)
    np.testing.assert_allclose(host(kn.grad(f)(w)), expected)


def test_comparisons_return_raw_boolean_arrays(rng, on):
    w = rng.standard_normal(3)
    raw_type = type(on(w))

    def f(v):
        for mask in (v > 0, v >= 0, v < 0, v <= 0, v == v, v != 0):
            assert type(mask) is raw_type and np.asarray(host(mask)).dtype == np.bool_
        return kn.sum(kn.where(v > 0, v, 0.0))

    np.testing.assert_allclose(host(kn.grad(f)(on(w))), (w > 0).astype(float))


def test_traced_value_attributes(rng, on):
    w = on(rng.standard_normal((2, 3)))

    def f(v):
        assert v.shape == (2, 3) and v.ndim == 2 and v.size == 6 and len(v) == 2
        assert v.dtype == w.dtype and v.device == kn.device(w)
        assert v.T.shape == (3, 2) and v.mT.shape == (3, 2)
        assert float(kn.value(v[0, 0])) == float(host(w)[0, 0]) and int(v[0, 0] * 0) == 0
        return kn.sum(v.T * v.mT)

    np.testing.assert_allclose(host(kn.grad(f)(w)), 2 * host(w))


# --- higher order ------------------------------------------------------------------------------

def test_perturbation_confusion():
    assert kn.grad(lambda x: x * kn.grad(lambda y: x + y)(x))(5.0) == 1.0


def test_nested_closure_over_outer_parameter():
    # d/dx [x * d/dy (x * y)] = d/dx x^2 = 2x
    assert kn.grad(lambda x: x * kn.grad(lambda y: x * y)(x))(3.0) == 6.0


def test_third_derivative(on):
    f = lambda x: kn.sin(x) * x  # noqa: E731
    d3 = kn.grad(kn.grad(kn.grad(f)))(on(np.asarray(0.7)))
    x = 0.7
    assert math.isclose(float(d3), -3 * math.sin(x) - x * math.cos(x), rel_tol=1e-12)


def test_hessian_vector_product(rng, on):
    a = rng.standard_normal((4, 4))
    a = a + a.T
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    a_, v_ = on(a), on(v)
    f = lambda x: kn.sum(x * kn.matmul(a_, x)) / 2 + kn.sum(kn.sin(x))  # noqa: E731
    hvp = kn.grad(lambda x: kn.sum(kn.grad(f)(x) * v_))(on(x))
    np.testing.assert_allclose(host(hvp), a @ v - np.sin(x) * v, rtol=1e-12)


def test_grad_of_grad_through_pytrees(rng, on):
    w = on({"a": rng.standard_normal(3), "b": 0.3})

    def f(w):
        return kn.sum(kn.exp(w["a"] * w["b"]))

    def g_norm(w):
        g = kn.grad(f)(w)
        return kn.sum(g["a"] * g["a"]) + g["b"] * g["b"]

    check_grads(g_norm, (w,))


# --- the paper's idioms -------------------------------------------------------------------------

def test_array_namespace_style_code_is_differentiable(rng, on):
    def softplus_sum(x):
        xp = kn.array_namespace(x)
        return xp.sum(xp.log1p(xp.exp(x)))

    x = rng.standard_normal(5)
    np.testing.assert_allclose(host(kn.grad(softplus_sum)(on(x))), 1 / (1 + np.exp(-x)))


def test_indexing_in_a_loop_accumulates_sparse_cotangents(rng, on):
    x = rng.standard_normal((6, 3, 4))

    def f(x):
        total = 0.0
        for t in range(x.shape[0]):
            total = total + kn.sum(x[t, ...] ** 2) + kn.sum(x[t, :, 1])
        return total

    expected = 2 * x
    expected[:, :, 1] += 1
    np.testing.assert_allclose(host(kn.grad(f)(on(x))), expected)


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


def test_threads_differentiate_independently(rng, on):
    from concurrent.futures import ThreadPoolExecutor

    xs = [rng.standard_normal(100) for _ in range(8)]

    def work(x):
        return host(kn.grad(lambda w: kn.sum(kn.sin(w) * w))(on(x)))

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, xs * 4))
    for x, g in zip(xs * 4, results):
        np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x))


# --- zero gradients ---------------------------------------------------------------------------

def test_independent_function_returns_zeros_and_warns_once(rng, on):
    w = on(rng.standard_normal(3).astype(np.float32))
    g_f = kn.grad(lambda v: kn.sum(kn.ones_like(v)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = g_f(w)
        g_f(w)
    assert [c.category for c in caught] == [kn.IndependentOutputWarning]
    assert g.dtype == w.dtype and kn.backend_of(g) is kn.backend_of(w) and not np.any(host(g))
    with pytest.warns(kn.IndependentOutputWarning):
        assert kn.grad(lambda x: 3.0)(1.0) == 0.0
