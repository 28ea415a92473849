"""The rule table's coverage of the Array API standard, kept honest against array-api-strict."""

import inspect

import pytest

import knetapi as kn
from knetapi.composite import COMPOSITES
from knetapi.namespace import CREATION, MISSING, NON_DIFFERENTIABLE, STANDARD_FUNCTIONS
from knetapi.rules import PRIMITIVES

NOT_STANDARD = {"get_array_api_strict_flags", "set_array_api_strict_flags", "reset_array_api_strict_flags"}


def test_standard_function_list_matches_array_api_strict():
    strict = pytest.importorskip("array_api_strict")
    assert strict.__array_api_version__ == "2025.12"
    names = {n for n in dir(strict) if not n.startswith("_") and inspect.isfunction(getattr(strict, n))}
    assert set(STANDARD_FUNCTIONS) == names - NOT_STANDARD


def test_every_standard_function_is_classified_exactly_once():
    differentiable = {n for n in STANDARD_FUNCTIONS if n in PRIMITIVES or n in COMPOSITES}
    kinds = [differentiable, set(NON_DIFFERENTIABLE), set(CREATION), set(MISSING)]
    assert sum(len(k) for k in kinds) == len(STANDARD_FUNCTIONS)
    assert set().union(*kinds) == set(STANDARD_FUNCTIONS)


def test_coverage_count_is_the_one_stated_in_the_rule_table():
    import knetapi.rules
    c = kn.COVERAGE
    header = (f"{c['standard functions']} functions: {c['with a derivative rule']} differentiable "
              f"({c['of which built from other rules']} of them built from other rules), "
              f"{c['non-differentiable']} non-differentiable, {c['creation and dtype functions']} "
              f"creation and dtype functions, {c['missing']} missing")
    assert header in " ".join(knetapi.rules.__doc__.split())


def test_every_standard_function_is_exported():
    for name in STANDARD_FUNCTIONS:
        assert callable(getattr(kn, name)), name
