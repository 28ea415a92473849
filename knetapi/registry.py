"""The backend registry: which backend owns an array type, like multiple dispatch on argument types.

A backend is a module that declares

- ``NAME``: a short name (``"numpy"``),
- ``ARRAY_TYPES``: the array types it owns (subclasses resolve to the most specific registered type),
- ``namespace()``: its raw Array API namespace (normally from ``array_api_compat``),
- ``OVERRIDES``: a dict from op name to a faster implementation of that op on raw arrays
  (for example ``scatter_add``); ops it does not override use the generic standard-only code.

``register_backend(module)`` checks those attributes and makes the backend visible to dispatch.
Built-in backends for optional libraries (torch, array-api-strict) are registered the first time
an array of their library is seen (or their name is asked for), so ``import knetapi`` never imports
them. Third-party backends are found the same way: when an array type has no backend, the
``knetapi.backends`` entry-point group is read and every backend module it names that is not yet
loaded is registered (``entry_points = {"knetapi.backends" = {mine = "my_package.backend"}}`` in a
package's pyproject.toml).

Dispatch is by type, like multiple dispatch: the most specific registered type in an array type's
MRO wins, so a subclass uses its parent's backend unless it registers its own. Python scalars
adopt the backend of the arrays beside them; arrays of two backends in one call are an error.

Thread safety: lookups read the tables without a lock; registering, lazy loading and filling the
caches take one re-entrant lock, so threads that meet a new array type at the same time load its
backend once and all get that one backend object.
"""

from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, Callable

from .traced import Traced

REQUIRED_ATTRIBUTES = ("NAME", "ARRAY_TYPES", "namespace", "OVERRIDES")

_lock = threading.RLock()   # re-entrant: a backend's namespace() may ask for another backend
_backends: dict[str, "Backend"] = {}
_owner_of_type: dict[type, "Backend"] = {}   # registered types and cached subclass lookups
_unowned: set[type] = set()                  # types known to have no backend (until one registers)

SCALAR_TYPES = (bool, int, float, complex)

# Built-in backends of optional libraries: library's top-level module -> (backend name, our module).
LAZY_BUILTINS = {"torch": ("torch", "knetapi.backends.torch"),
                 "array_api_strict": ("strict", "knetapi.backends.strict")}
ENTRY_POINT_GROUP = "knetapi.backends"
_lazy_loaded: set[str] = set()           # libraries of LAZY_BUILTINS and entry points already tried

# Makes a backend's recording namespace; knetapi.namespace sets it when it is imported (the
# registry does not import the namespace module, which is built on the rules built on it).
_recording_factory: Callable[["Backend"], Any] | None = None


def set_recording_factory(factory: Callable[["Backend"], Any]) -> None:
    """Set what makes a backend's recording namespace (knetapi.namespace.RecordingNamespace)."""
    global _recording_factory
    _recording_factory = factory


class Backend:
    """A registered backend: its raw namespace, the ops it overrides and its recording namespace."""

    __slots__ = ("name", "array_types", "ns", "overrides", "_recording", "module")

    def __init__(self, module: ModuleType):
        self.module = module
        self.name: str = module.NAME
        self.array_types: tuple[type, ...] = tuple(module.ARRAY_TYPES)
        self.ns = module.namespace()
        self.overrides: dict[str, Callable[..., Any]] = dict(module.OVERRIDES)
        self._recording = None

    @property
    def recording(self):
        """This backend's recording namespace (knetapi.namespace.RecordingNamespace), made once."""
        if self._recording is None:
            with _lock:
                if self._recording is None:
                    self._recording = _recording_factory(self)
        return self._recording

    def __repr__(self) -> str:
        return f"<knetapi backend {self.name!r}>"


def register_backend(module: ModuleType) -> Backend:
    """Register a backend module (see this module's docstring for what it must declare)."""
    missing = [a for a in REQUIRED_ATTRIBUTES if not hasattr(module, a)]
    if missing:
        raise TypeError(f"backend module {getattr(module, '__name__', module)!r} lacks the "
                        f"attribute(s) {', '.join(missing)} that register_backend requires")
    backend = Backend(module)
    with _lock:
        _backends[backend.name] = backend
        for t in backend.array_types:
            _owner_of_type[t] = backend
        # a new registration can change which backend is most specific for a cached subclass
        for t in [t for t in _owner_of_type if t not in _registered_types()]:
            del _owner_of_type[t]
        _unowned.clear()
    return backend


