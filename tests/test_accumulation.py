"""Dense and sparse (indexed) cotangents of one value add up, at every order, on every backend.

A value used both whole (``kn.sum(x ** 3)``) and through indexing (``x[0]``) receives a dense
cotangent and a sparse one (knetapi.cotangent.IndexedCotangent), in either order, and possibly
several of each. Dropping any part still gives a plausible gradient of the right shape, so each
case is compared with its exact value, worked out by hand: every program here is
``sum(a * x ** 3)`` for a weight vector ``a`` that counts how often each element is used, so its
gradient is ``3 a x^2``, its Hessian-vector product ``6 a x v`` and its third derivative along
``v`` and ``u`` is ``6 a v u``.
"""

import types

import numpy as np
import pytest

import knetapi as kn

BACKENDS = ["numpy", "torch", "strict"]
X = np.array([0.5, -1.5, 2.0, 1.25])
V = np.array([1.0, -2.0, 0.5, 3.0])
U = np.array([-0.5, 1.0, 2.0, 1.5])
REPEATED = np.array([0, 0, 2])          # element 0 twice, element 2 once


def programs(index):
    """``(name, f, a)``: ``f(x) == sum(a * x ** 3)``. ``index`` turns a numpy index array into
    one of the backend under test."""
    return [
        ("dense, then an element", lambda x: kn.sum(x ** 3) + x[0] ** 3, [2, 1, 1, 1]),
        ("an element, then dense", lambda x: x[0] ** 3 + kn.sum(x ** 3), [2, 1, 1, 1]),
        ("a slice and dense", lambda x: kn.sum(x[1:] ** 3) + kn.sum(x ** 3), [1, 2, 2, 2]),
        ("repeated indices between two dense parts",
         lambda x: kn.sum(x ** 3) + kn.sum(x[index(REPEATED)] ** 3) + x[1] ** 3 + kn.sum(x ** 3),
         [4, 3, 3, 2]),
        ("two elements, no dense part", lambda x: x[3] ** 3 + x[3] ** 3 + x[1] ** 3, [0, 1, 0, 2]),
        ("two dense parts, then an element",
         lambda x: kn.sum(x ** 3) + kn.sum(2.0 * x ** 3) + x[2] ** 3, [3, 3, 4, 3]),
    ]


def on(backend):
    return lambda a: kn.convert(np.asarray(a), backend)


def cases():
    for backend in BACKENDS:
        for name, _, _ in programs(np.asarray):
            yield pytest.param(backend, name, id=f"{backend}-{name}")


def program(backend, name):
    return next((f, np.asarray(a, dtype=float)) for n, f, a in programs(on(backend)) if n == name)


@pytest.mark.parametrize("backend, name", list(cases()))
def test_first_order(backend, name):
    f, a = program(backend, name)
    g = kn.grad(f)(on(backend)(X))
    assert kn.backend_of(g).name == backend
    np.testing.assert_allclose(kn.convert(g, "numpy"), 3 * a * X ** 2, rtol=1e-13)


@pytest.mark.parametrize("backend, name", list(cases()))
def test_second_order(backend, name):
    f, a = program(backend, name)
    v = on(backend)(V)
    hv = kn.grad(lambda x: kn.sum(kn.grad(f)(x) * v))(on(backend)(X))
    np.testing.assert_allclose(kn.convert(hv, "numpy"), 6 * a * X * V, rtol=1e-13)


@pytest.mark.parametrize("backend, name", list(cases()))
def test_third_order(backend, name):
    f, a = program(backend, name)
    v, u = on(backend)(V), on(backend)(U)

    def hvp(x):
        return kn.grad(lambda x: kn.sum(kn.grad(f)(x) * v))(x)
    third = kn.grad(lambda x: kn.sum(hvp(x) * u))(on(backend)(X))
    np.testing.assert_allclose(kn.convert(third, "numpy"), 6 * a * V * U, rtol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_issue_example(backend):
    """grad(sum(x^2) + x[0]) is 2x + e0 (a dropped dense part gave [1, 0, 0])."""
    x = np.array([1.0, 2.0, 3.0])
    g = kn.grad(lambda x: kn.sum(x ** 2) + x[0])(on(backend)(x))
    np.testing.assert_array_equal(kn.convert(g, "numpy"), [3.0, 4.0, 6.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_parameter_used_densely_and_by_index_in_a_tree(backend):
    """The same through grad's pytree of parameters and a 2-d value indexed by rows (with the
    trailing ``...`` that the standard asks for)."""
    w = {"E": np.arange(6.0).reshape(3, 2) / 4, "b": np.array([0.5, -1.0])}
    rows = np.array([2, 0, 2])

    def f(w):
        e = w["E"]
        return kn.sum(e[on(backend)(rows), ...] * w["b"]) + kn.sum(e * e) + kn.sum(e[1, ...] ** 3)
    g = kn.grad(f)(kn.convert(w, backend))
    counts = np.array([1.0, 0.0, 2.0])[:, None]
    expected_e = counts * w["b"] + 2 * w["E"] + np.array([0.0, 1.0, 0.0])[:, None] * 3 * w["E"] ** 2
    np.testing.assert_allclose(kn.convert(g["E"], "numpy"), expected_e, rtol=1e-13)
    np.testing.assert_allclose(kn.convert(g["b"], "numpy"), np.sum(w["E"][rows], axis=0), rtol=1e-13)


class Counted(np.ndarray):
    """numpy arrays of a backend whose scatter-add counts its calls."""


def test_a_backends_own_scatter_add_is_the_one_used():
    """The backward walk scatter-adds with the backend's override (numpy's add.at) where it has
    one, not with the generic standard-only version."""
    calls = []

    def scatter_add(out, key, values):
        calls.append(key)
        np.add.at(out, key, values)
        return out
    module = types.ModuleType("counted_scatter")
    module.NAME, module.ARRAY_TYPES, module.OVERRIDES = "counted_scatter", (Counted,), {"scatter_add": scatter_add}
    module.namespace = lambda: kn.registry.get_backend("numpy").ns
    module.to_numpy = np.asarray
    kn.register_backend(module)
    x = np.array([1.0, 2.0, 3.0]).view(Counted)
    g = kn.grad(lambda x: kn.sum(x[np.array([0, 0, 2])] ** 2) + kn.sum(x))(x)
    np.testing.assert_array_equal(np.asarray(g), [5.0, 1.0, 7.0])
    assert len(calls) == 1
