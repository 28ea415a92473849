"""The tape's own contracts (knetapi/tape.py) that results alone do not show: the message for a
finished trace, the fast paths of recording and of the backward walk (each one skips work that
would give the same numbers, so only counting the calls tells that it is taken), and a VJP of None
for one argument of a node leaving its other arguments their gradients."""

import numpy as np
import pytest

import knetapi as kn
from knetapi import cotangent, registry


def test_a_value_of_a_finished_trace_says_what_to_do():
    kept = []
    kn.grad(lambda x: kept.append(x * 2.0) or kn.sum(x))(np.ones(2))
    with pytest.raises(ValueError) as error:
        kept[0] + 1.0
    assert str(error.value) == ("add: a traced value from a finished grad call was used; use its value "
                                "instead (a grad call's traced values live only inside it)")


@pytest.fixture
def calls(monkeypatch):
    """How often grad dispatches by argument types, densifies and accumulates cotangents."""
    counts = {"dispatch": 0, "densify": 0, "accumulate": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return function(*args, **kwargs)
        return wrapper
    monkeypatch.setattr(registry, "backend_of_arrays", counting("dispatch", registry.backend_of_arrays))
    monkeypatch.setattr(cotangent, "densify", counting("densify", cotangent.densify))
    monkeypatch.setattr(cotangent, "accumulate", counting("accumulate", cotangent.accumulate))
    return counts


@pytest.mark.parametrize("backend", ["numpy", "torch", "strict"])
def test_values_of_one_trace_and_scalars_run_without_a_second_dispatch(calls, backend):
    x = kn.convert(np.linspace(0.0, 1.0, 3), backend)
    g = kn.grad(lambda x: kn.sum(kn.exp(kn.sin(x) * 2.0) + 1.0))(x)
    assert calls["dispatch"] == 0
    expected = 2 * np.cos(np.linspace(0.0, 1.0, 3)) * np.exp(2 * np.sin(np.linspace(0.0, 1.0, 3)))
    np.testing.assert_allclose(kn.convert(g, "numpy"), expected, rtol=1e-14)


def test_a_raw_array_among_the_arguments_is_dispatched_by_its_type(calls):
    kn.grad(lambda x: kn.sum(x * np.arange(3.0)))(np.ones(3))
    assert calls["dispatch"] >= 1


def test_values_used_once_need_no_densify_or_accumulate(calls):
    kn.grad(lambda x: kn.sum(kn.exp(kn.sin(x) * 2.0)))(np.ones(3))
    assert calls == {"dispatch": 0, "densify": 0, "accumulate": 0}
    kn.grad(lambda x: kn.sum(x * x))(np.ones(3))          # x used twice: one accumulation
    assert (calls["densify"], calls["accumulate"]) == (0, 1)


def test_a_none_vjp_for_one_argument_leaves_the_others_their_gradient():
    @kn.primitive
    def scaled(a, b):
        return a * b

    kn.defvjp(scaled, None, lambda dy, y, a, b: dy * a)    # no gradient for a, by decree
    ga, gb = kn.grad(lambda a, b: kn.sum(scaled(a, b)), (0, 1))(np.array([2.0, 3.0]), np.array([5.0, 7.0]))
    np.testing.assert_array_equal(ga, [0.0, 0.0])
    np.testing.assert_array_equal(gb, [2.0, 3.0])
