"""The rules at their edge points, and the toolbox's numerics at large scores, against torch.autograd.

Edge points: zeros, ties, constant inputs, empty axes, infinities. Wherever torch.autograd gives a
finite first or second derivative (float64), ours must equal it; where torch gives nan or is wrong,
our convention is pinned by a test of its own (docs/design.md, "Kinks, ties and edge points", says
what each is and why).

Numerics: ``logsumexp``, ``softmax``, ``logsoftmax``, ``nll``, ``sigm``, ``softplus``, ``bce`` and
``logistic`` stay finite and accurate for scores up to +-1e4 in float32 and float64 -- values,
gradients and (float64) Hessian-vector products -- compared with torch in float64 on the same
(rounded) inputs.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose, assert_array_equal

import knetapi as kn
from knetapi.rules import PRIMITIVES as P

INF = np.inf
BACKENDS = ["numpy", "torch", "strict"]

# numpy warns where an edge point's answer is nan or inf (inf - inf in a -inf row, 0 / 0): here
# those answers are the point, checked one by one
pytestmark = [pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")]


# --- the two sides: torch.autograd and knetapi -----------------------------------------------------

def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    return np.zeros(tuple(t.shape)) if t._is_zerotensor() else t.numpy()


def torch_derivatives(f, args, n=1, weights=None, direction=None):
    """torch.autograd's value of ``f``, gradient of ``sum(f * weights)`` w.r.t. ``args[:n]``, and that
    gradient's derivative along ``direction`` (ones unless given), as float64 numpy arrays."""
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args[:n]]
    y = f(*leaves, *[torch.tensor(a) for a in args[n:]])
    w = torch.ones_like(y) if weights is None else torch.tensor(weights, dtype=y.dtype)
    first = torch.autograd.grad((y * w).sum(), leaves, create_graph=True, allow_unused=True)
    first = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, first)]
    v = [np.ones(np.shape(a)) for a in args[:n]] if direction is None else direction
    along = sum((g * torch.tensor(d)).sum() for g, d in zip(first, v))
    second = (torch.autograd.grad(along, leaves, allow_unused=True) if along.requires_grad
              else [None] * n)
    second = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, second)]
    return _numpy(y), [_numpy(g) for g in first], [_numpy(g) for g in second]


def derivatives(f, args, n=1, weights=None, direction=None, backend="numpy"):
    """The same three things computed by knetapi's rules, with the arrays on ``backend``."""
    def on(a):
        return kn.convert(np.asarray(a), backend) if isinstance(a, np.ndarray) else a

    args = [on(a) for a in args]
    argnums = tuple(range(n))
    dtype = lambda a: kn.convert(a, "numpy").dtype     # noqa: E731
    y = f(*args)
    w = on(np.ones(tuple(y.shape), dtype(y)) if weights is None else np.asarray(weights, dtype(y)))
    v = [on(np.ones(tuple(a.shape), dtype(a)) if d is None else np.asarray(d, dtype(a)))
         for a, d in zip(args[:n], direction or [None] * n)]

    def scalar(*a):
        return kn.sum(f(*a) * w)

    first = kn.grad(scalar, argnums)(*args)
    with warnings.catch_warnings():        # a linear op's Hessian is zero: grad warns, rightly
        warnings.simplefilter("ignore", kn.IndependentOutputWarning)
        second = kn.grad(lambda *a: sum(kn.sum(g * d) for g, d in zip(kn.grad(scalar, argnums)(*a), v)),
                         argnums)(*args)
    back = lambda x: kn.convert(x, "numpy")   # noqa: E731
    return back(y), [back(g) for g in first], [back(g) for g in second]


def assert_equal_where_torch_is_finite(ours, theirs, what, skip=None):
    """``ours == theirs`` (to rounding) wherever torch's value is finite, except where ``skip``."""
    ours = np.broadcast_to(ours, np.shape(theirs))
    check = np.isfinite(theirs)
    if skip is not None:
        check &= ~np.broadcast_to(skip, np.shape(theirs))
    bad = check & ~np.isclose(ours, theirs, rtol=1e-9, atol=1e-12)
    assert not bad.any(), \
        f"{what}: ours {ours[bad]} vs torch {np.asarray(theirs)[bad]} at {np.argwhere(bad)[:5]}"


def assert_same(ours, theirs, what, rtol=1e-9, atol=1e-12):
    """Equal to rounding, nan where torch has nan, infinities included."""
    assert np.shape(ours) == np.shape(theirs), f"{what}: shape {np.shape(ours)} vs {np.shape(theirs)}"
    assert_allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


# --- elementwise rules: a grid of zeros, ones and infinities ---------------------------------------

POINTS = np.array([0.0, 1.0, -1.0, INF, -INF, 0.5, 2.0])
PAIRS = tuple(np.array(v) for v in zip(*itertools.product(POINTS, POINTS)))

