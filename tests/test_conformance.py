"""Conformance of traced values with the Array API standard, through knetapi.testing.traced_namespace.

Arrays are drawn with ``hypothesis.extra.array_api.make_strategies_namespace(traced_namespace(xp))``,
so they are traced values. Every standard function, operator, method and attribute is called on
them and, the same way, on their raw arrays with ``xp`` itself: the results must be traced values
(on the namespace's trace) with the same dtype, shape and values (NaNs equal), or both calls must
raise the same exception type. Inputs of sums over several elements (matmul, tensordot, vecdot) are
small integers, so any summation order gives the same floats and equality stays exact.

Where traced values deliberately differ from the standard, the tests at the end say so.
"""

from __future__ import annotations

import contextlib
import warnings

import array_api_compat
import array_api_compat.numpy as compat_numpy
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.array_api import make_strategies_namespace

import knetapi as kn
from knetapi import registry
from knetapi.testing.conformance import TracedNamespace
from knetapi.namespace import STANDARD_FUNCTIONS
from knetapi.testing import traced_namespace
from knetapi.traced import Traced, strip

try:
    import array_api_strict
except ImportError:     # an optional dependency: the numpy half still runs
    array_api_strict = None

BACKENDS = [
    pytest.param(compat_numpy, id="numpy"),
    pytest.param(array_api_strict, id="strict", marks=pytest.mark.skipif(
        array_api_strict is None, reason="array-api-strict is not installed")),
]

SHAPES = dict(min_dims=0, max_dims=3, min_side=0, max_side=4)


@contextlib.contextmanager
def quiet():
    """Silence numpy's floating-point warnings (log of negatives, 0/0): NaNs are compared instead."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def raw(v):
    """``v`` with traced values replaced by their raw arrays, inside lists and tuples too."""
    if type(v) is Traced:
        return strip(v)
    if isinstance(v, (list, tuple)):
        return type(v)(raw(e) for e in v)
    return v


class Harness:
    """One hypothesis example on one backend: draws traced arrays and compares calls with ``xp``."""

    def __init__(self, xp, data, called: set):
        self.xp = xp
        self.txp = traced_namespace(xp)
        self.xps = make_strategies_namespace(self.txp)
        self.data = data
        self.called = called

    def draw(self, strategy):
        return self.data.draw(strategy)

    def array(self, dtype=None, shape=None, **kwargs) -> Traced:
        """A traced array: floating dtypes and shapes of up to 3 dims of up to 4 by default."""
        dtype = self.xps.floating_dtypes() if dtype is None else dtype
        shape = self.xps.array_shapes(**SHAPES) if shape is None else shape
        return self.draw(self.xps.arrays(dtype, shape, **kwargs))

    def small_integers(self, dtype, shape) -> Traced:
        """A traced float array of small integers: sums of products of them are exact."""
        return self.array(dtype, shape, elements=st.integers(-4, 4).map(float))

    def axis(self, ndim: int, tuples: bool = True):
        """None, an axis in ``[-ndim, ndim)`` or (with ``tuples``) a tuple of distinct axes."""
        options = [st.none()]
        if ndim:
            options.append(st.integers(-ndim, ndim - 1))
        if tuples:
            options.append(self.xps.valid_tuple_axes(ndim))
        return self.draw(st.one_of(options))

    def call(self, name: str, *args, **kwargs) -> None:
        """Compare the standard function ``name`` on traced arguments with ``xp``'s on raw ones."""
        self.called.add(name)
        self.check(lambda ns, *a, **k: getattr(ns, name)(*a, **k), *args, **kwargs)

    def check(self, f, *args, values: bool = True, **kwargs) -> None:
        """``f(txp, *args, **kwargs)`` must be ``f(xp, *raw args, **raw kwargs)`` in traced values
        (with ``values=False`` only dtypes and shapes are compared: ``empty``), or raise alike."""
        raw_kwargs = {k: raw(v) for k, v in kwargs.items()}
        with quiet():
            try:
                want = f(self.xp, *raw(args), **raw_kwargs)
            except Exception as e:
                with pytest.raises(type(e)):
                    f(self.txp, *args, **kwargs)
                return
            got = f(self.txp, *args, **kwargs)
        self.same(got, want, values)

    def same(self, got, want, values: bool = True) -> None:
        if registry.owner(type(want)) is not None:
            assert type(got) is Traced and got._trace is self.txp.trace, (
                f"expected a traced value of the namespace, got {registry.describe(got)}")
            value = got._value
            assert registry.owner(type(value)) is registry.owner(type(want))
            assert value.dtype == want.dtype, (value.dtype, want.dtype)
            assert tuple(value.shape) == tuple(want.shape), (value.shape, want.shape)
            if values:
                np.testing.assert_array_equal(np.asarray(value), np.asarray(want), strict=True)
        elif isinstance(want, (list, tuple)):
            assert isinstance(got, (list, tuple)) and len(got) == len(want), (got, want)
            assert getattr(type(got), "_fields", None) == getattr(type(want), "_fields", None)
            for g, w in zip(got, want):
                self.same(g, w, values)
        elif isinstance(want, (float, complex)) and want != want:     # NaN
            assert type(got) is type(want) and got != got, (got, want)
        elif hasattr(want, "bits"):                     # finfo and iinfo objects
            for field in ("bits", "eps", "max", "min", "smallest_normal", "dtype"):
                assert getattr(got, field, None) == getattr(want, field, None), field
        else:
            assert type(got) is type(want) and got == want, (got, want)


