"""Random programs for differential fuzzing of knetapi against torch.autograd.

A *program* is data. Its parameters are leaves ``p0, p1, ...`` of a pytree of lists, tuples and
dicts (float64 arrays of at most 4 axes and 64 elements, or Python floats); its constants
``c0, c1, ...`` are arrays that are not differentiated (operands, masks, weights); each of its
3 to 30 steps computes one value ``v0, v1, ...``:

- one op of the rule table or the toolbox, ``v3 = kn.log((0.5 * v1 + 1.2))``, whose arguments may
  carry an affine map that keeps them inside the op's domain;
- a branch on a value, ``v4 = kn.tanh(v2) if kn.sum(v0) > 0.31 else kn.sin(v2)``;
- a loop with a static count whose body updates a state ``s``: ``for _ in range(3): s = ...``.

The loss is ``sum(kn.sum(v * c))`` over every value that no later step uses, with fixed random
weights ``c``. ``repr(program)`` is a listing that reads as code, with every number in it
(hypothesis prints it for a failing example).

:func:`programs` draws programs. It builds one step at a time and evaluates each on numpy as it
goes, so it knows every intermediate value: it maps arguments into the op's domain (``log`` of
positive values, ``acosh`` above 1, divisors away from 0) and rejects a step that would sit
*near* a kink, a tie, a jump or a branch threshold, where the rounding of one backend could land
on the other side. Half of the programs draw their numbers from multiples of 0.5, so that *exact*
zeros and ties, which rounding cannot break, are common; they are kept where knetapi's documented
convention is torch's (docs/design.md, "Kinks, ties and edge points"): ``relu'(0) = abs'(0) = 0``,
``elu'(0) = alpha``, ties of ``maximum``/``minimum`` and of ``max``/``min`` split the cotangent
equally, ``clip`` gives it to ``x`` at its bounds, max pooling to a window's first maximum,
``prod`` with zeros, stable ``sort``. Where the documented conventions differ from torch's, the
generator stays away: ``elu''(0)``, d/db d/da ``pow(a, b)`` at ``b == 0`` (programs with a
Hessian-vector product only) and ``clip`` with ``min == max``. It also avoids what torch itself
gets wrong: second derivatives of ``prod`` and ``cumprod`` at tiny nonzero inputs (:func:`tiny`).

:func:`check` runs a program with ``kn.value_and_grad`` on numpy, torch and array-api-strict
arrays and, independently, on torch tensors that require grad, differentiated by torch.autograd
(float64). For the standard's functions ``kn.<f>`` on raw torch tensors runs torch's own function
(through array_api_compat), so torch differentiates it with its own formulas; for knetapi's own
ops the oracle calls torch's (``torch.relu``, ``torch.logsumexp``, ``torch.clamp``, ``torch.cat``,
``F.conv2d``, ``F.conv_transpose2d``, ``F.max_pool2d``, ``F.cross_entropy``, ...; softplus is
``torch.logaddexp(x, 0)``, since ``F.softplus`` is linear above 20), and indexing gathers the
positions that numpy's indexing computes, so knetapi's implementations are compared too, not only
its rules. Loss, gradient and, for half of the programs, a Hessian-vector product must agree to
``RTOL`` relative to the largest element compared (:func:`assert_close`).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import knetapi as kn

BACKENDS = ("numpy", "torch", "strict")
MAX_SIZE = 64          # elements of any value
MAX_NDIM = 4
LIMIT = 1e6            # largest magnitude of any value
TIE = 1e-6             # two numbers closer than this (relative) but not equal are a near tie
RTOL = 1e-9            # error allowed, relative to the largest element compared (see assert_close)
ATOL = 1e-12           # and in absolute terms, for results that are zero up to rounding


# --- the program representation ---------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    """One step ``out = name(*args, **params)``.

    args:   refs (``"p0"`` a parameter, ``"c0"`` a constant, ``"v0"`` an earlier value, ``"s"`` a
            loop's state), Python floats, or None (a missing bound of ``clip``)
    params: static parameters; numpy arrays in them (keys, indices, labels) move to the backend
    pre:    ``(position, a, b)``: the argument at ``position`` enters as ``a * arg + b``
    """

    name: str
    args: tuple
    params: dict = field(default_factory=dict)
    pre: tuple = ()
    out: str = "s"

    def refs(self) -> set[str]:
        """Every ref the step reads, inside branches and loop bodies too."""
        found = {a for a in self.args if isinstance(a, str)}
        for sub in (*self.params.get("body", ()), self.params.get("then"), self.params.get("otherwise")):
            if sub is not None:
                found |= sub.refs()
        return found - {"s"}


@dataclass
class Program:
    """A program: see the module's docstring. ``direction`` (parameter ref -> array or float) is
    the direction of a Hessian-vector product, None for first order only; ``standard`` is False
    when an index key is outside the Array API standard (numpy's integer arrays mixed with
    slices), which array-api-strict refuses, so it does not run there."""

    tree: Any
    values: dict
    constants: dict
    steps: list
    loss: list
    direction: dict | None
    standard: bool

    def parameters(self, array: Callable) -> Any:
        """The parameter pytree, each array leaf passed through ``array`` (floats stay floats)."""
        return _map_tree(self.tree, lambda ref: _leaf(self.values[ref], array))

    def evaluate(self, params: Any, oracle: bool, array: Callable) -> Any:
        """The loss on ``params`` (a pytree shaped like :attr:`tree`); ``oracle``: torch's own
        functions where knetapi has its own; ``array``: numpy array -> array of the run."""
        env = dict(zip(_leaves(self.tree), _leaves(params)))
        env.update({ref: array(c) for ref, c in self.constants.items()})
        for step in self.steps:
            env[step.out] = apply(step, env, oracle, array)
        return functools.reduce(kn.add, [kn.sum(env[v] * env[w]) for v, w in self.loss])

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))            # hypothesis prints a failing program as the listing

    def __repr__(self) -> str:
        lines = [f"params = {_show_tree(self.tree)}"]
        lines += [f"{ref} = {_show_value(v)}" for ref, v in {**self.values, **self.constants}.items()]
        for step in self.steps:
            lines += _show_step(step)
        lines.append("loss = " + " + ".join(f"kn.sum({v} * {w})" for v, w in self.loss))
        if self.direction is not None:
            lines.append("Hessian-vector product along " +
                         ", ".join(f"{ref}: {_show_value(d)}" for ref, d in self.direction.items()))
        if not self.standard:
            lines.append("(index keys outside the standard: not run on array-api-strict)")
        return "\n".join(lines)


def _map_tree(tree, f):
    if isinstance(tree, dict):
        return {k: _map_tree(v, f) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map_tree(v, f) for v in tree)
    return f(tree)


def _leaves(tree) -> list:
    """The leaves in order: dicts in insertion order, lists and tuples in theirs."""
    out = []
    _map_tree(tree, out.append)
    return out


def _leaf(value, array: Callable):
    return value if isinstance(value, float) else array(value)


# --- the interpreter: each op for knetapi and for the oracle ------------------------------------

def _numpy_key(key):
    """An index key with its torch tensors as numpy arrays."""
    if isinstance(key, tuple):
        return tuple(_numpy_key(k) for k in key)
    return key.numpy() if isinstance(key, torch.Tensor) else key


def _gather(x: torch.Tensor, select: Callable) -> torch.Tensor:
    """The oracle's indexing: numpy computes which flat positions ``select`` (applied to
    ``arange(size).reshape(shape)``) picks; torch gathers them (its backward accumulates
    repeated positions)."""
    positions = select(np.arange(x.numel()).reshape(tuple(x.shape)))
    return x.reshape(-1)[torch.as_tensor(np.array(positions, copy=True))]


def _torch_logsumexp(x, *, axis=None, keepdims=False):
    if x.ndim == 0:
        return x
    return torch.logsumexp(x, dim=tuple(range(x.ndim)) if axis is None else axis, keepdim=keepdims)


def _torch_clamp(x, lo, hi):
    as_tensor = lambda b: torch.tensor(b, dtype=x.dtype) if isinstance(b, float) else b  # noqa: E731
    return torch.clamp(x, min=as_tensor(lo), max=as_tensor(hi))


def _torch_concat(*xs, axis):
    return torch.cat([x.reshape(-1) for x in xs]) if axis is None else torch.cat(xs, dim=axis)


def _torch_conv4(w, x, *, padding, stride, dilation, mode):
    return F.conv2d(x, w if mode == 1 else w.flip((2, 3)), padding=padding, stride=stride,
                    dilation=dilation)


def _torch_pool(x, *, window, padding, stride, mode):
    if mode == "max":
        return F.max_pool2d(x, window, stride=stride, padding=padding)
    return F.avg_pool2d(x, window, stride=stride, padding=padding, count_include_pad=True)


def _torch_nll(scores, *, labels, axis, average):
    reduction = "mean" if average else "sum"
    if scores.ndim == 1:
        return F.cross_entropy(scores, labels, reduction=reduction)
    return F.cross_entropy(torch.movedim(scores, axis, 1), labels, reduction=reduction)


def _torch_deconv4(w, x, *, padding, stride, dilation, mode):
    return F.conv_transpose2d(x, w if mode == 1 else w.flip((2, 3)), padding=padding, stride=stride,
                              dilation=dilation)


def _torch_unpool(x, *, window, padding, stride):
    """Knet's unpool, the transpose of sum pooling, as torch's gradient of ``area * avg_pool2d``."""
    size = tuple((n - 1) * s + k - 2 * p for n, k, p, s in zip(x.shape[2:], window, padding, stride))
    z = torch.zeros(tuple(x.shape[:2]) + size, dtype=x.dtype, requires_grad=True)
    pooled = F.avg_pool2d(z, window, stride=stride, padding=padding, count_include_pad=True)
    return torch.autograd.grad(pooled * (window[0] * window[1]), z, grad_outputs=x, create_graph=True)[0]


def _torch_index_add(base, values, *, key):
    """``base`` with ``values`` added at the positions that ``base[key]`` reads (repeats add up)."""
    positions = np.array(np.arange(base.numel()).reshape(tuple(base.shape))[_numpy_key(key)], copy=True)
    values = torch.broadcast_to(values, positions.shape).reshape(-1)
    flat = base.reshape(-1).index_add(0, torch.as_tensor(positions).reshape(-1), values)
    return flat.reshape(base.shape)


def _index(x, key):
    """``x[key]``: a traced value's operator, or ``kn.getitem`` for a raw array (a value computed
    from constants only), since torch's own ``[]`` refuses negative steps."""
    return x[key] if isinstance(x, kn.Traced) else kn.getitem(x, key=key)


