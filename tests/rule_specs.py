"""The property-test table of knetapi's derivative rules: one spec (or more) per rule.

A spec says how to draw arguments for one rule -- shapes, values inside the function's domain and
away from its kinks and ties, static parameters -- and how to call it. tests/test_rules.py checks
every spec's first and second derivatives against finite differences in float64 and float32, and
fails when a name in ``knetapi.rules.PRIMITIVES`` or ``knetapi.composite.COMPOSITES`` has no spec.

Arguments are drawn in float64 (the test casts floating ones to the dtype under test) from
``numpy.random.default_rng(seed)`` with a seed drawn by hypothesis, so values are random but
examples reproduce; shapes, axes, keys and the other static parameters are drawn by hypothesis.
Arrays stay small (at most 3 axes of at most 4) so that the suite stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import knetapi as kn
from knetapi.nn import conv
from knetapi.rules import PRIMITIVES as P

MAX_DIMS = 3
MAX_SIDE = 4

Draw = Callable[[st.SearchStrategy], Any]         # hypothesis' data.draw
Sampler = Callable[[np.random.Generator, tuple], np.ndarray]


@dataclass(frozen=True)
class Drawn:
    """One example: positional arguments and static keyword parameters of the call."""

    args: tuple
    static: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    """A property test of one derivative rule.

    op:       the rule's name in PRIMITIVES (``kind="primitive"``) or COMPOSITES (``kind="composite"``)
    draw:     ``draw(data.draw) -> Drawn``: the arguments and static parameters of one example
    call:     ``call(*args, **static)``: the function whose gradient is checked
    case:     what the spec exercises when an op has several specs (part of the test id)
    constant: positions of floating arguments that have no gradient by convention; every other
              floating array argument is differentiated
    check:    extra keyword arguments for check_grads (step or tolerances), with the reason at the row
    """

    op: str
    draw: Callable[[Draw], Drawn]
    call: Callable
    case: str = ""
    kind: str = "primitive"
    constant: tuple[int, ...] = ()
    check: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        name = self.op if self.kind == "primitive" else f"composite.{self.op}"
        return f"{name}[{self.case}]" if self.case else name


# --- values ---------------------------------------------------------------------------------------

def real(lo: float = -2.0, hi: float = 2.0) -> Sampler:
    """Uniform in ``[lo, hi]``."""
    return lambda rng, shape: np.asarray(rng.uniform(lo, hi, shape))


def nonzero(lo: float = 0.3, hi: float = 2.0) -> Sampler:
    """Magnitude uniform in ``[lo, hi]``, random sign: away from zero."""
    return lambda rng, shape: np.asarray(rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape))


def with_zeros(values: Sampler) -> Sampler:
    """``values`` with each element set to exactly zero with probability 1/3."""
    return lambda rng, shape: np.where(rng.uniform(size=shape) < 1 / 3, 0.0, values(rng, shape))


def lattice(offset: float) -> Sampler:
    """Points of the half-integer lattice shifted by ``offset``, jittered by at most 0.05.

    Two lattices with offsets 0 and 0.25 never come within 0.15 of each other: their values can be
    compared (maximum, minimum, clip) without a tie or a kink near any example."""
    return lambda rng, shape: np.asarray(0.5 * rng.integers(-4, 4, shape) + offset
                                         + rng.uniform(-0.05, 0.05, shape))


def distinct(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """All elements at least 0.15 apart: no ties for max, min or sort."""
    n = math.prod(shape)
    return np.reshape((rng.permutation(n) - n / 2) * 0.25 + rng.uniform(-0.05, 0.05, n), shape)


def off_multiples(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """At least 0.1 from every multiple of 0.5, so ``remainder(x, b)`` has no jump near ``x`` for
    any divisor ``b`` drawn by :func:`divisors`."""
    return np.asarray(rng.integers(-4, 4, shape) + rng.uniform(0.1, 0.4, shape))


def divisors(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return np.asarray(rng.choice([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0], shape))


# --- shapes, axes, seeds --------------------------------------------------------------------------

def shapes(min_dims: int = 0, max_dims: int = MAX_DIMS, max_side: int = MAX_SIDE) -> st.SearchStrategy:
    """Array shapes, 0-d and size-1 axes included."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def broadcasting(n: int, min_dims: int = 0, max_dims: int = MAX_DIMS) -> st.SearchStrategy:
    """``n`` shapes that broadcast together (different ranks and stretched size-1 axes)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=min_dims, max_dims=max_dims,
                                             min_side=1, max_side=MAX_SIDE).map(lambda b: b.input_shapes)


def generator(draw: Draw) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def an_axis(ndim: int) -> st.SearchStrategy:
    """One axis, negative or not."""
    return st.integers(-ndim, ndim - 1)


def some_axes(ndim: int) -> st.SearchStrategy:
    """A non-empty tuple of distinct axes, each negative or not."""
    return st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).flatmap(
        lambda axes: st.tuples(*(st.sampled_from([a, a - ndim]) for a in axes)))


def reduction_axis(ndim: int) -> st.SearchStrategy:
    """None, one axis or a tuple of axes (only None for a 0-d array)."""
    return st.none() if ndim == 0 else st.one_of(st.none(), an_axis(ndim), some_axes(ndim))


def reduced_count(shape: tuple, axis) -> int:
    """How many elements each reduction over ``axis`` combines."""
    axes = range(len(shape)) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    return math.prod(shape[a] for a in axes)


# --- draws by family ------------------------------------------------------------------------------

def unary(values: Sampler) -> Callable[[Draw], Drawn]:
    """One array of any shape."""
    def draw(d: Draw) -> Drawn:
        return Drawn((values(generator(d), d(shapes())),))
    return draw


def binary(left: Sampler, right: Sampler) -> Callable[[Draw], Drawn]:
    """Two arguments of broadcasting shapes."""
    def draw(d: Draw) -> Drawn:
        rng = generator(d)
        s1, s2 = d(broadcasting(2))
        return Drawn((left(rng, s1), right(rng, s2)))
    return draw


def reduction(values: Sampler) -> Callable[[Draw], Drawn]:
    """One array, ``axis`` (None, int or tuple) and ``keepdims``."""
    def draw(d: Draw) -> Drawn:
        shape = d(shapes())
        return Drawn((values(generator(d), shape),),
                     dict(axis=d(reduction_axis(len(shape))), keepdims=d(st.booleans())))
    return draw


def statistic(min_count: int) -> Callable[[Draw], Drawn]:
    """``var``/``std``: a reduction with ``correction`` below the number of elements reduced, each
    reduction combining at least ``min_count`` elements (``std`` is not differentiable at 0)."""
    def draw(d: Draw) -> Drawn:
        drawn = reduction(real())(d)
        n = reduced_count(drawn.args[0].shape, drawn.static["axis"])
        assume(n >= min_count)
        correction = d(st.sampled_from([0.0, 1.0] if n > 1 else [0.0]))
        return Drawn(drawn.args, dict(drawn.static, correction=correction))
    return draw


def cumulative(values: Sampler) -> Callable[[Draw], Drawn]:
    """One array of rank >= 1, an int ``axis`` (or None for 1-d) and ``include_initial``."""
    def draw(d: Draw) -> Drawn:
        shape = d(shapes(min_dims=1))
        axis = d(an_axis(len(shape)) | st.none()) if len(shape) == 1 else d(an_axis(len(shape)))
        return Drawn((values(generator(d), shape),), dict(axis=axis, include_initial=d(st.booleans())))
    return draw


def matmul(left_rank: int, right_rank: int) -> Callable[[Draw], Drawn]:
    """``a @ b`` with ``a`` 1-d or a (batch of) matrices, likewise ``b``; batch axes broadcast."""
    def draw(d: Draw) -> Drawn:
        rng = generator(d)
        n, k, m = d(st.tuples(*[st.integers(1, MAX_SIDE)] * 3))
        batch1, batch2 = d(broadcasting(2, max_dims=2))
        a = (k,) if left_rank == 1 else batch1 + (n, k)
        b = (k,) if right_rank == 1 else batch2 + (k, m)
        return Drawn((real()(rng, a), real()(rng, b)))
    return draw


def sorting(d: Draw) -> Drawn:
    shape = d(shapes(min_dims=1))
    return Drawn((distinct(generator(d), shape),),
                 dict(axis=d(an_axis(len(shape))), descending=d(st.booleans())))


def clip_bounds(lower: str, upper: str) -> Callable[[Draw], Drawn]:
    """``x`` and bounds, each bound ``"array"`` (broadcasting with ``x``), ``"scalar"`` (a Python
    float) or ``"none"``. ``x`` lies on one lattice, the bounds on another below and above 0: every
    element is at least 0.15 from both bounds, some inside and some outside."""
    def draw(d: Draw) -> Drawn:
        rng = generator(d)
        sx, slo, shi = d(broadcasting(3))
        x = lattice(0.25)(rng, sx)
        bound = {"array": lambda s, sign: (sign * 0.5 * (1 + rng.integers(0, 3, s))
                                           + rng.uniform(-0.05, 0.05, s)),
                 "scalar": lambda s, sign: sign * 0.5 * float(rng.integers(1, 4)),
                 "none": lambda s, sign: None}
        return Drawn((x, bound[lower](slo, -1.0), bound[upper](shi, 1.0)))
    return draw


def where(d: Draw) -> Drawn:
    rng = generator(d)
    sc, s1, s2 = d(broadcasting(3))
    return Drawn((rng.uniform(size=sc) < 0.5, real()(rng, s1), real()(rng, s2)))


def astype(d: Draw) -> Drawn:
    dtype = d(st.sampled_from([kn.float32, kn.float64]))
    return Drawn((real()(generator(d), d(shapes())),), dict(dtype=dtype))


def elu(d: Draw) -> Drawn:
    """Away from the kink at 0, with the default or a drawn ``alpha``."""
    static = d(st.one_of(st.just({}), st.builds(lambda a: dict(alpha=a), st.sampled_from([0.5, 2.0]))))
    return Drawn((nonzero(0.1, 2.0)(generator(d), d(shapes())),), static)


def along_an_axis(d: Draw) -> Drawn:
    """One array of at least one axis and one ``axis`` (softmax, logsoftmax)."""
    shape = d(shapes(min_dims=1))
    return Drawn((real(-3.0, 3.0)(generator(d), shape),), dict(axis=d(an_axis(len(shape)))))


def reshape(d: Draw) -> Drawn:
    """A new shape with the same size: flat, reversed, with inserted 1s, or with an inferred -1."""
    shape = d(shapes())
    size = math.prod(shape)
    new = d(st.sampled_from([(size,), (-1,), shape[::-1], (1,) + shape + (1,), (1, -1), (size, 1)]))
    return Drawn((real()(generator(d), shape),), dict(shape=new))


def expand_dims(d: Draw) -> Drawn:
    shape = d(shapes())
    return Drawn((real()(generator(d), shape),), dict(axis=d(st.integers(-len(shape) - 1, len(shape)))))


def squeeze(d: Draw) -> Drawn:
    """An array with size-1 axes put in at drawn places, and ``axis`` naming some of them."""
    shape = list(d(shapes(max_dims=2)))
    ones = d(st.lists(st.integers(0, len(shape)), min_size=1, max_size=2))
    for place in sorted(ones, reverse=True):
        shape.insert(place, 1)
    ndim = len(shape)
    unit = [a for a in range(ndim) if shape[a] == 1]
    axes = d(st.lists(st.sampled_from(unit), min_size=1, max_size=len(unit), unique=True))
    axes = tuple(a - ndim if d(st.booleans()) else a for a in axes)
    return Drawn((real()(generator(d), tuple(shape)),), dict(axis=axes if len(axes) > 1 else axes[0]))


def permute_dims(d: Draw) -> Drawn:
    shape = d(shapes())
    ndim = len(shape)
    axes = tuple(a - ndim if d(st.booleans()) else a for a in d(st.permutations(range(ndim))))
    return Drawn((real()(generator(d), shape),), dict(axes=axes))


def flip(d: Draw) -> Drawn:
    shape = d(shapes())
    return Drawn((real()(generator(d), shape),), dict(axis=d(reduction_axis(len(shape)))))


def roll(d: Draw) -> Drawn:
    """An int shift over the flattened array, an int shift along one axis, or a tuple of shifts
    along a tuple of axes (an axis may repeat, the shifts then add up)."""
    shape = d(shapes(min_dims=1))
    ndim = len(shape)
    shift = st.integers(-5, 5)
    static = d(st.one_of(
        st.builds(lambda s: dict(shift=s, axis=None), shift),
        st.builds(lambda s, a: dict(shift=s, axis=a), shift, an_axis(ndim)),
        st.integers(1, 3).flatmap(lambda n: st.builds(
            lambda s, a: dict(shift=s, axis=a),
            st.tuples(*[shift] * n), st.tuples(*[an_axis(ndim)] * n)))))
    return Drawn((real()(generator(d), shape),), static)


def broadcast_to(d: Draw) -> Drawn:
    """A shape that ``x`` broadcasts to: its size-1 axes stretched and new leading axes."""
    shape = d(shapes())
    stretched = tuple(d(st.integers(1, MAX_SIDE)) if n == 1 else n for n in shape)
    lead = d(st.lists(st.integers(1, MAX_SIDE), max_size=MAX_DIMS - len(shape) + 1))
    return Drawn((real()(generator(d), shape),), dict(shape=tuple(lead) + stretched))


def concat(d: Draw) -> Drawn:
    """One to three arrays sharing every axis but ``axis``."""
    rng = generator(d)
    shape = d(shapes(min_dims=1))
    axis = d(an_axis(len(shape)))
    sizes = d(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    parts = []
    for n in sizes:
        part = list(shape)
        part[axis] = n
        parts.append(real()(rng, tuple(part)))
    return Drawn(tuple(parts), dict(axis=axis))


def concat_flat(d: Draw) -> Drawn:
    """``axis=None``: arrays of any shapes, 0-d included, are flattened and joined."""
    rng = generator(d)
    parts = d(st.lists(shapes(), min_size=1, max_size=3))
    return Drawn(tuple(real()(rng, s) for s in parts), dict(axis=None))


def triangle(d: Draw) -> Drawn:
    shape = d(shapes(min_dims=2))
    return Drawn((real()(generator(d), shape),), dict(k=d(st.integers(-3, 3))))


def matrices(d: Draw) -> Drawn:
    return Drawn((real()(generator(d), d(shapes(min_dims=2))),))


# --- indexing -------------------------------------------------------------------------------------

def index_array(rng: np.random.Generator, n: int, shape: tuple, negative: bool = True) -> np.ndarray:
    """Indices into an axis of length ``n`` (repeats likely, negative ones too unless told)."""
    return np.asarray(rng.integers(-n if negative else 0, n, shape))


def basic_key(d: Draw) -> Drawn:
    """Ints, slices (negative steps too), ellipsis and None."""
    shape = d(shapes(min_dims=1))
    key = d(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True) if len(shape) > 1
            else st.one_of(st.slices(shape[0]), st.integers(-shape[0], shape[0] - 1),
                           st.tuples(st.just(Ellipsis), st.none(), st.slices(shape[0]))))
    return Drawn((real()(generator(d), shape),), dict(key=key))


def integer_arrays_key(d: Draw) -> Drawn:
    """One integer array per axis, broadcast together (elements may be picked more than once)."""
    shape = d(shapes(min_dims=1))
    key = d(hnp.integer_array_indices(shape, result_shape=shapes(max_dims=2)))
    return Drawn((real()(generator(d), shape),), dict(key=key))


def axis_array_key(d: Draw) -> Drawn:
    """Slices (negative steps too) on the leading axes and an integer array with repeats on one."""
    rng = generator(d)
    shape = d(shapes(min_dims=1))
    axis = d(st.integers(0, len(shape) - 1))
    leading = tuple(d(st.sampled_from([slice(None), slice(None, None, -1), slice(1, None)]))
                    for _ in range(axis))
    indices = index_array(rng, shape[axis], d(shapes(min_dims=1, max_dims=2, max_side=6)))
    return Drawn((real()(rng, shape),), dict(key=leading + (indices,)))


def mask_key(d: Draw) -> Drawn:
    """A boolean mask over the leading axes (possibly selecting nothing)."""
    rng = generator(d)
    shape = d(shapes(min_dims=1))
    masked = d(st.integers(1, len(shape)))
    return Drawn((real()(rng, shape),), dict(key=rng.uniform(size=shape[:masked]) < 0.5))


def take(d: Draw) -> Drawn:
    """1-d indices with repeats along an axis (``axis`` may be left out for a 1-d array)."""
    rng = generator(d)
    shape = d(shapes(min_dims=1))
    axis = d(an_axis(len(shape)) | st.none()) if len(shape) == 1 else d(an_axis(len(shape)))
    n = shape[0 if axis is None else axis]
    return Drawn((real()(rng, shape), index_array(rng, n, (d(st.integers(0, 6)),))), dict(axis=axis))


def take_along_axis(d: Draw) -> Drawn:
    """Indices of the array's rank: along ``axis`` of any length, elsewhere of the array's length
    or broadcasting with it (1 against n, or n against 1)."""
    rng = generator(d)
    shape = d(shapes(min_dims=1))
    axis = d(an_axis(len(shape)))
    index_shape = [d(st.sampled_from([n, 1])) if n > 1 else d(st.integers(1, MAX_SIDE)) for n in shape]
    index_shape[axis] = d(st.integers(1, 5))
    indices = index_array(rng, shape[axis], tuple(index_shape), negative=False)
    return Drawn((real()(rng, shape), indices), dict(axis=axis))


def index_add(d: Draw) -> Drawn:
    """A base, a key (basic, or an integer array with repeats) and values of ``base[key]``'s shape
    or one broadcasting to it."""
    drawn = d(st.sampled_from([basic_key, axis_array_key]))(d)
    base, key = drawn.args[0], drawn.static["key"]
    target = base[key].shape
    values_shape = target[d(st.integers(0, len(target))):]
    values_shape = tuple(1 if d(st.booleans()) else n for n in values_shape)
    return Drawn((base, real()(generator(d), values_shape)), dict(key=key))


# --- composites -----------------------------------------------------------------------------------

def stack(d: Draw) -> Drawn:
    """One to three arrays of one shape, and the place of the new axis."""
    rng = generator(d)
    shape = d(shapes())
    arrays = tuple(real()(rng, shape) for _ in range(d(st.integers(1, 3))))
    return Drawn(arrays, dict(axis=d(st.integers(-len(shape) - 1, len(shape)))))


def unstack(d: Draw) -> Drawn:
    shape = d(shapes(min_dims=1))
    return Drawn((real()(generator(d), shape),), dict(axis=d(an_axis(len(shape)))))


def moveaxis(d: Draw) -> Drawn:
    """Source and destination: one axis each (negative or not), or tuples of distinct axes."""
    shape = d(shapes(min_dims=1))
    ndim = len(shape)
    count = d(st.integers(1, ndim))
    source = tuple(d(st.permutations(range(ndim)))[:count])
    destination = tuple(d(st.permutations(range(ndim)))[:count])
    if count == 1 and d(st.booleans()):
        source, destination = source[0] - ndim, destination[0]
    return Drawn((real()(generator(d), shape),), dict(source=source, destination=destination))


def broadcast_arrays(d: Draw) -> Drawn:
    rng = generator(d)
    return Drawn(tuple(real()(rng, s) for s in d(st.integers(1, 3).flatmap(broadcasting))))


def meshgrid(d: Draw) -> Drawn:
    rng = generator(d)
    sizes = d(st.lists(st.integers(1, MAX_SIDE), min_size=1, max_size=3))
    indexing = d(st.sampled_from(["xy", "ij"]))
    return Drawn(tuple(real()(rng, (n,)) for n in sizes), dict(indexing=indexing))


def tile(d: Draw) -> Drawn:
    """Repetitions fewer, as many or more than the array's axes."""
    shape = d(shapes(max_dims=2))
    return Drawn((real()(generator(d), shape),),
                 dict(repetitions=tuple(d(st.lists(st.integers(1, 3), max_size=3)))))