def _registered_types() -> set[type]:
    return {t for b in _backends.values() for t in b.array_types}


def backends() -> dict[str, Backend]:
    """The registered backends by name."""
    return dict(_backends)


def get_backend(name: str) -> Backend:
    """The backend called ``name``, registering a built-in one of an optional library on demand."""
    if name not in _backends:
        for library, (backend_name, _) in LAZY_BUILTINS.items():
            if backend_name == name:
                try:
                    _load_builtin(library)
                except ImportError as e:
                    raise ValueError(f"the {name} backend needs the {library} package, which is not "
                                     f"installed ({e})") from None
    try:
        return _backends[name]
    except KeyError:
        raise ValueError(f"no backend named {name!r}; registered: {', '.join(sorted(_backends))}; "
                         f"built in for optional libraries: "
                         f"{', '.join(b for b, _ in LAZY_BUILTINS.values())}") from None


def owner(t: type) -> Backend | None:
    """The backend owning array type ``t`` (most specific registered base class), or None.

    A type seen for the first time may belong to a backend not loaded yet (a built-in one of an
    optional library, or an entry point), so those are loaded before the MRO is searched; under the
    lock, so another thread's loading is finished first and the answer is cached only once."""
    b = _owner_of_type.get(t)
    if b is not None or t in _unowned:
        return b
    with _lock:
        _load_lazily(t)
        for base in t.__mro__:
            b = _owner_of_type.get(base)
            if b is not None:
                _owner_of_type[t] = b
                return b
        _unowned.add(t)
        return None


def _load_builtin(library: str) -> None:
    """Register the built-in backend of an optional ``library`` once, however many threads ask."""
    with _lock:
        if library not in _lazy_loaded:
            register_backend(importlib.import_module(LAZY_BUILTINS[library][1]))
            _lazy_loaded.add(library)


def _load_lazily(t: type) -> None:
    """Register the built-in backend of ``t``'s library and any entry-point backend not loaded yet
    (the caller holds the lock)."""
    library = t.__module__.partition(".")[0]
    if library in LAZY_BUILTINS:
        _load_builtin(library)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        key = f"{ENTRY_POINT_GROUP}:{point.name}={point.value}"
        if key not in _lazy_loaded:
            _lazy_loaded.add(key)
            register_backend(point.load())


def describe(x: Any) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__


def backend_of_arrays(args, what: str = "this function") -> Backend | None:
    """The one backend owning the arrays among ``args`` (Python scalars and None are skipped).

    Raises TypeError for a non-array argument or for arrays of two different backends."""
    found = None
    for a in args:
        b = _owner_of_type.get(type(a))
        if b is None:
            if a is None or isinstance(a, SCALAR_TYPES):
                continue
            b = owner(type(a))
            if b is None:
                raise TypeError(f"{what}: expected an array of a registered backend "
                                f"({', '.join(sorted(_backends))}) or a Python scalar, got {describe(a)}")
        if found is None:
            found = b
        elif b is not found:
            raise TypeError(f"{what}: arrays of two backends in one call: {found.name} and {b.name}; "
                            f"convert one side first with kn.convert(tree, {found.name!r}) or "
                            f"kn.convert(tree, {b.name!r})")
    return found


def backend_of(x: Any) -> Backend:
    """The backend of an array, a traced value, or a Python scalar (the default backend, numpy)."""
    if isinstance(x, Traced):
        return x._trace.backend
    if isinstance(x, SCALAR_TYPES):
        return default_backend()
    b = owner(type(x))
    if b is None:
        raise TypeError(f"expected an array of a registered backend ({', '.join(sorted(_backends))}), "
                        f"got {describe(x)}")
    return b


def default_backend() -> Backend:
    """The backend for creation functions called with no array argument: numpy."""
    return _backends["numpy"]
