"""Regression tests for the ways knetapi once gave wrong values or gradients without a word.

Each test is named after what it pins down: user primitives own their code whatever their name,
values cannot leave the tape unnoticed, creation functions carry the gradient of the values they
take, user VJPs are checked, outputs must be floating-point, and kn.debug finds the first NaN.
"""

import math
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import knetapi as kn
from knetapi.testing import check_grads

BACKENDS = ["numpy", "torch", "strict"]


def _host(x):
    return np.asarray(kn.convert(x, "numpy"))


# --- user primitives own their implementation -----------------------------------------------

def test_two_primitives_with_the_same_name_each_run_their_own_function():
    double = kn.primitive(lambda x: x * 2)
    triple = kn.primitive(lambda x: x * 3)
    kn.defvjp(double, lambda dy, y, x: 2 * dy)
    kn.defvjp(triple, lambda dy, y, x: 3 * dy)
    assert double.__name__ == triple.__name__ == "<lambda>"
    np.testing.assert_array_equal(double(np.ones(2)), [2.0, 2.0])
    np.testing.assert_array_equal(triple(np.ones(2)), [3.0, 3.0])
    np.testing.assert_array_equal(kn.grad(lambda x: kn.sum(triple(x)))(np.ones(2)), [3.0, 3.0])


def test_primitives_made_by_a_factory_each_keep_their_own_closure():
    def scaler(factor):
        @kn.primitive
        def scale(x):
            return x * factor
        kn.defvjp(scale, lambda dy, y, x: dy * factor)
        return scale

    by_two, by_five = scaler(2.0), scaler(5.0)
    assert kn.grad(lambda x: kn.sum(by_two(x)) + kn.sum(by_five(x)))(1.0) == 7.0
    np.testing.assert_array_equal(by_five(np.ones(1)), [5.0])


def test_a_user_primitive_named_exp_neither_replaces_nor_is_replaced_by_kn_exp():
    @kn.primitive
    def exp(x):
        return x + 1

    kn.defvjp(exp, lambda dy, y, x: dy)
    np.testing.assert_array_equal(exp(np.zeros(1)), [1.0])
    np.testing.assert_allclose(kn.exp(np.zeros(1)), [1.0])
    np.testing.assert_allclose(kn.exp(np.ones(1)), [math.e])
    assert kn.grad(lambda x: kn.sum(kn.exp(x)))(1.0) == pytest.approx(math.e)
    assert kn.grad(lambda x: kn.sum(exp(x)))(1.0) == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_user_primitive_named_logsumexp_runs_the_users_function_not_an_override(backend):
    @kn.primitive
    def logsumexp(x):
        return x * 0 + 7

    kn.defvjp(logsumexp, lambda dy, y, x: dy * 0)
    x = kn.convert(np.zeros(3), backend)
    np.testing.assert_array_equal(_host(logsumexp(x)), [7.0, 7.0, 7.0])
    assert float(_host(kn.logsumexp(x))) == pytest.approx(math.log(3))


def test_a_primitive_keeps_the_name_qualname_and_docstring_of_its_function():
    @kn.primitive
    def cube(x):
        """The cube of x."""
        return x * x * x

    assert cube.__name__ == "cube" and cube.__doc__ == "The cube of x."
    assert cube.__qualname__.endswith("<locals>.cube") and cube.__wrapped__(2) == 8


# --- user VJPs are checked ----------------------------------------------------------------------

@kn.primitive
def transposed(x):
    return x.T


def test_a_vjp_of_the_wrong_shape_but_the_right_size_is_refused_not_reshaped():
    kn.defvjp(transposed, lambda dy, y, x: dy)          # wrong: should be dy.T
    weights = np.arange(6.0).reshape(3, 2)
    with pytest.raises(ValueError, match=r"transposed: the VJP of argument 0 returned shape \(3, 2\) "
                                         r"for an argument of shape \(2, 3\)"):
        kn.grad(lambda x: kn.sum(transposed(x) * weights))(np.ones((2, 3)))


