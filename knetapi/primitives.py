"""Primitives: ops with a derivative rule, called on raw arrays or recorded on the tape.

A primitive takes arrays (or Python scalars, or None) positionally and static parameters
(axes, shapes, keys, dtypes) by keyword. On raw arrays it runs the backend's implementation; when
an argument is traced it records one node on the highest trace among its arguments. Its rule is
one VJP per positional argument, ``vjp(xp, g, y, *args, **static) -> cotangent of that argument``
(None: not differentiable there), evaluated only in the backward walk, where ``xp`` is the raw
namespace or, when anything is traced (higher order), the recording namespace.
"""

from __future__ import annotations

import functools
import inspect
from functools import partial
from typing import Any, Callable, Sequence

from . import registry
from .tape import record
from .traced import Traced


class Primitive:
    """An op with a derivative rule.

    name:         the op's name (the backend function of that name runs it unless ``impl`` is given)
    vjps:         one VJP per positional argument, None where not differentiable
    variadic_vjp: for ops taking any number of arrays: ``vjp(i, xp, g, y, *args, **static)``
    impl:         ``impl(ns, *args, **static)`` on raw arrays, ``ns`` the backend's raw namespace
    positional:   names of static parameters that callers may also pass positionally after the arrays
    """

    __slots__ = ("name", "vjps", "variadic_vjp", "impl", "positional", "doc", "bound")
    overridable = True     # a backend's OVERRIDES entry of this name replaces the generic impl

    def __init__(self, name: str, vjps: Sequence[Callable | None] | None = None, *,
                 variadic_vjp: Callable | None = None, impl: Callable | None = None,
                 positional: tuple[str, ...] = (), doc: str | None = None):
        self.name = name
        self.vjps = tuple(vjps) if vjps is not None else None
        self.variadic_vjp = variadic_vjp
        self.impl = impl
        self.positional = positional
        self.doc = doc
        self.bound: dict = {}   # backend -> this primitive's implementation on its raw arrays

    def __call__(self, *args: Any, **static: Any) -> Any:
        if self.positional and len(args) > len(self.vjps):
            n = len(self.vjps)
            static.update(zip(self.positional, args[n:]))
            args = args[:n]
        top = None
        for a in args:
            if type(a) is Traced and (top is None or a._trace.level > top.level):
                top = a._trace
        if top is None:
            return self.raw(args, static)
        return record(self, args, static, top)

    def raw(self, args: tuple, static: dict) -> Any:
        """Run on raw arrays with the backend that owns them."""
        backend = registry.backend_of_arrays(args, self.name) or registry.default_backend()
        return self.on(backend)(*args, **static)

    def on(self, backend) -> Callable:
        """The implementation on ``backend``'s raw arrays (cached; see :meth:`bind`)."""
        fn = self.bound.get(backend)
        return fn if fn is not None else self.bind(backend)

    def bind(self, backend) -> Callable:
        """The raw implementation on ``backend`` (its override, else the generic one), cached on
        this primitive: each primitive object owns its implementation, whatever its name."""
        fn = backend.overrides.get(self.name) if self.overridable else None
        if fn is None:
            fn = partial(self.impl, backend.ns) if self.impl else getattr(backend.ns, self.name)
        self.bound[backend] = fn
        return fn

    def vjp(self, i: int) -> Callable | None:
        """The VJP for positional argument ``i``."""
        if self.vjps is not None:
            return self.vjps[i]
        return partial(self.variadic_vjp, i)

    def __repr__(self) -> str:
        return f"<knetapi primitive {self.name}>"


def no_rule(name: str) -> Callable:
    """A function without a derivative rule: runs on raw arrays, refuses traced ones."""
    def refuse(*args, **kwargs):
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, Traced):
                raise NotImplementedError(
                    f"{name} has no derivative rule in knetapi yet, so it cannot be used inside grad "
                    f"on a traced value; define one with kn.primitive and kn.defvjp (that API arrives "
                    f"with the toolbox issue), or compute it from functions that have rules")
        backend = registry.backend_of_arrays(args, name) or registry.default_backend()
        return getattr(backend.ns, name)(*args, **kwargs)
    refuse.__name__ = name
    return refuse