def repeat(d: Draw) -> Drawn:
    """An int or an array of repeats (zeros included); ``axis`` None flattens first."""
    rng = generator(d)
    shape = d(shapes(min_dims=1))
    axis = d(an_axis(len(shape)) | st.none())
    n = math.prod(shape) if axis is None else shape[axis]
    repeats = d(st.integers(0, 3)) if d(st.booleans()) else np.asarray(rng.integers(0, 3, (n,)))
    return Drawn((real()(rng, shape), repeats), dict(axis=axis))


def diff(d: Draw) -> Drawn:
    """``n`` up to 2, with optional ``prepend``/``append`` (differentiated too)."""
    rng = generator(d)
    shape = d(shapes(min_dims=1))
    axis = d(an_axis(len(shape)))

    def edge():
        if not d(st.booleans()):
            return None
        s = list(shape)
        s[axis] = d(st.integers(1, 2))
        return real()(rng, tuple(s))
    return Drawn((real()(rng, shape), edge(), edge()), dict(axis=axis, n=d(st.integers(1, 2))))


def tensordot_int(d: Draw) -> Drawn:
    """``axes=k``: the last k axes of ``x1`` contract with the first k of ``x2``."""
    rng = generator(d)
    shared = d(shapes(max_dims=2))
    s1 = d(shapes(max_dims=2)) + shared
    s2 = shared + d(shapes(max_dims=2))
    return Drawn((real()(rng, s1), real()(rng, s2)), dict(axes=len(shared)))