def test_a_vjp_of_the_wrong_size_names_the_primitive_and_both_shapes():
    kn.defvjp(transposed, lambda dy, y, x: dy[:1])
    with pytest.raises(ValueError, match=r"transposed: .*argument 0 .*\(1, 2\).*\(2, 3\)"):
        kn.grad(lambda x: kn.sum(transposed(x)))(np.ones((2, 3)))


def test_a_vjp_may_return_a_shape_its_argument_broadcasts_to_which_is_summed():
    @kn.primitive
    def add(x, b):
        return x + b

    kn.defvjp(add, lambda dy, y, x, b: dy, lambda dy, y, x, b: dy)   # b's gradient unreduced
    gx, gb = kn.grad(lambda x, b: kn.sum(add(x, b)), argnums=(0, 1))(np.ones((4, 3)), np.ones(3))
    np.testing.assert_array_equal(gb, [4.0, 4.0, 4.0])


@pytest.mark.parametrize("bad, error, message", [
    (lambda dy, y, x: None, TypeError, "returned a NoneType"),
    (lambda dy, y, x: (dy > 0), TypeError, "returned dtype bool; a gradient must be real floating-point"),
])
def test_a_vjp_returning_no_array_or_a_non_float_array_is_refused(bad, error, message):
    @kn.primitive
    def ident(x):
        return x * 1

    kn.defvjp(ident, bad)
    with pytest.raises(error, match=f"ident: the VJP of argument 0 {message}"):
        kn.grad(lambda x: kn.sum(ident(x)))(np.ones(2))


def test_fewer_vjps_than_arguments_are_refused_by_defvjp():
    @kn.primitive
    def mul(x, y):
        return x * y

    with pytest.raises(TypeError, match=r"defvjp\(mul\): mul takes 2 positional argument\(s\) but 1 VJP"):
        kn.defvjp(mul, lambda dy, out, x, y: dy * y)
    with pytest.raises(TypeError, match="VJP 1 is a str"):
        kn.defvjp(mul, None, "not a function")


def test_a_variadic_primitive_called_with_more_arguments_than_vjps_is_refused_at_the_call():
    @kn.primitive
    def total(*xs):
        return sum(xs)

    kn.defvjp(total, lambda dy, y, *xs: dy)
    with pytest.raises(TypeError, match=r"total was called with 2 positional argument\(s\) but "
                                        r"kn.defvjp gave it 1 VJP"):
        kn.grad(lambda x: kn.sum(total(x, x)))(np.ones(2))


def test_a_primitive_returning_a_tuple_is_refused_naming_it():
    @kn.primitive
    def both(x):
        return x, x

    kn.defvjp(both, lambda dy, y, x: dy)
    with pytest.raises(TypeError, match="kn.primitive .*both returned a tuple; a primitive returns one"):
        kn.grad(lambda x: kn.sum(both(x)[0]))(np.ones(2))


# --- values cannot leave the tape without a word ----------------------------------------------

@pytest.mark.parametrize("leave", [
    lambda w: float(w[0]),
    lambda w: math.exp(w[0]),
    lambda w: complex(w[0]).real,
])
def test_converting_a_traced_value_to_a_python_number_raises_and_points_to_kn_value(leave):
    w = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match=r"off the tape.*silently lost.*kn\.value\(x\)"):
        kn.grad(lambda w: kn.sum(w) * leave(w))(w)
    np.testing.assert_array_equal(w, [1.0, 2.0])


def test_writing_a_traced_value_into_a_numpy_array_raises():
    def loss(w):
        out = np.zeros(3)
        out[0] = w[0] * 2
        return kn.sum(w) + kn.sum(kn.asarray(out))

    with pytest.raises(ValueError) as info:
        kn.grad(loss)(np.ones(3))
    assert "off the tape" in str(info.value.__cause__)


