"""Convolution and pooling: values and gradients against torch.nn.functional (an independent
reference) over random shapes, padding, stride and dilation; finite differences to second order;
the tie and padding conventions; the standard-only code on array-api-strict; bad input."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import knetapi as kn
from knetapi.testing import check_grads

try:
    import torch
except ImportError:     # the comparisons with torch skip; every other test needs numpy only
    torch = None
else:
    F = torch.nn.functional

needs_torch = pytest.mark.skipif(torch is None, reason="could not import 'torch': it is the reference "
                                                       "here (pip install -e '.[test]')")

EXACT = dict(rtol=1e-10, atol=1e-12)


def pairs(values: st.SearchStrategy) -> st.SearchStrategy:
    """An int (both axes) or a (rows, columns) pair."""
    return values | st.tuples(values, values)


def both(p) -> tuple[int, int]:
    return (p, p) if isinstance(p, int) else p


@st.composite
def conv_cases(draw):
    """w (O, C, kh, kw), x (N, C, H, W) and geometry with every window inside the padded input."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding, stride, dilation = draw(pairs(st.integers(0, 2))), draw(pairs(st.integers(1, 3))), \
        draw(pairs(st.integers(1, 2)))
    size = [max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 4))
            for k, p, d in zip(kernel, both(padding), both(dilation))]
    geometry = dict(padding=padding, stride=stride, dilation=dilation)
    return rng.standard_normal((o, c) + kernel), rng.standard_normal((n, c, *size)), geometry