def tensordot_pairs(d: Draw) -> Drawn:
    """``axes=(axes1, axes2)``: paired axes of equal lengths, in any order, negative or not."""
    rng = generator(d)
    s1 = d(shapes(min_dims=1))
    k = d(st.integers(1, len(s1)))
    a1 = d(st.permutations(range(len(s1))))[:k]
    free2 = d(shapes(max_dims=2))
    ndim2 = len(free2) + k
    a2 = d(st.permutations(range(ndim2)))[:k]
    s2 = list(free2)
    for pos in sorted(a2):
        s2.insert(pos, 0)
    for a, b in zip(a1, a2):
        s2[b] = s1[a]
    a1 = tuple(a - len(s1) if d(st.booleans()) else a for a in a1)
    return Drawn((real()(rng, s1), real()(rng, tuple(s2))), dict(axes=(a1, tuple(a2))))


def vecdot(d: Draw) -> Drawn:
    """Broadcasting arrays with a shared axis (counted from the end, as the standard asks)."""
    rng = generator(d)
    s1, s2 = d(broadcasting(2, min_dims=1))
    axis = d(st.integers(-min(len(s1), len(s2)), -1))
    n = d(st.integers(1, MAX_SIDE))
    s1, s2 = list(s1), list(s2)
    s1[axis] = s2[axis] = n
    return Drawn((real()(rng, tuple(s1)), real()(rng, tuple(s2))), dict(axis=axis))


