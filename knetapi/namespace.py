"""The dispatching namespace (``kn.<f>``) and each backend's recording namespace.

Every function of the Array API standard (2025.12) is here in one of four kinds:

- a primitive with a derivative rule (knetapi.rules),
- a composite written with primitives when traced (knetapi.composite),
- non-differentiable: traced arguments pass through as raw values and the result is raw
  (comparisons, rounding, ``sign``, ``argmax``, indices of ``sort``, integer/boolean functions),
- a creation or dtype function: it runs on the backend of its array arguments, or on the bound
  backend (numpy for ``kn.<f>``, the backend itself in its recording namespace).

:data:`COVERAGE` counts them; :data:`MISSING` lists functions without a rule and why.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from . import registry
from .composite import COMPOSITES, RECORDED_CREATION, refuse_traced_items
from .primitives import no_rule
from .rules import PRIMITIVES
from .traced import Traced, ops, strip

# The functions of the Array API standard, 2025.12 (array-api-strict's and array-api-compat's list).
STANDARD_FUNCTIONS = (
    "abs acos acosh add all any arange argmax argmin argsort asarray asin asinh astype atan atan2 "
    "atanh bitwise_and bitwise_invert bitwise_left_shift bitwise_or bitwise_right_shift bitwise_xor "
    "broadcast_arrays broadcast_shapes broadcast_to can_cast ceil clip concat conj copysign cos cosh "
    "count_nonzero cumulative_prod cumulative_sum diff divide empty empty_like equal exp expand_dims "
    "expm1 eye finfo flip floor floor_divide from_dlpack full full_like greater greater_equal hypot "
    "iinfo imag isdtype isfinite isin isinf isnan less less_equal linspace log log10 log1p log2 "
    "logaddexp logical_and logical_not logical_or logical_xor matmul matrix_transpose max maximum mean "
    "meshgrid min minimum moveaxis multiply negative nextafter nonzero not_equal ones ones_like "
    "permute_dims positive pow prod real reciprocal remainder repeat reshape result_type roll round "
    "searchsorted sign signbit sin sinh sort sqrt square squeeze stack std subtract sum take "
    "take_along_axis tan tanh tensordot tile tril triu trunc unique_all unique_counts unique_inverse "
    "unique_values unstack var vecdot where zeros zeros_like"
).split()

# Piecewise constant, integer/boolean valued, or index valued: no gradient flows through them.
NON_DIFFERENTIABLE = (
    "all any argmax argmin argsort bitwise_and bitwise_invert bitwise_left_shift bitwise_or "
    "bitwise_right_shift bitwise_xor ceil count_nonzero equal floor floor_divide greater greater_equal "
    "isfinite isin isinf isnan less less_equal logical_and logical_not logical_or logical_xor "
    "nextafter nonzero not_equal round searchsorted sign signbit trunc unique_all unique_counts "
    "unique_inverse unique_values"
).split()

# Creation and dtype/shape functions: no array input to differentiate.
CREATION = (
    "arange broadcast_shapes can_cast empty empty_like eye finfo from_dlpack full full_like iinfo "
    "isdtype linspace ones ones_like result_type zeros zeros_like"
).split()

MISSING = {
    "conj": "complex differentiation is not supported yet (grad rejects complex parameters)",
    "real": "complex differentiation is not supported yet (grad rejects complex parameters)",
    "imag": "complex differentiation is not supported yet (grad rejects complex parameters)",
}

# Helpers that are not in the standard but that the rules and traced values need.
EXTRA_PRIMITIVES = ("getitem", "index_add", "logsumexp")


def passthrough(name: str, bound: registry.Backend | None = None) -> Callable:
    """``name`` on raw values: traced arguments are unwrapped, the result is not recorded."""
    def function(*args, **kwargs):
        args = [strip(a) for a in args]
        kwargs = {k: strip(v) for k, v in kwargs.items()}
        backend = _owner_among(args) or bound or registry.default_backend()
        return getattr(backend.ns, name)(*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"The standard's {name}; no gradient flows through it (values pass untraced)."
    return function


def creation(name: str, bound: registry.Backend | None = None) -> Callable:
    """The creation function ``name``, making arrays of the backend of its array arguments, else of
    the library of its ``dtype``, else ``bound`` (numpy for ``kn.<f>``).

    ``full``, ``full_like`` and ``linspace`` are differentiable in the values they take (the fill
    value, the end points), which may be 0-d arrays: given a traced one they record
    (knetapi.composite). ``arange`` refuses a traced value, whose gradient it could not carry."""
    recorded = RECORDED_CREATION.get(name)

    def function(*args, **kwargs):
        traced = any(type(a) is Traced for a in (*args, *kwargs.values()))
        args = list(args)
        backend = (_owner_among([strip(a) for a in args]) or _dtype_backend(kwargs.get("dtype"))
                   or bound or registry.default_backend())
        if recorded is not None:
            return recorded(backend.ns, *args, **kwargs)
        if traced and name == "arange":
            raise TypeError("kn.arange cannot take a traced value: its result would not carry the "
                            "value's gradient. For a differentiable range write start + step * "
                            "kn.arange(n) (or kn.linspace(start, stop, n))")
        return getattr(backend.ns, name)(*[strip(a) for a in args],
                                         **{k: strip(v) for k, v in kwargs.items()})
    function.__name__ = function.__qualname__ = name
    function.__doc__ = (f"The standard's {name}, on the backend of its arrays or dtype"
                        + ("; differentiable in the values it takes." if recorded else "."))
    return function


def _dtype_backend(dtype) -> registry.Backend | None:
    """The backend of the library a dtype object belongs to (``torch.float64``: torch), if any."""
    if dtype is None or isinstance(dtype, str):
        return None
    library = (dtype if isinstance(dtype, type) else type(dtype)).__module__.partition(".")[0]
    if library in registry.LAZY_BUILTINS:
        try:
            return registry.get_backend(registry.LAZY_BUILTINS[library][0])
        except ValueError:
            return None
    for backend in registry.backends().values():
        if any(t.__module__.partition(".")[0] == library for t in backend.array_types):
            return backend
    return None


def _owner_among(args):
    """The backend of the first registered array among ``args`` (dtypes, shapes, scalars skipped)."""
    for a in args:
        b = registry.owner(type(a)) if not isinstance(a, (tuple, list, str, int, float)) else None
        if b is not None:
            return b
    return None


def _device(x) -> Any:
    import array_api_compat
    return array_api_compat.device(strip(x))


def _to_device(x, device, /, *, stream=None):
    import array_api_compat
    if type(x) is Traced:
        if device == x.device:
            return x
        raise NotImplementedError("moving a traced value between devices is not supported yet; "
                                  "move the parameters before calling grad")
    return array_api_compat.to_device(x, device, stream=stream)


def _build_functions() -> dict[str, Callable]:
    functions: dict[str, Callable] = {}
    for name in STANDARD_FUNCTIONS:
        if name in COMPOSITES:
            functions[name] = COMPOSITES[name]
        elif name in PRIMITIVES:
            functions[name] = PRIMITIVES[name]
        elif name in CREATION:
            functions[name] = creation(name)
        elif name in NON_DIFFERENTIABLE:
            functions[name] = passthrough(name)
        elif name in MISSING:
            functions[name] = no_rule(name)
        else:
            raise AssertionError(f"standard function {name} is not classified")
    for name in EXTRA_PRIMITIVES:
        functions[name] = PRIMITIVES[name]
    functions["outer"] = COMPOSITES["outer"]
    functions["device"] = _device
    functions["to_device"] = _to_device
    return functions


functions = _build_functions()
ops.__dict__.update(functions)

COVERAGE = {
    "standard functions": len(STANDARD_FUNCTIONS),
    "with a derivative rule": sum(n in PRIMITIVES or n in COMPOSITES for n in STANDARD_FUNCTIONS),
    "of which built from other rules": sum(n in COMPOSITES and n not in PRIMITIVES
                                           for n in STANDARD_FUNCTIONS),
    "non-differentiable": len(NON_DIFFERENTIABLE),
    "creation and dtype functions": len(CREATION),
    "of which differentiable in the values they take": len(RECORDED_CREATION),
    "missing": len(MISSING),
}

DTYPES_AND_CONSTANTS = ("bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float32 float64 "
                        "complex64 complex128 e inf nan newaxis pi").split()


def bound_asarray(backend: registry.Backend) -> Callable:
    """``asarray`` making arrays of ``backend`` from Python objects and other arrays; a traced
    value stays traced (cast with a recorded ``astype`` when ``dtype`` differs)."""
    def asarray(obj, /, *, dtype=None, device=None, copy=None):
        if type(obj) is Traced:
            return COMPOSITES["asarray"](obj, dtype=dtype, device=device, copy=copy)
        refuse_traced_items(obj, "asarray")
        return backend.ns.asarray(obj, dtype=dtype, device=device, copy=copy)
    return asarray


class RecordingNamespace(ModuleType):
    """A backend's Array API namespace whose functions record on the tape when given traced
    values. Creation functions make raw arrays of this backend."""

    def __init__(self, backend: registry.Backend):
        super().__init__(f"knetapi.recording.{backend.name}",
                         f"Recording Array API namespace of the {backend.name} backend.")
        raw = backend.ns
        self.__dict__.update(functions)
        for name in CREATION:
            self.__dict__[name] = creation(name, bound=backend)
        self.__dict__["asarray"] = bound_asarray(backend)
        for name in DTYPES_AND_CONSTANTS:
            if hasattr(raw, name):
                self.__dict__[name] = getattr(raw, name)
        self.__array_api_version__ = getattr(raw, "__array_api_version__", "2025.12")
        self.__array_namespace_info__ = raw.__array_namespace_info__
        self.backend = backend


registry.set_recording_factory(RecordingNamespace)


def array_namespace(*arrays: Any):
    """The namespace for ``arrays``, which may mix traced values and raw arrays of one backend:
    if any is traced, the namespace of the highest trace's values (``x.__array_namespace__()``:
    the backend's recording namespace), else the backend's raw namespace.
    Python scalars and None are skipped; two backends raise TypeError."""
    traced = [a for a in arrays if type(a) is Traced]
    backend = registry.backend_of_arrays([strip(a) for a in arrays], "array_namespace")
    if traced:
        return max(traced, key=lambda a: a._trace.level)._trace.namespace
    return (backend or registry.default_backend()).ns