def _float32_round_trip(x):
    xp = kn.array_namespace(x)          # the recording namespace of a traced x, with its dtypes
    return kn.astype(kn.astype(x, xp.float32), xp.float64)


@dataclass(frozen=True)
class Impl:
    """How to run one op: ``knetapi(*args, **params)`` with knetapi's functions (on traced values
    or raw arrays of any backend); ``torch``: torch's own function for the oracle (None: the
    knetapi call on raw torch tensors, which runs torch's function of the standard)."""

    knetapi: Callable
    torch: Callable | None = None


UNARY = ("negative positive abs square sqrt reciprocal exp expm1 log log1p log2 log10 sin cos tan "
         "asin acos atan sinh cosh tanh asinh acosh atanh").split()
BINARY = ("add subtract multiply divide pow atan2 hypot logaddexp maximum minimum remainder "
          "copysign").split()
REDUCTIONS = "sum mean prod max min var std".split()

IMPLS: dict[str, Impl] = {
    **{name: Impl(getattr(kn, name)) for name in UNARY + BINARY + REDUCTIONS},
    **{name: Impl(getattr(kn, name)) for name in (
        "cumulative_sum cumulative_prod matmul reshape permute_dims expand_dims squeeze flip "
        "broadcast_to matrix_transpose tril triu sort").split()},
    "relu": Impl(kn.relu, torch.relu),
    "sigm": Impl(kn.sigm, torch.sigmoid),
    "elu": Impl(kn.elu, lambda x, alpha: F.elu(x, alpha)),
    "softplus": Impl(kn.softplus, lambda x: torch.logaddexp(x, torch.zeros_like(x))),
    "logsumexp": Impl(kn.logsumexp, _torch_logsumexp),
    "roll": Impl(lambda x, shift, axis: kn.roll(x, shift, axis=axis)),
    "moveaxis": Impl(lambda x, source, destination: kn.moveaxis(x, source, destination)),
    "tile": Impl(lambda x, repetitions: kn.tile(x, repetitions)),
    "repeat": Impl(lambda x, repeats, axis: kn.repeat(x, repeats, axis=axis)),
    "clip": Impl(lambda x, lo, hi: kn.clip(x, min=lo, max=hi), _torch_clamp),
    "where": Impl(lambda c, a, b, threshold: kn.where(c > threshold, a, b),
                  lambda c, a, b, threshold: torch.where(c > threshold, a, b)),
    "concat": Impl(lambda *xs, axis: kn.concat(list(xs), axis=axis), _torch_concat),
    "stack": Impl(lambda *xs, axis: kn.stack(list(xs), axis=axis),
                  lambda *xs, axis: torch.stack(xs, dim=axis)),
    "getitem": Impl(_index, lambda x, key: _gather(x, lambda p: p[_numpy_key(key)])),
    "mask": Impl(lambda x, c, threshold: x[c > threshold],
                 lambda x, c, threshold: _gather(x, lambda p: p[(c > threshold).numpy()])),
    "take": Impl(lambda x, indices, axis: kn.take(x, indices, axis=axis),
                 lambda x, indices, axis: _gather(x, lambda p: np.take(p, indices.numpy(), axis=axis))),
    "take_along_axis": Impl(
        lambda x, indices, axis: kn.take_along_axis(x, indices, axis=axis),
        lambda x, indices, axis: _gather(x, lambda p: np.take_along_axis(p, indices.numpy(), axis))),
    "conv4": Impl(kn.conv4, _torch_conv4),
    "pool": Impl(kn.pool, _torch_pool),
    "softmax": Impl(kn.softmax, lambda x, axis: torch.softmax(x, dim=axis)),
    "logsoftmax": Impl(kn.logsoftmax, lambda x, axis: torch.log_softmax(x, dim=axis)),
    "nll": Impl(lambda x, labels, axis, average: kn.nll(x, labels, axis=axis, average=average),
                _torch_nll),
    "dropout": Impl(lambda x, mask: x * mask),       # a fixed mask of zeros and 1 / (1 - p)
    "item": Impl(lambda x, y: x * float(kn.value(kn.sum(y))),   # a value read as a float: no gradient
                 lambda x, y: x * float(torch.sum(y).detach())),
    "deconv4": Impl(kn.deconv4, _torch_deconv4),
    "unpool": Impl(kn.unpool, _torch_unpool),
    "bce": Impl(kn.bce, F.binary_cross_entropy_with_logits),
    "logistic": Impl(kn.logistic,
                     lambda x, labels: torch.logaddexp(-labels * x, torch.zeros_like(x)).mean()),
    "index_add": Impl(lambda base, values, key: kn.index_add(base, values, key=key), _torch_index_add),
    "vecdot": Impl(lambda x, y, axis: kn.vecdot(x, y, axis=axis)),
    "tensordot": Impl(lambda x, y, axes: kn.tensordot(x, y, axes=axes)),
    "outer": Impl(kn.outer),
    "diff": Impl(lambda x, prepend, append, axis, n:
                 kn.diff(x, axis=axis, n=n, prepend=prepend, append=append)),
    "unstack": Impl(lambda x, axis, index: kn.unstack(x, axis=axis)[index]),
    "meshgrid": Impl(lambda *xs, indexing, index: kn.meshgrid(*xs, indexing=indexing)[index]),
    "broadcast_arrays": Impl(lambda *xs, index: kn.broadcast_arrays(*xs)[index]),
    "astype": Impl(_float32_round_trip, lambda x: x.to(torch.float32).to(torch.float64)),
    "namespace": Impl(lambda x, function: getattr(kn.array_namespace(x), function)(x)),
}


