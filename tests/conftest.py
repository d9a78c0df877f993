"""Settings shared by the whole suite."""

from hypothesis import HealthCheck, settings

# CI runs the suite on two shared cores: data generation may be slow there
# without anything being wrong, so neither the per-example deadline nor the
# too-slow health check may fail a test.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")
