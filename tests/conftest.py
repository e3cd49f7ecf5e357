"""Suite-wide settings: Hypothesis profiles (no deadlines on shared, noisy machines)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci", parent=settings.get_profile("default"), derandomize=True, max_examples=60
)
settings.load_profile("ci" if os.environ.get("CI") else "default")