# --- the standard functions, in groups sharing their inputs ------------------------------------

GROUPS: dict = {}


def group(*names: str):
    """Register a test body exercising the standard functions ``names`` (each must be called)."""
    def register(body):
        GROUPS[body.__name__] = (names, body)
        return body
    return register


UNARY_FLOAT = ("abs acos acosh asin asinh atan atanh ceil cos cosh exp expm1 floor isfinite isinf "
               "isnan log log10 log1p log2 negative positive reciprocal round sign signbit sin sinh "
               "sqrt square tan tanh trunc").split()
UNARY_INTEGER = "abs negative positive square sign ceil floor round trunc isfinite bitwise_invert".split()
BINARY_FLOAT = ("add atan2 copysign divide equal floor_divide greater greater_equal hypot less "
                "less_equal logaddexp maximum minimum multiply nextafter not_equal pow remainder "
                "subtract").split()
BINARY_INTEGER = ("add subtract multiply floor_divide remainder pow maximum minimum equal not_equal "
                  "less less_equal greater greater_equal bitwise_and bitwise_or bitwise_xor "
                  "bitwise_left_shift bitwise_right_shift").split()
BINARY_BOOLEAN = ("logical_and logical_or logical_xor bitwise_and bitwise_or bitwise_xor equal "
                  "not_equal").split()


@group(*UNARY_FLOAT)
def unary_float(h):
    x = h.array()
    for name in UNARY_FLOAT:
        h.call(name, x)


@group(*UNARY_INTEGER, "logical_not")
def unary_integer_and_boolean(h):
    x = h.array(h.xps.integer_dtypes() | h.xps.unsigned_integer_dtypes())
    for name in UNARY_INTEGER:
        h.call(name, x)
    b = h.array(h.xps.boolean_dtypes())
    h.call("logical_not", b)
    h.call("bitwise_invert", b)


@group(*BINARY_FLOAT)
def binary_float(h):
    dtype = h.draw(h.xps.floating_dtypes())
    shapes = h.draw(h.xps.mutually_broadcastable_shapes(2, max_dims=3, max_side=3)).input_shapes
    x, y = h.array(dtype, shapes[0]), h.array(dtype, shapes[1])
    scalar = h.draw(st.sampled_from([2.5, -1.0, 0.0, 3]))
    for name in BINARY_FLOAT:
        h.call(name, x, y)
        h.call(name, x, scalar)
        h.call(name, scalar, y)