def outer(d: Draw) -> Drawn:
    rng = generator(d)
    m, n = d(st.tuples(st.integers(1, MAX_SIDE), st.integers(1, MAX_SIDE)))
    return Drawn((real()(rng, (m,)), real()(rng, (n,))))


# --- convolution and pooling (NCHW) ---------------------------------------------------------------

def pairs(low: int, high: int) -> st.SearchStrategy:
    """A ``(rows, columns)`` pair of ints in ``[low, high]``."""
    return st.tuples(st.integers(low, high), st.integers(low, high))


def conv_geometry(d: Draw) -> dict:
    """Kernel, padding, stride, dilation, and an image size (H, W) that the dilated kernel fits."""
    kernel, padding, stride, dilation = d(pairs(1, 3)), d(pairs(0, 1)), d(pairs(1, 2)), d(pairs(1, 2))
    size = tuple(max(1, dl * (k - 1) + 1 - 2 * p) + d(st.integers(0, 2))
                 for k, p, dl in zip(kernel, padding, dilation))
    return dict(kernel=kernel, padding=padding, stride=stride, dilation=dilation, size=size)


def conv_output(geometry: dict) -> tuple[int, int]:
    return tuple((n + 2 * p - dl * (k - 1) - 1) // s + 1 for n, k, p, s, dl in zip(
        *(geometry[key] for key in ("size", "kernel", "padding", "stride", "dilation"))))


