"""``gradcheck``: compare knetapi's gradient with central finite differences, in a random direction.

The check that HIPS autograd's ``check_grads`` makes: draw a random direction ``d`` for the
differentiated arguments, and compare knetapi's directional derivative ``<grad f(x), d>``, computed
at the arguments' own dtype, with ``(f(x + eps d) - f(x - eps d)) / (2 eps)`` evaluated on float64
copies of them on their own backend. A function with a non-scalar value is first reduced to a
scalar by a dot product with random weights. :func:`knetapi.testing.check_grads` asserts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from array_api_compat import device as device_of

from .. import registry
from ..convert import to_numpy
from ..differentiate import grad
from ..namespace import functions
from ..pytree import leaves, map_with_path, tree_map

SINGLE_TOLERANCE = (2e-2, 2e-3)     # (rtol, atol) when a differentiated leaf is float32 or float16
DOUBLE_TOLERANCE = (1e-5, 1e-7)


@dataclass(frozen=True)
class GradcheckReport:
    """The outcome of :func:`gradcheck`: ``bool(report)`` is whether it passed, ``str(report)`` a
    one-paragraph summary.

    analytic:   knetapi's directional derivative ``<grad f(x), d>``
    numeric:    the central finite difference of ``f`` along ``d``, in float64
    error:      ``|analytic - numeric|``
    tolerance:  the largest error that passes: ``atol + rtol * scale``, where ``scale`` is the
                larger of ``sum |grad| * |d|`` and ``|numeric|``
    relative_error: ``error / scale`` (0 when both are 0)
    dtype:      the lowest floating-point precision among the differentiated leaves
    problems:   gradient leaves whose type, shape or dtype differ from their parameter's
    """

    function: str
    argnums: tuple[int, ...]
    analytic: float
    numeric: float
    error: float
    tolerance: float
    relative_error: float
    dtype: str
    eps: float
    rtol: float
    atol: float
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.problems and self.error <= self.tolerance

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = (f"gradcheck of {self.function} with respect to argument(s) "
                f"{', '.join(map(str, self.argnums))} ({self.dtype}): "
                f"{'passed' if self.passed else 'FAILED'}. ")
        comparison = (f"knetapi's directional derivative is {self.analytic:.10g}, the central finite "
                      f"difference (eps {self.eps:g}, in float64) {self.numeric:.10g}: error "
                      f"{self.error:.3g}, relative error {self.relative_error:.3g}, "
                      f"{'within' if self.error <= self.tolerance else 'above'} the tolerance "
                      f"{self.tolerance:.3g} (atol {self.atol:g}, rtol {self.rtol:g}).")
        if self.problems:
            comparison += " Problems: " + "; ".join(self.problems) + "."
        return head + comparison


def gradcheck(f: Callable, *args: Any, argnums: int | tuple[int, ...] = 0, eps: float = 1e-6,
              rtol: float | None = None, atol: float | None = None, seed: int = 0) -> GradcheckReport:
    """Check ``kn.grad(f, argnums)`` at ``args`` against central finite differences of ``f``.

    The direction, and the weights reducing a non-scalar value of ``f``, are drawn from
    ``numpy.random.default_rng(seed)``. The default tolerances are ``rtol=2e-2, atol=2e-3`` when a
    differentiated leaf is float32 or float16, else ``rtol=1e-5, atol=1e-7``. Works on the arrays of
    every registered backend. Returns a :class:`GradcheckReport`; it does not raise on a mismatch.
    """
    report, _, _ = check(f, args, argnums, eps, rtol, atol, np.random.default_rng(seed))
    return report


def check(f: Callable, args: Sequence, argnums: int | tuple[int, ...], eps: float,
          rtol: float | None, atol: float | None, rng: np.random.Generator
          ) -> tuple[GradcheckReport, Callable, tuple[int, ...]]:
    """:func:`gradcheck` drawing from ``rng``; also returns the scalar function it checked and the
    argument numbers as a tuple (for checks of higher order, which go on drawing from ``rng``)."""
    if not callable(f):
        raise TypeError(f"gradcheck: f must be a function, got {registry.describe(f)}")
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    args = list(args)
    for i in nums:
        if not -len(args) <= i < len(args):
            raise ValueError(f"gradcheck: argnums includes {i}, but {len(args)} argument(s) were given")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"gradcheck: eps must be a positive number, got {eps!r}")
    eps = float(eps)
    scalar = _scalarized(f, args, rng)
    dtype = _lowest_precision(args, nums)
    default_rtol, default_atol = DOUBLE_TOLERANCE if dtype == "float64" else SINGLE_TOLERANCE
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol

    gradients = grad(scalar, nums)(*args)
    problems = [p for i, g in zip(nums, gradients) for p in _mismatches(args[i], g, f"args[{i}]")]
    problems += [p for i in nums for p in _nan_leaves(args[i], f"args[{i}]")]
    direction = [random_like(rng, args[i]) for i in nums]
    analytic = sum(_host_dot(g, d) for g, d in zip(gradients, direction))
    scale = sum(_host_dot(g, d, absolute=True) for g, d in zip(gradients, direction))

    def at(step: float) -> float:
        moved = list(args)
        for i, d in zip(nums, direction):
            moved[i] = _shifted(args[i], d, step)
        return float(scalar(*moved))

    numeric = (at(eps) - at(-eps)) / (2 * eps)
    scale = max(scale, abs(numeric))
    error = abs(analytic - numeric)
    report = GradcheckReport(
        function=getattr(f, "__name__", repr(f)), argnums=nums, analytic=analytic, numeric=numeric,
        error=error, tolerance=atol + rtol * scale,
        relative_error=error / scale if scale else (0.0 if error == 0 else float("inf")),
        dtype=dtype, eps=eps, rtol=rtol, atol=atol,
        problems=tuple(problems))
    return report, scalar, nums


def random_like(rng: np.random.Generator, tree: Any) -> Any:
    """A tree like ``tree`` of standard normal numpy float64 arrays (floats for float leaves)."""
    return tree_map(lambda x: float(rng.standard_normal()) if isinstance(x, float)
                    else rng.standard_normal(tuple(x.shape)), tree)


def dot(tree: Any, direction: Any) -> Any:
    """``sum <leaf, direction leaf>`` recorded with kn functions (``direction`` from random_like)."""
    return sum(functions["sum"](x * _like(d, x)) for x, d in zip(leaves(tree), leaves(direction)))


def _scalarized(f: Callable, args: list, rng: np.random.Generator) -> Callable:
    out = f(*args)
    shape = tuple(getattr(out, "shape", ()))
    weights = rng.standard_normal(shape)
    if not shape:
        return f
    weights = _like(weights, out, dtype=out.dtype)
    return lambda *a: functions["sum"](f(*a) * weights)


def _like(values: Any, x: Any, dtype: Any = None) -> Any:
    """numpy ``values`` as an array of ``x``'s backend and device (unchanged for a Python scalar
    ``x``, and floats stay floats)."""
    if isinstance(values, float) or isinstance(x, registry.SCALAR_TYPES):
        return values
    return registry.backend_of(x).ns.asarray(values, dtype=dtype, device=device_of(x))


def _lowest_precision(args: Sequence, nums: tuple[int, ...]) -> str:
    """The name of the lowest floating-point precision among the differentiated leaves."""
    names = {str(x.dtype).rpartition(".")[2] for i in nums for x in leaves(args[i])
             if not isinstance(x, float)}
    return next((name for name in ("float16", "bfloat16", "float32") if name in names), "float64")


def _mismatches(param: Any, gradient: Any, root: str) -> list[str]:
    found: list[str] = []
    flat = iter(leaves(gradient))

    def compare(path: str, p: Any) -> None:
        g = next(flat)
        if isinstance(p, float):
            if not isinstance(g, float):
                found.append(f"the gradient of the float {path} is a {registry.describe(g)}")
        elif tuple(g.shape) != tuple(p.shape):
            found.append(f"the gradient of {path} has shape {tuple(g.shape)}, its parameter "
                         f"{tuple(p.shape)}")
        elif g.dtype != p.dtype:
            found.append(f"the gradient of {path} has dtype {g.dtype}, its parameter {p.dtype}")

    map_with_path(compare, param, root)
    return found


def _nan_leaves(param: Any, root: str) -> list[str]:
    """A problem for each leaf of ``param`` holding NaN (both derivatives are then NaN)."""
    found: list[str] = []

    def visit(path: str, x: Any) -> None:
        xp = registry.backend_of(x).ns
        if bool(xp.any(xp.isnan(xp.asarray(x)))):
            found.append(f"{path} holds NaN, so both derivatives are NaN: check at finite arguments")

    map_with_path(visit, param, root)
    return found


def _host_dot(tree: Any, direction: Any, absolute: bool = False) -> float:
    """``sum <leaf, direction leaf>`` (of absolute values with ``absolute``) in float64 on the
    host; each array leaf is cast to float64 on its backend first (numpy has no bfloat16)."""
    total = 0.0
    for x, d in zip(leaves(tree), leaves(direction)):
        if isinstance(x, float):
            x = np.float64(x)
        else:
            xp = registry.backend_of(x).ns
            x = to_numpy(xp.astype(x, xp.float64))
        total += float(np.sum(np.abs(x) * np.abs(d)) if absolute else np.sum(x * d))
    return total


def _shifted(tree: Any, direction: Any, step: float) -> Any:
    """``tree + step * direction`` in float64, each array leaf on its own backend and device."""
    flat = iter(leaves(direction))

    def shift(_: str, x: Any) -> Any:
        d = next(flat)
        if isinstance(x, float):
            return x + step * d
        xp = registry.backend_of(x).ns
        return xp.astype(x, xp.float64) + step * _like(d, x)

    return map_with_path(shift, tree, "")
