"""``grad`` and ``value_and_grad``: the user-facing differential operators."""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable

from . import cotangent, registry
from .pytree import map_with_path
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
        paths = [names[i] if 0 <= i < len(names) else f"args[{i}]" for i in nums]
        trace = Trace(_parameters_backend(args, nums, paths))
        try:
            boxed = list(args)
            params: list[list] = []
            for i, path in zip(nums, paths):
                found: list = []
                boxed[i] = map_with_path(lambda p, leaf: _box(trace, p, leaf, found), args[i], path)
                params.append(found)
            out = f(*boxed, **kwargs)
            out, aux = _split_aux(out, has_aux, f)
            value = _check_output(out, trace, f)
            if type(out) is Traced and out._trace is trace:
                backward(trace, out, trace.backend.ns.ones_like(strip(value)))
            elif not warned:
                warned.append(True)
                warnings.warn(f"grad: the value of {_name(f)} does not depend on argument(s) "
                              f"{', '.join(paths)}; their gradient is zero", IndependentOutputWarning,
                              stacklevel=2)
            grads = tuple(_gradient_tree(args[i], found, trace) for i, found in zip(nums, params))
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


def _parameters_backend(args, nums, paths) -> registry.Backend:
    """The backend of the parameters' array leaves. Python-float parameters adopt the backend of
    the other arguments' arrays (numpy when there are none)."""
    found: dict[str, tuple[registry.Backend, str]] = {}

    def visit(path, leaf):
        if type(leaf) is Traced:
            b = leaf._trace.backend
        elif isinstance(leaf, (bool, int, float, complex)) or leaf is None:
            return
        else:
            b = registry.owner(type(leaf))
            if b is None:
                return                      # reported by _box with its path
        found.setdefault(b.name, (b, path))

    for i, path in zip(nums, paths):
        map_with_path(visit, args[i], path)
    if not found:
        for i, a in enumerate(args):
            map_with_path(visit, a, f"args[{i}]")
            if found:
                break
    if len(found) > 1:
        (b1, p1), (b2, p2) = list(found.values())[:2]
        raise TypeError(f"grad: parameters on two backends: {p1} is {b1.name}, {p2} is {b2.name}; "
                        f"put them on one backend first")
    return next(iter(found.values()))[0] if found else registry.default_backend()


def _box(trace: Trace, path: str, leaf: Any, found: list) -> Traced:
    if isinstance(leaf, float):
        xp = trace.backend.ns
        value = xp.asarray(leaf, dtype=xp.float64)
    elif isinstance(leaf, (bool, int)):
        raise TypeError(f"grad: parameter {path} is a Python {type(leaf).__name__} ({leaf!r}); only "
                        f"floating-point values can be differentiated (write {float(leaf)!r})")
    elif type(leaf) is Traced or registry.owner(type(leaf)) is not None:
        backend = registry.backend_of(leaf)
        as_parameter = getattr(backend.module, "parameter_value", None)
        value = as_parameter(leaf) if as_parameter and type(leaf) is not Traced else leaf
        xp = backend.ns
        if not xp.isdtype(leaf.dtype, "real floating"):
            raise TypeError(f"grad: parameter {path} has dtype {leaf.dtype}; only real floating-point "
                            f"arrays can be differentiated (cast it, e.g. with kn.astype(x, kn.float64))")
    else:
        raise TypeError(f"grad: parameter {path} is a {registry.describe(leaf)}, not an array or a "
                        f"float; registered array types: {', '.join(sorted(registry.backends()))}")
    boxed = trace.leaf(value)
    found.append((boxed._node, leaf))
    return boxed


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
    if not registry.backend_of(value).ns.isdtype(value.dtype, "real floating"):
        raise TypeError(f"grad: {_name(f)} returned a scalar of dtype {value.dtype}; the output must "
                        f"be a floating-point scalar (a comparison or an integer result has no "
                        f"gradient)")
    return value


def _gradient_tree(param_tree: Any, found: list, trace: Trace) -> Any:
    """The gradient with the structure of ``param_tree``, leaf by leaf from the boxed leaves."""
    grads = iter(found)

    def leaf_gradient(_, leaf):
        node, original = next(grads)
        if node.cotangent is None:
            g = trace.backend.ns.zeros_like(strip(node.value))
        else:
            g = cotangent.densify(node.cotangent, node.value, trace.backend)
        if isinstance(original, float):
            return float(g) if type(g) is not Traced else g
        if type(g) is not Traced and type(g) is not type(original) and type(original) is not Traced:
            g = registry.backend_of(original).ns.asarray(g)
        return g

    return map_with_path(leaf_gradient, param_tree, "")
