"""Which tests were skipped and why, and, under CI, no skip for something ``./run test`` installs.

A skip hides a test as well as a deletion does. Every run ends with the skips counted by reason.
Where the environment variable ``CI`` is set (``true``, as CI services set it), a skip whose
reason is a missing package of the ``[test]`` extra (``could not import 'torch'``,
``array-api-strict is not installed``) or the missing Fashion-MNIST data set (Debian's
``dataset-fashion-mnist``, which ``./run test`` installs) fails instead: CI must run what a
developer's ``./run test`` runs. Other skips (cupy not registered, a GPU that is absent) stay
skips. tests/conftest.py imports the hooks below.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = "dataset-fashion-mnist"          # what the data skips name; ./run test installs it
MISSING_MODULE = [re.compile(r"could not import '([\w.]+)'"), re.compile(r"^([\w.-]+) is not installed")]


def test_extra_modules(pyproject: Path = ROOT / "pyproject.toml") -> set[str]:
    """The import names of the ``[test]`` extra's packages (a distribution ``array-api-strict``
    is the module ``array_api_strict``), read from pyproject.toml."""
    extra = re.search(r"^test = \[(.*?)\]", pyproject.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)
    names = re.findall(r'"([A-Za-z0-9_.-]+)', extra.group(1)) if extra else []
    return {name.lower().replace("-", "_") for name in names}


test_extra_modules.__test__ = False     # not a test, despite its name


def required_by_ci(reason: str, modules: set[str]) -> bool:
    """Whether a skip for ``reason`` means a dependency of ``./run test`` is missing."""
    if DATA in reason:
        return True
    for pattern in MISSING_MODULE:
        m = pattern.search(reason)
        if m and m.group(1).split(".")[0].lower().replace("-", "_") in modules:
            return True
    return False


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_reason(report) -> str:
    """The reason of a skipped test or collection report."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _fail_if_required(report) -> None:
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report)
    if required_by_ci(reason, test_extra_modules()):
        report.outcome = "failed"
        report.longrepr = (f"skipped under CI for a missing dependency of ./run test, which must be "
                           f"installed there: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_if_required(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_if_required(outcome.get_result())


def pytest_terminal_summary(terminalreporter):
    """The skips counted by reason (the first line of each), most frequent first."""
    reasons = Counter(skip_reason(r).splitlines()[0] if skip_reason(r) else "(no reason given)"
                      for r in terminalreporter.stats.get("skipped", ())
                      if not hasattr(r, "wasxfail"))
    if not reasons:
        return
    total = sum(reasons.values())
    terminalreporter.write_sep("-", f"{total} test(s) or module(s) skipped, by reason")
    for reason, n in reasons.most_common():
        terminalreporter.write_line(f"{n:5d}  {reason}")
    if not in_ci() and any(required_by_ci(r, test_extra_modules()) for r in reasons):
        terminalreporter.write_line("Some skips are for a dependency that ./run test installs; "
                                    "under CI (CI=true) they fail.")