def _on(value, array: Callable):
    """``value`` with its numpy arrays (inside tuples too) made arrays of the run."""
    if isinstance(value, np.ndarray):
        return array(value)
    if isinstance(value, tuple):
        return tuple(_on(v, array) for v in value)
    return value


def apply(step: Op, env: dict, oracle: bool, array: Callable) -> Any:
    """The value of ``step``, given the values of its refs in ``env``."""
    args = [env[a] if isinstance(a, str) else a for a in step.args]
    for i, a, b in step.pre:
        args[i] = a * args[i] + b
    if step.name == "branch":
        taken = step.params["then"] if kn.sum(args[0]) > step.params["threshold"] \
            else step.params["otherwise"]
        return apply(taken, env, oracle, array)
    if step.name == "loop":
        local = dict(env, s=args[0])
        for _ in range(step.params["count"]):
            for sub in step.params["body"]:
                local["s"] = apply(sub, local, oracle, array)
        return local["s"]
    impl = IMPLS[step.name]
    fn = impl.torch if oracle and impl.torch is not None else impl.knetapi
    return fn(*args, **{k: _on(v, array) for k, v in step.params.items()})


# --- the listing ------------------------------------------------------------------------------

def _show_value(v) -> str:
    if isinstance(v, float):
        return repr(v)
    dtype = "" if v.dtype == np.float64 else f", dtype=np.{v.dtype}"
    return f"np.array({v.tolist()!r}{dtype})"


