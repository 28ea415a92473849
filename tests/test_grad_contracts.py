"""What grad and value_and_grad promise beyond the numbers (knetapi/differentiate.py): the names
and docstrings of the functions they return, errors that name the differentiated function and the
parameter, the warning for an output that does not depend on the parameters (once, at the
caller's line), the value returned raw, float parameters inside nested grad, and the backend that
float parameters adopt."""

import functools
import warnings

import numpy as np
import pytest
import torch

import knetapi as kn


def loss(w):
    return kn.sum(w * w)


unnamed = functools.partial(lambda w, k: kn.sum(w * k), k=2.0)     # a callable without __name__
X = np.array([1.0, 2.0])


def test_the_returned_functions_are_named_after_f():
    assert kn.grad(loss).__name__ == "grad_loss"
    assert kn.grad(loss, (0,)).__doc__ == "Gradient of loss with respect to argument(s) (0,)."
    assert kn.value_and_grad(loss).__name__ == "value_and_grad_loss"
    assert (kn.grad(unnamed).__name__, kn.value_and_grad(unnamed).__name__) == ("grad_f", "value_and_grad_f")
    assert kn.grad(unnamed).__doc__ == "Gradient of f with respect to argument(s) 0."


@pytest.mark.parametrize("f, kwargs, error, message", [
    (loss, dict(argnums=1), TypeError,
     "grad: argnums includes 1, but loss was called with 1 positional argument(s)"),
    (loss, dict(has_aux=True), TypeError,
     "grad with has_aux=True: loss must return a pair (scalar, aux), got knetapi.traced.Traced"),
    (lambda w: 3, {}, TypeError,
     "grad: <lambda> returned a Python int (3); the output must be a floating-point scalar"),
    (lambda w: "text", {}, TypeError, "grad: <lambda> must return a scalar array, got str"),
    (lambda w: w, {}, ValueError, "grad: <lambda> must return a scalar (shape ()), got an array of shape "
                                  "(2,); reduce it first, e.g. with kn.sum or kn.mean"),
    (lambda w: kn.sum(w) > 0, {}, TypeError,
     "grad: <lambda> returned a scalar of dtype bool; the output must be a floating-point scalar (a "
     "comparison or an integer result has no gradient)"),
    (functools.partial(lambda w: w), {}, ValueError, "grad: functools.partial(<function <lambda> at "),
])
def test_errors_name_the_function(f, kwargs, error, message):
    with pytest.raises(error) as caught:
        kn.grad(f, **kwargs)(X)
    assert str(caught.value).startswith(message), str(caught.value)


def test_errors_name_the_parameter():
    with pytest.raises(TypeError, match=r"^grad: parameters on two backends: w\['a'\] is numpy, w\['b'\] "
                                        r"is torch; put them on one backend first$"):
        kn.grad(lambda w: kn.sum(w["a"]))({"a": X, "b": torch.ones(2, dtype=torch.float64)})
    three = [X, torch.ones(2, dtype=torch.float64), kn.convert(X, "strict")]
    with pytest.raises(TypeError, match=r"parameters on two backends: w\[0\] is numpy, w\[1\] is torch"):
        kn.grad(lambda w: kn.sum(w[0]))(three)
    with pytest.raises(TypeError, match=r"^grad: parameter w\[0\] is a str, not an array or a float; "
                                        r"registered array types: (\w+, )*numpy(, \w+)*$"):
        kn.grad(lambda w: 0.0)(["text"])


def test_an_independent_output_warns_once_at_the_callers_line():
    value_and_grad = kn.value_and_grad(lambda a, b: kn.sum(b * b), argnums=0)
    with pytest.warns(kn.IndependentOutputWarning) as caught:
        value, g = value_and_grad(X, X)
        value_and_grad(X, X)                          # the same function again: no second warning
    assert len(caught) == 1 and caught[0].filename == __file__
    assert str(caught[0].message) == ("grad: the value of <lambda> does not depend on argument(s) a; "
                                      "their gradient is zero")
    np.testing.assert_array_equal(g, [0.0, 0.0])
    with pytest.warns(kn.IndependentOutputWarning, match=r"argument\(s\) a, b; their"):
        kn.grad(lambda a, b: 1.0, (0, 1))(X, X)


def test_the_value_comes_back_raw():
    value, g = kn.value_and_grad(loss)(X)
    assert type(value) is np.float64 and value == 5.0
    (value, aux), g = kn.value_and_grad(lambda w: (loss(w), {"w": w, "n": 1}), has_aux=True)(X)
    assert type(value) is np.float64 and type(aux["w"]) is np.ndarray and aux["n"] == 1


def test_a_cyclic_aux_is_named_from_aux():
    cyclic = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match=r"the pytree is cyclic: aux\[0\] is aux itself"):
        kn.grad(lambda w: (loss(w), cyclic), has_aux=True)(X)


def test_an_inner_function_of_an_outer_value_only_has_a_zero_inner_gradient():
    """d/dx x * (d/dy x^2) = 0: the inner output is traced on the outer trace only."""
    with pytest.warns(kn.IndependentOutputWarning):
        assert kn.grad(lambda x: x * kn.grad(lambda y: x ** 2)(x))(3.0) == 0.0


def test_a_float_parameter_of_an_inner_grad_keeps_its_outer_gradient():
    """d/dx [d/dy x y^2 at y = 2] = d/dx 4 x = 4: the inner gradient of the Python float y is
    traced on the outer trace, so it must not become a float."""
    assert kn.grad(lambda x: kn.grad(lambda y: x * y ** 2)(2.0))(3.0) == 4.0


def test_an_inner_gradient_of_a_raw_array_keeps_its_outer_gradient():
    g = kn.grad(lambda x: kn.sum(kn.grad(lambda w: kn.sum(w * x * x))(np.ones(2))))(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(g, [6.0, 8.0])


def test_float_parameters_adopt_the_backend_of_the_data_in_any_container():
    data = {"x": torch.arange(3.0, dtype=torch.float64)}
    g = kn.grad(lambda s, data: s * kn.sum(data["x"]))(2.0, data)
    assert g == 3.0
    cyclic = []
    cyclic.append(cyclic)                              # not a pytree: skipped, the next argument counts
    value, g = kn.value_and_grad(lambda s, c, x: s * kn.sum(x))(2.0, cyclic, data["x"])
    assert isinstance(value, torch.Tensor) and g == 3.0