@group(*BINARY_INTEGER)
def binary_integer(h):
    dtype = h.draw(h.xps.integer_dtypes() | h.xps.unsigned_integer_dtypes())
    shapes = h.draw(h.xps.mutually_broadcastable_shapes(2, max_dims=3, max_side=3)).input_shapes
    x = h.array(dtype, shapes[0])
    small = h.array(dtype, shapes[1], elements=st.integers(0, 7))   # shift counts, exponents
    for name in BINARY_INTEGER:
        h.call(name, x, small)
        h.call(name, x, 2)
    h.call("divide", x, small)


@group(*BINARY_BOOLEAN)
def binary_boolean(h):
    shapes = h.draw(h.xps.mutually_broadcastable_shapes(2, max_dims=3, max_side=3)).input_shapes
    x, y = h.array(h.xps.boolean_dtypes(), shapes[0]), h.array(h.xps.boolean_dtypes(), shapes[1])
    for name in BINARY_BOOLEAN:
        h.call(name, x, y)
        h.call(name, x, True)


@group("sum", "prod", "mean", "std", "var", "max", "min", "all", "any", "count_nonzero")
def reductions(h):
    x = h.array()
    axis = h.axis(x.ndim)
    keepdims = h.draw(st.booleans())
    for name in ("sum", "prod", "mean", "max", "min", "all", "any", "count_nonzero"):
        h.call(name, x, axis=axis, keepdims=keepdims)
    for name in ("std", "var"):
        h.call(name, x, axis=axis, keepdims=keepdims, correction=h.draw(st.sampled_from([0, 1, 0.5])))
    h.call("sum", x, dtype=h.xp.float64)
    i = h.array(h.xps.integer_dtypes(), elements=st.integers(-3, 3))
    h.call("sum", i, axis=axis)
    h.call("prod", i, axis=axis, keepdims=keepdims)
    h.call("max", i, axis=axis)


@group("argmax", "argmin", "cumulative_sum", "cumulative_prod")
def indexed_reductions(h):
    x = h.array(h.xps.real_dtypes())
    axis = h.axis(x.ndim, tuples=False)
    keepdims = h.draw(st.booleans())
    h.call("argmax", x, axis=axis, keepdims=keepdims)
    h.call("argmin", x, axis=axis, keepdims=keepdims)
    initial = h.draw(st.booleans())
    h.call("cumulative_sum", x, axis=axis, include_initial=initial)
    h.call("cumulative_prod", x, axis=axis, include_initial=initial)
    h.call("cumulative_sum", x, axis=axis, dtype=h.xp.float64)


@group("sort", "argsort", "searchsorted", "nonzero", "where", "isin",
       "unique_all", "unique_counts", "unique_inverse", "unique_values")
def sorting_searching_and_sets(h):
    x = h.array(h.xps.real_dtypes(), h.xps.array_shapes(min_dims=1, max_dims=3, max_side=4))
    axis = h.draw(st.integers(-x.ndim, x.ndim - 1))
    descending = h.draw(st.booleans())
    h.call("sort", x, axis=axis, descending=descending)
    h.call("argsort", x, axis=axis, descending=descending)
    table = h.txp.sort(h.array(x.dtype, h.xps.array_shapes(min_dims=1, max_dims=1)))
    h.call("searchsorted", table, x, side=h.draw(st.sampled_from(["left", "right"])))
    h.call("nonzero", x)
    shapes = h.draw(h.xps.mutually_broadcastable_shapes(3, max_dims=3, max_side=3)).input_shapes
    cond = h.array(h.xps.boolean_dtypes(), shapes[0])
    h.call("where", cond, h.array(x.dtype, shapes[1]), h.array(x.dtype, shapes[2]))
    h.call("where", cond, h.array(x.dtype, shapes[1]), 0)
    h.call("where", cond, 1, h.array(x.dtype, shapes[2]))
    h.call("isin", x, h.array(x.dtype), invert=h.draw(st.booleans()))
    for name in ("unique_all", "unique_counts", "unique_inverse", "unique_values"):
        h.call(name, x)


@group("reshape", "permute_dims", "expand_dims", "squeeze", "flip", "roll", "moveaxis",
       "matrix_transpose", "broadcast_to", "broadcast_arrays", "tril", "triu", "clip", "unstack")