UNARY = {name: (getattr(kn, name), getattr(torch, name)) for name in [
    "abs", "sqrt", "reciprocal", "exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos",
    "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "square",
    "negative", "positive"]}
UNARY.update({
    "sigm": (kn.sigm, torch.sigmoid),
    # torch's softplus turns linear above 20 (threshold); logaddexp(x, 0) is softplus exactly
    "softplus": (kn.softplus, lambda x: torch.logaddexp(x, torch.zeros_like(x))),
    "relu": (kn.relu, torch.relu),
    "elu": (kn.elu, F.elu),
    "elu alpha=2": (lambda x: kn.elu(x, alpha=2.0), lambda x: F.elu(x, alpha=2.0)),
})
for _power in [0.0, 0, 1.0, 2.0, 3.0, 0.5, -1.0]:
    UNARY[f"x ** {_power!r}"] = (lambda x, p=_power: x ** p,) * 2
    UNARY[f"{_power!r} ** x"] = (lambda x, p=_power: p ** x,) * 2

BINARY = {name: (getattr(kn, name), getattr(torch, name)) for name in [
    "add", "subtract", "multiply", "divide", "pow", "atan2", "hypot", "logaddexp", "maximum",
    "minimum", "remainder"]}

# Where torch gives a finite value that is not ours, on purpose: (function, order) -> the points.
TORCH_DIFFERS = {
    # elu''(0): ours from the exponential side, like elu'(0) (torch takes elu'(0) from that side
    # and elu''(0) from the linear one)
    ("elu", 2): lambda x: x == 0,
    ("elu alpha=2", 2): lambda x: x == 0,
    # pow's second derivative where b == 0: torch's d/da is where(b == 0, 0, ...), which drops
    # d/db (b a^(b-1)) = a^(b-1) there (see test_pow_mixed_second_derivative_at_a_zero_exponent);
    # at a < 0 or a = +-inf ours is nan there, as d/db a^b = a^b log(a) is
    ("pow", 2): lambda a, b: b == 0,
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_rules_agree_with_torch_wherever_torch_is_finite(name):
    ours_f, torch_f = UNARY[name]
    ours = derivatives(ours_f, [POINTS])
    theirs = torch_derivatives(torch_f, [POINTS])
    assert_equal_where_torch_is_finite(ours[0], theirs[0], f"{name} value")
    for order in (1, 2):
        skip = TORCH_DIFFERS.get((name, order), lambda x: np.zeros_like(x, dtype=bool))(POINTS)
        assert_equal_where_torch_is_finite(ours[order][0], theirs[order][0], f"{name} order {order}",
                                           skip)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_rules_agree_with_torch_wherever_torch_is_finite(name):
    ours_f, torch_f = BINARY[name]
    ours = derivatives(ours_f, PAIRS, n=2)
    theirs = torch_derivatives(torch_f, PAIRS, n=2)
    assert_equal_where_torch_is_finite(ours[0], theirs[0], f"{name} value")
    for order in (1, 2):
        skip = TORCH_DIFFERS.get((name, order), lambda a, b: np.zeros_like(a, dtype=bool))(*PAIRS)
        for i in range(2):
            assert_equal_where_torch_is_finite(ours[order][i], theirs[order][i],
                                               f"{name} order {order}, argument {i}", skip)


def test_copysign_agrees_with_torch_wherever_torch_is_finite():
    ours = derivatives(kn.copysign, PAIRS, n=1)
    theirs = torch_derivatives(torch.copysign, PAIRS, n=1)
    for order in (1, 2):
        assert_equal_where_torch_is_finite(ours[order][0], theirs[order][0], f"copysign order {order}")


def test_clip_agrees_with_torch_wherever_torch_is_finite():
    """Every ordering of x, min and max among 0, +-1, +-inf; torch drops the cotangent where
    ``min == max`` and ``x`` is below both (test_clip_with_min_equal_to_max_...)."""
    x, lo, hi = (np.array(v) for v in zip(*itertools.product([0.0, 1.0, -1.0, INF, -INF], repeat=3)))
    ours = derivatives(lambda x, lo, hi: kn.clip(x, lo, hi), [x, lo, hi], n=3)
    theirs = torch_derivatives(torch.clamp, [x, lo, hi], n=3)
    assert_same(ours[0], theirs[0], "clip value")
    for i in range(3):
        skip = (lo == hi) & (x < lo) if i == 1 else None
        assert_equal_where_torch_is_finite(ours[1][i], theirs[1][i], f"clip argument {i}", skip)
        assert_same(ours[2][i], 0 * ours[2][i], f"clip second order, argument {i}")


# --- pow ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("power", [lambda x: x ** 0.0, lambda x: x ** 0,
                                   lambda x: kn.pow(x, kn.zeros_like(x))],
                         ids=["x ** 0.0", "x ** 0", "array exponent"])
