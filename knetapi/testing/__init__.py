"""Testing helpers: a finite-difference gradient checker, and a traced Array API namespace.

:func:`check_grads` asserts that the gradient that knetapi computes matches a central finite
difference in one random direction, in float64 (:func:`knetapi.gradcheck`, as HIPS autograd's
checker does); with ``order=2`` it checks the gradient of a directional derivative too (a
Hessian-vector product), and so on.

:func:`traced_namespace` (knetapi.testing.conformance) is a full Array API namespace whose arrays are all
traced values, for running standard conformance tooling against them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..differentiate import grad
from .conformance import traced_namespace
from .gradient_check import GradcheckReport, check, dot, gradcheck, random_like

__all__ = ["check_grads", "gradcheck", "GradcheckReport", "traced_namespace"]


def check_grads(f: Callable, args: Sequence, *, argnums: int | tuple[int, ...] = 0, order: int = 1,
                eps: float = 1e-6, rtol: float | None = None, atol: float | None = None,
                seed: int = 0) -> None:
    """Assert that knetapi's gradient of ``f`` at ``args`` matches central finite differences.

    The check is :func:`knetapi.gradcheck` (a random direction, finite differences in float64,
    tolerances by dtype; gradient leaves must keep their parameter's shape and dtype), and its
    report is the AssertionError's message. With ``order=2`` the gradient of the directional
    derivative ``<grad f, v>`` in a random direction ``v`` is checked too, and so on.
    """
    rng = np.random.default_rng(seed)
    report, scalar, nums = check(f, args, argnums, eps, rtol, atol, rng)
    assert report, str(report)
    if order > 1:
        direction = [random_like(rng, args[i]) for i in nums]

        def directional(*a):
            return dot(grad(scalar, nums)(*a), direction)
        check_grads(directional, args, argnums=nums, order=order - 1, eps=eps, rtol=rtol, atol=atol,
                    seed=seed + 1)