def shapes_and_axes(h):
    x = h.array()
    n = x.ndim
    h.call("reshape", x, (-1,))
    h.call("reshape", x, tuple(reversed(x.shape)), copy=h.draw(st.sampled_from([None, True])))
    h.call("permute_dims", x, tuple(h.draw(st.permutations(range(n)))))
    h.call("expand_dims", x, axis=h.draw(st.integers(-n - 1, n)))
    h.call("expand_dims", x, axis=(0, -1))
    h.call("squeeze", x, axis=tuple(i for i, s in enumerate(x.shape) if s == 1))
    h.call("squeeze", x, axis=h.axis(n, tuples=False) or 0)
    h.call("flip", x, axis=h.axis(n))
    h.call("roll", x, h.draw(st.integers(-5, 5)), axis=h.axis(n, tuples=False))
    if n:
        h.call("moveaxis", x, h.draw(st.integers(-n, n - 1)), h.draw(st.integers(-n, n - 1)))
        source = tuple(h.draw(st.permutations(range(n))))[:h.draw(st.integers(1, n))]
        h.call("moveaxis", x, source, tuple(reversed(range(-len(source), 0))))
        h.call("unstack", x, axis=h.draw(st.integers(-n, n - 1)))
    h.call("matrix_transpose", x)
    h.call("tril", x, k=h.draw(st.integers(-2, 2)))
    h.call("triu", x, k=h.draw(st.integers(-2, 2)))
    shapes, result = h.draw(h.xps.mutually_broadcastable_shapes(2, max_dims=3, max_side=3))
    y, z = h.array(x.dtype, shapes[0]), h.array(x.dtype, shapes[1])
    h.call("broadcast_to", y, result)
    h.call("broadcast_arrays", y, z)
    h.call("clip", y, min=-1.0, max=1.0)
    h.call("clip", y, min=z)
    h.call("clip", y, max=0.5)
    h.call("clip", y)


@group("concat", "stack", "tile", "repeat", "diff", "take", "take_along_axis")
def joining_and_gathering(h):
    x = h.array(shape=h.xps.array_shapes(min_dims=1, max_dims=3, max_side=3))
    n = x.ndim
    axis = h.draw(st.integers(-n, n - 1))
    other = list(x.shape)
    other[axis] = h.draw(st.integers(0, 3))
    y = h.array(x.dtype, tuple(other))
    h.call("concat", [x, y], axis=axis)
    h.call("concat", (x, y), axis=None)
    h.call("stack", [x, x], axis=h.draw(st.integers(-n - 1, n)))
    h.call("tile", x, tuple(h.draw(st.lists(st.integers(0, 2), max_size=4))))
    h.call("repeat", x, h.draw(st.integers(0, 2)), axis=h.draw(st.none() | st.just(axis)))
    counts = h.array(h.txp.int64, (x.shape[axis],), elements=st.integers(0, 2))
    h.call("repeat", x, counts, axis=axis)
    h.call("diff", x, axis=axis, n=h.draw(st.integers(1, 2)))
    h.call("diff", x, axis=axis, prepend=y, append=y)
    size = x.shape[axis]
    if size:
        index = h.array(h.txp.int64, h.xps.array_shapes(min_dims=1, max_dims=1, max_side=5),
                        elements=st.integers(-size, size - 1))
        h.call("take", x, index, axis=axis)
        if n == 1:
            h.call("take", x, index)
        along = list(x.shape)
        along[axis] = h.draw(st.integers(0, 4))
        h.call("take_along_axis", x, h.array(h.txp.int64, tuple(along),
                                             elements=st.integers(-size, size - 1)), axis=axis)
    else:
        h.call("take", x, h.txp.zeros((0,), dtype=h.txp.int64), axis=axis)
        h.call("take_along_axis", x, h.txp.zeros(x.shape, dtype=h.txp.int64), axis=axis)


