"""The conventions at ties, on examples drawn to hold them (tests/rule_specs.py, TIE_SPECS).

Finite differences cannot judge a rule at a tie, and the property tests of tests/test_rules.py
draw away from ties, so here each rule's VJP is compared exactly with a numpy reference of its
documented convention: ``maximum``/``minimum`` give half of ``g`` to each side of a tie, ``max``/
``min`` share ``g`` equally among the elements equal to the extreme, and max pooling gives each
window's ``g`` to its first maximum in row-major order. Every example holds at least one tie.
"""

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

import knetapi as kn
from rule_specs import TIE_SPECS, TieSpec
from test_rules import on_backend

BACKENDS = ["numpy", "torch", "strict"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", TIE_SPECS, ids=lambda spec: spec.op)
@given(data=st.data())
def test_ties_follow_the_convention(spec: TieSpec, backend, data):
    drawn = spec.draw(data.draw)
    ties = spec.ties(*drawn.args, **drawn.static)
    assume(ties > 0)
    note(f"{ties} tie(s)")
    y = spec.call(*drawn.args, **drawn.static)
    g = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal(np.shape(y))
    expected = spec.reference(g, *drawn.args, **drawn.static)

    args, static, weights = on_backend(list(drawn.args), backend), on_backend(drawn.static, backend), \
        on_backend(g, backend)
    got = kn.grad(lambda *a: kn.sum(spec.call(*a, **static) * weights),
                  argnums=tuple(range(len(args))))(*args)
    for i, (ours, reference) in enumerate(zip(got, expected)):
        assert kn.backend_of(ours).name == backend
        np.testing.assert_allclose(kn.convert(ours, "numpy"), reference, rtol=1e-12, atol=1e-15,
                                   err_msg=f"{spec.op}: the gradient of argument {i}")


def test_the_references_are_the_documented_conventions():
    """The references themselves, on hand-made ties (they are what the property test trusts)."""
    maximum, minimum, reduce_max, _, pool = (spec.reference for spec in TIE_SPECS)
    g = np.array([1.0, 2.0, 4.0])
    a, b = np.array([1.0, 0.0, 2.0]), np.array([1.0, 1.0, 2.0])
    np.testing.assert_array_equal(maximum(g, a, b)[0], [0.5, 0.0, 2.0])
    np.testing.assert_array_equal(maximum(g, a, b)[1], [0.5, 2.0, 2.0])
    np.testing.assert_array_equal(minimum(g, a, b)[0], [0.5, 2.0, 2.0])
    np.testing.assert_array_equal(maximum(g, np.array(1.0), b)[0], 0.5 + 1.0)   # broadcast: summed
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(reduce_max(np.array([6.0, 3.0]), x, axis=1)[0],
                               [[0.0, 3.0, 3.0], [1.0, 1.0, 1.0]])
    image = np.array([[[[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]]])
    np.testing.assert_array_equal(
        pool(np.array([[[[5.0]]]]), image, window=(2, 3), padding=(0, 0), stride=None, mode="max")[0],
        [[[[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]]])


@pytest.mark.parametrize("spec", TIE_SPECS, ids=lambda spec: spec.op)
def test_the_tie_strategies_draw_mostly_ties(spec: TieSpec):
    """At least half of the drawn examples hold a tie (else most would be rejected above)."""
    found = []

    @settings(max_examples=30)
    @given(data=st.data())
    def draw(data):
        drawn = spec.draw(data.draw)
        found.append(spec.ties(*drawn.args, **drawn.static) > 0)
    draw()
    assert len(found) >= 20 and sum(found) >= len(found) / 2, found
