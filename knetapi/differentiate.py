"""``grad`` and ``value_and_grad``: the user-facing differential operators."""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any, Callable

from . import cotangent, registry
from .pytree import flatten, leaf_paths, map_with_path, unflatten
from .tape import Trace, backward
from .traced import Traced, strip


class IndependentOutputWarning(UserWarning):
    """The differentiated function's value does not depend on the parameters: zero gradient."""


def grad(f: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False) -> Callable:
    """The gradient function of ``f``: same arguments, returns d f / d ``args[argnums]``.

    ``f`` must return a scalar (shape ``()``), or ``(scalar, aux)`` with ``has_aux``, and then the
    gradient function returns ``(gradient, aux)``. The differentiated argument may be an array, a
    Python float, or any nesting of list/tuple/dict of those; the gradient has the same structure and
    each leaf the same shape, dtype and backend as its parameter (zeros where ``f`` never used it).
    With a tuple ``argnums`` the result is a tuple of such gradients.
    """
    value_and_grad_f = value_and_grad(f, argnums, has_aux=has_aux)

    def grad_f(*args, **kwargs):
        value, g = value_and_grad_f(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    grad_f.__name__ = f"grad_{getattr(f, '__name__', 'f')}"
    grad_f.__doc__ = f"Gradient of {getattr(f, '__name__', 'f')} with respect to argument(s) {argnums}."
    return grad_f


def value_and_grad(f: Callable, argnums: int | tuple[int, ...] = 0, *,
                   has_aux: bool = False) -> Callable:
    """Like :func:`grad`, returning ``(value, gradient)``, or ``((value, aux), gradient)`` with
    ``has_aux`` (Knet's ``gradloss``)."""
    if not isinstance(argnums, (int, tuple)) or (isinstance(argnums, tuple) and
                                                 not all(isinstance(i, int) for i in argnums)):
        raise TypeError(f"grad: argnums must be an int or a tuple of ints, got {argnums!r}")
    nums = (argnums,) if isinstance(argnums, int) else argnums
    names = _argument_names(f)
    warned = []

    def value_and_grad_f(*args, **kwargs):
        for i in nums:
            if not -len(args) <= i < len(args):
                raise TypeError(f"grad: argnums includes {i}, but {_name(f)} was called with "
                                f"{len(args)} positional argument(s)")
        roots = [names[i] if 0 <= i < len(names) else f"args[{i}]" for i in nums]
        flat = [flatten(args[i]) for i in nums]             # (leaves, structure) per argument
        trace = Trace(_parameters_backend(args, nums, roots, flat))
        try:
            boxed = list(args)
            params: list[list] = []
            for i, root, (leaves, structure) in zip(nums, roots, flat):
                found = [_box(trace, leaf, args[i], root, k) for k, leaf in enumerate(leaves)]
                boxed[i] = unflatten(structure, [b for b, _ in found])
                params.append(found)
            out = f(*boxed, **kwargs)
            out, aux = _split_aux(out, has_aux, f)
            value = _check_output(out, trace, f)
            if type(out) is Traced and out._trace is trace:
                backward(trace, out, trace.backend.ns.ones_like(strip(value)))
            elif not warned:
                warned.append(True)
                warnings.warn(f"grad: the value of {_name(f)} does not depend on argument(s) "
                              f"{', '.join(roots)}; their gradient is zero", IndependentOutputWarning,
                              stacklevel=2)
            grads = tuple(unflatten(structure, [_leaf_gradient(box, leaf, trace)
                                                for box, leaf in zip(found, leaves)])
                          for found, (leaves, structure) in zip(params, flat))
            if has_aux:
                aux = map_with_path(lambda _, leaf: leaf._value if type(leaf) is Traced
                                    and leaf._trace is trace else leaf, aux, "aux")
        finally:
            trace.close()
        g = grads[0] if isinstance(argnums, int) else grads
        return ((value, aux) if has_aux else value), g

    value_and_grad_f.__name__ = f"value_and_grad_{getattr(f, '__name__', 'f')}"
    return value_and_grad_f


def _name(f: Callable) -> str:
    return getattr(f, "__name__", repr(f))


def _argument_names(f: Callable) -> list[str]:
    try:
        parameters = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]