@group("matmul", "tensordot", "vecdot")
def linear_algebra(h):
    dtype = h.draw(h.xps.floating_dtypes())
    m, k, p = (h.draw(st.integers(1, 3)) for _ in range(3))
    batch = h.draw(h.xps.mutually_broadcastable_shapes(2, max_dims=2, max_side=2)).input_shapes
    a = h.small_integers(dtype, batch[0] + (m, k))
    b = h.small_integers(dtype, batch[1] + (k, p))
    h.call("matmul", a, b)
    h.call("matmul", a, h.small_integers(dtype, (k,)))
    h.call("matmul", h.small_integers(dtype, (m,)), b)
    h.call("tensordot", a, b, axes=1)
    h.call("tensordot", a, h.small_integers(dtype, (m, k)), axes=([-2, -1], [0, 1]))
    h.call("tensordot", a, b, axes=0)
    h.call("vecdot", a, h.small_integers(dtype, (k,)))
    h.call("vecdot", a, h.small_integers(dtype, (m, 1)), axis=-2)


@group("arange", "asarray", "empty", "empty_like", "eye", "from_dlpack", "full", "full_like",
       "linspace", "meshgrid", "ones", "ones_like", "zeros", "zeros_like")
def creation(h):
    dtype = h.draw(h.xps.real_dtypes())
    shape = h.draw(h.xps.array_shapes(**SHAPES))
    for name in ("zeros", "ones"):
        h.call(name, shape, dtype=dtype)
    h.call("empty", shape, dtype=dtype, values=False)
    h.call("full", shape, 3, dtype=h.draw(h.xps.numeric_dtypes()))
    h.call("full", shape, 1.5)
    h.call("eye", h.draw(st.integers(0, 4)), h.draw(st.integers(0, 4)), k=h.draw(st.integers(-2, 2)))
    start, stop = h.draw(st.integers(-5, 5)), h.draw(st.integers(-5, 5))
    h.call("arange", stop)
    h.call("arange", start, stop, h.draw(st.sampled_from([1, 2, -1])))
    h.call("arange", float(start), stop, 0.5)
    h.call("arange", start, stop, dtype=h.draw(h.xps.real_dtypes()))
    h.call("linspace", start, stop, h.draw(st.integers(0, 5)), endpoint=h.draw(st.booleans()))
    h.call("linspace", start, stop, 4, dtype=h.draw(h.xps.floating_dtypes()))
    x = h.array(dtype)
    for name in ("zeros_like", "ones_like"):
        h.call(name, x)
        h.call(name, x, dtype=h.xp.float32)
    h.call("empty_like", x, values=False)
    h.call("full_like", x, 1)
    h.call("from_dlpack", x)
    h.call("asarray", x)
    h.call("asarray", x, dtype=h.xp.float64)
    h.call("asarray", x, copy=True)
    h.call("asarray", [[1.0, 2.0], [3.0, 4.0]], dtype=h.draw(h.xps.floating_dtypes()))
    h.call("asarray", h.draw(st.integers(-3, 3) | st.booleans() | st.floats(-3, 3)))
    vectors = [h.array(dtype, (h.draw(st.integers(0, 3)),)) for _ in range(h.draw(st.integers(1, 3)))]
    h.call("meshgrid", *vectors, indexing=h.draw(st.sampled_from(["xy", "ij"])))


@group("astype", "broadcast_shapes", "can_cast", "finfo", "iinfo", "isdtype", "result_type")
def dtypes(h):
    x = h.array(h.xps.real_dtypes())
    to = h.draw(h.xps.real_dtypes())
    h.call("astype", x, to)
    h.call("astype", x, to, copy=False)
    h.call("can_cast", x.dtype, to)
    h.call("can_cast", x, to)
    h.call("result_type", x.dtype, to)
    h.call("result_type", x, h.array(to))
    h.call("result_type", x, 1)
    for kind in ("bool", "signed integer", "unsigned integer", "integral", "real floating",
                 "complex floating", "numeric", ("integral", "real floating")):
        h.call("isdtype", x.dtype, kind)
    floating = h.draw(h.xps.floating_dtypes())
    h.call("finfo", floating)
    h.call("finfo", h.array(floating))
    integer = h.draw(h.xps.integer_dtypes() | h.xps.unsigned_integer_dtypes())
    h.call("iinfo", integer)
    h.call("iinfo", h.array(integer))
    shapes = h.draw(h.xps.mutually_broadcastable_shapes(3, max_dims=3, max_side=3)).input_shapes
    h.call("broadcast_shapes", *shapes)


