"""User-defined primitives: kn.primitive and kn.defvjp, on every backend and at higher order."""

import numpy as np
import pytest

import knetapi as kn
from knetapi.testing import check_grads


@kn.primitive
def cube(x):
    """x ** 3, written with kn functions so it runs on every backend."""
    return x * x * x


kn.defvjp(cube, lambda dy, y, x: 3 * x ** 2 * dy)


@kn.primitive
def scaled(x, s, *, power=1):
    return x * s ** power


kn.defvjp(scaled, lambda dy, y, x, s, *, power=1: dy * s ** power, None)


@pytest.mark.parametrize("backend", ["numpy", "torch", "strict"])
def test_user_primitive_first_and_higher_order(backend):
    x = kn.convert(np.array([0.5, -1.0, 2.0]), backend)
    g = kn.grad(lambda x: kn.sum(cube(x)))(x)
    np.testing.assert_allclose(kn.convert(g, "numpy"), 3 * np.array([0.5, -1.0, 2.0]) ** 2)
    # grad(grad(...)): the VJP is written with kn operators, so it records at the outer level
    assert kn.grad(kn.grad(lambda x: cube(x)))(2.0) == 12.0
    check_grads(lambda x: kn.sin(cube(x)), (x,), order=2)


def test_none_marks_an_argument_without_a_gradient_and_static_keywords_pass_through():
    x, s = np.array([1.0, 2.0]), np.array(3.0)
    gx, gs = kn.grad(lambda x, s: kn.sum(scaled(x, s, power=2)), argnums=(0, 1))(x, s)
    np.testing.assert_allclose(gx, [9.0, 9.0])
    assert float(gs) == 0.0


def test_a_primitive_without_a_vjp_refuses_traced_values():
    @kn.primitive
    def plain(x):
        return x + 1

    np.testing.assert_array_equal(plain(np.zeros(2)), np.ones(2))     # raw arrays: fine
    with pytest.raises(NotImplementedError, match=r"plain .*no derivative rule.*kn.defvjp\(plain"):
        kn.grad(lambda x: kn.sum(plain(x)))(np.zeros(2))


def test_defvjp_needs_a_primitive_and_at_least_one_vjp():
    with pytest.raises(TypeError, match="kn.primitive"):
        kn.defvjp(np.sin, lambda dy, y, x: dy)
    with pytest.raises(TypeError, match="one VJP per positional argument"):
        kn.defvjp(cube)
