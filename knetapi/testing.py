"""Testing helpers: a finite-difference gradient checker.

:func:`check_grads` compares the gradient that knetapi computes with a central finite difference in
one random direction, in float64, as HIPS autograd's checker does; with ``order=2`` it checks the
gradient of a directional derivative too (a Hessian-vector product), and so on.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .differentiate import grad
from .namespace import functions as kn
from .pytree import leaves, tree_map


def _as_float64(x: Any) -> Any:
    return np.asarray(x, dtype=np.float64) if not isinstance(x, float) else x


def _dot(a: Any, b: Any):
    return sum(kn["sum"](x * y) for x, y in zip(leaves(a), leaves(b)))


def _random_like(rng: np.random.Generator, tree: Any) -> Any:
    return tree_map(lambda x: float(rng.standard_normal()) if isinstance(x, float)
                    else rng.standard_normal(np.shape(x)), tree)


def _tolerance(args: Sequence, argnums: tuple[int, ...]) -> tuple[float, float]:
    single = any(getattr(x, "dtype", None) == np.float32 for i in argnums for x in leaves(args[i]))
    return (2e-2, 2e-3) if single else (1e-5, 1e-7)


def check_grads(f: Callable, args: Sequence, *, argnums: int | tuple[int, ...] = 0, order: int = 1,
                eps: float = 1e-6, rtol: float | None = None, atol: float | None = None,
                seed: int = 0) -> None:
    """Check knetapi's gradient of ``f`` at ``args`` against central finite differences.

    ``f`` may return an array of any shape: it is reduced to a scalar by a dot product with a random
    array. The gradient is computed at the arguments' own dtype and compared with finite differences
    of ``f`` on float64 copies, in a random direction (tolerances depend on the dtype). Gradient
    leaves must also keep their parameter's shape and dtype. Raises AssertionError on a mismatch.
    """
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    rng = np.random.default_rng(seed)
    out = f(*args)
    weights = rng.standard_normal(np.shape(out))
    scalar = (lambda *a: kn["sum"](f(*a) * weights.astype(np.asarray(out).dtype))) if np.ndim(out) else f
    _check_once(scalar, list(args), nums, rng, eps, rtol, atol)
    if order > 1:
        direction = [_random_like(rng, args[i]) for i in nums]

        def directional(*a):
            g = grad(scalar, nums)(*a)
            return _dot(g, direction)
        check_grads(directional, args, argnums=nums, order=order - 1, eps=eps, rtol=rtol, atol=atol,
                    seed=seed + 1)


def _check_once(scalar: Callable, args: list, nums: tuple[int, ...], rng, eps, rtol, atol) -> None:
    default_rtol, default_atol = _tolerance(args, nums)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    gradients = grad(scalar, nums)(*args)
    for i, g in zip(nums, gradients):
        for p, gl in zip(leaves(args[i]), leaves(g)):
            if isinstance(p, float):
                assert isinstance(gl, float), f"gradient of a float parameter is {type(gl)}"
            else:
                assert tuple(gl.shape) == tuple(np.shape(p)), f"gradient shape {gl.shape} != {np.shape(p)}"
                assert gl.dtype == p.dtype, f"gradient dtype {gl.dtype} != parameter dtype {p.dtype}"
    direction = [_random_like(rng, args[i]) for i in nums]
    gradients64 = [tree_map(_as_float64, g) for g in gradients]
    analytic = float(sum(float(_dot(g, d)) for g, d in zip(gradients64, direction)))
    scale = float(sum(float(_dot(tree_map(np.abs, g), tree_map(np.abs, d)))
                      for g, d in zip(gradients64, direction)))

    def at(step: float) -> float:
        moved = list(args)
        for i, d in zip(nums, direction):
            moved[i] = _shift(tree_map(_as_float64, args[i]), d, step)
        return float(scalar(*moved))
    numeric = (at(eps) - at(-eps)) / (2 * eps)
    assert abs(analytic - numeric) <= atol + rtol * max(scale, abs(numeric)), (
        f"gradient mismatch: knetapi's directional derivative {analytic!r}, "
        f"finite differences {numeric!r} (tolerance {atol} + {rtol} * {max(scale, abs(numeric))!r})")


def _shift(tree: Any, direction: Any, step: float) -> Any:
    flat_d = iter(leaves(direction))
    return tree_map(lambda x: x + step * next(flat_d), tree)