REFUSED = ("conj", "real", "imag")   # no derivative rule yet: see test_complex_parts_refuse_traced_values


@pytest.mark.parametrize("group_name", sorted(GROUPS))
@pytest.mark.parametrize("xp", BACKENDS)
def test_standard_functions(xp, group_name):
    names, body = GROUPS[group_name]
    called: set = set()

    @given(data=st.data())
    def run(data):
        body(Harness(xp, data, called))

    run()
    assert set(names) <= called, f"declared but never called: {sorted(set(names) - called)}"


def test_every_standard_function_is_exercised():
    covered = set(REFUSED).union(*(names for names, _ in GROUPS.values()))
    assert sorted(set(STANDARD_FUNCTIONS) - covered) == []
    assert sorted(covered - set(STANDARD_FUNCTIONS)) == []


# --- operators, methods and attributes -------------------------------------------------------

ARITHMETIC = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "//": lambda a, b: a // b, "%": lambda a, b: a % b,
    "**": lambda a, b: a ** b,
}
COMPARISONS = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
BITWISE = {
    "&": lambda a, b: a & b, "|": lambda a, b: a | b, "^": lambda a, b: a ^ b,
    "<<": lambda a, b: a << b, ">>": lambda a, b: a >> b,
}
UNARY = {"-": lambda a: -a, "+": lambda a: +a, "abs": abs, "~": lambda a: ~a}


def given_harness(test):
    """Run ``test(h)`` as a hypothesis test on each backend."""
    @pytest.mark.parametrize("xp", BACKENDS)
    def wrapper(xp):
        given(data=st.data())(lambda data: test(Harness(xp, data, set())))()
    wrapper.__name__ = test.__name__
    wrapper.__doc__ = test.__doc__
    return wrapper


def _check_operators(h, x, y, scalar, table):
    for op in table.values():
        h.check(lambda ns, a, b: op(a, b), x, y)
        h.check(lambda ns, a: op(a, scalar), x)
        h.check(lambda ns, b: op(scalar, b), y)      # reflected: the Python scalar on the left


@given_harness
def test_operators_on_real_arrays(h):
    dtype = h.draw(h.xps.real_dtypes())
    shapes = h.draw(h.xps.mutually_broadcastable_shapes(2, max_dims=3, max_side=3)).input_shapes
    integral = h.txp.isdtype(dtype, "integral")
    x = h.array(dtype, shapes[0])
    y = h.array(dtype, shapes[1], elements=st.integers(0, 5)) if integral else h.array(dtype, shapes[1])
    scalar = h.draw(st.sampled_from([2, 0, -1] if integral else [2.5, 0.0, -1.0, 2]))
    _check_operators(h, x, y, scalar, ARITHMETIC)
    _check_operators(h, x, y, scalar, COMPARISONS)
    if integral:    # shifting by a negative amount is unspecified
        _check_operators(h, x, y, abs(scalar), BITWISE)
    for op in UNARY.values():
        h.check(lambda ns, a: op(a), x)


@given_harness
def test_operators_on_boolean_arrays(h):
    shapes = h.draw(h.xps.mutually_broadcastable_shapes(2, max_dims=3, max_side=3)).input_shapes
    x, y = (h.array(h.xps.boolean_dtypes(), s) for s in shapes)
    logical = {op: table[op] for table, ops in ((BITWISE, "&|^"), (COMPARISONS, ("==", "!=")))
               for op in ops}
    _check_operators(h, x, y, h.draw(st.booleans()), logical)
    h.check(lambda ns, a: ~a, x)


@given_harness
def test_operators_mixing_traced_and_raw_arrays(h):
    """A raw array of the backend on the right; on the left too for numpy (it defers through
    ``__array_ufunc__ = None``); array-api-strict's arrays raise TypeError for any other operand."""
    shapes = h.draw(h.xps.mutually_broadcastable_shapes(2, max_dims=3, max_side=3)).input_shapes
    x, y = h.array(shape=shapes[0]), h.array(shape=shapes[1])
    other = strip(y)
    for op in (*ARITHMETIC.values(), *COMPARISONS.values()):
        h.check(lambda ns, a: op(a, other), x)
        if h.xp is compat_numpy:
            h.check(lambda ns, a: op(other, a), x)
    if h.xp is array_api_strict:
        with pytest.raises(TypeError, match="Expected Array or Python scalar"):
            other + x


