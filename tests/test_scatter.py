"""The generic scatter-add and key selection (knetapi/scatter.py) and the cotangent helpers
(knetapi/cotangent.py), directly: the backends that override them (numpy, torch) never run the
generic code, so it is checked here with array-api-strict, on a device other than the default one
too (array-api-strict refuses to mix devices, so an index array made on the wrong one fails)."""

import numpy as np
import pytest

import knetapi as kn
from knetapi import cotangent
from knetapi.scatter import is_basic_key, scatter_add, select

xp = pytest.importorskip("array_api_strict")

DEVICES = [xp.Device("CPU_DEVICE"), xp.Device("device1")]


@pytest.mark.parametrize("key, basic", [
    (0, True), (slice(1, None), True), (Ellipsis, True), (None, True),
    ((0, slice(None), Ellipsis, None), True), ((), True),
    (np.array([0, 1]), False), ((0, np.array([1])), False), ((Ellipsis, np.array([True])), False),
    ((None, [0, 1]), False),
])
def test_is_basic_key(key, basic):
    """Only ints, slices, ellipsis and None: such a key never picks an element twice."""
    assert is_basic_key(key) is basic


X = np.arange(24.0).reshape(2, 3, 4)


@pytest.mark.parametrize("key, expected", [
    ((Ellipsis,), X),
    ((slice(None), np.array([2, 0, 2]), Ellipsis), X[:, [2, 0, 2]]),
    ((slice(None), slice(None), np.array([[3], [0]]), Ellipsis), X[:, :, [[3], [0]]]),
    ((np.array([1, 0]), np.array([2, 2]), np.array([0, 3])), X[[1, 0], [2, 2], [0, 3]]),
], ids=["ellipsis", "take axis 1", "take axis 2 with 2-d indices", "one array per axis"])
def test_select_is_getitem_for_standard_and_take_keys(key, expected):
    key = tuple(xp.asarray(k) if isinstance(k, np.ndarray) else k for k in key)
    np.testing.assert_array_equal(np.asarray(select(xp, xp.asarray(X), key)), expected)


def test_select_leaves_other_keys_with_an_ellipsis_to_indexing():
    """A slice other than ``:`` before the index array is not take's key (numpy allows the key;
    the standard does not require it)."""
    from array_api_compat import numpy as compat
    np.testing.assert_array_equal(select(compat, X, (slice(1, None), np.array([2, 0]), Ellipsis)),
                                  X[1:, [2, 0]])


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_generic_scatter_add_accumulates_repeats_on_the_arrays_device(device):
    out = xp.zeros((3, 2), dtype=xp.float64, device=device)
    rows = xp.asarray([2, 0, 2], device=device)
    values = xp.asarray([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], device=device)
    got = scatter_add(xp, out, (rows, Ellipsis), values)
    assert got.device == device
    np.testing.assert_array_equal(np.asarray(xp.asarray(got, device=xp.Device("CPU_DEVICE"))),
                                  [[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]])
    basic = scatter_add(xp, xp.zeros(4, dtype=xp.float64, device=device), (slice(1, 3),),
                        xp.asarray(1.0, device=device))
    np.testing.assert_array_equal(np.asarray(xp.asarray(basic, device=xp.Device("CPU_DEVICE"))),
                                  [0.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_gradients_of_indexing_on_a_second_device(device):
    """Integer-array indexing, take along an axis and take_along_axis, through grad: the values
    worked out by hand, the gradient on the parameter's device."""
    v = np.arange(6.0).reshape(2, 3)
    rows, cols = xp.asarray([1, 1, 0], device=device), xp.asarray([2, 0, 2], device=device)
    ones = xp.asarray([[1], [1]], device=device)

    def f(m):
        return (kn.sum(m[rows, ...] ** 2) + kn.sum(kn.take(m, cols, axis=1) ** 2)
                + kn.sum(kn.take_along_axis(m, ones, axis=1)))
    g = kn.grad(f)(xp.asarray(v, device=device))
    assert g.device == device
    expected = np.zeros((2, 3))
    expected[0] += 2 * v[0]                 # row 0 once
    expected[1] += 2 * 2 * v[1]             # row 1 twice
    expected[:, 0] += 2 * v[:, 0]           # column 0 once
    expected[:, 2] += 2 * 2 * v[:, 2]       # column 2 twice
    expected[:, 1] += 1.0                   # take_along_axis picks column 1 in each row
    np.testing.assert_array_equal(np.asarray(xp.asarray(g, device=xp.Device("CPU_DEVICE"))), expected)


def test_dense_cotangents_add_up_as_arrays():
    """Two dense parts are summed at once (no list of pending parts), any sparse part is kept."""
    a, b = np.ones(3), np.full(3, 2.0)
    total = cotangent.accumulate(cotangent.accumulate(None, a), b)
    assert isinstance(total, np.ndarray)
    np.testing.assert_array_equal(total, [3.0, 3.0, 3.0])
    sparse = cotangent.IndexedCotangent((0,), 5.0)
    parts = cotangent.accumulate(cotangent.accumulate(total, sparse), a)
    assert type(parts) is list and parts[1] is sparse


def test_the_generic_code_on_torch_tensors():
    """torch overrides both, but its namespace is a stricter judge of the generic code: its reshape
    accepts -1 as the one inferred size and nothing else negative, as the standard says."""
    torch = pytest.importorskip("torch")
    from array_api_compat import torch as tp
    x = torch.arange(24.0, dtype=torch.float64).reshape(2, 3, 4)
    picked = select(tp, x, (slice(None), torch.tensor([[2], [0]]), Ellipsis))
    np.testing.assert_array_equal(picked.numpy(), X[:, [[2], [0]]])
    out = scatter_add(tp, torch.zeros(3, 2, dtype=torch.float64), (torch.tensor([2, 0, 2]), Ellipsis),
                      torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64))
    np.testing.assert_array_equal(out.numpy(), [[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]])