@st.composite
def pool_cases(draw):
    """x (N, C, H, W) with distinct values (no ties), and a window, padding at most half of it,
    and a stride (None: the window) with every window inside the padded input."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    window = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in window)
    stride = draw(st.none() | pairs(st.integers(1, 3)))
    size = [max(1, k - 2 * p) + draw(st.integers(0, 4)) for k, p in zip(window, padding)]
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.25 + rng.uniform(-0.05, 0.05, shape)
    return x, dict(window=window, padding=padding, stride=stride)


def value_and_grads(f, args, cotangent_seed=0):
    """f(*args) and the gradient of sum(f(*args) * r) w.r.t. every argument, r random."""
    y = f(*args)
    r = np.random.default_rng(cotangent_seed).standard_normal(y.shape)
    return y, r, kn.grad(lambda *a: kn.sum(f(*a) * r), argnums=tuple(range(len(args))))(*args)


def deconvolvable(w, dy, geometry) -> bool:
    """Whether deconv4(w, dy) has a positive output size (large padding can leave none)."""
    padding, stride, dilation = (both(geometry[a]) for a in ("padding", "stride", "dilation"))
    return all((n - 1) * s - 2 * p + d * (k - 1) + 1 >= 1
               for n, k, p, s, d in zip(dy.shape[2:], w.shape[2:], padding, stride, dilation))


def torch_value_and_grads(f, args, r):
    ts = [torch.tensor(a, requires_grad=True) for a in args]
    y = f(*ts)
    grads = torch.autograd.grad((y * torch.tensor(r)).sum(), ts)
    return y.detach().numpy(), [g.numpy() for g in grads]


def assert_matches_torch(ours, reference, args):
    y, r, grads = value_and_grads(ours, args)
    expected, expected_grads = torch_value_and_grads(reference, args, r)
    np.testing.assert_allclose(y, expected, **EXACT)
    for g, e in zip(grads, expected_grads):
        np.testing.assert_allclose(g, e, **EXACT)


# --- against torch ------------------------------------------------------------------------------

@needs_torch
@given(conv_cases())
def test_conv4_matches_torch(case):
    w, x, geometry = case
    assert_matches_torch(lambda w, x: kn.conv4(w, x, **geometry),
                         lambda w, x: F.conv2d(x, w, **geometry), (w, x))


@needs_torch
@given(conv_cases())
def test_deconv4_matches_torch_conv_transpose2d(case):
    w, x, geometry = case                    # torch's weight (in_channels=O, out_channels=C, ...) is w
    dy = np.random.default_rng(1).standard_normal(kn.conv4(w, x, **geometry).shape)
    assume(deconvolvable(w, dy, geometry))
    assert_matches_torch(lambda w, dy: kn.deconv4(w, dy, **geometry),
                         lambda w, dy: F.conv_transpose2d(dy, w, **geometry), (w, dy))


@given(conv_cases())
def test_deconv4_is_the_gradient_of_conv4_wrt_its_input(case):
    """When x has deconv4's output size (the smallest one giving conv4's output size; torch's
    output_padding=0)."""
    w, x, geometry = case
    dy = np.random.default_rng(2).standard_normal(kn.conv4(w, x, **geometry).shape)
    assume(deconvolvable(w, dy, geometry))
    d = kn.deconv4(w, dy, **geometry)
    x = x[:, :, :d.shape[2], :d.shape[3]]
    np.testing.assert_allclose(kn.grad(lambda x: kn.sum(kn.conv4(w, x, **geometry) * dy))(x), d, **EXACT)


@needs_torch
@pytest.mark.parametrize("mode", ["max", "avg"])
@given(case=pool_cases())
def test_pool_matches_torch(mode, case):
    x, g = case
    reference = F.max_pool2d if mode == "max" else F.avg_pool2d
    assert_matches_torch(lambda x: kn.pool(x, mode=mode, **g),
                         lambda x: reference(x, g["window"], g["stride"], g["padding"]), (x,))


# --- finite differences, second order ---------------------------------------------------------

@given(conv_cases())
def test_conv4_and_deconv4_second_order(case):
    w, x, geometry = case
    check_grads(lambda w, x: kn.conv4(w, x, **geometry), (w, x), argnums=(0, 1), order=2)
    dy = np.random.default_rng(3).standard_normal(kn.conv4(w, x, **geometry).shape)
    if deconvolvable(w, dy, geometry):
        check_grads(lambda w, dy: kn.deconv4(w, dy, **geometry), (w, dy), argnums=(0, 1), order=2)


@given(case=pool_cases())
def test_pooling_second_order(case):
    x, g = case
    check_grads(lambda x: kn.pool(x, mode="avg", **g) ** 2, (x,), order=2)
    check_grads(lambda x: kn.pool(x, mode="max", **g) ** 2, (x,), order=2)


def test_unpool_second_order_with_overlap_and_padding():
    x = np.random.default_rng(4).standard_normal((2, 2, 3, 4))
    check_grads(lambda x: kn.unpool(x * x, window=3, padding=1, stride=2), (x,), order=2)


# --- float32 ----------------------------------------------------------------------------------

@given(conv_cases())
def test_float32_stays_float32_and_is_close(case):
    w, x, geometry = case
    w32, x32 = w.astype(np.float32), x.astype(np.float32)
    y32 = kn.conv4(w32, x32, **geometry)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, kn.conv4(w, x, **geometry), rtol=1e-4, atol=1e-5)
    def loss(w, x):
        return kn.sum(kn.conv4(w, x, **geometry) ** 2)
    grads32 = kn.grad(loss, argnums=(0, 1))(w32, x32)
    for g32, g in zip(grads32, kn.grad(loss, argnums=(0, 1))(w, x)):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_float32_pooling_stays_float32(mode):
    x = np.random.default_rng(9).standard_normal((2, 3, 5, 4)).astype(np.float32)
    y = kn.pool(x, window=3, padding=1, stride=2, mode=mode)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, kn.pool(x.astype(np.float64), window=3, padding=1, stride=2, mode=mode),
                               rtol=1e-6)
    assert kn.grad(lambda x: kn.sum(kn.pool(x, mode=mode) ** 2))(x).dtype == np.float32
    assert kn.grad(lambda x: kn.sum(kn.unpool(x) ** 2))(x).dtype == np.float32


# --- conventions --------------------------------------------------------------------------------

def test_mode_0_is_true_convolution_mode_1_cross_correlation():
    rng = np.random.default_rng(5)
    w, x = rng.standard_normal((2, 3, 3, 2)), rng.standard_normal((2, 3, 5, 6))
    flipped = w[:, :, ::-1, ::-1]
    np.testing.assert_allclose(kn.conv4(w, x, padding=1, mode=0), kn.conv4(flipped, x, padding=1), **EXACT)
    np.testing.assert_array_equal(kn.conv4(w, x, mode=1), kn.conv4(w, x))
    dy = rng.standard_normal((2, 2, 5, 6))
    np.testing.assert_allclose(kn.deconv4(w, dy, padding=1, mode=0), kn.deconv4(flipped, dy, padding=1),
                               **EXACT)
    gw = kn.grad(lambda w: kn.sum(kn.conv4(w, x, mode=0) ** 2))(w)
    gf = kn.grad(lambda w: kn.sum(kn.conv4(w, x) ** 2))(np.ascontiguousarray(flipped))
    np.testing.assert_allclose(gw, gf[:, :, ::-1, ::-1], **EXACT)


@needs_torch
def test_max_pool_ties_send_the_gradient_to_the_first_maximum_like_torch():
    x = np.zeros((1, 1, 4, 5))                 # a zero background: every window is a tie
    x[0, 0, 3, 4] = -1.0
    for geometry in (dict(window=2), dict(window=3, padding=1, stride=2), dict(window=(2, 3), stride=1)):
        g = kn.grad(lambda x: kn.sum(kn.pool(x, **geometry)))(x)
        t = torch.tensor(x, requires_grad=True)
        F.max_pool2d(t, geometry["window"], geometry.get("stride"), geometry.get("padding", 0)).sum() \
            .backward()
        np.testing.assert_array_equal(g, t.grad.numpy())
    np.testing.assert_array_equal(kn.grad(lambda x: kn.sum(kn.pool(x)))(np.zeros((1, 1, 2, 2)))[0, 0],
                                  [[1.0, 0.0], [0.0, 0.0]])


def test_avg_pool_counts_padding_in_the_divisor():
    x = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(kn.pool(x, window=2, padding=1, mode="avg")[0, 0],
                                  [[0.25, 0.25], [0.25, 0.25]])


def test_unpool_copies_each_value_over_its_window_and_undoes_avg_pooling():
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    np.testing.assert_array_equal(kn.unpool(x), np.repeat(np.repeat(x, 2, axis=2), 2, axis=3))
    np.testing.assert_array_equal(kn.pool(kn.unpool(x, window=(3, 2)), window=(3, 2), mode="avg"), x)


@given(case=pool_cases())
def test_unpool_is_the_transpose_of_sum_pooling(case):
    """<unpool(y), x> == <y, area * avgpool(x)> for every geometry, overlapping windows included."""
    x, g = case
    y = np.random.default_rng(6).standard_normal(kn.pool(x, mode="avg", **g).shape)
    stride = both(g["stride"] or g["window"])
    assume(all((n - 1) * s + k - 2 * p >= 1
               for n, k, p, s in zip(y.shape[2:], g["window"], g["padding"], stride)))
    u = kn.unpool(y, **g)
    area = g["window"][0] * g["window"][1]
    rows, cols = u.shape[2:]
    np.testing.assert_allclose(np.sum(u * x[:, :, :rows, :cols]),
                               np.sum(y * kn.pool(x[:, :, :rows, :cols], mode="avg", **g)) * area, **EXACT)


# --- the standard-only code, other backends ----------------------------------------------------

def test_standard_only_code_on_array_api_strict_matches_numpy():
    xp = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(7)
    w, x = rng.standard_normal((3, 2, 3, 2)), rng.standard_normal((2, 2, 6, 7))
    geometry = dict(padding=(1, 2), stride=(2, 1), dilation=(1, 2))

    def loss(w, x):
        y = kn.conv4(w, x, **geometry)
        y = kn.deconv4(w, y, **geometry)
        return kn.sum(kn.pool(y, window=3, padding=1, mode="max") ** 2) \
            + kn.sum(kn.unpool(kn.pool(x, mode="avg")) ** 2)
    expected = kn.grad(loss, argnums=(0, 1))(w, x)
    got = kn.grad(loss, argnums=(0, 1))(xp.asarray(w), xp.asarray(x))
    for g, e in zip(got, expected):
        assert kn.backend_of(g).name == "strict"
        np.testing.assert_allclose(np.asarray(g), e, **EXACT)


@needs_torch
def test_torch_tensors_run_the_same_code():
    rng = np.random.default_rng(8)
    w, x = torch.tensor(rng.standard_normal((3, 2, 3, 3))), torch.tensor(rng.standard_normal((2, 2, 6, 7)))
    g = kn.grad(lambda w: kn.sum(kn.pool(kn.conv4(w, x, padding=1), window=2) ** 2))(w)
    t = w.clone().requires_grad_()
    (F.max_pool2d(F.conv2d(x, t, padding=1), 2) ** 2).sum().backward()
    torch.testing.assert_close(g, t.grad, rtol=1e-10, atol=1e-12)


# --- bad input ----------------------------------------------------------------------------------

def test_channel_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"w of shape \(4, 3, 3, 3\).*x of shape \(2, 5, 8, 8\)"):
        kn.conv4(np.zeros((4, 3, 3, 3)), np.zeros((2, 5, 8, 8)))
    with pytest.raises(ValueError, match=r"w of shape \(4, 3, 3, 3\).*x of shape \(2, 3, 8, 8\)"):
        kn.deconv4(np.zeros((4, 3, 3, 3)), np.zeros((2, 3, 8, 8)))


def test_window_larger_than_the_padded_input():
    with pytest.raises(ValueError, match=r"conv4: the window spans 5 rows, more than the 4 .*w of shape "
                                         r"\(1, 1, 3, 3\), dilation \(2, 2\), x of shape \(1, 1, 2, 9\)"):
        kn.conv4(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 2, 9)), padding=1, dilation=2)
    with pytest.raises(ValueError, match=r"pool: the window spans 3 columns, more than the 2 .*window "
                                         r"\(2, 3\), x of shape \(1, 1, 4, 2\)"):
        kn.pool(np.zeros((1, 1, 4, 2)), window=(2, 3))


def test_other_bad_arguments():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"conv4: x must be a 4-d array \(N, C, H, W\), got shape \(4, 4\)"):
        kn.conv4(np.zeros((1, 1, 2, 2)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"pool: x must be a 4-d array"):
        kn.pool(np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match=r"stride must be an int >= 1 or a pair of them.*got 0"):
        kn.conv4(np.zeros((1, 1, 2, 2)), x, stride=0)
    with pytest.raises(ValueError, match=r"padding must be .*got \(1, 2, 3\)"):
        kn.pool(x, padding=(1, 2, 3))
    with pytest.raises(ValueError, match=r"padding \(2, 2\) must be at most half the window \(3, 3\)"):
        kn.pool(x, window=3, padding=2)
    with pytest.raises(ValueError, match=r"mode must be 'max' or 'avg', got 'sum'"):
        kn.pool(x, mode="sum")
    with pytest.raises(ValueError, match=r"mode must be 0 \(convolution.*or 1 \(cross-correlation\), got 2"):
        kn.conv4(np.zeros((1, 1, 2, 2)), x, mode=2)
