"""Property tests of every derivative rule against finite differences (the table is in rule_specs).

Each spec runs in float64 and float32: ``check_grads`` compares the VJP with central differences
in float64 in a random direction, checks that each gradient has its parameter's shape and dtype,
and does the same for a Hessian-vector product (``order=2``): every rule's VJP must itself be
differentiable, since it is recorded on the tape at higher order.
"""

from functools import partial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import knetapi as kn
from knetapi.composite import COMPOSITES
from knetapi.rules import PRIMITIVES
from knetapi.scatter import is_basic_key
from knetapi.testing import check_grads
from rule_specs import SPECS, Spec


def _in_dtype(arg, dtype):
    """A floating array argument cast to ``dtype``; anything else (indices, masks) unchanged."""
    if isinstance(arg, np.ndarray) and np.issubdtype(arg.dtype, np.floating):
        return arg.astype(dtype)
    return arg


def _differentiated(spec: Spec, args) -> tuple[int, ...]:
    return tuple(i for i, a in enumerate(args) if i not in spec.constant
                 and isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating))


def on_backend(value, backend: str):
    """``value`` with every numpy array (arguments, index keys) and dtype in it moved to ``backend``."""
    if isinstance(value, (np.ndarray, np.generic)):
        return kn.convert(np.asarray(value), backend)
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return getattr(kn.registry.get_backend(backend).ns, np.dtype(value).name)
    if isinstance(value, (tuple, list)):
        return type(value)(on_backend(v, backend) for v in value)
    if isinstance(value, dict):
        return {k: on_backend(v, backend) for k, v in value.items()}
    return value


BACKENDS = ["numpy", "torch", "strict"]

CASES = [pytest.param(backend, spec, id=f"{backend}-{spec.id}") for backend in BACKENDS for spec in SPECS]


def outside_the_standard(key, ndim: int) -> bool:
    """Whether ``key`` holds integer arrays but is not one integer array or int per axis: numpy
    defines such keys (arrays mixed with slices, or indexing fewer axes), the standard does not,
    and array-api-strict refuses them."""
    parts = key if isinstance(key, tuple) else (key,)
    if not any(hasattr(p, "dtype") and p.dtype != np.bool_ for p in parts):
        return False
    return not (len(parts) == ndim and all(hasattr(p, "dtype") or isinstance(p, int) for p in parts))


def standard_key(key):
    """A numpy-style index key as the standard spells it: a tuple, with a trailing ``...`` when it
    does not index every axis (numpy adds that implicitly; array-api-strict requires it)."""
    parts = key if isinstance(key, tuple) else (key,)
    return parts if any(p is Ellipsis for p in parts) else parts + (Ellipsis,)


# A linear op's directional derivative does not depend on its arguments (its Hessian is zero):
# grad warns about that at order 2, as it should, and the check still compares the zero.
@pytest.mark.filterwarnings("ignore::knetapi.IndependentOutputWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("backend, spec", CASES)
@given(data=st.data())
def test_gradient_matches_finite_differences(backend, spec: Spec, dtype, data):
    drawn = spec.draw(data.draw)
    args = [_in_dtype(a, dtype) for a in drawn.args]
    argnums = _differentiated(spec, args)
    assert argnums, f"{spec.id}: the drawn example has nothing to differentiate"
    static = dict(drawn.static)
    if backend == "strict" and "key" in static:
        if outside_the_standard(static["key"], args[0].ndim):
            with pytest.raises(IndexError):
                spec.call(*on_backend(args, backend), **on_backend(static, backend))
            return
        if is_basic_key(static["key"]):
            static["key"] = standard_key(static["key"])
    args, static = on_backend(args, backend), on_backend(static, backend)
    check_grads(partial(spec.call, **static), args, argnums=argnums, order=2, **spec.check)


def test_every_rule_has_a_spec():
    """Adding a rule without a property test turns this red (and a spec for a removed rule too)."""
    rules = {("primitive", name) for name in PRIMITIVES} | {("composite", name) for name in COMPOSITES}
    specified = {(spec.kind, spec.op) for spec in SPECS}
    assert sorted(rules - specified) == [], "rules without a spec in tests/rule_specs.py"
    assert sorted(specified - rules) == [], "specs of rules that do not exist"


def test_spec_ids_are_unique():
    ids = [spec.id for spec in SPECS]
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
