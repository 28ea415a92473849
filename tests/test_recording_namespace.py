"""Each backend's recording namespace, and ``kn.array_namespace`` for mixes of traced and raw arrays.

``array_api_compat.array_namespace(traced)`` and ``traced.__array_namespace__()`` give the recording
namespace of the traced value's backend: a module-like object with its own ``__name__``, the
backend's dtypes, constants, version and inspection API, whose functions record when given traced
values, so ``xp = array_namespace(x)`` code is differentiable.
"""

import array_api_compat
import array_api_compat.numpy as compat_numpy
import numpy as np
import pytest

import knetapi as kn
from knetapi import registry
from knetapi.namespace import DTYPES_AND_CONSTANTS, STANDARD_FUNCTIONS
from knetapi.traced import Traced, strip

try:
    import array_api_strict
except ImportError:     # an optional dependency: the numpy half still runs
    array_api_strict = None

BACKENDS = [
    pytest.param("numpy", compat_numpy, id="numpy"),
    pytest.param("strict", array_api_strict, id="strict", marks=pytest.mark.skipif(
        array_api_strict is None, reason="array-api-strict is not installed")),
]


def namespaces_seen_inside_grad(x, *others):
    """Run ``grad`` at ``x`` and return what the namespace functions say about the traced value."""
    seen = {}

    def f(x):
        seen["compat"] = array_api_compat.array_namespace(x)
        seen["dunder"] = x.__array_namespace__(api_version="2024.12")
        seen["kn"] = kn.array_namespace(x, *others)
        return kn.sum(x)

    kn.grad(f)(x)
    return seen


@pytest.mark.parametrize("name, raw", BACKENDS)
def test_traced_values_give_their_backends_recording_namespace(name, raw):
    backend = registry.get_backend(name)
    seen = namespaces_seen_inside_grad(raw.asarray([1.0, 2.0]))
    assert seen["compat"] is seen["dunder"] is seen["kn"] is backend.recording


@pytest.mark.parametrize("name, raw", BACKENDS)
def test_recording_namespace_is_a_module_like_array_api_namespace(name, raw):
    xp = registry.get_backend(name).recording
    assert xp.__name__ == f"knetapi.recording.{name}"
    assert xp.__array_api_version__ == raw.__array_api_version__ == "2025.12"
    info = xp.__array_namespace_info__()
    assert info.default_dtypes() == raw.__array_namespace_info__().default_dtypes()
    assert info.devices() and isinstance(info.capabilities(), dict)
    assert info.dtypes(kind="real floating") == raw.__array_namespace_info__().dtypes(kind="real floating")
    for constant in DTYPES_AND_CONSTANTS:
        assert getattr(xp, constant) is getattr(raw, constant), constant
    assert all(callable(getattr(xp, f)) for f in STANDARD_FUNCTIONS)


def test_recording_namespaces_have_distinct_names():
    names = [b.recording.__name__ for b in registry.backends().values()]
    assert len(set(names)) == len(names)
    assert "knetapi.recording.numpy" in names


@pytest.mark.parametrize("name, raw", BACKENDS)
def test_creation_functions_make_arrays_of_their_backend(name, raw):
    xp = registry.get_backend(name).recording
    array_type = type(raw.asarray(0.0))
    for made in (xp.asarray([1.0, 2.0]), xp.asarray(3), xp.zeros((2,)), xp.arange(3),
                 xp.linspace(0, 1, 3), xp.full((1,), 2.0), xp.eye(2)):
        assert type(made) is array_type


def test_kn_array_namespace_accepts_traced_and_raw_mixes():
    raw = np.ones(2)
    seen = namespaces_seen_inside_grad(np.zeros(2), raw, 1.5, None)
    assert seen["kn"] is registry.get_backend("numpy").recording
    assert kn.array_namespace(raw) is compat_numpy
    assert kn.array_namespace(raw, 2.0) is compat_numpy
    assert kn.array_namespace() is compat_numpy


def test_array_api_compat_refuses_traced_and_raw_mixes():
    """Why ``kn.array_namespace`` exists: array_api_compat sees two namespaces."""
    def f(x):
        with pytest.raises(TypeError, match="Multiple namespaces"):
            array_api_compat.array_namespace(x, np.ones(2))
        return kn.sum(x)

    kn.grad(f)(np.zeros(2))


def test_kn_array_namespace_refuses_two_backends():
    if array_api_strict is None:
        pytest.skip("array-api-strict is not installed")
    with pytest.raises(TypeError, match="two backends"):
        kn.array_namespace(np.ones(2), array_api_strict.ones(2))


def test_kn_array_namespace_of_nested_traces_is_the_recording_namespace():
    recording = registry.get_backend("numpy").recording

    def outer(x):
        def inner(y):
            assert kn.array_namespace(x, y, np.ones(3)) is recording
            return kn.sum(x * y)
        return kn.sum(kn.grad(inner)(x))

    np.testing.assert_allclose(kn.grad(outer)(np.arange(3.0)), np.ones(3))


@pytest.mark.parametrize("name, raw", BACKENDS)
def test_namespace_style_code_is_differentiable(name, raw):
    def loss(x, w):
        xp = kn.array_namespace(x, w)
        return xp.sum(xp.exp(x)) + xp.sum(xp.multiply(w, xp.tanh(x))) + xp.mean(xp.where(x > 0, x, xp.zeros_like(x)))

    x0 = np.array([-1.5, -0.2, 0.3, 2.0])
    w0 = np.array([0.5, -1.0, 2.0, 1.0])
    x, w = raw.asarray(x0), raw.asarray(w0)
    g = kn.grad(loss)(x, w)
    assert type(g) is type(x)
    expected = np.exp(x0) + w0 * (1 - np.tanh(x0) ** 2) + (x0 > 0) / x0.size
    np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-12)


def test_recording_functions_return_raw_arrays_outside_grad():
    xp = registry.get_backend("numpy").recording
    out = xp.sum(xp.exp(np.zeros(3)))
    assert type(out) is not Traced and float(out) == 3.0
    assert strip(out) is out
