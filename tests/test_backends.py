"""Backends: dispatch by argument types, registering a backend (both routes), convert, devices."""

import sys
import textwrap
import types
import warnings

import numpy as np
import pytest
import torch

import knetapi as kn
from knetapi import registry

BACKENDS = ["numpy", "torch", "strict"]


def loss(w, x):
    """The same plain-Python model for every backend. (``kn.matmul(x, W)`` rather than ``x @ W``:
    a raw array-api-strict array on the left of an operator raises instead of deferring.)"""
    h = kn.tanh(kn.matmul(x, w["W"]) + w["b"])
    return kn.sum(h * h) / x.shape[0] + 0.5 * kn.sum(w["W"] ** 2)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}, rng.standard_normal((5, 3))


def loss_gradient_by_hand(w, x):
    """The gradient of ``loss``, worked out with numpy alone (an independent reference): with
    ``h = tanh(x W + b)``, d loss / d(x W + b) is ``2 h (1 - h^2) / N``."""
    h = np.tanh(x @ w["W"] + w["b"])
    dz = 2 * h * (1 - h * h) / x.shape[0]
    return {"W": x.T @ dz + w["W"], "b": dz.sum(axis=0)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_loss_same_gradient_on_every_backend(backend, data):
    w, x = data
    expected = loss_gradient_by_hand(w, x)
    wb, xb = kn.convert((w, x), backend)
    g = kn.grad(loss)(wb, xb)
    assert all(kn.backend_of(leaf).name == backend for leaf in g.values())
    for name in w:
        np.testing.assert_allclose(kn.convert(g[name], "numpy"), expected[name], rtol=1e-12)
        assert g[name].dtype == wb[name].dtype and tuple(g[name].shape) == w[name].shape


@pytest.mark.parametrize("backend", BACKENDS)
def test_python_scalars_adopt_the_arrays_backend(backend):
    x = kn.convert(np.arange(3.0), backend)
    y = kn.multiply(2.0, kn.add(x, 1))
    assert kn.backend_of(y).name == backend
    g = kn.grad(lambda s, x: kn.sum(s * x), argnums=0)(2.0, x)
    assert isinstance(g, float) and g == 3.0


def test_mixing_backends_names_both_and_suggests_convert():
    with pytest.raises(TypeError, match=r"two backends.*numpy and torch.*kn.convert"):
        kn.add(np.ones(2), torch.ones(2))
    with pytest.raises(TypeError, match=r"two backends.*numpy and torch"):
        kn.grad(lambda w: kn.sum(w * torch.ones(2)))(np.ones(2))


def test_a_list_where_an_array_is_needed_says_what_was_expected():
    with pytest.raises(TypeError, match=r"matmul: expected an array of a registered backend .*got list"):
        kn.matmul([1.0, 2.0], np.ones(2))


def test_torch_tensor_requiring_grad_is_used_by_value_with_a_warning():
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = kn.grad(lambda w: kn.sum(w * w))(w)
    assert any("requires_grad=True" in str(c.message) for c in caught)
    assert not g.requires_grad and w.grad is None
    torch.testing.assert_close(g, 2 * w.detach())


def test_torch_tensor_on_the_left_defers_to_traced_values():
    x = torch.randn(4, 3, dtype=torch.float64)

    def f(w):
        for y in (x @ w, x * w, 1.0 - w, x + w):
            assert type(y) is kn.Traced
        return kn.sum(x @ w)

    torch.testing.assert_close(kn.grad(f)(torch.ones(3, dtype=torch.float64)), x.sum(0))


# --- adding a backend --------------------------------------------------------------------------

class TaggedArray(np.ndarray):
    """A numpy array subclass with its own backend: the smallest third-party backend."""


def _tagged_backend_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.NAME = name
    module.ARRAY_TYPES = (TaggedArray,)
    module.namespace = lambda: registry.get_backend("numpy").ns
    module.OVERRIDES = {}
    module.to_numpy = np.asarray
    return module


def test_subclasses_use_their_parents_backend_unless_they_register_their_own():
    class Plain(np.ndarray):
        pass

    assert kn.backend_of(np.ones(2).view(Plain)).name == "numpy"

    class Own(np.ndarray):
        pass

    module = _tagged_backend_module("own")
    module.ARRAY_TYPES = (Own,)
    kn.register_backend(module)
    assert kn.backend_of(np.ones(2).view(Own)).name == "own"
    assert kn.backend_of(np.ones(2).view(Plain)).name == "numpy"


def test_register_backend_by_module():
    kn.register_backend(_tagged_backend_module("tagged"))
    x = np.arange(3.0).view(TaggedArray)
    assert kn.backend_of(x).name == "tagged"
    g = kn.grad(lambda w: kn.sum(w * w))(x)
    np.testing.assert_array_equal(np.asarray(g), 2 * np.arange(3.0))
    with pytest.raises(TypeError, match="two backends"):
        kn.add(x, np.ones(3))


def test_register_backend_through_the_entry_point_group(tmp_path, monkeypatch):
    package = tmp_path / "kn_entry_backend"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        import numpy as np
        from knetapi import registry

        class EntryArray(np.ndarray):
            pass

        NAME = "entry"
        ARRAY_TYPES = (EntryArray,)
        OVERRIDES = {}

        def namespace():
            return registry.get_backend("numpy").ns
    """))
    info = tmp_path / "kn_entry_backend-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kn-entry-backend\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[knetapi.backends]\nentry = kn_entry_backend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from kn_entry_backend import EntryArray

    x = np.arange(3.0).view(EntryArray)
    assert kn.backend_of(x).name == "entry"
    np.testing.assert_array_equal(np.asarray(kn.grad(lambda w: kn.sum(w ** 3))(x)), 3 * np.arange(3.0) ** 2)
    sys.modules.pop("kn_entry_backend", None)


def test_registering_a_module_without_a_required_attribute_names_it():
    module = _tagged_backend_module("broken")
    del module.namespace
    with pytest.raises(TypeError, match="lacks the attribute.*namespace"):
        kn.register_backend(module)


# --- convert and devices ------------------------------------------------------------------------

@pytest.mark.parametrize("source", BACKENDS)
@pytest.mark.parametrize("target", BACKENDS)
def test_convert_keeps_structure_dtype_and_values(source, target):
    tree = {"a": [np.arange(3, dtype=np.float32), np.ones((2, 2))], "b": (np.int64(7) * np.ones(1, np.int64), 0.5)}
    moved = kn.convert(kn.convert(tree, source), target)
    assert type(moved["a"]) is list and type(moved["b"]) is tuple and moved["b"][1] == 0.5
    for before, after in zip([*tree["a"], tree["b"][0]], [*moved["a"], moved["b"][0]]):
        assert kn.backend_of(after).name == target
        back = kn.convert(after, "numpy")
        assert back.dtype == before.dtype
        np.testing.assert_array_equal(back, before)


def test_convert_to_an_unknown_backend_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"no backend named 'nope'; registered: .*numpy"):
        kn.convert(np.ones(2), "nope")


def test_convert_refuses_traced_values_and_non_arrays():
    with pytest.raises(TypeError, match=r"tree\[0\] is a traced value"):
        kn.grad(lambda w: kn.sum(kn.convert([w], "torch")[0]))(np.ones(2))
    with pytest.raises(TypeError, match=r"tree\['x'\] is a str"):
        kn.convert({"x": "text"}, "numpy")


def _torch_devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _torch_devices())
def test_gradients_live_on_the_parameters_device(device):
    w = kn.convert({"W": np.ones((3, 2)), "b": np.zeros(2)}, "torch", device=device)
    x = kn.convert(np.arange(15.0).reshape(5, 3), "torch", device=device)
    assert w["W"].device.type == device
    g = kn.grad(loss)(w, x)
    assert all(leaf.device.type == device for leaf in g.values())
    g_index = kn.grad(lambda v: kn.sum(v[torch.tensor([0, 0, 1], device=device)] ** 2))(w["b"] + 1)
    assert g_index.device.type == device
    torch.testing.assert_close(g_index.cpu(), torch.tensor([4.0, 2.0], dtype=torch.float64))
