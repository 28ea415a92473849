"""Primitives: ops with a derivative rule, called on raw arrays or recorded on the tape.

A primitive takes arrays (or Python scalars, or None) positionally and static parameters
(axes, shapes, keys, dtypes) by keyword. On raw arrays it runs the backend's implementation; when
an argument is traced it records one node on the highest trace among its arguments. Its rule is
one VJP per positional argument, ``vjp(xp, g, y, *args, **static) -> cotangent of that argument``
(None: not differentiable there), evaluated only in the backward walk, where ``xp`` is the raw
namespace or, when anything is traced (higher order), the recording namespace.
"""

from __future__ import annotations

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

    __slots__ = ("name", "vjps", "variadic_vjp", "impl", "positional", "doc")

    def __init__(self, name: str, vjps: Sequence[Callable | None] | None = None, *,
                 variadic_vjp: Callable | None = None, impl: Callable | None = None,
                 positional: tuple[str, ...] = (), doc: str | None = None):
        self.name = name
        self.vjps = tuple(vjps) if vjps is not None else None
        self.variadic_vjp = variadic_vjp
        self.impl = impl
        self.positional = positional
        self.doc = doc

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
        fn = backend.raw_ops.get(self.name)
        if fn is None:
            fn = self.bind(backend)
        return fn(*args, **static)

    def bind(self, backend) -> Callable:
        """The raw implementation on ``backend`` (its override, else the generic one); cached."""
        fn = backend.overrides.get(self.name)
        if fn is None:
            fn = partial(self.impl, backend.ns) if self.impl else getattr(backend.ns, self.name)
        backend.raw_ops[self.name] = fn
        return fn

    def vjp(self, i: int) -> Callable | None:
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
    """An op defined with :func:`primitive`; its rule comes from :func:`defvjp`."""

    __slots__ = ()

    def __call__(self, *args: Any, **static: Any) -> Any:
        if self.vjps is None and any(type(a) is Traced for a in args):
            raise NotImplementedError(f"{self.name} was called on a traced value but has no "
                                      f"derivative rule yet: give it one with kn.defvjp({self.name}, ...)")
        return super().__call__(*args, **static)


def primitive(f: Callable) -> UserPrimitive:
    """Make ``f`` an op that knetapi records as one node; give its derivative with :func:`defvjp`.

    ``f`` takes arrays positionally (raw arrays, never traced ones) and static parameters by
    keyword, and returns one array. Written with ``kn.*`` or ``xp = kn.array_namespace(x)``
    functions it runs on every backend::

        @kn.primitive
        def cube(x):
            return x * x * x

        kn.defvjp(cube, lambda dy, y, x: 3 * x**2 * dy)
    """
    prim = UserPrimitive(getattr(f, "__name__", "primitive"),
                         impl=lambda ns, *args, **static: f(*args, **static), doc=f.__doc__)
    return prim


def defvjp(prim: UserPrimitive, *vjps: Callable | None) -> None:
    """Give ``prim`` one VJP per positional argument: ``vjp(dy, y, *args, **static)`` returns the
    gradient for that argument (None: not differentiable there). VJPs run in the backward walk;
    written with ``kn.*`` functions they also work under higher-order differentiation."""
    if not isinstance(prim, UserPrimitive):
        raise TypeError(f"defvjp: expected a function made with kn.primitive, got {prim!r}")
    if not vjps:
        raise TypeError(f"defvjp({prim.name}): give one VJP per positional argument")
    prim.vjps = tuple(None if v is None else _user_vjp(v) for v in vjps)


def _user_vjp(vjp: Callable) -> Callable:
    return lambda xp, g, y, *args, **static: vjp(g, y, *args, **static)
