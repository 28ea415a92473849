"""torch.autograd as an independent oracle for every derivative rule, first and second order.

For each spec of the rule table (tests/rule_specs.py), hypothesis draws the arguments; the
function is run once on torch tensors that require grad, with no knetapi tracing involved: the
dispatching ``kn.<f>`` functions call torch's own functions (through array_api_compat.torch), so
``torch.autograd.grad`` differentiates them with torch's derivative formulas, none of ours. That
gradient, and the Hessian-vector product from ``create_graph=True``, must equal what knetapi's rules
compute on the same tensors (float64).

Every rule has a torch counterpart this way. Where torch.autograd itself fails on inputs the
standard allows, :data:`TORCH_FAILS` says when and with what error (also in docs/backends.md);
only that error, on those inputs, is accepted, and those inputs are covered against finite
differences by tests/test_rules.py.
"""

import warnings
from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import knetapi as kn
from rule_specs import SPECS, Spec
from test_rules import _differentiated, on_backend

TORCH_FAILS = {   # spec id: (the inputs where torch.autograd may fail, its error message)
    "clip[array bounds]": (lambda args, out: tuple(out.shape) != tuple(args[0].shape),
                           "doesn't match the broadcast shape"),
}


def _torch_gradients(f, args, argnums, weights, direction):
    """torch.autograd's gradient of ``sum(f(args) * weights)`` and its derivative along ``direction``."""
    leaves = [args[i].detach().clone().requires_grad_(True) for i in argnums]
    call = list(args)
    for i, leaf in zip(argnums, leaves):
        call[i] = leaf
    scalar = (f(*call) * weights).sum()
    first = torch.autograd.grad(scalar, leaves, create_graph=True, allow_unused=True)
    first = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, first)]
    directional = sum((g * d).sum() for g, d in zip(first, direction))
    if directional.requires_grad:
        second = torch.autograd.grad(directional, leaves, allow_unused=True)
        second = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, second)]
    else:
        second = [torch.zeros_like(x) for x in leaves]
    return [g.detach() for g in first], second


def _knetapi_gradients(f, args, argnums, weights, direction):
    def scalar(*a):
        return kn.sum(f(*a) * weights)

    first = kn.grad(scalar, argnums)(*args)

    def directional(*a):
        return sum(kn.sum(g * d) for g, d in zip(kn.grad(scalar, argnums)(*a), direction))

    with warnings.catch_warnings():     # a linear op's Hessian is zero: grad warns, rightly
        warnings.simplefilter("ignore", kn.IndependentOutputWarning)
        second = kn.grad(directional, argnums)(*args)
    return list(first), list(second)


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.id)
@given(data=st.data())
def test_gradients_equal_torch_autograd(spec: Spec, data):
    drawn = spec.draw(data.draw)
    argnums = _differentiated(spec, drawn.args)
    args = on_backend(list(drawn.args), "torch")
    f = partial(spec.call, **on_backend(dict(drawn.static), "torch"))
    rng = np.random.default_rng(0)
    out = f(*args)
    weights = torch.tensor(rng.standard_normal(tuple(out.shape)), dtype=out.dtype)
    direction = [torch.tensor(rng.standard_normal(tuple(args[i].shape)), dtype=args[i].dtype)
                 for i in argnums]
    try:
        expected_first, expected_second = _torch_gradients(f, args, argnums, weights, direction)
    except RuntimeError as error:
        fails_when, message = TORCH_FAILS.get(spec.id, (lambda args, out: False, None))
        if fails_when(args, out) and message in str(error):
            return
        raise
    first, second = _knetapi_gradients(f, args, argnums, weights, direction)
    for name, ours, theirs in (("gradient", first, expected_first),
                               ("Hessian-vector product", second, expected_second)):
        for i, a, b in zip(argnums, ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12,
                                       msg=lambda m: f"{spec.id}: {name} of argument {i}: {m}")
