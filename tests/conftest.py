"""Hypothesis profiles: ``ci`` (the default) is derandomized with a fixed example budget, so a red
run is never luck; ``dev`` draws fresh random examples, more of them, for hunting bugs
(``HYPOTHESIS_PROFILE=dev pytest``)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=300, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Every run ends with its skips counted by reason; under CI a skip for a missing package of the
# [test] extra or the missing Fashion-MNIST fails (tests/skips.py).
from skips import (pytest_make_collect_report, pytest_runtest_makereport,  # noqa: E402,F401
                   pytest_terminal_summary)


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: long differential fuzzing (tests/test_fuzz.py), run only "
                                       "when -m selects it: pytest -m fuzz")


def pytest_collection_modifyitems(config, items):
    """Deselect the ``fuzz`` tests unless a ``-m`` expression chooses what runs."""
    if config.option.markexpr:
        return
    fuzz = [item for item in items if item.get_closest_marker("fuzz")]
    if fuzz:
        config.hook.pytest_deselected(items=fuzz)
        items[:] = [item for item in items if not item.get_closest_marker("fuzz")]