class UserPrimitive(Primitive):
    """An op defined with :func:`primitive`; its rule comes from :func:`defvjp`.

    It never takes a backend's override of the same name, and it checks what the user's code
    returns: one array from the function, and from each VJP an array shaped like its argument."""

    overridable = False

    def __init__(self, f: Callable):
        super().__init__(getattr(f, "__name__", "primitive"), impl=partial(_call_user_function, f))
        functools.update_wrapper(self, f)   # __name__, __qualname__, __doc__, __module__, __wrapped__
        self.arity = _positional_arity(f)

    def __call__(self, *args: Any, **static: Any) -> Any:
        if self.vjps is None:
            if any(type(a) is Traced for a in args):
                raise NotImplementedError(f"{self.name} was called on a traced value but has no "
                                          f"derivative rule yet: give it one with kn.defvjp({self.name}, ...)")
        elif len(args) != len(self.vjps) and any(type(a) is Traced for a in args):
            raise TypeError(f"{self.name} was called with {len(args)} positional argument(s) but "
                            f"kn.defvjp gave it {len(self.vjps)} VJP(s); give one per positional "
                            f"argument (None where it has no gradient)")
        return super().__call__(*args, **static)


def _call_user_function(f: Callable, ns, *args, **static):
    out = f(*args, **static)
    if registry.owner(type(out)) is None:
        raise TypeError(f"kn.primitive {getattr(f, '__qualname__', f)} returned a "
                        f"{registry.describe(out)}; a primitive returns one array of the backend of "
                        f"its arguments (make one primitive per output)")
    return out


def _positional_arity(f: Callable) -> int | None:
    """How many positional parameters ``f`` takes (None: any number, or unknown)."""
    try:
        parameters = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
               for p in parameters)


def primitive(f: Callable) -> UserPrimitive:
    """Make ``f`` an op that knetapi records as one node; give its derivative with :func:`defvjp`.

    ``f`` takes arrays positionally (raw arrays, never traced ones) and static parameters by
    keyword, and returns one array. Written with ``kn.*`` or ``xp = kn.array_namespace(x)``
    functions it runs on every backend::

        @kn.primitive
        def cube(x):
            return x * x * x

        kn.defvjp(cube, lambda dy, y, x: 3 * x**2 * dy)

    The primitive keeps ``f``'s name, qualified name and docstring. Each call of ``kn.primitive``
    makes a new op, which owns ``f``: another primitive of the same name (or a built-in one, such
    as ``exp``) never runs in its place.
    """
    if not callable(f):
        raise TypeError(f"kn.primitive: expected a function, got {registry.describe(f)}")
    return UserPrimitive(f)


def defvjp(prim: UserPrimitive, *vjps: Callable | None) -> None:
    """Give ``prim`` one VJP per positional argument: ``vjp(dy, y, *args, **static)`` returns the
    gradient for that argument (None: not differentiable there), shaped like the argument (or
    like a shape it broadcasts to, which is then summed) with a floating-point dtype. VJPs run in
    the backward walk; written with ``kn.*`` functions they also work under higher-order
    differentiation."""
    if not isinstance(prim, UserPrimitive):
        raise TypeError(f"defvjp: expected a function made with kn.primitive, got {prim!r}")
    if not vjps:
        raise TypeError(f"defvjp({prim.name}): give one VJP per positional argument")
    for i, v in enumerate(vjps):
        if v is not None and not callable(v):
            raise TypeError(f"defvjp({prim.name}): VJP {i} is a {registry.describe(v)}, not a function "
                            f"or None")
    if prim.arity is not None and len(vjps) != prim.arity:
        raise TypeError(f"defvjp({prim.name}): {prim.name} takes {prim.arity} positional argument(s) "
                        f"but {len(vjps)} VJP(s) were given; give one per positional argument "
                        f"(None where it has no gradient)")
    prim.vjps = tuple(None if v is None else partial(_checked_vjp, prim, i, v) for i, v in enumerate(vjps))


def _checked_vjp(prim: UserPrimitive, i: int, vjp: Callable, xp, g, y, *args, **static):
    """The user's VJP for argument ``i``, its result checked against that argument."""
    out = vjp(g, y, *args, **static)
    arg = args[i]
    shape = tuple(getattr(arg, "shape", ()))
    if out is None or not hasattr(out, "shape") or not hasattr(out, "dtype"):
        raise TypeError(f"{prim.name}: the VJP of argument {i} returned a {registry.describe(out)}; "
                        f"it must return an array shaped like the argument {shape}")
    out_shape = tuple(out.shape)
    if out_shape != shape and _broadcast(shape, out_shape) != out_shape:
        raise ValueError(f"{prim.name}: the VJP of argument {i} returned shape {out_shape} for an "
                         f"argument of shape {shape}; it must return the argument's shape (or one "
                         f"the argument broadcasts to, which is summed)")
    if not xp.isdtype(out.dtype, "real floating"):
        raise TypeError(f"{prim.name}: the VJP of argument {i} returned dtype {out.dtype}; a "
                        f"gradient must be real floating-point")
    return out


def _broadcast(a: tuple, b: tuple) -> tuple | None:
    """The broadcast shape of ``a`` and ``b``, or None where they do not broadcast."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        return None
    return tuple(y if x == 1 else x for x, y in zip(a, b))