def conv4(d: Draw) -> Drawn:
    """Weights (O, C, kh, kw) and images (N, C, H, W); cross-correlation or true convolution."""
    rng = generator(d)
    n, c, o = d(st.tuples(*[st.integers(1, 2)] * 3))
    g = conv_geometry(d)
    return Drawn((real()(rng, (o, c) + g["kernel"]), real()(rng, (n, c) + g["size"])),
                 dict(padding=g["padding"], stride=g["stride"], dilation=g["dilation"],
                      mode=d(st.sampled_from([conv.CROSS_CORRELATION, conv.CONVOLUTION]))))


def conv4_w(d: Draw) -> Drawn:
    """Images (N, C, H, W) and an output cotangent (N, O, Ho, Wo) of conv4 with that geometry."""
    rng = generator(d)
    n, c, o = d(st.tuples(*[st.integers(1, 2)] * 3))
    g = conv_geometry(d)
    return Drawn((real()(rng, (n, c) + g["size"]), real()(rng, (n, o) + conv_output(g))),
                 {key: g[key] for key in ("kernel", "padding", "stride", "dilation")})


def deconv4(d: Draw) -> Drawn:
    """Weights (O, C, kh, kw) and images (N, O, H, W) whose transposed convolution is not empty."""
    rng = generator(d)
    n, c, o = d(st.tuples(*[st.integers(1, 2)] * 3))
    kernel, padding, stride, dilation = d(pairs(1, 3)), d(pairs(0, 1)), d(pairs(1, 2)), d(pairs(1, 2))
    size = d(pairs(1, 3))
    assume(all((h - 1) * s - 2 * p + dl * (k - 1) + 1 >= 1
               for h, k, p, s, dl in zip(size, kernel, padding, stride, dilation)))
    return Drawn((real()(rng, (o, c) + kernel), real()(rng, (n, o) + size)),
                 dict(padding=padding, stride=stride, dilation=dilation))