def _parameters_backend(args, nums, roots, flat) -> registry.Backend:
    """The backend of the parameters' array leaves (``flat``: their leaves and structures).
    Python-float parameters adopt the backend of the other arguments' arrays (numpy when there
    are none)."""
    found: dict[str, tuple[registry.Backend, int, int]] = {}   # name -> (backend, argument, leaf)
    for n, (leaves, _) in enumerate(flat):
        for k, leaf in enumerate(leaves):
            b = _leaf_backend(leaf)
            if b is not None and b.name not in found:
                found[b.name] = (b, n, k)
    if len(found) > 1:
        (b1, n1, k1), (b2, n2, k2) = list(found.values())[:2]
        p1 = leaf_paths(args[nums[n1]], roots[n1])[k1]
        p2 = leaf_paths(args[nums[n2]], roots[n2])[k2]
        raise TypeError(f"grad: parameters on two backends: {p1} is {b1.name}, {p2} is {b2.name}; "
                        f"put them on one backend first")
    if found:
        return next(iter(found.values()))[0]
    for a in args:                       # float parameters: the data's backend
        if isinstance(a, (dict, list, tuple)):
            try:
                leaves = flatten(a)[0]
            except ValueError:           # data need not be a pytree
                continue
        else:
            leaves = [a]
        for leaf in leaves:
            b = _leaf_backend(leaf)
            if b is not None:
                return b
    return registry.default_backend()


def _leaf_backend(leaf: Any) -> registry.Backend | None:
    if type(leaf) is Traced:
        return leaf._trace.backend
    if leaf is None or isinstance(leaf, (bool, int, float, complex)):
        return None
    return registry.owner(type(leaf))         # None: reported by _box with its path


def _box(trace: Trace, leaf: Any, tree: Any, root: str, k: int) -> tuple[Traced, Any]:
    """(the traced parameter, its node) for leaf ``k`` of the parameter ``tree``."""
    if isinstance(leaf, float):
        xp = trace.backend.ns
        value = xp.asarray(leaf, dtype=xp.float64)
    elif isinstance(leaf, (bool, int)):
        raise TypeError(f"grad: parameter {leaf_paths(tree, root)[k]} is a Python "
                        f"{type(leaf).__name__} ({leaf!r}); only floating-point values can be "
                        f"differentiated (write {float(leaf)!r})")
    elif type(leaf) is Traced or registry.owner(type(leaf)) is not None:
        backend = registry.backend_of(leaf)
        as_parameter = getattr(backend.module, "parameter_value", None)
        value = as_parameter(leaf) if as_parameter and type(leaf) is not Traced else leaf
        if not _real_floating(backend.ns, leaf.dtype):
            raise TypeError(f"grad: parameter {leaf_paths(tree, root)[k]} has dtype {leaf.dtype}; "
                            f"only real floating-point arrays can be differentiated (cast it, e.g. "
                            f"with kn.astype(x, kn.float64))")
    else:
        raise TypeError(f"grad: parameter {leaf_paths(tree, root)[k]} is a "
                        f"{registry.describe(leaf)}, not an array or a float; registered array "
                        f"types: {', '.join(sorted(registry.backends()))}")
    boxed = trace.leaf(value)
    return boxed, boxed._node


@functools.lru_cache(maxsize=256)
def _real_floating(ns, dtype) -> bool:
    """``ns.isdtype(dtype, "real floating")``, cached: numpy's isdtype costs microseconds."""
    return ns.isdtype(dtype, "real floating")


def _split_aux(out: Any, has_aux: bool, f: Callable):
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"grad with has_aux=True: {_name(f)} must return a pair (scalar, aux), "
                        f"got {registry.describe(out)}")
    return out[0], out[1]


def _check_output(out: Any, trace: Trace, f: Callable) -> Any:
    """The raw value of ``f``'s output, after checking that it is a scalar."""
    if type(out) is Traced and out._trace is trace:
        value = out._value
    elif isinstance(out, float):
        return out
    elif type(out) is Traced or registry.owner(type(out)) is not None:
        value = out
    elif isinstance(out, (bool, int)):
        raise TypeError(f"grad: {_name(f)} returned a Python {type(out).__name__} ({out!r}); the "
                        f"output must be a floating-point scalar")
    else:
        raise TypeError(f"grad: {_name(f)} must return a scalar array, got {registry.describe(out)}")
    if tuple(value.shape) != ():
        raise ValueError(f"grad: {_name(f)} must return a scalar (shape ()), got an array of shape "
                         f"{tuple(value.shape)}; reduce it first, e.g. with kn.sum or kn.mean")
    if not _real_floating(registry.backend_of(value).ns, value.dtype):
        raise TypeError(f"grad: {_name(f)} returned a scalar of dtype {value.dtype}; the output must "
                        f"be a floating-point scalar (a comparison or an integer result has no "
                        f"gradient)")
    return value


def _leaf_gradient(box: tuple[Traced, Any], original: Any, trace: Trace) -> Any:
    """The gradient of one parameter leaf, of its type (a float for a float)."""
    node = box[1]
    g = node.cotangent
    if g is None:
        g = trace.backend.ns.zeros_like(strip(node.value))
    elif type(g) is list or type(g) is cotangent.IndexedCotangent:
        g = cotangent.densify(g, node.value, trace.backend)
    if isinstance(original, float):
        return float(g) if type(g) is not Traced else g
    if type(g) is not Traced and type(g) is not type(original) and type(original) is not Traced:
        g = registry.backend_of(original).ns.asarray(g)
    return g
