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
