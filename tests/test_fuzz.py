"""Differential fuzzing against torch.autograd: random programs (tests/fuzz_programs.py) run by
knetapi on numpy, torch and array-api-strict arrays must give torch.autograd's loss, gradient and
Hessian-vector product (float64, errors within 1e-9 of the largest element).

``test_programs_agree_with_torch_autograd`` runs 500 programs in every test run (derandomized under
the ``ci`` profile: the same programs each time). ``test_fuzz_many_programs`` runs 10,000 and only
when ``-m`` selects it (tests/conftest.py deselects it otherwise)::

    HYPOTHESIS_PROFILE=ci .venv/bin/python -m pytest -m fuzz tests/test_fuzz.py

Each bug that fuzzing found has a regression test below, named after what it pins, and the
generator still draws its case. docs/reliability.md ("Differential fuzzing") records the runs.
"""

import collections
import os
import platform
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from numpy.testing import assert_array_equal

import knetapi as kn
from fuzz_programs import BACKENDS, Program, check, programs


@settings(max_examples=500)
@given(program=programs())
def test_programs_agree_with_torch_autograd(program: Program):
    check(program)


@pytest.mark.fuzz
def test_fuzz_many_programs(capsys):
    """10,000 programs; prints how many ran, of what kind, and how long they took."""
    tally, ops = collections.Counter(), collections.Counter()

    @settings(max_examples=10_000)
    @given(program=programs())
    def fuzz(program: Program):
        tally["programs"] += 1
        tally["steps"] += len(program.steps)
        ops.update(step.name for step in program.steps)
        tally["with a Hessian-vector product"] += program.direction is not None
        tally["also on array-api-strict (index keys inside the standard)"] += program.standard
        check(program)

    start = time.perf_counter()
    fuzz()
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\ndifferential fuzzing: {seconds:.0f} s on {os.cpu_count()} CPUs "
              f"({platform.processor() or platform.machine()}), profile "
              f"{os.environ.get('HYPOTHESIS_PROFILE', 'ci')}")
        for what, count in tally.items():
            print(f"  {what}: {count}")
        rarest = ", ".join(f"{name} {count}" for name, count in sorted(ops.items(), key=lambda o: o[1])[:5])
        print(f"  kinds of step: {len(ops)}; the rarest: {rarest}")


# --- regression tests of the bugs that fuzzing found ----------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_copysign_by_a_python_float_is_differentiable(backend):
    """``copysign``'s rule calls ``signbit`` on its second argument, which may be a Python float:
    numpy accepts one, torch and array-api-strict raise TypeError in the backward walk."""
    x = kn.convert(np.array([1.5, -2.0]), backend)
    gradient = kn.grad(lambda x: kn.sum(kn.copysign(x, -1.0)))(x)
    assert_array_equal(np.asarray(kn.convert(gradient, "numpy")), [-1.0, 1.0])


@pytest.mark.parametrize("key", ["integer array", "mask"])
def test_indexing_a_transposed_torch_value_is_differentiable(key):
    """The torch backend's scatter-add views ``zeros_like(value)`` as 1-d, but ``zeros_like`` keeps
    the strides of a transposed (non-contiguous) value, so the view raises RuntimeError."""
    def f(x):
        t = kn.matrix_transpose(x)                          # (3, 2), not contiguous
        return kn.sum(t[torch.tensor([0, 0, 2])] if key == "integer array" else t[t > 2.5])

    x = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    expected = [[2.0, 0.0, 1.0], [2.0, 0.0, 1.0]] if key == "integer array" else [[0, 0, 0], [1, 1, 1]]
    assert_array_equal(kn.grad(f)(x).numpy(), expected)


@pytest.mark.parametrize("contraction", ["vecdot", "tensordot", "outer"])
def test_contraction_of_a_constant_and_a_parameter_on_array_api_strict(contraction):
    """``kn.vecdot``, ``kn.tensordot`` and ``kn.outer`` of a traced value are written with the
    operators ``*`` and ``@``; with a raw array-api-strict array on the left, its operator refuses
    the traced right operand (TypeError) instead of deferring to it, as numpy and torch do."""
    xp = pytest.importorskip("array_api_strict")
    a = xp.asarray([1.0, 2.0])
    call = {"vecdot": lambda w: kn.vecdot(a, w), "tensordot": lambda w: kn.tensordot(a, w, axes=1),
            "outer": lambda w: kn.sum(kn.outer(a, w))}[contraction]
    gradient = kn.grad(call)(xp.asarray([3.0, -1.0]))
    expected = [3.0, 3.0] if contraction == "outer" else [1.0, 2.0]
    assert_array_equal(np.asarray(kn.convert(gradient, "numpy")), expected)