def pool_geometry(d: Draw) -> dict:
    """A window, padding at most half of it, a stride (None: the window), and a size it fits."""
    window = d(pairs(1, 3))
    padding = tuple(d(st.integers(0, k // 2)) for k in window)
    stride = d(st.none() | pairs(1, 3))
    return dict(window=window, padding=padding, stride=stride)


def pooling(values: Sampler, mode: str) -> Callable[[Draw], Drawn]:
    """Images (N, C, H, W) for ``pool``; max pooling draws distinct values (no ties in a window)."""
    def draw(d: Draw) -> Drawn:
        g = pool_geometry(d)
        size = tuple(max(1, k - 2 * p) + d(st.integers(0, 3)) for k, p in zip(g["window"], g["padding"]))
        shape = d(st.tuples(st.integers(1, 2), st.integers(1, 2))) + size
        return Drawn((values(generator(d), shape),), dict(g, mode=mode))
    return draw


def max_unpooling(transpose: bool) -> Callable[[Draw], Drawn]:
    """Images x (N, C, H, W) of distinct values, y = pool(x) without padding, and the cotangent
    first: like y for ``unpool_max``, like x for its transpose ``pool_max_take``."""
    def draw(d: Draw) -> Drawn:
        window, stride = d(pairs(1, 3)), d(pairs(1, 3))
        size = tuple(k + d(st.integers(0, 3)) for k in window)
        shape = d(st.tuples(st.integers(1, 2), st.integers(1, 2))) + size
        rng = generator(d)
        x = distinct(rng, shape)
        y = np.asarray(conv.pool(x, window=window, stride=stride))
        return Drawn((real()(rng, x.shape if transpose else y.shape), x, y),
                     dict(window=window, stride=stride))
    return draw


def unpool(d: Draw) -> Drawn:
    """Images (N, C, H, W) whose unpooled size is not empty."""
    g = pool_geometry(d)
    size = d(pairs(1, 3))
    stride = g["window"] if g["stride"] is None else g["stride"]
    assume(all((h - 1) * s + k - 2 * p >= 1
               for h, s, k, p in zip(size, stride, g["window"], g["padding"])))
    shape = d(st.tuples(st.integers(1, 2), st.integers(1, 2))) + size
    return Drawn((real()(generator(d), shape),), g)


def joined(parts) -> Any:
    """Several outputs of one shape as one array, so that each gets its own random weights."""
    return kn.stack(list(parts))


# Linear in x: any step is exact, and a large one keeps the rounding of float32 (the target dtype)
# far below the tolerance, which a step of 1e-6 would not.
LINEAR_IN_FLOAT32 = dict(eps=0.1)

UNARY = {   # name: values inside the domain, away from kinks
    "negative": real(), "positive": real(), "abs": nonzero(0.1, 2.0), "square": real(),
    "sqrt": real(0.3, 3.0), "reciprocal": nonzero(0.5, 2.0), "exp": real(), "expm1": real(),
    "log": real(0.3, 3.0), "log1p": real(-0.6, 2.0), "log2": real(0.3, 3.0), "log10": real(0.3, 3.0),
    "sin": real(-3.0, 3.0), "cos": real(-3.0, 3.0), "tan": real(-1.2, 1.2),
    "asin": real(-0.8, 0.8), "acos": real(-0.8, 0.8), "atan": real(-3.0, 3.0),
    "sinh": real(), "cosh": real(), "tanh": real(), "asinh": real(-3.0, 3.0),
    "acosh": real(1.2, 3.0), "atanh": real(-0.8, 0.8),
}

BINARY = {  # name: (first argument, second argument), broadcasting together
    "add": (real(), real()), "subtract": (real(), real()), "multiply": (real(), real()),
    "divide": (real(), nonzero(0.5, 2.0)), "pow": (real(0.5, 2.0), real()),
    "atan2": (real(), nonzero()), "hypot": (real(), nonzero()),
    "logaddexp": (real(-3.0, 3.0), real(-3.0, 3.0)),
    "maximum": (lattice(0.0), lattice(0.25)), "minimum": (lattice(0.0), lattice(0.25)),
    "remainder": (off_multiples, divisors),
}

SPECS: list[Spec] = [
    # elementwise
    *[Spec(name, unary(values), getattr(kn, name)) for name, values in UNARY.items()],
    *[Spec(name, binary(*values), getattr(kn, name)) for name, values in BINARY.items()],
    Spec("pow", unary(real(-2.0, 2.0)), lambda x: 2.0 ** x, case="scalar base"),
    Spec("pow", unary(real(0.5, 2.0)), lambda x: x ** 3, case="scalar exponent"),
    Spec("copysign", binary(nonzero(0.1, 2.0), nonzero(0.1, 2.0)), kn.copysign, constant=(1,)),
    Spec("where", where, kn.where),
    Spec("clip", clip_bounds("array", "array"), P["clip"], case="array bounds"),
    Spec("clip", clip_bounds("scalar", "none"), P["clip"], case="scalar min"),
    Spec("clip", clip_bounds("none", "array"), P["clip"], case="max only"),
    Spec("astype", astype, P["astype"], check=LINEAR_IN_FLOAT32),

    # activations (knetapi.nn.activations)
    Spec("relu", unary(nonzero(0.1, 2.0)), P["relu"]),
    Spec("sigm", unary(real(-4.0, 4.0)), P["sigm"]),
    Spec("elu", elu, P["elu"]),
    Spec("softplus", unary(real(-4.0, 4.0)), P["softplus"]),
    Spec("softmax", along_an_axis, P["softmax"]),
    Spec("logsoftmax", along_an_axis, P["logsoftmax"]),

    # reductions and cumulative functions
    Spec("sum", reduction(real()), kn.sum),
    Spec("mean", reduction(real()), kn.mean),
    Spec("prod", reduction(with_zeros(real(-1.5, 1.5))), kn.prod),
    Spec("max", reduction(distinct), kn.max),
    Spec("min", reduction(distinct), kn.min),
    Spec("var", statistic(min_count=1), kn.var),
    Spec("std", statistic(min_count=2), kn.std),
    Spec("logsumexp", reduction(real(-3.0, 3.0)), kn.logsumexp),
    Spec("cumulative_sum", cumulative(real()), kn.cumulative_sum),
    Spec("cumulative_prod", cumulative(with_zeros(real(-1.5, 1.5))), kn.cumulative_prod),

    # linear algebra
    Spec("matmul", matmul(1, 1), kn.matmul, case="1-d @ 1-d"),
    Spec("matmul", matmul(2, 1), kn.matmul, case="matrices @ 1-d"),
    Spec("matmul", matmul(1, 2), kn.matmul, case="1-d @ matrices"),
    Spec("matmul", matmul(2, 2), kn.matmul, case="batched"),
    Spec("matrix_transpose", matrices, kn.matrix_transpose),

    # shape manipulation
    Spec("reshape", reshape, kn.reshape),
    Spec("expand_dims", expand_dims, kn.expand_dims),
    Spec("squeeze", squeeze, kn.squeeze),
    Spec("permute_dims", permute_dims, kn.permute_dims),
    Spec("flip", flip, kn.flip),
    Spec("roll", roll, kn.roll),
    Spec("broadcast_to", broadcast_to, kn.broadcast_to),
    Spec("concat", concat, lambda *xs, axis: P["concat"](*xs, axis=axis), case="axis"),
    Spec("concat", concat_flat, lambda *xs, axis: P["concat"](*xs, axis=axis), case="axis None"),
    Spec("tril", triangle, kn.tril),
    Spec("triu", triangle, kn.triu),

    # indexing and sorting (``getitem`` called as the primitive, which is what ``x[key]`` runs on a
    # traced value: finite differences evaluate the call on raw arrays too, and a raw torch tensor's
    # own ``[]`` refuses negative-step slices, which the torch backend's getitem supports)
    Spec("getitem", basic_key, lambda x, *, key: P["getitem"](x, key=key), case="basic key"),
    Spec("getitem", integer_arrays_key, lambda x, *, key: P["getitem"](x, key=key),
         case="integer arrays"),
    Spec("getitem", axis_array_key, lambda x, *, key: P["getitem"](x, key=key),
         case="slices and an integer array"),
    Spec("getitem", mask_key, lambda x, *, key: P["getitem"](x, key=key), case="boolean mask"),
    Spec("take", take, kn.take),
    Spec("take_along_axis", take_along_axis, kn.take_along_axis),
    Spec("index_add", index_add, kn.index_add),
    Spec("sort", sorting, kn.sort),

    # convolution and pooling (through knetapi.nn.conv, which checks and normalises the geometry)
    Spec("conv4", conv4, conv.conv4),
    Spec("conv4_w", conv4_w, P["conv4_w"]),
    Spec("deconv4", deconv4, conv.deconv4),
    Spec("pool", pooling(distinct, "max"), conv.pool, case="max"),
    Spec("pool", pooling(real(), "avg"), conv.pool, case="avg"),
    Spec("unpool", unpool, conv.unpool),
    Spec("unpool_max", max_unpooling(False), P["unpool_max"], constant=(1, 2)),
    Spec("pool_max_take", max_unpooling(True), P["pool_max_take"], constant=(1, 2)),

    # composites: standard functions built from primitives when traced
    Spec("astype", astype, lambda x, *, dtype: kn.astype(x, dtype), kind="composite",
         check=LINEAR_IN_FLOAT32),
    Spec("asarray", unary(real()), kn.asarray, kind="composite", case="same dtype"),
    Spec("asarray", astype, kn.asarray, kind="composite", case="dtype", check=LINEAR_IN_FLOAT32),
    Spec("clip", clip_bounds("array", "scalar"), lambda x, lo, hi: kn.clip(x, min=lo, max=hi),
         kind="composite"),
    Spec("concat", concat, lambda *xs, axis: kn.concat(xs, axis=axis), kind="composite", case="axis"),
    Spec("concat", concat_flat, lambda *xs, axis: kn.concat(list(xs), axis=axis), kind="composite",
         case="axis None"),
    Spec("stack", stack, lambda *xs, axis: kn.stack(xs, axis=axis), kind="composite"),
    Spec("unstack", unstack, lambda x, *, axis: joined(kn.unstack(x, axis=axis)), kind="composite"),
    Spec("moveaxis", moveaxis, lambda x, *, source, destination: kn.moveaxis(x, source, destination),
         kind="composite"),
    Spec("broadcast_arrays", broadcast_arrays, lambda *xs: joined(kn.broadcast_arrays(*xs)),
         kind="composite"),
    Spec("meshgrid", meshgrid, lambda *xs, indexing: joined(kn.meshgrid(*xs, indexing=indexing)),
         kind="composite"),
    Spec("tile", tile, lambda x, *, repetitions: kn.tile(x, repetitions), kind="composite"),
    Spec("repeat", repeat, kn.repeat, kind="composite"),
    Spec("diff", diff,
         lambda x, prepend, append, **static: kn.diff(x, prepend=prepend, append=append, **static),
         kind="composite"),
    Spec("tensordot", tensordot_int, kn.tensordot, kind="composite", case="int axes"),
    Spec("tensordot", tensordot_pairs, kn.tensordot, kind="composite", case="axis pairs"),
    Spec("vecdot", vecdot, kn.vecdot, kind="composite"),
    Spec("outer", outer, kn.outer, kind="composite"),
]


# --- ties -----------------------------------------------------------------------------------------
# The specs above keep away from ties, where finite differences cannot judge a rule. The conventions
# at ties are checked by tests/test_ties.py against the references below, on examples drawn to
# hold ties: values on a grid of at most three levels, so that equal elements are the rule.

def tied(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Multiples of 0.5 from one or two levels (drawn per array): many equal elements, and often
    all of them."""
    levels = rng.integers(1, 3)
    return np.asarray(0.5 * rng.integers(0, levels, shape) - 0.5)


def tied_reduction(d: Draw) -> Drawn:
    """A reduction of tied values in which each group has at least two elements (a tie can only
    happen there)."""
    drawn = reduction(tied)(d)
    assume(reduced_count(drawn.args[0].shape, drawn.static["axis"]) >= 2)
    return drawn


def sum_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    """``g`` summed over the axes that broadcasting added or stretched, down to ``shape``."""
    g = np.sum(g, axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    return np.sum(g, axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True).reshape(shape)


def share_ties(wins: Callable) -> Callable:
    """Reference VJPs of ``maximum``/``minimum``: ``g`` to the winner, half of it to each on a tie."""
    def reference(g, a, b):
        a_full, b_full = np.broadcast_arrays(a, b)
        tie = a_full == b_full
        return (sum_to(np.where(wins(a_full, b_full), g, np.where(tie, g / 2, 0.0)), np.shape(a)),
                sum_to(np.where(wins(b_full, a_full), g, np.where(tie, g / 2, 0.0)), np.shape(b)))
    return reference


def elementwise_ties(a, b) -> int:
    a_full, b_full = np.broadcast_arrays(a, b)
    return int(np.sum(a_full == b_full))


def extreme_reference(extreme: Callable) -> Callable:
    """Reference VJP of ``max``/``min``: the elements equal to the extreme share ``g`` equally."""
    def reference(g, x, *, axis=None, keepdims=False):
        hits = x == extreme(x, axis=axis, keepdims=True)
        share = hits / np.sum(hits, axis=axis, keepdims=True)
        if not keepdims:
            g = np.expand_dims(g, axis=tuple(range(x.ndim)) if axis is None else axis)
        return (g * share,)
    return reference


def extreme_ties(extreme: Callable) -> Callable:
    """How many reduction groups hold a tie for their extreme."""
    def count(x, *, axis=None, keepdims=False):
        hits = x == extreme(x, axis=axis, keepdims=True)
        return int(np.sum(np.sum(hits, axis=axis) > 1))
    return count


def pool_windows(x, window, padding, stride):
    """For each output position ``(n, c, i, j)`` of max pooling, the in-image positions
    ``(r, s)`` of its window in row-major order, by plain loops."""
    (n, c, h, w), (kh, kw), (ph, pw) = x.shape, window, padding
    sh, sw = stride or window
    rows, cols = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    for b, ch, i, j in np.ndindex(n, c, rows, cols):
        yield (b, ch, i, j), [(r, s) for r in range(i * sh - ph, i * sh - ph + kh)
                              for s in range(j * sw - pw, j * sw - pw + kw) if 0 <= r < h and 0 <= s < w]


def max_pool_reference(g, x, *, window, padding, stride, mode):
    """Each window's first maximum in row-major order takes all of that window's ``g``."""
    out = np.zeros_like(x)
    for (b, ch, i, j), places in pool_windows(x, window, padding, stride):
        values = [x[b, ch, r, s] for r, s in places]
        r, s = places[values.index(max(values))]
        out[b, ch, r, s] += g[b, ch, i, j]
    return (out,)


def max_pool_ties(x, *, window, padding, stride, mode) -> int:
    """How many windows hold their maximum more than once."""
    count = 0
    for (b, ch, _, _), places in pool_windows(x, window, padding, stride):
        values = [x[b, ch, r, s] for r, s in places]
        count += values.count(max(values)) > 1
    return count


@dataclass(frozen=True)
class TieSpec:
    """A rule's convention at ties: ``draw`` gives examples whose values lie on a coarse grid,
    ``ties(*args, **static)`` counts the ties in one (examples without any are rejected), and
    ``reference(g, *args, **static)`` is the VJP of every argument, in numpy, by the convention."""

    op: str
    draw: Callable[[Draw], Drawn]
    call: Callable
    reference: Callable
    ties: Callable


TIE_SPECS: list[TieSpec] = [
    TieSpec("maximum", binary(tied, tied), kn.maximum, share_ties(np.greater), elementwise_ties),
    TieSpec("minimum", binary(tied, tied), kn.minimum, share_ties(np.less), elementwise_ties),
    TieSpec("max", tied_reduction, kn.max, extreme_reference(np.max), extreme_ties(np.max)),
    TieSpec("min", tied_reduction, kn.min, extreme_reference(np.min), extreme_ties(np.min)),
    TieSpec("pool", pooling(tied, "max"), conv.pool, max_pool_reference, max_pool_ties),
]