def test_in_place_numpy_arithmetic_with_a_traced_value_raises():
    def loss(w):
        out = np.zeros(3)
        out += w
        return kn.sum(out)

    with pytest.raises(TypeError, match=r"numpy.add cannot record on knetapi's tape with out="):
        kn.grad(loss)(np.ones(3))


def test_numpy_ufuncs_and_numpy_operands_on_the_left_record_on_the_tape():
    w = np.array([0.5, 1.5])

    def loss(w):
        return kn.sum(np.exp(w)) + np.float64(3.0) * w[0] + np.ones(2) @ np.sin(w)

    expected = np.exp(w) + np.array([3.0, 0.0]) + np.cos(w)
    np.testing.assert_allclose(kn.grad(loss)(w), expected)
    with pytest.raises(TypeError, match=r"numpy.add.reduce cannot record.*use kn.add"):
        kn.grad(lambda w: np.add.reduce(w))(w)


def test_kn_value_reads_a_value_for_logging_and_control_flow_without_a_gradient():
    seen = []

    def loss(w):
        total = kn.sum(w * w)
        seen.append(float(kn.value(total)))
        if total > 1 and int(w[0]) == 1:            # bool and int conversions serve control flow
            return total * 2
        return total

    np.testing.assert_array_equal(kn.grad(loss)(np.array([1.0, 2.0])), [4.0, 8.0])
    assert seen == [5.0] and kn.value(3.0) == 3.0
    assert kn.grad(lambda w: kn.sum(w) * float(kn.value(w[0])))(np.array([2.0, 0.0]))[1] == 2.0


def test_a_value_read_from_an_outer_grad_inside_an_inner_one_still_raises():
    def outer(x):
        return kn.grad(lambda y: y * float(x))(x)

    with pytest.raises(TypeError, match="off the tape"):
        kn.grad(outer)(2.0)


def test_formatting_and_converting_finished_traced_values_work():
    kept = []
    kn.grad(lambda w: (kept.append(w * 1), kn.sum(w))[1])(np.array(1.5))
    assert float(kept[0]) == 1.5
    assert kn.grad(lambda w: (f"{w:.2f}" == "1.50") * w)(1.5) == 1.0


# --- creation functions carry the gradient of the values they take -----------------------------

def test_full_with_a_traced_fill_value_is_differentiable():
    assert kn.grad(lambda a: kn.sum(kn.full((3,), a)) + a)(2.0) == 4.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_full_like_and_linspace_are_differentiable_in_their_values(backend):
    a, b = (kn.convert(np.asarray(v), backend) for v in (0.3, 1.7))
    like = kn.convert(np.ones((2, 3)), backend)
    check_grads(lambda a: kn.sum(kn.sin(kn.full((2, 3), a))), (a,), order=2)
    check_grads(lambda a: kn.sum(kn.sin(kn.full_like(like, a) * like)), (a,), order=2)
    check_grads(lambda a, b: kn.sum(kn.sin(kn.linspace(a, b, 7))), (a, b), argnums=(0, 1), order=2)
    check_grads(lambda b: kn.sum(kn.linspace(0.0, b, 4, endpoint=False) ** 2), (b,), order=2)


def test_traced_linspace_equals_the_backends_linspace_at_the_end_points():
    def values(stop):
        got.append(kn.value(kn.linspace(-1.0, stop, 5)))
        return stop

    got = []
    kn.grad(values)(3.0)
    np.testing.assert_allclose(got[0], np.linspace(-1.0, 3.0, 5), rtol=1e-15)
    assert got[0][0] == -1.0 and got[0][-1] == 3.0


@pytest.mark.parametrize("call, message", [
    (lambda a: kn.arange(0.0, a), r"kn.arange cannot take a traced value.*start \+ step \* kn.arange"),
    (lambda a: kn.asarray([a, 2 * a]), r"kn.asarray: item \[0\] is a traced value.*kn.stack"),
    (lambda a: kn.array_namespace(a).asarray([[1.0, a]]), r"item \[0\]\[1\] is a traced value"),
])
def test_creation_functions_that_cannot_record_a_traced_value_refuse_it(call, message):
    with pytest.raises(TypeError, match=message):
        kn.grad(lambda a: kn.sum(call(a)))(2.0)


