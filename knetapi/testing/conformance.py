"""A full Array API namespace whose arrays are all traced values, for conformance tooling.

``traced_namespace(xp)`` wraps the raw namespace ``xp`` (``array_api_compat.numpy``, ``numpy``,
``array_api_strict``, ... of a registered backend) so that standard test tooling
(``hypothesis.extra.array_api``, array-api-tests) exercises knetapi's traced values: every
function of the standard runs knetapi's function of that name and returns traced values on one
trace kept open for the namespace (arrays in tuples, named tuples and lists too); the dtypes,
constants, ``__array_api_version__`` and ``__array_namespace_info__`` are ``xp``'s. The values'
own operators stay traced as well: their trace turns the raw results of non-differentiable
operators (comparisons, bitwise operators, ``//``) into traced constants, and their
``__array_namespace__`` is this namespace.

Where traced values deliberately differ from the standard, so does this namespace: they are
immutable (``__setitem__`` raises TypeError), refuse DLPack export and ``__array__``, cannot move
between devices, and ``conj``/``real``/``imag`` refuse them (knetapi.namespace.MISSING).
The standard's extensions (``linalg``, ``fft``) are not included.
"""

from __future__ import annotations

import functools
from collections import deque
from types import ModuleType
from typing import Any, Callable

from .. import registry
from ..namespace import DTYPES_AND_CONSTANTS, STANDARD_FUNCTIONS
from ..tape import Trace
from ..traced import Traced


class ConformanceTrace(Trace):
    """The trace of a traced namespace: never differentiated and never closed.

    Its level is 0, below every ``grad`` call's trace, so its values are constants to any ``grad``
    (even one that was running when the namespace was made). It keeps no node list (each node lives
    only as long as the values that depend on it, so memory stays bounded over a long conformance
    run), boxes raw results of non-differentiable operators as leaves, and names the traced
    namespace as its values' namespace."""

    __slots__ = ("_namespace",)
    differentiates = False   # no gradient is taken of its values: float() on them is fine

    def __init__(self, backend: registry.Backend, namespace: "TracedNamespace"):
        super().__init__(backend)
        self.level = 0
        self.nodes = deque(maxlen=0)
        self._namespace = namespace

    @property
    def namespace(self) -> "TracedNamespace":
        return self._namespace

    def constant(self, value: Any) -> Traced:
        return self.leaf(value)


class TracedNamespace(ModuleType):
    """An Array API namespace over the raw namespace ``xp`` whose arrays are all traced values."""

    def __init__(self, xp: ModuleType, backend: registry.Backend):
        super().__init__(f"knetapi.traced.{xp.__name__}",
                         f"Array API namespace over {xp.__name__} whose arrays are knetapi traced values.")
        self.trace = ConformanceTrace(backend, self)
        recording = backend.recording
        for name in STANDARD_FUNCTIONS:
            self.__dict__[name] = self._boxing(name, getattr(recording, name))
        for name in DTYPES_AND_CONSTANTS:
            if hasattr(xp, name):
                self.__dict__[name] = getattr(xp, name)
        self.__array_api_version__ = getattr(xp, "__array_api_version__", "2025.12")
        self.__array_namespace_info__ = xp.__array_namespace_info__

    def _boxing(self, name: str, function: Callable) -> Callable:
        """``function`` with every raw array of the backend in its result boxed on the trace."""
        def boxed(*args, **kwargs):
            return self.box(function(*args, **kwargs))
        boxed.__name__ = boxed.__qualname__ = name
        boxed.__doc__ = f"knetapi's {name}, its resulting arrays traced on the namespace's trace."
        return boxed

    def box(self, out: Any) -> Any:
        """``out`` with its raw arrays of this backend, also inside tuples and lists, as leaves."""
        t = type(out)
        if t is Traced:
            return out
        if registry.owner(t) is self.trace.backend:
            return self.trace.leaf(out)
        if t is list:
            return [self.box(o) for o in out]
        if isinstance(out, tuple):
            items = [self.box(o) for o in out]
            return t(*items) if hasattr(t, "_fields") else tuple(items)
        return out


@functools.cache
def traced_namespace(xp: ModuleType) -> TracedNamespace:
    """The Array API namespace over the raw namespace ``xp`` whose arrays are all traced values.

    ``xp`` must be the namespace of a registered backend's arrays. One namespace (and one open
    trace) per ``xp``: calling again returns the same object, as tools that cache per namespace
    (hypothesis) expect."""
    sample = xp.asarray(0)
    backend = registry.owner(type(sample))
    if backend is None:
        raise TypeError(f"traced_namespace: {xp.__name__} makes {registry.describe(sample)} arrays, "
                        f"which no registered backend owns ({', '.join(sorted(registry.backends()))}); "
                        f"register one with kn.register_backend first")
    return TracedNamespace(xp, backend)