@given_harness
def test_matmul_operator(h):
    dtype = h.draw(h.xps.floating_dtypes())
    m, k, p = (h.draw(st.integers(1, 3)) for _ in range(3))
    a, b = h.small_integers(dtype, (m, k)), h.small_integers(dtype, (2, k, p))
    h.check(lambda ns, a, b: a @ b, a, b)
    h.check(lambda ns, a, b: b.mT @ a.mT, a, b)
    raw_a, raw_b = strip(a), strip(b)
    h.check(lambda ns, a: a @ raw_b, a)
    if h.xp is compat_numpy:    # a raw numpy array on the left defers to the traced value
        h.check(lambda ns, b: raw_a @ b, b)


@given_harness
def test_in_place_operators_rebind(h):
    """``x += y`` on a traced value makes a new traced value and leaves the old one unchanged."""
    x = h.array()
    before = np.asarray(strip(x)).copy()
    y = x
    y += 1.0
    assert type(y) is Traced and y is not x
    np.testing.assert_array_equal(np.asarray(strip(x)), before)


@given_harness
def test_attributes(h):
    x = h.array(h.xps.real_dtypes() | h.xps.boolean_dtypes())
    r = strip(x)
    assert x.shape == tuple(r.shape) and isinstance(x.shape, tuple)
    assert x.dtype == r.dtype and x.ndim == r.ndim and x.size == r.size
    assert x.device == r.device
    assert x.__array_namespace__() is h.txp
    assert x.__array_namespace__(api_version="2025.12") is h.txp
    assert array_api_compat.array_namespace(x) is h.txp
    assert (x == x).__array_namespace__() is h.txp
    h.check(lambda ns, a: a.mT, x)
    h.check(lambda ns, a: a.to_device(a.device), x)
    if x.ndim == 2:
        h.check(lambda ns, a: a.T, x)
    if x.ndim:
        assert len(x) == x.shape[0]
        items = list(x)
        assert all(type(e) is Traced for e in items)
        h.same(items, [r[i, ...] for i in range(r.shape[0])])


@given_harness
def test_conversions_of_0d_arrays(h):
    x = h.array(h.xps.real_dtypes() | h.xps.boolean_dtypes(), ())
    for convert in (bool, int, float, complex, lambda a: a.__index__()):
        h.check(lambda ns, a: convert(a), x)


@given_harness
def test_basic_indexing(h):
    x = h.array(shape=h.xps.array_shapes(min_dims=1, max_dims=3, max_side=4))
    key = h.draw(h.xps.indices(x.shape, allow_newaxis=True))
    h.check(lambda ns, a: a[key], x)
    step = h.draw(st.integers(-3, -1))
    h.check(lambda ns, a: a[::step], x)
    h.check(lambda ns, a: a[..., ::step], x)
    h.check(lambda ns, a: a[None, ..., 0], x)


