"""Shared test setup: hypothesis profiles and float64 by default where gradients are checked.

Profiles: `ci` (bounded examples, no deadline; the default when CI is set or nothing is chosen)
and `thorough` (many more examples, for local runs): HYPOTHESIS_PROFILE=thorough pytest.
Hypothesis prints the seed and the shrunk example of any failure (print_blob).
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=25, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=400, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
