"""What kn.primitive and kn.defvjp check and pass on (knetapi/primitives.py): a primitive's name
for callables without one, static keyword parameters, the output ``y`` given to a VJP, the number
of VJPs counted from the function's positional parameters, and the messages for a VJP that returns
something other than an array of an allowed shape."""

import functools

import numpy as np
import pytest

import knetapi as kn

X = np.array([0.5, 2.0])


def test_a_callable_without_a_name_makes_a_primitive_named_primitive():
    assert kn.primitive(functools.partial(lambda x, k: x * k, k=2.0)).name == "primitive"


def test_refusals_say_what_was_given():
    with pytest.raises(TypeError, match=r"^kn.primitive: expected a function, got int$"):
        kn.primitive(3)
    bad = kn.primitive(functools.partial(lambda x: [1.0]))
    with pytest.raises(TypeError, match=r"^kn.primitive functools.partial\(<function [\w.<>]+ at \w+>\) "
                                        r"returned a list; a primitive returns one array"):
        bad(X)


def test_static_keyword_parameters_reach_the_function_and_the_vjp():
    @kn.primitive
    def scale(x, *, factor):
        return x * factor

    kn.defvjp(scale, lambda dy, y, x, *, factor: dy * factor)   # one VJP: factor is keyword-only
    np.testing.assert_array_equal(scale(X, factor=3.0), 3 * X)
    np.testing.assert_array_equal(kn.grad(lambda x: kn.sum(scale(x, factor=3.0)))(X), [3.0, 3.0])


def test_parameters_with_defaults_take_no_vjp():
    @kn.primitive
    def shifted(x, by=1.0):
        return x + by

    kn.defvjp(shifted, lambda dy, y, x: dy)
    np.testing.assert_array_equal(kn.grad(lambda x: kn.sum(shifted(x)))(X), [1.0, 1.0])


def test_the_vjp_gets_the_output():
    @kn.primitive
    def exp(x):
        return np.exp(x)

    kn.defvjp(exp, lambda dy, y, x: dy * y)
    np.testing.assert_allclose(kn.grad(lambda x: kn.sum(exp(x)))(X), np.exp(X), rtol=1e-15)


class Shaped:
    shape = (2,)


class Typed:
    dtype = np.float64


@pytest.mark.parametrize("returned, error, message", [
    (Shaped(), TypeError, "returned a test_primitive_checks.Shaped; it must return an array shaped like the "
                          "argument (2,)"),
    (Typed(), TypeError, "returned a test_primitive_checks.Typed; it must return an array shaped like the "
                         "argument (2,)"),
    ([1.0, 2.0], TypeError, "returned a list; it must return an array shaped like the argument (2,)"),
    (np.ones((1, 3)), ValueError, "returned shape (1, 3) for an argument of shape (2,); it must return "
                                  "the argument's shape (or one the argument broadcasts to, which is summed)"),
    (np.ones((2, 1)), ValueError, "returned shape (2, 1) for an argument of shape (2,); it must return "
                                  "the argument's shape (or one the argument broadcasts to, which is summed)"),
    (np.ones(2, dtype=np.int64), TypeError, "returned dtype int64; a gradient must be real floating-point"),
], ids=["shape only", "dtype only", "list", "other shape", "a shape it does not broadcast to", "integer"])
def test_a_wrong_vjp_result_is_named(returned, error, message):
    @kn.primitive
    def double(x):
        return x * 2.0

    kn.defvjp(double, lambda dy, y, x: returned)
    with pytest.raises(error) as caught:
        kn.grad(lambda x: kn.sum(double(x)))(X)
    assert str(caught.value) == f"double: the VJP of argument 0 {message}", str(caught.value)


def test_a_vjp_of_a_shape_the_argument_broadcasts_to_is_summed():
    @kn.primitive
    def double(x):
        return x * 2.0

    kn.defvjp(double, lambda dy, y, x: np.ones((3, 2)))
    np.testing.assert_array_equal(kn.grad(lambda x: kn.sum(double(x)))(X), [3.0, 3.0])


def test_functions_without_a_rule_run_on_raw_arrays_and_refuse_traced_ones():
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(kn.real(np.array([1 + 2j])), [1.0])
    imag = kn.imag(torch.tensor([1 + 2j]))
    assert isinstance(imag, torch.Tensor) and imag.tolist() == [2.0]
    assert [kn.real.__name__, kn.imag.__name__, kn.conj.__name__] == ["real", "imag", "conj"]
    with pytest.raises(TypeError, match=r"^real: expected an array of a registered backend"):
        kn.real([1 + 1j])

    def f(x):
        with pytest.raises(NotImplementedError, match=r"^conj has no derivative rule in knetapi yet, so it "
                                                      r"cannot be used inside grad on a traced value; define "
                                                      r"one with kn.primitive and kn.defvjp"):
            kn.conj(x)
        return kn.sum(x)
    kn.grad(f)(X)


def test_static_parameters_may_be_passed_positionally():
    x = np.arange(6.0)
    assert kn.reshape(x, (2, 3)).shape == (2, 3) and kn.expand_dims(x, 0).shape == (1, 6)
    assert kn.permute_dims(kn.reshape(x, (2, 3)), (1, 0)).shape == (3, 2)
    assert kn.broadcast_to(x, (2, 6)).shape == (2, 6) and kn.roll(x, 1)[0] == 5.0

    def f(x):
        m = kn.permute_dims(kn.reshape(x, (2, 3)), (1, 0))           # m[j, i] = x[3 i + j]
        return kn.sum(m * kn.broadcast_to(kn.expand_dims(kn.roll(x, 1)[:2], 0), (3, 2)))
    # f = x5 (x0 + x1 + x2) + x0 (x3 + x4 + x5), as r = roll(x, 1)[:2] = (x5, x0)
    np.testing.assert_array_equal(kn.grad(f)(x), [5 + 3 + 4 + 5, 5, 5, 0, 0, 0 + 1 + 2 + 0])
