"""Traced values: the boxes that ``grad`` puts around parameters, Array API arrays themselves.

Every operator and method calls the dispatching function of the same name (``x + y`` is
``kn.add(x, y)``), so it records on the tape. Operators without a gradient (comparisons, bitwise
operators, ``//``) return what the value's trace makes of their raw result (``Trace.constant``):
the raw array under ``grad``, a traced constant in ``knetapi.testing.traced_namespace``.
Traced values are immutable: item assignment raises, and ``w += 1`` rebinds ``w`` to a new traced
value. A numpy ufunc called on a traced value, or a numpy array or scalar on the left of an operator
(``x @ w``, ``np.float32(2) * w``), runs the ``kn`` function of the same name, which records
(``__array_ufunc__``). ``float()`` of a traced value raises, since the gradient through the Python
number would be lost without a word; ``bool()``, ``int()`` and indexing work, for control flow,
and ``kn.value(x)`` reads a value for logging.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

# The dispatching functions, filled in by knetapi.namespace once the rule table is built
# (the operators below need them, and they need this class).
ops = SimpleNamespace()


def strip(x: Any) -> Any:
    """The raw array inside ``x``, through every trace level."""
    while type(x) is Traced:
        x = x._value
    return x


def value(x: Any) -> Any:
    """The raw value of ``x`` (``kn.value``): a traced value's array, any other value itself.

    For logging and control flow inside a differentiated function (``print(kn.value(loss))``,
    ``float(kn.value(x))``): no gradient flows through the result. Outside ``grad`` it is the
    identity."""
    return strip(x)


class Traced:
    """A value recorded on a trace. ``_value`` is the raw array, or a value traced one level lower."""

    __slots__ = ("_value", "_node", "_trace")
    __array_priority__ = 1e6

    def __init__(self, value: Any, node: Any, trace: Any):
        self._value = value
        self._node = node
        self._trace = trace

    # --- attributes -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(strip(self).shape)

    @property
    def dtype(self):
        return strip(self).dtype

    @property
    def ndim(self) -> int:
        return strip(self).ndim

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def device(self):
        return ops.device(self)

    @property
    def T(self) -> "Traced":
        if self.ndim != 2:
            raise ValueError(f"x.T needs a 2-D array (the standard's rule), got shape {self.shape}; "
                             "use x.mT or kn.permute_dims")
        return ops.matrix_transpose(self)

    @property
    def mT(self) -> "Traced":
        return ops.matrix_transpose(self)

    def __array_namespace__(self, *, api_version: str | None = None):
        return self._trace.namespace

    def to_device(self, device, /, *, stream=None) -> "Traced":
        return ops.to_device(self, device)

    def __repr__(self) -> str:
        return f"Traced({strip(self)!r}, level={self._trace.level})"

    # --- conversion of 0-d values -------------------------------------------------------------
    # bool, int and index serve control flow and loop bounds (piecewise constant: no gradient is
    # lost); float and complex would carry a differentiable value off the tape, so they refuse.
    def __bool__(self) -> bool:
        return bool(strip(self))

    def __float__(self) -> float:
        _refuse_leaving_the_tape(self, "float()")
        return float(strip(self))

    def __int__(self) -> int:
        return int(strip(self))

    def __complex__(self) -> complex:
        _refuse_leaving_the_tape(self, "complex()")
        return complex(strip(self))

    def __format__(self, spec: str) -> str:
        return format(strip(self), spec)

    def __index__(self) -> int:
        return strip(self).__index__()

    def __array_ufunc__(self, ufunc, method: str, *inputs, **kwargs):
        """numpy ufuncs (and numpy arrays on the left of an operator) run ``kn.<f>``, recording."""
        name = NUMPY_UFUNC_NAMES.get(ufunc.__name__, ufunc.__name__)
        function = getattr(ops, name, None)
        if method != "__call__" or kwargs or function is None:
            call = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
            why = (f"with {', '.join(kwargs)}=" if kwargs else "on a traced value")
            fix = (f"kn.{name}(...)" if function is not None else "kn.<function> (kn.STANDARD_FUNCTIONS)")
            raise TypeError(f"{call} cannot record on knetapi's tape {why}; use {fix}, and build new "
                            f"arrays instead of writing into existing ones (kn.where, kn.stack)")
        out = function(*inputs)
        return out if type(out) is Traced else self._trace.constant(out)

    def __array__(self, *args, **kwargs):
        raise TypeError("a knetapi traced value cannot become a numpy array inside grad (the tape "
                        "would lose it); call kn.<function> or xp = kn.array_namespace(x) instead of "
                        "numpy functions")

    def __array_function__(self, func, types, args, kwargs):
        name = getattr(func, "__name__", "this function")
        raise TypeError(f"numpy.{name} cannot record on knetapi's tape; use kn.<function> (e.g. "
                        f"kn.{name} where the standard has it) or xp = kn.array_namespace(x)")

    def __dlpack__(self, *args, **kwargs):
        raise TypeError("a knetapi traced value cannot be exported through DLPack: the tape would "
                        "lose it; export the raw value after grad returns")

    def __dlpack_device__(self):
        return strip(self).__dlpack_device__()

    # --- containers -------------------------------------------------------------------------
    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d traced value")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d traced value")
        for i in range(self.shape[0]):
            yield ops.getitem(self, key=(i, ...))   # the standard's index for a row of any ndim

    def __getitem__(self, key) -> Any:
        return ops.getitem(self, key=_raw_key(key))

    def __setitem__(self, key, value):
        raise TypeError("traced arrays are immutable: `x[key] = v` cannot be recorded. Build a new "
                        "array instead, e.g. kn.where(mask, v, x), kn.concat([...]) or kn.stack([...]), "
                        "and rebind the name")

    # --- arithmetic -------------------------------------------------------------------------
    def __neg__(self): return ops.negative(self)
    def __pos__(self): return ops.positive(self)
    def __abs__(self): return ops.abs(self)
    def __invert__(self): return self._trace.constant(ops.bitwise_invert(self))

    def __add__(self, other): return ops.add(self, other)
    def __radd__(self, other): return ops.add(other, self)
    def __sub__(self, other): return ops.subtract(self, other)
    def __rsub__(self, other): return ops.subtract(other, self)
    def __mul__(self, other): return ops.multiply(self, other)
    def __rmul__(self, other): return ops.multiply(other, self)
    def __truediv__(self, other): return ops.divide(self, other)
    def __rtruediv__(self, other): return ops.divide(other, self)
    def __floordiv__(self, other): return self._trace.constant(ops.floor_divide(self, other))
    def __rfloordiv__(self, other): return self._trace.constant(ops.floor_divide(other, self))
    def __mod__(self, other): return ops.remainder(self, other)
    def __rmod__(self, other): return ops.remainder(other, self)
    def __pow__(self, other): return ops.pow(self, other)
    def __rpow__(self, other): return ops.pow(other, self)
    def __matmul__(self, other): return ops.matmul(self, other)
    def __rmatmul__(self, other): return ops.matmul(other, self)

    def __and__(self, other): return self._trace.constant(ops.bitwise_and(self, other))
    def __rand__(self, other): return self._trace.constant(ops.bitwise_and(other, self))
    def __or__(self, other): return self._trace.constant(ops.bitwise_or(self, other))
    def __ror__(self, other): return self._trace.constant(ops.bitwise_or(other, self))
    def __xor__(self, other): return self._trace.constant(ops.bitwise_xor(self, other))
    def __rxor__(self, other): return self._trace.constant(ops.bitwise_xor(other, self))
    def __lshift__(self, other): return self._trace.constant(ops.bitwise_left_shift(self, other))
    def __rlshift__(self, other): return self._trace.constant(ops.bitwise_left_shift(other, self))
    def __rshift__(self, other): return self._trace.constant(ops.bitwise_right_shift(self, other))
    def __rrshift__(self, other): return self._trace.constant(ops.bitwise_right_shift(other, self))

    # --- comparisons: no gradient, like the bitwise operators and // --------------------------
    def __eq__(self, other): return self._trace.constant(ops.equal(self, other))
    def __ne__(self, other): return self._trace.constant(ops.not_equal(self, other))
    def __lt__(self, other): return self._trace.constant(ops.less(self, other))
    def __le__(self, other): return self._trace.constant(ops.less_equal(self, other))
    def __gt__(self, other): return self._trace.constant(ops.greater(self, other))
    def __ge__(self, other): return self._trace.constant(ops.greater_equal(self, other))

    __hash__ = None


# numpy's names of ufuncs whose standard name differs (numpy.power is the standard's pow).
NUMPY_UFUNC_NAMES = {
    "absolute": "abs", "arccos": "acos", "arccosh": "acosh", "arcsin": "asin", "arcsinh": "asinh",
    "arctan": "atan", "arctan2": "atan2", "arctanh": "atanh", "power": "pow", "true_divide": "divide",
    "invert": "bitwise_invert", "left_shift": "bitwise_left_shift",
    "right_shift": "bitwise_right_shift", "conjugate": "conj",
}


def _refuse_leaving_the_tape(x: Traced, conversion: str) -> None:
    """Raise if ``x`` depends on the parameters of a differentiation still running."""
    while type(x) is Traced:
        if x._node is not None and x._trace.open and x._trace.differentiates:
            raise TypeError(
                f"{conversion} of a traced value would take it off the tape and its gradient would "
                f"be silently lost (math functions, numpy item assignment and float() all do this). "
                f"Keep it on the tape with kn functions (kn.exp instead of math.exp; kn.where or "
                f"kn.stack instead of writing into an array); to read the value for logging or "
                f"control flow, use kn.value(x), through which no gradient flows")
        x = x._value


def _raw_key(key: Any) -> Any:
    """An index key with traced index arrays replaced by their raw values."""
    if type(key) is tuple:
        return tuple(strip(k) for k in key)
    return strip(key)