def test_creation_functions_take_the_backend_of_their_dtype():
    torch = pytest.importorskip("torch")
    z = kn.zeros((2,), dtype=torch.float64)
    assert isinstance(z, torch.Tensor) and z.dtype == torch.float64
    assert isinstance(kn.full((2,), 1.5, dtype=torch.float32), torch.Tensor)
    assert isinstance(kn.ones(3, dtype=np.float32), np.ndarray)


# --- the differentiated function's output -------------------------------------------------------

@pytest.mark.parametrize("loss, what", [
    (lambda x: kn.sum(x) > 0, "dtype bool"),
    (lambda x: kn.sum(kn.astype(x, kn.int64)), "dtype int64"),
    (lambda x: 3, r"Python int \(3\)"),
    (lambda x: True, r"Python bool \(True\)"),
])
def test_bool_or_integer_outputs_raise_instead_of_returning_zeros(loss, what):
    with pytest.raises(TypeError, match=f"{what}.*must be a floating-point scalar"):
        kn.grad(loss)(np.ones(2))


# --- kn.debug -------------------------------------------------------------------------------

def test_debug_names_the_op_the_forward_pass_and_the_users_line():
    def loss(w):
        h = kn.log(w)  # the line the error names
        return kn.sum(h)

    with kn.debug(nan=True), np.errstate(invalid="ignore"):
        with pytest.raises(kn.NonFiniteError, match=r"log gave NaN in the forward pass, at .*"
                                                    r"test_no_silent_wrong_gradient.py:\d+ in loss: "
                                                    r"h = kn.log\(w\)  # the line the error names"):
            kn.grad(loss)(np.array([1.0, -1.0]))


def test_debug_names_the_op_whose_rule_gives_an_infinite_gradient_in_the_backward_pass():
    with kn.debug(nan=True), np.errstate(divide="ignore"):
        with pytest.raises(kn.NonFiniteError, match=r"gradient of sqrt for its argument 0 has an "
                                                    r"infinity in the backward pass; sqrt was called at"):
            kn.grad(lambda w: kn.sum(kn.sqrt(w)))(np.array([0.0, 1.0]))


def test_debug_is_off_by_default_and_restored_after_a_with_block():
    from knetapi import debugging
    assert not debugging.checking.get()
    with kn.debug(nan=True):
        assert debugging.checking.get()
    assert not debugging.checking.get()
    with np.errstate(invalid="ignore"):           # off: the NaN goes through, as numpy's would
        assert np.isnan(kn.grad(lambda w: kn.sum(kn.sqrt(w)))(np.array([-1.0]))).all()


def test_debug_mode_is_per_thread():
    inside, done, results = threading.Event(), threading.Event(), {}

    def debugging_thread():
        with kn.debug(nan=True):
            inside.set()
            done.wait(10)

    def plain_thread():
        inside.wait(10)
        with np.errstate(invalid="ignore"):
            results["plain"] = kn.grad(lambda w: kn.sum(kn.sqrt(w)))(np.array([-1.0]))
        done.set()

    threads = [threading.Thread(target=debugging_thread), threading.Thread(target=plain_thread)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert np.isnan(results["plain"]).all()     # no NonFiniteError in the thread that did not ask


def test_debug_mode_from_the_environment_variable():
    code = ("import numpy as np, knetapi as kn\n"
            "np.seterr(all='ignore')\n"
            "try:\n"
            "    kn.grad(lambda w: kn.sum(kn.log(w)))(np.array([-1.0]))\n"
            "except kn.NonFiniteError as e:\n"
            "    print('raised:', e)\n")
    env = {**os.environ, "KNETAPI_DEBUG_NAN": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.startswith("raised: kn.debug: log gave NaN in the forward pass")