def test_pow_zero_exponent_at_zero_base_has_zero_gradient(power, backend):
    """x ** 0 is the constant 1: derivatives 0 at x = 0 too (torch, HIPS autograd), not 0 * inf."""
    _, (first,), (second,) = derivatives(power, [np.array([0.0, 2.0, -1.5])], backend=backend)
    assert_array_equal(first, [0.0, 0.0, 0.0])
    assert_array_equal(second, [0.0, 0.0, 0.0])
    assert kn.grad(lambda x: x ** 0.0)(0.0) == 0.0


def test_pow_first_power_has_zero_second_derivative_at_zero():
    _, (first,), (second,) = derivatives(lambda x: x ** 1.0, [np.array([0.0, 3.0])])
    assert_array_equal(first, [1.0, 1.0])
    assert_array_equal(second, [0.0, 0.0])
    assert kn.grad(kn.grad(lambda x: x ** 1.0))(0.0) == 0.0


def test_pow_exponent_gradient_at_a_zero_base_follows_torch():
    """d/db 0 ** b: 0 where b >= 0 (the limit from b > 0), -inf where b < 0, as torch."""
    b = np.array([0.0, 1.0, 2.0, -1.0])
    for ours_f, torch_f in [(lambda b: kn.pow(kn.zeros_like(b), b),
                             lambda b: torch.pow(torch.zeros_like(b), b)),
                            (lambda b: 0.0 ** b, lambda b: 0.0 ** b)]:
        _, (ours,), _ = derivatives(ours_f, [b])
        _, (theirs,), _ = torch_derivatives(torch_f, [b])
        assert_array_equal(ours, [0.0, 0.0, 0.0, -INF])
        assert_array_equal(ours, theirs)


def test_pow_mixed_second_derivative_at_a_zero_exponent():
    """d/db d/da a ** b = a^(b-1) (1 + b log a) is 1/a at b = 0. torch answers 0 there: its
    d/da is where(b == 0, 0, b a^(b-1)), whose derivative in b the where cuts off."""
    a, b = np.array([2.0, 1.0, 0.5]), np.zeros(3)
    mixed = kn.grad(lambda b: kn.sum(kn.grad(lambda a: kn.sum(kn.pow(a, b)))(a)))(b)
    assert_allclose(mixed, 1 / a, rtol=1e-15)
    leaves = [torch.tensor(v, requires_grad=True) for v in (a, b)]
    da, = torch.autograd.grad(torch.pow(*leaves).sum(), leaves[0], create_graph=True)
    torch_mixed, = torch.autograd.grad(da.sum(), leaves[1])
    assert_array_equal(torch_mixed.numpy(), 0.0)      # torch's, for the record


# --- kinks and ties ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_copysign_has_zero_gradient_at_zero_magnitude(backend):
    """copysign(x, s) is |x| or -|x|: like abs'(0) = 0 (and torch), 0 where x == 0."""
    x, sign = np.array([0.0, -0.0, 0.0, 2.0]), np.array([1.0, 1.0, -1.0, -1.0])
    _, (g,), (h,) = derivatives(kn.copysign, [x, sign], backend=backend)
    assert_array_equal(g, [0.0, 0.0, 0.0, -1.0])
    assert_array_equal(h, 0.0)      # torch: nan at x == 0 (0/0 inside its rule)


def test_atan2_has_zero_gradient_at_the_origin():
    args = [np.array([0.0, 1.0]), np.array([0.0, 1.0])]
    _, ours, second = derivatives(kn.atan2, args, n=2)
    _, theirs, _ = torch_derivatives(torch.atan2, args, n=2)
    for g, t in zip(ours, theirs):
        assert_same(g, t, "atan2")
    assert_array_equal([s[0] for s in second], [0.0, 0.0])     # torch: nan