@given_harness
def test_array_indexing(h):
    x = h.array(shape=h.xps.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    ints = [h.array(h.txp.int64, h.xps.array_shapes(min_dims=0, max_dims=2, max_side=3),
                    elements=st.integers(-n, n - 1)) for n in x.shape[:1]]
    h.check(lambda ns, a, i: a[i], x, ints[0])
    if x.ndim >= 2:
        j = h.array(h.txp.int64, (), elements=st.integers(-x.shape[1], x.shape[1] - 1))
        h.check(lambda ns, a, i, j: a[i, j], x, ints[0], j)
    mask = h.array(h.xps.boolean_dtypes(), x.shape)
    h.check(lambda ns, a, m: a[m], x, mask)
    h.check(lambda ns, a, m: a[m[0, ...]], x, mask)


# --- where traced values deliberately differ from the standard -------------------------------

@pytest.mark.parametrize("xp", BACKENDS)
def test_traced_arrays_are_immutable(xp):
    txp = traced_namespace(xp)
    x = txp.zeros((3,))
    with pytest.raises(TypeError, match="immutable"):
        x[0] = 1.0
    with pytest.raises(TypeError):
        hash(x)


@pytest.mark.parametrize("xp", BACKENDS)
def test_export_is_refused(xp):
    txp = traced_namespace(xp)
    x = txp.ones((2,))
    with pytest.raises(TypeError, match="DLPack"):
        x.__dlpack__()
    assert x.__dlpack_device__() == strip(x).__dlpack_device__()
    with pytest.raises(TypeError, match="numpy array"):
        np.asarray(x)


@pytest.mark.parametrize("xp", BACKENDS)
def test_transpose_needs_2d_and_len_needs_1d(xp):
    txp = traced_namespace(xp)
    with pytest.raises(ValueError, match="2-D"):
        txp.zeros((2, 3, 4)).T
    with pytest.raises(TypeError, match="0-d"):
        len(txp.asarray(1.0))
    with pytest.raises(TypeError, match="0-d"):
        iter(txp.asarray(1.0)).__next__()


def test_moving_between_devices_is_refused():
    if array_api_strict is None:
        pytest.skip("array-api-strict is not installed")
    txp = traced_namespace(array_api_strict)
    x = txp.ones((2,))
    with pytest.raises(NotImplementedError, match="between devices"):
        x.to_device(array_api_strict.Device("device1"))


@pytest.mark.parametrize("name", REFUSED)
@pytest.mark.parametrize("xp", BACKENDS)
def test_complex_parts_refuse_traced_values(xp, name):
    txp = traced_namespace(xp)
    with pytest.raises(NotImplementedError, match="no derivative rule"):
        getattr(txp, name)(txp.asarray([1.0 + 2.0j], dtype=txp.complex128))
    raw_value = xp.asarray([1.0 + 2.0j])
    np.testing.assert_array_equal(np.asarray(getattr(kn, name)(raw_value)),
                                  np.asarray(getattr(xp, name)(raw_value)))


# --- the namespace itself ----------------------------------------------------------------------

@pytest.mark.parametrize("xp", BACKENDS)
def test_traced_namespace_is_an_array_api_namespace(xp):
    txp = traced_namespace(xp)
    assert traced_namespace(xp) is txp
    assert txp.__name__ == f"knetapi.traced.{xp.__name__}"
    assert txp.__array_api_version__ == xp.__array_api_version__
    assert txp.__array_namespace_info__().default_dtypes() == xp.__array_namespace_info__().default_dtypes()
    for name in ("float32", "float64", "int8", "uint64", "bool", "complex128", "e", "pi", "inf", "nan",
                 "newaxis"):
        assert getattr(txp, name) is getattr(xp, name)
    assert all(callable(getattr(txp, name)) for name in STANDARD_FUNCTIONS)


def test_traced_namespace_over_numpy_itself():
    txp = traced_namespace(np)
    x = txp.linspace(0.0, 1.0, 5)
    assert type(x) is Traced and x.__array_namespace__() is txp
    np.testing.assert_array_equal(strip(txp.exp(x) > 1.5), np.exp(np.linspace(0.0, 1.0, 5)) > 1.5)
    assert txp.__name__ == "knetapi.traced.numpy" != traced_namespace(compat_numpy).__name__


def test_traced_namespace_needs_a_registered_backend():
    class Unknown:
        __name__ = "unknown"

        @staticmethod
        def asarray(obj):
            return [obj]

    with pytest.raises(TypeError, match="no registered backend"):
        traced_namespace(Unknown)


@pytest.mark.parametrize("made_inside_grad", [False, True])
def test_traced_namespace_values_are_constants_to_grad(made_inside_grad):
    """The namespace's trace is below every grad trace, even one running when it was made."""
    def f(w):
        txp = TracedNamespace(compat_numpy, registry.get_backend("numpy")) if made_inside_grad \
            else traced_namespace(compat_numpy)
        return kn.sum(w * txp.asarray([1.0, 2.0]))

    g = kn.grad(f)(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(np.asarray(strip(g)), [1.0, 2.0])