def _show_tree(tree) -> str:
    if isinstance(tree, dict):
        return "{" + ", ".join(f"{k!r}: {_show_tree(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, tuple):
        return "(" + "".join(f"{_show_tree(v)}, " for v in tree) + ")"
    if isinstance(tree, list):
        return "[" + ", ".join(_show_tree(v) for v in tree) + "]"
    return tree


def _show_key(key) -> str:
    def part(p):
        if isinstance(p, slice):
            bounds = ("" if s is None else str(s) for s in (p.start, p.stop, p.step))
            return ":".join(bounds).rstrip(":") or ":"
        if p is Ellipsis:
            return "..."
        return _show_value(p) if isinstance(p, np.ndarray) else repr(p)
    if not isinstance(key, tuple):
        return part(key)
    return ", ".join(part(p) for p in key) if key else "()"


SHOW = {   # how the listing writes the ops that are not ``kn.<name>(*args, **params)``
    "getitem": "{0}[{key}]", "mask": "{0}[{1} > {threshold}]",
    "where": "kn.where({0} > {threshold}, {1}, {2})", "clip": "kn.clip({0}, min={1}, max={2})",
    "concat": "kn.concat([{all}], axis={axis})", "stack": "kn.stack([{all}], axis={axis})",
    "take": "kn.take({0}, {indices}, axis={axis})",
    "take_along_axis": "kn.take_along_axis({0}, {indices}, axis={axis})",
    "index_add": "kn.index_add({0}, {1}, key=({key},))",
    "repeat": "kn.repeat({0}, {repeats}, axis={axis})", "roll": "kn.roll({0}, {shift}, axis={axis})",
    "moveaxis": "kn.moveaxis({0}, {source}, {destination})", "tile": "kn.tile({0}, {repetitions})",
    "diff": "kn.diff({0}, prepend={1}, append={2}, axis={axis}, n={n})",
    "unstack": "kn.unstack({0}, axis={axis})[{index}]",
    "meshgrid": "kn.meshgrid({all}, indexing={indexing})[{index}]",
    "broadcast_arrays": "kn.broadcast_arrays({all})[{index}]",
    "astype": "kn.astype(kn.astype({0}, xp.float32), xp.float64)  # xp = kn.array_namespace({0})",
    "namespace": "kn.array_namespace({0}).{function}({0})",
    "dropout": "{0} * {1}  # dropout with a fixed mask", "item": "{0} * float(kn.value(kn.sum({1})))",
}


def _show_call(step: Op) -> str:
    args = [a if isinstance(a, str) else repr(a) for a in step.args]
    for i, a, b in step.pre:
        args[i] = f"({a!r} * {args[i]} + {b!r})"
    p = step.params
    if step.name == "branch":
        return (f"{_show_call(p['then'])} if kn.sum({args[0]}) > {p['threshold']!r} "
                f"else {_show_call(p['otherwise'])}")
    shown = {k: _show_key(v) if k == "key" else v if k == "function" else
             _show_value(v) if isinstance(v, np.ndarray) else repr(v) for k, v in p.items()}
    if step.name in SHOW:
        return SHOW[step.name].format(*args, all=", ".join(args), **shown)
    return f"kn.{step.name}({', '.join(args + [f'{k}={v}' for k, v in shown.items()])})"


def _show_step(step: Op) -> list[str]:
    if step.name != "loop":
        return [f"{step.out} = {_show_call(step)}"]
    return ([f"s = {step.args[0]}", f"for _ in range({step.params['count']}):"]
            + [f"    s = {_show_call(sub)}" for sub in step.params["body"]] + [f"{step.out} = s"])


# --- the generator ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Domain:
    """Where an argument must lie: ``[lo, hi]``, or with ``nonzero``, ``lo <= |x| <= hi``."""

    lo: float
    hi: float
    nonzero: bool = False

    def holds(self, x: np.ndarray) -> bool:
        m = np.abs(x) if self.nonzero else x
        return bool(np.all(m >= self.lo) and np.all(m <= self.hi))


ANYWHERE = Domain(-50.0, 50.0)
DOMAINS = {   # op: {argument position: its domain}; ANYWHERE only bounds the magnitude
    "square": {0: Domain(-30.0, 30.0)}, "sqrt": {0: Domain(0.3, 4.0)},
    "reciprocal": {0: Domain(0.3, 3.0, nonzero=True)}, "exp": {0: Domain(-4.0, 4.0)},
    "expm1": {0: Domain(-4.0, 4.0)}, "log": {0: Domain(0.3, 4.0)}, "log1p": {0: Domain(-0.6, 3.0)},
    "log2": {0: Domain(0.3, 4.0)}, "log10": {0: Domain(0.3, 4.0)}, "tan": {0: Domain(-1.2, 1.2)},
    "asin": {0: Domain(-0.8, 0.8)}, "acos": {0: Domain(-0.8, 0.8)}, "sinh": {0: Domain(-4.0, 4.0)},
    "cosh": {0: Domain(-4.0, 4.0)}, "acosh": {0: Domain(1.2, 4.0)}, "atanh": {0: Domain(-0.8, 0.8)},
    "sin": {0: ANYWHERE}, "cos": {0: ANYWHERE}, "elu": {0: Domain(-10.0, 10.0)},
    "divide": {1: Domain(0.5, 2.0, nonzero=True)},
    "pow": {0: Domain(0.5, 2.0), 1: Domain(-2.0, 2.0)},
    "atan2": {1: Domain(0.3, 3.0, nonzero=True)}, "hypot": {1: Domain(0.3, 3.0, nonzero=True)},
    "remainder": {1: Domain(0.5, 2.0, nonzero=True)},
    "copysign": {0: Domain(1e-3, 50.0, nonzero=True)},
    "logaddexp": {0: ANYWHERE, 1: ANYWHERE},
}
KINKED = {"abs", "relu", "elu"}        # a kink at 0: exact zeros allowed (torch's convention)
BOUNDED = ("tanh", "sin", "cos", "atan", "sigm", "softplus", "negative", "asinh")   # loop, branch bodies


def near(a, b) -> bool:
    """Whether some elements of ``a`` and ``b`` (broadcast) are close but not equal: a tie or a
    kink that the rounding of one backend could put on the other side."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    finite = np.isfinite(a) & np.isfinite(b)
    gap = np.abs(a - b)
    return bool(np.any(finite & (gap > 0) & (gap <= TIE * (1 + np.maximum(np.abs(a), np.abs(b))))))


def tiny(x: np.ndarray) -> bool:
    """Whether ``x`` has elements that are not zero but below 1e-3 of its scale: torch's second
    derivatives of ``prod`` and ``cumprod`` divide by them and lose digits (at 1e-8, eight; at
    1e-17 all: d/dx1 d/dx0 of ``x0 * x1 * x2`` comes out 0, not ``x2``), so the oracle would be
    wrong. Exact zeros are fine: torch handles them apart."""
    m = np.abs(x)
    return bool(np.any((m > 0) & (m < 1e-3 * max(1.0, float(np.max(m))))))


def broadcast(*shapes) -> tuple | None:
    """The broadcast shape, or None when the shapes do not broadcast or it is too large."""
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        return None
    return shape if math.prod(shape) <= MAX_SIZE and len(shape) <= MAX_NDIM else None


class Builder:
    """A program under construction, with the numpy value of every parameter and step."""

    def __init__(self, draw):
        self.draw = draw
        self.rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        self.lattice = draw(st.booleans())    # values on a lattice: exact zeros and ties
        self.hvp = draw(st.booleans())        # a Hessian-vector product is checked too
        self.values: dict[str, Any] = {}      # parameters and steps
        self.params: list[str] = []
        self.constants: dict[str, np.ndarray] = {}
        self.steps: list[Op] = []
        self.standard = True

    # --- refs ---
    def choose(self, options):
        """One of ``options``, uniformly (hypothesis' own draws favour the first one heavily when
        it mutates examples, which would make every program a chain of the first op)."""
        return options[int(self.rng.integers(len(options)))]

    def numbers(self, shape: tuple | None = None):
        """Values in [-2, 2]: uniform, or multiples of 0.5 in a lattice program (exact zeros,
        ties between elements and with themselves, which rounding cannot break). None: a float."""
        if self.lattice:
            values = 0.5 * self.rng.integers(-4, 5, shape)
        else:
            values = self.rng.uniform(-2.0, 2.0, shape)
        return round(float(values), 3) if shape is None else np.asarray(values, dtype=float)

    def new_param(self, shape: tuple | None) -> str:
        """A new parameter leaf: an array of ``shape``, or a Python float for None."""
        ref = f"p{len(self.params)}"
        self.params.append(ref)
        self.values[ref] = self.numbers(shape)
        return ref

    def new_constant(self, value: np.ndarray) -> str:
        ref = f"c{len(self.constants)}"
        self.constants[ref] = np.asarray(value)
        return ref

    def value(self, ref):
        """The numpy value of a ref (a float stays a float)."""
        if not isinstance(ref, str):
            return ref
        return self.constants[ref] if ref.startswith("c") else self.values[ref]

    def pick(self, accept: Callable[[np.ndarray], bool] = lambda v: True) -> str | None:
        """An earlier value (an array parameter or a step's value, of size >= 1) that ``accept``s;
        the most recent first, so that programs chain."""
        refs = [r for r, v in reversed(self.values.items())
                if not isinstance(v, float) and v.size >= 1 and accept(v)]
        return refs[self.draw(st.integers(0, len(refs) - 1))] if refs else None

    def shape_like(self, shape: tuple, expand: bool) -> tuple:
        """A shape broadcasting with ``shape``: fewer leading axes, axes of size 1; with ``expand``
        also new leading axes and stretched size-1 axes."""
        draw = self.draw
        out = [1 if draw(st.booleans()) else n for n in shape[draw(st.integers(0, len(shape))):]]
        if expand:
            out = [draw(st.integers(1, 3)) if n == 1 else n for n in out]
            out = [draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 1)))] + out
        return tuple(out)

    def partner(self, shape: tuple, expand: bool = True, scalars: bool = True):
        """A second operand for an elementwise op with an argument of ``shape``: an earlier value,
        a new parameter or constant of a shape broadcasting with it (to ``shape`` itself unless
        ``expand``), or with ``scalars`` a float parameter or a float."""
        kinds = ["value", "param", "constant"] + (["float", "float param"] if scalars else [])
        kind = self.choose(kinds)

        def fits(s):
            return broadcast(shape, s) is not None if expand else broadcast(shape, s) == shape

        if kind == "value":
            ref = self.pick(lambda v: fits(v.shape))
            if ref is not None:
                return ref
        if kind == "float":
            return self.numbers()
        if kind == "float param":
            return self.new_param(None)
        s = self.shape_like(shape, expand)
        if not fits(s):
            s = ()
        return self.new_param(s) if kind == "param" else self.new_constant(self.numbers(s))

    def fit(self, ref, domain: Domain | None) -> tuple[float, float] | None:
        """``(a, b)`` such that ``a * x + b`` lies in ``domain`` for the value ``x`` of ``ref``
        (a random part of the domain, within [-3, 3]), or None if ``x`` lies in it already."""
        x = np.asarray(self.value(ref), dtype=float)
        if domain is None or domain.holds(x):
            return None
        lo, hi = max(domain.lo, -3.0), min(domain.hi, 3.0)
        width = (hi - lo) * self.draw(st.sampled_from([0.9, 0.5, 0.1]))
        start = lo + (hi - lo - width) * self.draw(st.sampled_from([0.5, 0.0, 0.95]))
        xmin, xmax = float(np.min(x)), float(np.max(x))
        a = width / (xmax - xmin) if xmax > xmin else 1.0
        if domain.nonzero and self.draw(st.booleans()):
            a = -a                                  # the negative side: xmin goes to -start
            b = -start - a * xmin
        else:
            b = start - a * xmin
        rounded = float(f"{a:.2g}"), round(b, 3)
        return rounded if domain.holds(rounded[0] * x + rounded[1]) else (a, b)

    def arg(self, step: Op, i: int) -> np.ndarray:
        """The numpy value of argument ``i`` of ``step`` as the op sees it (after its map)."""
        x = np.asarray(self.value(step.args[i]), dtype=float)
        for j, a, b in step.pre:
            if j == i:
                x = a * x + b
        return x

    def evaluate(self, step: Op):
        env = {**self.values, **self.constants}
        return apply(step, env, False, lambda a: a)

    def emit(self, step: Op) -> str | None:
        """Add ``step`` if its value is a float array, finite, small and of bounded magnitude;
        return its ref, or None (and the step is not added)."""
        ref = f"v{len(self.steps)}"
        step = Op(step.name, step.args, step.params, step.pre, ref)
        value = np.asarray(self.evaluate(step))
        if value.dtype != np.float64 or value.size > MAX_SIZE or value.ndim > MAX_NDIM \
                or not np.all(np.isfinite(value)) or np.any(np.abs(value) > LIMIT):
            return None
        self.steps.append(step)
        self.values[ref] = value
        return ref

    def attempt(self, family: Callable[["Builder"], Op | None]) -> bool:
        """Draw one step of ``family`` and add it; on failure forget the refs it made."""
        marks = (len(self.params), len(self.constants), len(self.steps), self.standard)
        step = family(self)
        if step is not None and self.emit(step) is not None:
            return True
        n_params, n_constants, n_steps, self.standard = marks
        for ref in self.params[n_params:]:
            del self.values[ref]
        for ref in list(self.constants)[n_constants:]:
            del self.constants[ref]
        for step in self.steps[n_steps:]:
            del self.values[step.out]
        del self.params[n_params:], self.steps[n_steps:]
        return False

    # --- shared draws ---
    def axis(self, ndim: int) -> int:
        return self.draw(st.integers(-ndim, ndim - 1))

    def axes(self, ndim: int):
        """None, one axis or a tuple of distinct axes (None for a 0-d array)."""
        if ndim == 0:
            return None
        kind = self.choose(["one", "none", "tuple"])
        if kind == "none":
            return None
        if kind == "one":
            return self.axis(ndim)
        chosen = self.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        return tuple(a - ndim if self.draw(st.booleans()) else a for a in chosen)

    def threshold(self, values: np.ndarray) -> float:
        """A threshold between two of the distinct ``values`` (or beyond them all), far from each."""
        points = np.unique(values)
        cut = self.draw(st.integers(0, len(points)))
        if 0 < cut < len(points) and not near(values, (points[cut - 1] + points[cut]) / 2):
            return float((points[cut - 1] + points[cut]) / 2)
        return float(points[0]) - 0.5 if cut == 0 else float(points[-1]) + 0.5

    def image(self) -> str | None:
        """A 4-d value (N, C, H, W): an earlier one, or a new reshape of one into four axes."""
        if self.draw(st.booleans()):
            ref = self.pick(lambda v: v.ndim == 4)
            if ref is not None:
                return ref
        ref = self.pick()
        n = self.values[ref].size
        divisors = lambda m: [d for d in range(1, min(m, 3) + 1) if m % d == 0]  # noqa: E731
        batch = self.draw(st.sampled_from(divisors(n)))
        channels = self.draw(st.sampled_from(divisors(n // batch)))
        rest = n // batch // channels
        rows = self.draw(st.sampled_from([d for d in range(1, rest + 1) if rest % d == 0]))
        return self.emit(Op("reshape", (ref,), dict(shape=(batch, channels, rows, rest // rows))))


# --- step families: each draws one step (or returns None when it does not apply) -----------------

def unary(b: Builder) -> Op | None:
    name = b.choose(UNARY + ["relu", "sigm", "elu", "softplus"])
    x = b.pick()
    fit = b.fit(x, DOMAINS.get(name, {}).get(0))
    step = Op(name, (x,), dict(alpha=b.draw(st.sampled_from([1.0, 0.5, 2.0]))) if name == "elu" else {},
              () if fit is None else ((0, *fit),))
    x = b.arg(step, 0)
    if name in KINKED and near(x, 0.0):
        return None
    if name == "elu" and b.hvp and np.any(x == 0):
        return None                         # elu''(0): alpha here, 0 in torch (docs/design.md)
    return step


def binary(b: Builder) -> Op | None:
    name = b.choose(BINARY)
    x = b.pick()
    args = (x, b.partner(b.values[x].shape))
    if name in ("add", "multiply", "pow", "maximum", "minimum") and b.draw(st.booleans()):
        args = args[::-1]                   # the partner on the left: a float, a broadcast array
    domains = DOMAINS.get(name, {})
    pre = []
    for i, a in enumerate(args):
        if i in domains and isinstance(a, float):
            d = domains[i]
            args = args[:i] + (float(np.clip(a, d.lo, d.hi)) if not d.nonzero else
                               math.copysign(min(max(abs(a), d.lo), d.hi), a),) + args[i + 1:]
        elif i in domains:
            fit = b.fit(a, domains[i])
            pre += [] if fit is None else [(i, *fit)]
    step = Op(name, args, {}, tuple(pre))
    left, right = b.arg(step, 0), b.arg(step, 1)
    if name in ("maximum", "minimum") and near(left, right):
        return None
    if name == "copysign" and np.any(np.abs(right) <= TIE):
        return None                         # a jump in the sign argument (and -0.0 is not 0.0)
    if name == "atan2" and np.any((np.abs(left) <= TIE) & (right < 0)):
        return None                         # the branch cut: atan2(+-0, x < 0) = +-pi
    if name == "pow" and b.hvp and np.any(right == 0):
        return None                         # d/db d/da at b == 0: 1/a here, 0 in torch (docs/design.md)
    if name == "remainder":
        q = left / right
        if np.any(np.abs(q - np.round(q)) < 1e-6):      # a jump of the remainder
            return None
    return step


def reduction(b: Builder) -> Op | None:
    name = b.choose(REDUCTIONS + ["logsumexp"])
    x = b.pick()
    v = b.values[x]
    params = dict(axis=b.axes(v.ndim), keepdims=b.draw(st.booleans()))
    if name in ("var", "std"):
        count = v.size // np.max(v, axis=params["axis"], keepdims=True).size
        params["correction"] = b.draw(st.sampled_from([0.0, 1.0])) if count > 1 else 0.0
        spread = np.var(v, axis=params["axis"])
        if name == "std" and np.any(spread <= TIE * (1 + np.max(v * v))):
            return None                     # std is not differentiable at 0
    if name in ("max", "min"):
        extreme = getattr(np, name)(v, axis=params["axis"], keepdims=True)
        if near(v, extreme):
            return None
    if name == "prod" and b.hvp and tiny(v):
        return None
    return Op(name, (x,), params)


def cumulative(b: Builder) -> Op | None:
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    ndim = b.values[x].ndim
    axis = b.draw(st.none() | st.integers(-1, 0)) if ndim == 1 else b.axis(ndim)
    name = b.choose(["cumulative_sum", "cumulative_prod"])
    if name == "cumulative_prod" and b.hvp and tiny(b.values[x]):
        return None
    return Op(name, (x,), dict(axis=axis, include_initial=b.draw(st.booleans())))


def matmul(b: Builder) -> Op | None:
    """``x @ y`` with ``y`` a vector or a matrix, or ``y @ x``; ``y`` an earlier value of the
    right shape if there is one, else a new parameter or constant."""
    x = b.pick(lambda v: 1 <= v.ndim <= 3)
    if x is None:
        return None
    shape = b.values[x].shape
    form = b.choose(["matrix", "vector", "left"])
    m = b.draw(st.integers(1, 4))
    need = {"vector": (shape[-1],), "matrix": (shape[-1], m),
            "left": (m, shape[-2] if len(shape) >= 2 else shape[-1])}[form]
    y = b.pick(lambda v: v.shape == need) if b.draw(st.booleans()) else None
    if y is None:
        y = b.new_param(need) if b.draw(st.booleans()) else b.new_constant(b.numbers(need))
    return Op("matmul", (y, x) if form == "left" else (x, y))


def reshape_like(b: Builder) -> Op | None:
    """reshape, permute_dims, expand_dims, squeeze, flip, roll, broadcast_to, matrix_transpose,
    tril/triu, moveaxis, tile, repeat or sort."""
    name = b.choose(["reshape", "permute_dims", "expand_dims", "squeeze", "flip", "roll",
                                   "broadcast_to", "matrix_transpose", "tril", "moveaxis", "tile",
                                   "repeat", "sort"])
    needs = {"permute_dims": 2, "matrix_transpose": 2, "tril": 2, "moveaxis": 2, "roll": 1,
             "repeat": 1, "sort": 1}
    x = b.pick(lambda v: v.ndim >= needs.get(name, 0))
    if x is None:
        return None
    v = b.values[x]
    draw, ndim = b.draw, v.ndim
    if name == "reshape":
        rank = draw(st.integers(0 if v.size == 1 else 1, MAX_NDIM))
        shape, rest = [], v.size
        for _ in range(rank - 1):
            shape.append(draw(st.sampled_from([d for d in range(1, rest + 1) if rest % d == 0])))
            rest //= shape[-1]
        shape += [rest] if rank else []
        if rank and draw(st.booleans()):
            shape[draw(st.integers(0, rank - 1))] = -1
        return Op(name, (x,), dict(shape=tuple(shape)))
    if name == "permute_dims":
        return Op(name, (x,), dict(axes=tuple(draw(st.permutations(range(ndim))))))
    if name == "expand_dims":
        return Op(name, (x,), dict(axis=draw(st.integers(-ndim - 1, ndim)))) if ndim < MAX_NDIM else None
    if name == "squeeze":
        ones = [a for a in range(ndim) if v.shape[a] == 1]
        if not ones:
            return None
        chosen = tuple(draw(st.lists(st.sampled_from(ones), min_size=1, unique=True)))
        axis = chosen if len(chosen) > 1 else chosen[0] - ndim * draw(st.booleans())
        return Op(name, (x,), dict(axis=axis))
    if name == "flip":
        return Op(name, (x,), dict(axis=b.axes(ndim)))
    if name == "roll":
        axis = b.axes(ndim)
        shift = tuple(draw(st.integers(-5, 5)) for _ in axis) if isinstance(axis, tuple) \
            else draw(st.integers(-5, 5))
        return Op(name, (x,), dict(shift=shift, axis=axis))
    if name == "broadcast_to":
        shape = b.shape_like(v.shape, expand=True)
        target = broadcast(v.shape, shape)
        return None if target is None else Op(name, (x,), dict(shape=target))
    if name == "matrix_transpose":
        return Op(name, (x,))
    if name == "tril":
        return Op(b.choose(["tril", "triu"]), (x,), dict(k=draw(st.integers(-2, 2))))
    if name == "moveaxis":
        return Op(name, (x,), dict(source=b.axis(ndim), destination=b.axis(ndim)))
    if name == "tile":
        return Op(name, (x,), dict(repetitions=tuple(draw(st.lists(st.integers(1, 2), max_size=3)))))
    if name == "repeat":
        axis = draw(st.none() | st.integers(-ndim, ndim - 1))
        n = v.size if axis is None else v.shape[axis]
        repeats = draw(st.integers(0, 2)) if draw(st.booleans()) else b.rng.integers(0, 3, n)
        return Op(name, (x,), dict(repeats=repeats, axis=axis))
    axis = b.axis(ndim)
    if near(np.diff(np.sort(v, axis=axis), axis=axis), 0.0):
        return None
    return Op(name, (x,), dict(axis=axis, descending=draw(st.booleans())))


def index_key(b: Builder, shape: tuple, kind: str):
    """An index key for an array of ``shape``: ``"basic"`` (ints, slices, ``...``, None, in the
    standard's spelling), ``"arrays"`` (an integer array or an int per axis, repeats likely),
    ``"slice and array"`` (slices, then one integer array: numpy's rule, outside the standard)."""
    draw, ndim = b.draw, len(shape)
    if kind == "basic":
        key = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
        key = key if isinstance(key, tuple) else (key,)
        if Ellipsis not in key and sum(p is not None for p in key) < ndim:
            key += (Ellipsis,)              # the standard's spelling of the axes left out
        return key
    if kind == "arrays":
        result = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
        return tuple(int(b.rng.integers(-n, n)) if draw(st.booleans()) else b.rng.integers(-n, n, result)
                     for n in shape)
    b.standard = False
    axis = draw(st.integers(0, ndim - 1))
    slices = st.sampled_from([slice(None), slice(None, None, -1), slice(1, None)])
    lead = tuple(draw(slices) for _ in range(axis))
    result = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    return lead + (b.rng.integers(-shape[axis], shape[axis], result),)


def index(b: Builder) -> Op | None:
    """``x[key]`` (see :func:`index_key`), with a constant mask or a mask ``c > t`` of values;
    take; take_along_axis; ``index_add`` (a scatter-add, repeated indices accumulate)."""
    draw = b.draw
    kind = b.choose(["basic", "arrays", "slice and array", "mask", "values mask", "take",
                                 "take_along_axis", "index_add"])
    x = b.pick(lambda v: v.ndim >= 1)
    if x is None:
        return None
    v = b.values[x]
    shape, ndim = v.shape, v.ndim
    if kind in ("basic", "arrays", "slice and array"):
        return Op("getitem", (x,), dict(key=index_key(b, shape, kind)))
    if kind == "index_add":
        key = index_key(b, shape, b.choose(["basic", "arrays", "slice and array"]))
        target = v[key].shape
        return Op("index_add", (x, b.partner(target, expand=False, scalars=False)), dict(key=key)) \
            if math.prod(target) else None
    if kind == "mask":
        mask = b.rng.uniform(size=shape[:draw(st.integers(1, ndim))]) < 0.5
        return Op("getitem", (x,), dict(key=mask))
    if kind == "values mask":
        c = b.pick(lambda u: u.ndim >= 1 and u.shape == shape[:u.ndim])
        return Op("mask", (x, c), dict(threshold=b.threshold(b.values[c])))
    axis = b.axis(ndim)
    if kind == "take":
        if ndim == 1 and draw(st.booleans()):
            axis = None
        n = shape[0 if axis is None else axis]
        return Op("take", (x,), dict(indices=b.rng.integers(-n, n, draw(st.integers(0, 4))), axis=axis))
    index_shape = [draw(st.sampled_from([n, 1])) for n in shape]
    index_shape[axis] = draw(st.integers(1, 4))
    return Op("take_along_axis", (x,), dict(indices=b.rng.integers(0, shape[axis], tuple(index_shape)),
                                            axis=axis))


def operand(b: Builder, shape: tuple) -> str:
    """An earlier value of exactly ``shape``, or a new parameter or constant of it."""
    source = b.choose(["value", "param", "constant"])
    ref = b.pick(lambda v: v.shape == shape) if source == "value" else None
    if ref is None:
        ref = b.new_param(shape) if source == "param" else b.new_constant(b.numbers(shape))
    return ref


def contraction(b: Builder) -> Op | None:
    """vecdot along an axis counted from the end, tensordot over 0 to 2 axes, outer."""
    draw = b.draw
    name = b.choose(["vecdot", "tensordot", "outer"])
    x = b.pick(lambda v: v.ndim == 1 if name == "outer" else v.ndim >= 1)
    if x is None:
        return None
    shape, ndim = b.values[x].shape, b.values[x].ndim
    if name == "outer":
        return Op(name, (x, operand(b, (draw(st.integers(1, 4)),))))
    if name == "vecdot":
        axis = draw(st.integers(-ndim, -1))
        other = tuple(n if i == 0 or draw(st.booleans()) else 1 for i, n in enumerate(shape[axis:]))
        return Op(name, (x, operand(b, other)), dict(axis=axis))
    axes = draw(st.integers(0, min(2, ndim)))
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=1)))
    return Op(name, (x, operand(b, shape[ndim - axes:] + extra)), dict(axes=axes))


def pieces(b: Builder) -> Op | None:
    """diff (with prepend/append), one array of unstack, meshgrid or broadcast_arrays, a float32
    round trip (astype), a function of the recording namespace ``kn.array_namespace(x)``."""
    draw = b.draw
    name = b.choose(["diff", "unstack", "meshgrid", "broadcast_arrays", "astype", "namespace"])
    x = b.pick(lambda v: v.ndim == 1 if name == "meshgrid" else v.ndim >= 1 or name in
               ("broadcast_arrays", "astype", "namespace"))
    if x is None:
        return None
    shape, ndim = b.values[x].shape, b.values[x].ndim
    if name == "diff":
        axis = b.axis(ndim)

        def edge():
            if draw(st.booleans()):
                return None
            return operand(b, shape[:axis % ndim] + (draw(st.integers(1, 2)),) + shape[axis % ndim + 1:])
        return Op(name, (x, edge(), edge()), dict(axis=axis, n=draw(st.integers(1, 2))))
    if name == "unstack":
        axis = b.axis(ndim)
        return Op(name, (x,), dict(axis=axis, index=draw(st.integers(0, shape[axis] - 1))))
    if name == "meshgrid":
        xs = (x,) + tuple(b.pick(lambda v: v.ndim == 1) for _ in range(draw(st.integers(0, 2))))
        return Op(name, xs, dict(indexing=draw(st.sampled_from(["xy", "ij"])),
                                 index=draw(st.integers(0, len(xs) - 1))))
    if name == "broadcast_arrays":
        return Op(name, (x, b.partner(shape, scalars=False)), dict(index=draw(st.integers(0, 1))))
    if name == "astype":
        return Op(name, (x,))
    return Op(name, (x,), dict(function=b.choose([f for f in BOUNDED if f in UNARY])))


def join(b: Builder) -> Op | None:
    """concat (along an axis, or flattened) or stack of a value with others or itself."""
    name = b.choose(["concat", "stack", "concat flat"])
    x = b.pick(lambda v: v.ndim >= 1) if name == "concat" else b.pick()
    if x is None:
        return None
    shape, ndim = b.values[x].shape, b.values[x].ndim
    axis = b.axis(ndim) if name == "concat" else b.draw(st.integers(-ndim - 1, ndim)) \
        if name == "stack" else None
    parts = [x]
    for _ in range(b.draw(st.integers(1, 2))):
        want = list(shape)
        if name == "concat":
            want[axis] = b.draw(st.integers(1, 3))
        elif name == "concat flat":
            want = list(b.shape_like(shape, expand=True))
        want = tuple(want)
        source = b.choose(["value", "param", "constant"])
        ref = b.pick(lambda v: v.shape == want) if source == "value" else None
        if ref is None:
            ref = b.new_param(want) if source == "param" else b.new_constant(b.numbers(want))
        parts.append(ref)
    return Op("stack" if name == "stack" else "concat", tuple(parts), dict(axis=axis))


def where(b: Builder) -> Op | None:
    """``kn.where(c > t, x, y)``: ``c`` an earlier value or a constant, ``t`` away from its values."""
    x = b.pick()
    shape = b.values[x].shape
    c = b.pick(lambda v: broadcast(shape, v.shape) == shape) if b.draw(st.booleans()) else None
    if c is None:
        c = b.new_constant(b.rng.uniform(-1.0, 1.0, b.shape_like(shape, expand=False)))
    return Op("where", (c, x, b.partner(shape)), dict(threshold=b.threshold(b.value(c))))


def clip(b: Builder) -> Op | None:
    """``kn.clip(x, min=lo, max=hi)``; each bound None, a float (0.0 meets relu's zeros exactly),
    or an array broadcasting to x (a value, a new parameter or constant); ``lo <= hi``."""
    x = b.pick()
    v = b.values[x]
    centre = 0.5 * round(2 * float(np.median(v)))    # on the lattice: a tie with x is exact, not luck

    def bound(sign: float):
        kind = b.choose(["float", "none", "array", "zero"])
        if kind == "none":
            return None
        if kind == "zero":
            return 0.0
        if kind == "float":
            return round(centre + sign * 0.75 * abs(b.numbers()), 3)
        shape = b.shape_like(v.shape, expand=False)
        values = centre + sign * 0.75 * np.abs(b.numbers(shape))
        ref = b.pick(lambda u: broadcast(v.shape, u.shape) == v.shape) if b.draw(st.booleans()) else None
        if ref is not None:
            return ref
        return b.new_constant(values) if b.draw(st.booleans()) else _param_with(b, values)

    lo, hi = bound(-1.0), bound(1.0)
    if lo is None and hi is None:
        return None
    lows, highs = (np.asarray(b.value(r), dtype=float) for r in (-np.inf if lo is None else lo,
                                                                 np.inf if hi is None else hi))
    if np.any(lows >= highs) or near(v, lows) or near(v, highs):
        return None                         # min == max: torch drops the gradient (docs/design.md)
    return Op("clip", (x, lo, hi))


def _param_with(b: Builder, values: np.ndarray) -> str:
    ref = b.new_param(np.shape(values))
    b.values[ref] = np.asarray(values, dtype=float)
    return ref


def toolbox(b: Builder) -> Op | None:
    """conv4, deconv4, pool (max or average), unpool, softmax, logsoftmax, nll, bce, logistic,
    dropout with a fixed mask."""
    draw = b.draw
    name = b.choose(["conv4", "pool", "softmax", "logsoftmax", "nll", "dropout", "deconv4",
                                 "unpool", "bce", "logistic"])
    if name in ("conv4", "deconv4", "pool", "unpool"):
        return _images(b, name)
    x = b.pick(lambda v: v.ndim >= 1 or name in ("bce", "logistic"))
    if x is None:
        return None
    v = b.values[x]
    if name in ("bce", "logistic"):
        labels = 1.0 * b.rng.integers(0, 2, v.shape)            # bce: 0 or 1; logistic: -1 or 1
        return Op(name, (x, b.new_constant(labels if name == "bce" else 2 * labels - 1)))
    if name == "dropout":
        p = draw(st.sampled_from([0.5, 0.2]))
        return Op("dropout", (x, b.new_constant((b.rng.uniform(size=v.shape) >= p) / (1 - p))))
    axis = b.axis(v.ndim)
    if name != "nll":
        return Op(name, (x,), dict(axis=axis))
    labels = b.rng.integers(0, v.shape[axis], tuple(np.delete(v.shape, axis % v.ndim)))
    return Op("nll", (x,), dict(labels=labels, axis=axis, average=draw(st.booleans())))


def _images(b: Builder, name: str) -> Op | None:
    """conv4, deconv4, pool or unpool of a 4-d value (N, C, H, W), with a drawn geometry."""
    draw = b.draw
    x = b.image()
    if x is None:
        return None
    n, c, h, w = b.values[x].shape
    pair = lambda low, high: (draw(st.integers(low, high)), draw(st.integers(low, high)))  # noqa: E731
    kernel, stride = pair(1, 3), pair(1, 2)
    if name in ("pool", "unpool"):
        padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
        if name == "unpool":
            if any((n - 1) * s + k - 2 * p < 1 for n, s, k, p in zip((h, w), stride, kernel, padding)):
                return None
            return Op(name, (x,), dict(window=kernel, padding=padding, stride=stride))
        mode = b.choose(["max", "avg"])
        if any(k > size + 2 * p for k, size, p in zip(kernel, (h, w), padding)):
            return None
        if mode == "max" and near(*_windows(b.values[x], kernel, padding, stride)):
            return None
        return Op(name, (x,), dict(window=kernel, padding=padding, stride=stride, mode=mode))
    padding, dilation = pair(0, 1), pair(1, 2)
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    if name == "conv4" and any(span > size + 2 * p for span, size, p in zip(spans, (h, w), padding)):
        return None
    if name == "deconv4" and any((size - 1) * s - 2 * p + span < 1
                                 for size, s, p, span in zip((h, w), stride, padding, spans)):
        return None
    shape = ((draw(st.integers(1, 3)), c) if name == "conv4" else (c, draw(st.integers(1, 3)))) + kernel
    weights = b.pick(lambda v: v.shape == shape) if draw(st.booleans()) else None
    return Op(name, (weights or b.new_param(shape), x),
              dict(padding=padding, stride=stride, dilation=dilation, mode=b.choose([1, 0])))


def _windows(x: np.ndarray, window, padding, stride) -> tuple[np.ndarray, np.ndarray]:
    """The windows of max pooling, (N, C, Ho, Wo, kh * kw) with -inf padding, and their maxima."""
    (ph, pw), (kh, kw), (sh, sw) = padding, window, stride
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    ho, wo = (padded.shape[2] - kh) // sh + 1, (padded.shape[3] - kw) // sw + 1
    parts = [padded[:, :, a:a + sh * (ho - 1) + 1:sh, c:c + sw * (wo - 1) + 1:sw]
             for a in range(kh) for c in range(kw)]
    stacked = np.stack(parts, axis=-1)
    return stacked, np.max(stacked, axis=-1, keepdims=True)


def control(b: Builder) -> Op | None:
    """A branch on ``kn.sum(c) > t``, a loop with a static count, or a value used as a float."""
    draw = b.draw
    kind = b.choose(["branch", "loop", "item"])
    x = b.pick()
    if kind == "item":
        return Op("item", (x, b.pick()))
    if kind == "branch":
        c = b.pick()
        total = float(np.sum(b.values[c]))
        offset = b.choose([-1.0, 1.0]) * draw(st.sampled_from([0.5, 0.05]))    # which branch runs
        threshold = round(total + offset, 3)
        then, otherwise = (Op(b.choose(BOUNDED), (x,)) for _ in range(2))
        return Op("branch", (c,), dict(threshold=threshold, then=then, otherwise=otherwise))
    shape = b.values[x].shape
    body = []
    for _ in range(draw(st.integers(1, 3))):
        kind = b.choose(["bounded", "add", "multiply", "matmul"])
        if kind == "bounded":
            body.append(Op(b.choose(BOUNDED), ("s",)))
        elif kind == "matmul" and shape:
            square = (shape[-1], shape[-1])
            w = b.pick(lambda v: v.shape == square) if draw(st.booleans()) else None
            body.append(Op("matmul", ("s", w or b.new_param(square))))
        else:
            body.append(Op(kind if kind == "multiply" else "add", ("s", b.partner(shape, expand=False))))
    return Op("loop", (x,), dict(count=draw(st.integers(1, 4)), body=tuple(body)))


FAMILIES = (unary, binary, reduction, matmul, reshape_like, index, unary, binary, join, where, clip,
            toolbox, control, cumulative, contraction, pieces)


def _nest(b: Builder, refs: list[str]) -> Any:
    """A pytree of lists, tuples and dicts whose leaves, in order, are ``refs``."""
    if len(refs) == 1 and b.draw(st.booleans()):
        return refs[0]
    groups, rest = [], list(refs)
    while rest:
        size = b.draw(st.integers(1, len(rest)))
        groups.append(rest[:size] if size > 1 else rest[0])
        rest = rest[size:]
    kind = b.choose(["dict", "list", "tuple"])
    nested = [_nest(b, g) if isinstance(g, list) else g for g in groups]
    return {f"w{i}": g for i, g in enumerate(nested)} if kind == "dict" else \
        (tuple(nested) if kind == "tuple" else nested)


@st.composite
def programs(draw, min_steps: int = 3, max_steps: int = 30) -> Program:
    """Programs of ``min_steps`` to ``max_steps`` steps (a reshape that conv4 or pool needs may
    add one); about half of them with a Hessian-vector product."""
    b = Builder(draw)
    base = tuple(draw(st.lists(st.integers(1, 4), max_size=3)))
    b.new_param(base)
    for _ in range(draw(st.integers(0, 2))):
        b.new_param(b.shape_like(base, expand=False) if draw(st.booleans()) else
                    tuple(draw(st.lists(st.integers(1, 4), max_size=3))))
    steps = draw(st.integers(min_steps, max_steps))
    for _ in range(4 * steps):
        if len(b.steps) >= steps:
            break
        b.attempt(b.choose(FAMILIES))
    while not b.steps:
        b.attempt(unary)
    used = set().union(*(step.refs() for step in b.steps))
    loss = [(s.out, b.new_constant(b.rng.standard_normal(b.values[s.out].shape)))
            for s in b.steps if s.out not in used]
    direction = None
    if b.hvp:
        direction = {ref: float(b.rng.standard_normal()) if isinstance(b.values[ref], float)
                     else b.rng.standard_normal(b.values[ref].shape) for ref in b.params}
    params = {ref: b.values[ref] for ref in b.params}
    return Program(_nest(b, list(b.params)), params, b.constants, b.steps, loss, direction, b.standard)


# --- the runner -------------------------------------------------------------------------------

@dataclass
class Result:
    """A run's loss, its gradient's leaves and the Hessian-vector product's (None: not asked)."""

    loss: Any
    gradient: list
    hvp: list | None


def _dot(gradient, direction) -> Any:
    """``sum(g * d)`` over the leaves, added with ``kn.add``: an unreached leaf's gradient is a raw
    array, and array-api-strict's ``+`` refuses a traced right operand."""
    return functools.reduce(kn.add, [kn.sum(g * d) for g, d in zip(gradient, direction)])


def run_knetapi(program: Program, backend: str) -> Result:
    """The program under ``kn.value_and_grad`` (and ``kn.grad`` of its directional derivative)
    with every array on ``backend``; checks the gradient's structure, leaf types and shapes."""
    array = lambda a: kn.convert(a, backend)  # noqa: E731
    params = program.parameters(array)

    def loss(p):
        return program.evaluate(p, False, array)

    with warnings.catch_warnings():     # a loss that does not depend on the parameters, or a
        warnings.simplefilter("ignore", kn.IndependentOutputWarning)   # linear one at order 2
        value, gradient = kn.value_and_grad(loss)(params)
        assert _map_tree(gradient, lambda _: 0) == _map_tree(params, lambda _: 0), "gradient's structure"
        for g, p in zip(_leaves(gradient), _leaves(params)):
            if isinstance(p, float):
                assert isinstance(g, float), f"the gradient of a float parameter is a {type(g)}"
            else:
                assert kn.backend_of(g).name == backend and g.shape == p.shape and g.dtype == p.dtype
        hvp = None
        if program.direction is not None:
            direction = _leaves(_map_tree(program.tree, lambda r: _leaf(program.direction[r], array)))
            hvp = _leaves(kn.grad(lambda p: _dot(_leaves(kn.grad(loss)(p)), direction))(params))
    return Result(value, _leaves(gradient), hvp)


def run_torch(program: Program) -> Result:
    """The oracle: the program on torch tensors that require grad, differentiated by torch.autograd."""
    leaves = {ref: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for ref, v in program.values.items()}
    params = _map_tree(program.tree, leaves.get)
    order = _leaves(params)
    value = program.evaluate(params, True, torch.as_tensor)

    def gradient(scalar, create_graph: bool) -> list:
        if not (isinstance(scalar, torch.Tensor) and scalar.requires_grad):
            return [torch.zeros_like(p) for p in order]
        found = torch.autograd.grad(scalar, order, create_graph=create_graph, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for g, p in zip(found, order)]

    first = gradient(value, program.direction is not None)
    hvp = None
    if program.direction is not None:
        direction = [torch.as_tensor(program.direction[r], dtype=torch.float64)
                     for r in _leaves(program.tree)]
        hvp = gradient(_dot(first, direction), False)
    return Result(value, first, hvp)


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().clone().numpy()   # a clone: torch's gradients may be ZeroTensors, no data
    return np.asarray(x if isinstance(x, (float, int)) else kn.convert(x, "numpy"), dtype=float)


def assert_close(what: str, got: list, expected: list, refs: list[str]) -> None:
    """Each leaf of ``got`` within ``RTOL * (|expected| + scale) + ATOL`` of ``expected``,
    elementwise (no nan), with ``scale`` the largest ``|expected|`` of all the leaves: a normwise
    relative bound."""
    got, expected = [_numpy(g) for g in got], [_numpy(e) for e in expected]
    scale = max(float(np.max(np.abs(e), initial=0.0)) for e in expected)
    for ref, g, e in zip(refs, got, expected):
        assert g.shape == e.shape, f"{what} of {ref}: shape {g.shape}, torch's {e.shape}"
        bad = ~(np.abs(g - e) <= RTOL * (np.abs(e) + scale) + ATOL)
        if np.any(bad):
            i = tuple(int(k) for k in np.argwhere(bad)[0])
            raise AssertionError(f"{what} of {ref}: {int(np.sum(bad))} of {g.size} elements differ from "
                                 f"torch.autograd; at {i}: {g[i]!r} instead of {e[i]!r} (largest "
                                 f"|expected| {scale:.3g})")


def check(program: Program, backends: tuple[str, ...] = BACKENDS) -> None:
    """Run ``program`` on each backend and compare loss, gradient and Hessian-vector product with
    torch.autograd's (AssertionError at the first difference, naming backend, quantity and leaf)."""
    expected = run_torch(program)
    refs = _leaves(program.tree)
    for backend in backends:
        if backend == "strict" and not program.standard:
            continue
        got = run_knetapi(program, backend)
        assert_close(f"{backend}: loss", [got.loss], [expected.loss], ["the program"])
        assert_close(f"{backend}: gradient", got.gradient, expected.gradient, refs)
        if got.hvp is not None:
            assert_close(f"{backend}: Hessian-vector product", got.hvp, expected.hvp, refs)