@pytest.mark.parametrize("backend", BACKENDS)
def test_hypot_has_zero_gradient_at_the_origin_like_vector_norm(backend):
    """hypot(x, 0) = |x| and hypot is the 2-vector norm: 0 at the origin, like abs'(0) = 0 and
    torch.linalg.vector_norm (torch.hypot gives nan there)."""
    _, (ga, gb), (ha, hb) = derivatives(kn.hypot, [np.array([0.0, 3.0]), np.array([0.0, 4.0])], n=2,
                                        backend=backend)
    assert_allclose(ga, [0.0, 0.6], rtol=1e-15)
    assert_allclose(gb, [0.0, 0.8], rtol=1e-15)
    assert ha[0] == hb[0] == 0.0
    v = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    norm_grad, = torch.autograd.grad(torch.linalg.vector_norm(v), v)
    assert_array_equal(norm_grad.numpy(), [ga[0], gb[0]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_logaddexp_gradient_is_finite_at_infinities_and_zero_at_minus_infinity(backend):
    a = np.array([INF, -INF, -INF, 0.0, 1e4])
    b = np.array([0.0, INF, -INF, 0.0, -1e4])
    _, (ga, gb), (ha, hb) = derivatives(kn.logaddexp, [a, b], n=2, backend=backend)
    assert_array_equal(ga, [1.0, 0.0, 0.0, 0.5, 1.0])
    assert_array_equal(gb, [0.0, 1.0, 0.0, 0.5, 0.0])       # torch: nan at (-inf, -inf)
    assert np.isfinite(ha).all() and np.isfinite(hb).all()  # torch: nan at the infinities
    finite = [0, 1, 3, 4]
    _, theirs, _ = torch_derivatives(torch.logaddexp, [a[finite], b[finite]], n=2)
    assert_array_equal(ga[finite], theirs[0])
    assert_array_equal(gb[finite], theirs[1])


@pytest.mark.parametrize("backend", ["numpy", "torch"])     # array-api-strict refuses min > max
def test_clip_with_min_above_max_gives_the_gradient_to_max(backend):
    """Where min > max the output is max (numpy, torch): max gets g, min and x nothing (as torch)."""
    x, lo, hi = np.array([0.0, 5.0, -5.0, 1.5]), np.full(4, 2.0), np.full(4, 1.0)
    _, (gx, glo, ghi), _ = derivatives(lambda x, lo, hi: kn.clip(x, lo, hi), [x, lo, hi], n=3,
                                       backend=backend)
    _, theirs, _ = torch_derivatives(torch.clamp, [x, lo, hi], n=3)
    assert_array_equal(ghi, [1.0, 1.0, 1.0, 1.0])
    for ours, t in zip((gx, glo, ghi), theirs):
        assert_array_equal(ours, t)


def test_clip_with_min_equal_to_max_gives_the_gradient_to_the_bound_crossed():
    """min == max == c: the output is c; below c the min argument gets g, above it the max one.
    torch drops g below c (its min gets it only where min < max)."""
    x, c = np.array([0.0, 1.0, 2.0]), np.ones(3)
    _, (gx, glo, ghi), _ = derivatives(lambda x, lo, hi: kn.clip(x, lo, hi), [x, c, c], n=3)
    assert_array_equal(gx, [0.0, 1.0, 0.0])
    assert_array_equal(glo, [1.0, 0.0, 0.0])
    assert_array_equal(ghi, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_softplus_second_derivative_at_zero_is_a_quarter(backend):
    """softplus' = sigm is recorded as sigm, so softplus''(0) = sigm'(0) = 1/4 (as torch)."""
    _, (g,), (h,) = derivatives(kn.softplus, [np.array([0.0])], backend=backend)
    assert_array_equal(g, [0.5])
    assert_array_equal(h, [0.25])


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_elu_takes_the_exponential_side_at_zero_for_both_derivatives(alpha):
    """elu'(0) = alpha (as torch) and elu''(0) = alpha, from the same side (torch: 0)."""
    _, (g,), (h,) = derivatives(lambda x: kn.elu(x, alpha=alpha), [np.array([0.0])])
    assert_array_equal(g, [alpha])
    assert_array_equal(h, [alpha])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_elu_gradient_keeps_its_digits_for_very_negative_inputs(dtype):
    """alpha * exp(x), not y + alpha, which cancels to rounding noise (or 0 in float32)."""
    x = np.array([-20.0, -30.0, -80.0], dtype=dtype)
    g = kn.grad(lambda x: kn.sum(kn.elu(x, alpha=2.0)))(x)
    assert_allclose(g, 2 * np.exp(x.astype(np.float64)), rtol=1e-14 if dtype == np.float64 else 1e-6)


# --- reductions, sorting, pooling: ties, zeros, constants, infinities --------------------------------

ROWS = np.array([[0, 0, 0], [1, 1, 1], [0, 1, 0], [INF, 1, INF], [-INF, -INF, -INF], [-INF, 0, -INF],
                 [2, 0, 0], [INF, -INF, 0], [1, 2, 3], [3, 3, 1], [-2, 5, -2]], dtype=np.float64)
WEIGHTS3 = np.array([1.0, 2.0, 4.0])

REDUCTIONS = {
    "max": (lambda x: kn.max(x, axis=1), lambda x: torch.amax(x, 1)),
    "min": (lambda x: kn.min(x, axis=1), lambda x: torch.amin(x, 1)),
    "sum": (lambda x: kn.sum(x, axis=1), lambda x: torch.sum(x, 1)),
    "mean": (lambda x: kn.mean(x, axis=1), lambda x: torch.mean(x, 1)),
    "prod": (lambda x: kn.prod(x, axis=1), lambda x: torch.prod(x, 1)),
    "var": (lambda x: kn.var(x, axis=1), lambda x: torch.var(x, 1, correction=0)),
    "std": (lambda x: kn.std(x, axis=1), lambda x: torch.std(x, 1, correction=0)),
    "std correction=1": (lambda x: kn.std(x, axis=1, correction=1.0),
                         lambda x: torch.std(x, 1, correction=1)),
    "logsumexp": (lambda x: kn.logsumexp(x, axis=1), lambda x: torch.logsumexp(x, 1)),
    "cumulative_sum": (lambda x: kn.cumulative_sum(x, axis=1), lambda x: torch.cumsum(x, 1)),
    "cumulative_prod": (lambda x: kn.cumulative_prod(x, axis=1), lambda x: torch.cumprod(x, 1)),
    "sort": (lambda x: kn.sort(x, axis=1), lambda x: torch.sort(x, dim=1, stable=True)[0]),
    "sort descending": (lambda x: kn.sort(x, axis=1, descending=True),
                        lambda x: torch.sort(x, dim=1, descending=True, stable=True)[0]),
    "softmax": (kn.softmax, lambda x: torch.softmax(x, -1)),
    "logsoftmax": (kn.logsoftmax, lambda x: torch.log_softmax(x, -1)),
    "bce": (lambda x: kn.bce(x, np.full(x.shape, 0.25)),
            lambda x: F.binary_cross_entropy_with_logits(x, torch.full(x.shape, 0.25, dtype=x.dtype))),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions_agree_with_torch_at_ties_zeros_constants_and_infinities(name):
    """Row by row (a row's infinities must not leak into the others'), weighted so that ties and
    orderings matter: sort's ties keep their order (stable), max/min ties share g equally."""
    ours_f, torch_f = REDUCTIONS[name]
    for row in ROWS:
        x = row[None, :]
        weights = WEIGHTS3[None, :] if np.ndim(torch_f(torch.tensor(x))) == 2 else None
        ours = derivatives(ours_f, [x], weights=weights)
        theirs = torch_derivatives(torch_f, [x], weights=weights)
        assert_equal_where_torch_is_finite(ours[0], theirs[0], f"{name} {row} value")
        for order in (1, 2):
            assert_equal_where_torch_is_finite(ours[order][0], theirs[order][0],
                                               f"{name} {row} order {order}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_std_of_constant_input_has_zero_gradient(backend):
    """std is a norm of the centred input: like abs'(0) = 0 (and torch), 0 where std == 0, at
    both orders (0 / 0 before)."""
    for f, x in [(kn.std, np.ones(3)), (lambda x: kn.std(x, correction=1.0), np.full(4, -2.0)),
                 (lambda x: kn.std(x, axis=1), np.array([[1.0, 1.0], [1.0, 2.0]]))]:
        _, (g,), (h,) = derivatives(f, [x], backend=backend)
        assert np.isfinite(g).all() and np.isfinite(h).all()
        assert_array_equal(g.ravel()[:2], [0.0, 0.0])
        assert_array_equal(h.ravel()[:2], [0.0, 0.0])
    assert_array_equal(kn.grad(kn.std)(np.ones(3)), [0.0, 0.0, 0.0])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_var_and_std_without_degrees_of_freedom_are_nan_not_an_error(backend):
    """correction == n: the value is nan (0 / 0) and so is the gradient, as torch (no
    ZeroDivisionError from the rule)."""
    x = np.ones(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # numpy and torch warn about the degrees of freedom
        for ours_f, torch_f in [(lambda x: kn.var(x, correction=1.0),
                                 lambda x: torch.var(x, correction=1)),
                                (lambda x: kn.std(x, correction=1.0),
                                 lambda x: torch.std(x, correction=1))]:
            ours = derivatives(ours_f, [x], backend=backend)
            theirs = torch_derivatives(torch_f, [x])
            assert_same(ours[1][0], theirs[1][0], "gradient without degrees of freedom")
            assert np.isnan(ours[1][0]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_logsumexp_gradient_is_zero_in_an_all_minus_infinity_group(backend):
    """An entry of -inf gets 0 (moving it by any finite amount changes nothing), also when its
    whole group is -inf; torch gives nan there. Groups with a finite entry match torch."""
    x = np.array([[-INF, -INF, -INF], [0.0, -INF, 1.0]])
    ours = derivatives(lambda x: kn.logsumexp(x, axis=1), [x], weights=np.array([2.0, 3.0]),
                       backend=backend)
    theirs = torch_derivatives(lambda x: torch.logsumexp(x, 1), [x], weights=np.array([2.0, 3.0]))
    assert_array_equal(ours[0], [-INF, theirs[0][1]])
    assert_array_equal(ours[1][0][0], [0.0, 0.0, 0.0])
    assert_array_equal(ours[2][0][0], [0.0, 0.0, 0.0])
    assert_same(ours[1][0][1], theirs[1][0][1], "gradient of the finite group")
    assert_same(ours[2][0][1], theirs[2][0][1], "second order of the finite group")


def test_sort_ties_keep_the_stable_order_like_torch():
    """Equal elements keep their order (the first one takes the first sorted place), both ways."""
    x = np.array([1.0, 0.0, 1.0, 0.0])
    for descending, expected in [(False, [3.0, 1.0, 4.0, 2.0]), (True, [1.0, 3.0, 2.0, 4.0])]:
        weights = np.array([1.0, 2.0, 3.0, 4.0])
        g = kn.grad(lambda x: kn.sum(kn.sort(x, descending=descending) * weights))(x)
        assert_array_equal(g, expected)
        _, (theirs,), _ = torch_derivatives(
            lambda x: torch.sort(x, descending=descending, stable=True)[0], [x], weights=weights)
        assert_array_equal(g, theirs)


@pytest.mark.parametrize("geometry", [dict(window=2, stride=1), dict(window=3, padding=1, stride=1),
                                      dict(window=2, padding=1)], ids=str)
def test_max_pooling_ties_and_minus_infinity_match_torch(geometry):
    """A window's first maximum (row-major) takes all of g, windows of -inf included."""
    ties = np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [2.0, 2.0, 2.0]]]])
    minus_inf = np.full((1, 1, 3, 3), -INF)
    minus_inf[0, 0, 2, 2] = 1.0
    window, padding, stride = geometry["window"], geometry.get("padding", 0), geometry.get("stride")
    for x in (ties, minus_inf):
        out = kn.pool(x, **geometry)
        weights = np.arange(1.0, 1.0 + out.size).reshape(out.shape)
        ours = derivatives(lambda x: kn.pool(x, **geometry), [x], weights=weights)
        theirs = torch_derivatives(lambda x: F.max_pool2d(x, window, stride, padding), [x],
                                   weights=weights)
        for order in range(3):
            assert_same(ours[order] if order == 0 else ours[order][0],
                        theirs[order] if order == 0 else theirs[order][0], f"max pooling order {order}")


# --- empty arrays -----------------------------------------------------------------------------------

EMPTY = {   # name: (ours, torch), reducing or scanning axis 0 of a (0, 2) or (2, 0) array
    "sum": (lambda x: kn.sum(x, axis=0), lambda x: torch.sum(x, 0)),
    "mean": (lambda x: kn.mean(x, axis=0), lambda x: torch.mean(x, 0)),
    "prod": (lambda x: kn.prod(x, axis=0), lambda x: torch.prod(x, 0)),
    "var": (lambda x: kn.var(x, axis=0), lambda x: torch.var(x, 0, correction=0)),
    "std": (lambda x: kn.std(x, axis=0), lambda x: torch.std(x, 0, correction=0)),
    "logsumexp": (lambda x: kn.logsumexp(x, axis=0), lambda x: torch.logsumexp(x, 0)),
    "cumulative_sum": (lambda x: kn.cumulative_sum(x, axis=0), lambda x: torch.cumsum(x, 0)),
    "cumulative_prod": (lambda x: kn.cumulative_prod(x, axis=0), lambda x: torch.cumprod(x, 0)),
    "sort": (lambda x: kn.sort(x, axis=0), lambda x: torch.sort(x, dim=0, stable=True)[0]),
    "softmax": (lambda x: kn.softmax(x, axis=0), lambda x: torch.softmax(x, 0)),
    "logsoftmax": (lambda x: kn.logsoftmax(x, axis=0), lambda x: torch.log_softmax(x, 0)),
    "matmul": (lambda x: kn.matrix_transpose(x) @ x, lambda x: x.T @ x),
    "index": (lambda x: x[np.array([], dtype=np.int64)],
              lambda x: x[torch.tensor([], dtype=torch.int64)]),
}


@pytest.mark.parametrize("shape", [(0, 2), (2, 0)])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(EMPTY))
def test_empty_axes_match_torch(name, backend, shape):
    """Size-0 axes: the values torch gives (an empty sum is 0, an empty logsumexp -inf, an empty
    mean nan) and empty gradients of the input's shape, at both orders."""
    if backend == "strict" and name == "index":
        pytest.skip("array-api-strict: indexing with an integer array must index every axis")
    ours_f, torch_f = EMPTY[name]
    x = np.zeros(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # numpy: mean of an empty slice
        warnings.simplefilter("ignore", UserWarning)        # torch: var with no degrees of freedom
        ours = derivatives(ours_f, [x], backend=backend)
        theirs = torch_derivatives(torch_f, [x])
    assert_same(ours[0], theirs[0], f"{name} value")
    for order in (1, 2):
        assert_same(ours[order][0], theirs[order][0], f"{name} order {order}")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_conv_and_pooling_with_an_empty_batch_match_torch(backend):
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((2, 3, 2, 2)), np.zeros((0, 3, 4, 4))
    for ours_f, torch_f, args, n in [
            (kn.conv4, lambda w, x: F.conv2d(x, w), [w, x], 2),
            (kn.deconv4, lambda w, x: F.conv_transpose2d(x, w), [w, np.zeros((0, 2, 3, 3))], 2),
            (lambda x: kn.pool(x), lambda x: F.max_pool2d(x, 2), [x], 1),
            (lambda x: kn.pool(x, mode="avg"), lambda x: F.avg_pool2d(x, 2), [x], 1)]:
        ours = derivatives(ours_f, args, n=n, backend=backend)
        theirs = torch_derivatives(torch_f, args, n=n)
        assert_same(ours[0], theirs[0], "value")
        for order in (1, 2):
            for a, b in zip(ours[order], theirs[order]):
                assert_same(a, b, f"order {order}")


# --- numerics at large scores -----------------------------------------------------------------------

SCORES = np.array([[1e4, 1e4 - 1.0, 1e4 - 3.5, -1e4],
                   [-1e4, -1e4 + 2.0, -1e4 + 0.25, -1e4 + 7.0],
                   [0.5, -2.0, 1e4, 3.0],
                   [20.0, -20.0, 40.0, -40.0],
                   [1e4, -1e4, 1e4, 1e4 - 0.125]])
LABELS = np.array([1, 3, 0, 2, 1])
SIGNS = np.sign(SCORES - 1.0)                 # logistic's labels, -1 or +1
SCORES_WEIGHTS = np.random.default_rng(1).standard_normal(SCORES.shape)
ROW_WEIGHTS = SCORES_WEIGHTS[:, 0]

def _like(x, values, dtype=None):
    """``values`` (numpy) on ``x``'s backend, in ``x``'s dtype unless ``dtype`` is given."""
    out = kn.convert(np.asarray(values), kn.backend_of(x).name)
    return kn.astype(out, x.dtype if dtype is None else getattr(kn.backend_of(x).ns, dtype))


LARGE = {   # name: (ours, torch, the weights of the output in the scalar that is differentiated)
    "logsumexp": (lambda x: kn.logsumexp(x, axis=-1), lambda x: torch.logsumexp(x, -1), ROW_WEIGHTS),
    "softmax": (kn.softmax, lambda x: torch.softmax(x, -1), SCORES_WEIGHTS),
    "logsoftmax": (kn.logsoftmax, lambda x: torch.log_softmax(x, -1), SCORES_WEIGHTS),
    "nll": (lambda x: kn.nll(x, _like(x, LABELS, "int64")),
            lambda x: F.cross_entropy(x, torch.tensor(LABELS)), None),
    "sigm": (kn.sigm, torch.sigmoid, SCORES_WEIGHTS),
    # torch's softplus is linear above its threshold (20 by default): 50 keeps 20 and 40 exact
    "softplus": (kn.softplus, lambda x: F.softplus(x, threshold=50.0), SCORES_WEIGHTS),
    "bce 0/1": (lambda x: kn.bce(x, _like(x, SCORES > 0)),
                lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(SCORES > 0, dtype=x.dtype)),
                None),
    "bce 1/0": (lambda x: kn.bce(x, _like(x, SCORES < 0)),
                lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(SCORES < 0, dtype=x.dtype)),
                None),
    "bce 0.3": (lambda x: kn.bce(x, _like(x, np.full(SCORES.shape, 0.3))),
                lambda x: F.binary_cross_entropy_with_logits(x, torch.full_like(x, 0.3)), None),
    "logistic": (lambda x: kn.logistic(x, _like(x, SIGNS)),
                 lambda x: F.softplus(-torch.tensor(SIGNS) * x, threshold=50.0).mean(), None),
}
# elementwise to within a few float32 roundings (1e-5; before the fixes softmax's gradient was off
# by 1e-3 in float32 at 1e4), relative to the largest entry below 1e-6 of it
TOLERANCE = {np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-13)}


