"""Bad input: each case raises a clear error naming the culprit, and changes nothing."""

import types

import numpy as np
import pytest

import knetapi as kn


@pytest.fixture
def w():
    return {"layer1": [np.arange(6.0).reshape(2, 3), np.ones(3)], "layer2": np.ones((3, 1))}


def test_non_scalar_loss_names_the_shape(w):
    with pytest.raises(ValueError, match=r"scalar.*shape \(2, 3\)"):
        kn.grad(lambda w: w["layer1"][0] * 2)(w)


@pytest.mark.parametrize("bad", ["a string", None, [1.0, 2.0]])
def test_loss_returning_a_non_array_is_a_type_error(bad):
    with pytest.raises(TypeError, match="must return a scalar"):
        kn.grad(lambda x: bad)(np.ones(2))


@pytest.mark.parametrize("leaf, what", [
    (np.arange(3), "int64"),
    (np.array([True, False]), "bool"),
    (3, "Python int"),
    (True, "Python bool"),
    ("w", "str"),
    (None, "NoneType"),
    (object(), "object"),
])
def test_bad_parameter_leaves_name_their_pytree_path(w, leaf, what):
    w["layer1"][0] = leaf
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in w.items() if k != "layer1"}
    with pytest.raises(TypeError, match=rf"w\['layer1'\]\[0\].*{what}"):
        kn.grad(lambda w: kn.sum(w["layer2"]))(w)
    np.testing.assert_array_equal(w["layer2"], before["layer2"])


def test_parameter_path_uses_the_argument_name_and_position():
    def loss(x, params):
        return kn.sum(params[1] * x)

    with pytest.raises(TypeError, match=r"params\[1\]"):
        kn.grad(loss, argnums=1)(np.ones(2), [np.ones(2), np.arange(2)])


def test_item_assignment_into_a_traced_value_explains_immutability():
    def loss(w):
        w[0] = 1.0
        return kn.sum(w)

    x = np.arange(3.0)
    with pytest.raises(TypeError, match="immutable.*kn.where"):
        kn.grad(loss)(x)
    np.testing.assert_array_equal(x, np.arange(3.0))


def test_function_without_a_rule_names_itself_and_points_to_defvjp():
    with pytest.raises(NotImplementedError, match=r"real has no derivative rule.*kn.primitive.*kn.defvjp"):
        kn.grad(lambda w: kn.sum(kn.real(w)))(np.ones(2))


def test_numpy_functions_on_traced_values_say_what_to_use_instead():
    with pytest.raises(TypeError, match=r"kn.<function>"):
        kn.grad(lambda w: np.sum(w))(np.ones(2))


def test_argnums_out_of_range_and_of_the_wrong_type():
    with pytest.raises(TypeError, match="argnums includes 2"):
        kn.grad(lambda a, b: kn.sum(a), argnums=2)(np.ones(2), np.ones(2))
    with pytest.raises(TypeError, match="argnums must be an int or a tuple"):
        kn.grad(lambda a: a, argnums=[0])


def test_has_aux_needs_a_pair():
    with pytest.raises(TypeError, match=r"pair \(scalar, aux\)"):
        kn.grad(lambda w: kn.sum(w), has_aux=True)(np.ones(2))


def test_traced_value_leaked_from_a_finished_grad_call():
    leaked = []

    def loss(w):
        leaked.append(w)
        return kn.sum(w)

    kn.grad(loss)(np.ones(2))
    with pytest.raises(ValueError, match="finished grad call"):
        kn.exp(leaked[0])


def test_non_array_arguments_to_kn_functions_say_what_was_expected():
    with pytest.raises(TypeError, match=r"exp: expected an array of a registered backend.*got list"):
        kn.exp([1.0, 2.0])


class _Wrapped(np.ndarray):
    """An array type of a second, test-only backend."""


_second = types.ModuleType("second_backend")
_second.NAME = "second"
_second.ARRAY_TYPES = (_Wrapped,)
_second.namespace = lambda: kn.registry.default_backend().ns
_second.OVERRIDES = {}


def test_two_backends_in_one_call_name_both():
    kn.register_backend(_second)
    other = np.ones(2).view(_Wrapped)
    with pytest.raises(TypeError, match="two backends.*numpy and second"):
        kn.add(np.ones(2), other)
    with pytest.raises(TypeError, match=r"two backends: .*numpy.*second"):
        kn.grad(lambda a, b: kn.sum(a * b), argnums=(0, 1))(np.ones(2), other)


def test_registering_a_module_without_the_required_attributes_names_them():
    with pytest.raises(TypeError, match="OVERRIDES"):
        kn.register_backend(types.SimpleNamespace(NAME="x", ARRAY_TYPES=(), namespace=None))