def _close(ours, reference, dtype, what):
    rtol, atol = TOLERANCE[dtype]
    assert np.isfinite(ours).all(), f"{what}: not finite: {ours}"
    assert_allclose(ours, reference, rtol=rtol, atol=atol * np.max(np.abs(reference)), err_msg=what)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(LARGE))
def test_large_scores_stay_finite_and_accurate(name, dtype, backend):
    """Values and gradients at scores up to +-1e4, against torch in float64 on the same inputs
    (for nll, softmax and logsoftmax: also more accurate than torch's own float32 gradient)."""
    ours_f, torch_f, weights = LARGE[name]
    x = SCORES.astype(dtype)
    w = kn.convert(np.asarray(1.0 if weights is None else weights, dtype=dtype), backend)
    value = kn.convert(ours_f(kn.convert(x, backend)), "numpy")
    grad = kn.convert(kn.grad(lambda x: kn.sum(ours_f(x) * w))(kn.convert(x, backend)), "numpy")
    assert value.dtype == grad.dtype == dtype
    reference, (reference_grad,), _ = torch_derivatives(torch_f, [x.astype(np.float64)], weights=weights)
    _close(value, reference, dtype, f"{name} value")
    _close(grad, reference_grad, dtype, f"{name} gradient")


@pytest.mark.parametrize("name", list(LARGE))
def test_large_scores_second_order_matches_torch(name):
    """Hessian-vector products at scores up to +-1e4 in float64, finite in float32."""
    ours_f, torch_f, weights = LARGE[name]
    direction = [np.random.default_rng(2).standard_normal(SCORES.shape)]
    _, _, (ours,) = derivatives(ours_f, [SCORES], weights=weights, direction=direction)
    _, _, (theirs,) = torch_derivatives(torch_f, [SCORES], weights=weights, direction=direction)
    assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12 * np.max(np.abs(theirs)), err_msg=name)
    _, _, (ours32,) = derivatives(ours_f, [SCORES.astype(np.float32)], weights=weights,
                                  direction=direction)
    assert ours32.dtype == np.float32 and np.isfinite(ours32).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_bce_of_a_confident_right_answer_keeps_its_digits(dtype):
    """bce(20, 1) = log(1 + exp(-20)) ~ 2.06e-9, not softplus(20) - 20 (0 in float32), and its
    gradient sigm(20) - 1 = -sigm(-20), as torch's binary_cross_entropy_with_logits."""
    x, y = np.array([20.0, -30.0], dtype=dtype), np.array([1.0, 0.0], dtype=dtype)
    expected = np.log1p(np.exp(-np.array([20.0, 30.0])))
    assert_allclose(kn.convert(kn.bce(x[:1], y[:1]), "numpy"), expected[:1], rtol=1e-6)
    assert_allclose(kn.bce(x, y), expected.mean(), rtol=1e-6)
    assert_allclose(kn.grad(lambda x: kn.bce(x, y))(x), [-expected[0] / 2, expected[1] / 2], rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_logsumexp_of_an_all_minus_infinity_row_is_minus_infinity(dtype, backend):
    """-inf (torch's value), without a warning, for every way of reducing."""
    x = kn.convert(np.array([[-INF, -INF], [0.0, -INF]], dtype=dtype), backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_array_equal(kn.convert(kn.logsumexp(x, axis=1), "numpy"), [-INF, 0.0])
        assert_array_equal(kn.convert(kn.logsumexp(x, axis=1, keepdims=True), "numpy"), [[-INF], [0.0]])
        assert_array_equal(kn.convert(kn.logsumexp(x[:1, :]), "numpy"), -INF)
        assert_array_equal(kn.convert(kn.logsumexp(x, axis=0), "numpy"), [0.0, -INF])


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_and_logsoftmax_of_an_all_minus_infinity_row_are_nan_like_torch(backend):
    """A row with no finite score has no distribution: nan, as torch (other rows unaffected)."""
    x = np.array([[-INF, -INF, -INF], [0.0, -INF, 1.0]])
    for ours_f, torch_f in [(kn.softmax, torch.softmax), (kn.logsoftmax, torch.log_softmax)]:
        ours = kn.convert(ours_f(kn.convert(x, backend)), "numpy")
        theirs = torch_f(torch.tensor(x), -1).numpy()
        assert np.isnan(ours[0]).all()
        assert_same(ours, theirs, ours_f.__name__)


@pytest.mark.parametrize("name", ["softmax", "logsoftmax", "logsumexp", "nll"])
def test_masked_scores_give_finite_gradients_like_torch(name):
    """-inf entries (masked scores) in rows with a finite one: probability 0, finite gradients at
    both orders, equal to torch's."""
    x = np.array([[0.0, -INF, 1.0], [-INF, -INF, 2.0], [3.0, 1.0, -1.0]])
    ours_f, torch_f = {
        "softmax": (kn.softmax, lambda x: torch.softmax(x, -1)),
        "logsoftmax": (lambda x: kn.logsoftmax(x)[:, ::2], lambda x: torch.log_softmax(x, -1)[:, ::2]),
        "logsumexp": (lambda x: kn.logsumexp(x, axis=-1), lambda x: torch.logsumexp(x, -1)),
        "nll": (lambda x: kn.nll(x, np.array([0, 2, 1])),
                lambda x: F.cross_entropy(x, torch.tensor([0, 2, 1]))),
    }[name]
    out = torch_f(torch.tensor(x))
    weights = np.arange(1.0, 1.0 + out.numel()).reshape(tuple(out.shape)) if out.ndim else None
    ours = derivatives(ours_f, [x], weights=weights)
    theirs = torch_derivatives(torch_f, [x], weights=weights)
    assert_same(ours[0], theirs[0], f"{name} value")
    for order in (1, 2):
        assert np.isfinite(ours[order][0]).all()
        assert_same(ours[order][0], theirs[order][0], f"{name} order {order}")
