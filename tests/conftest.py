"""Test-wide settings: Hypothesis checks behaviour, not speed (speed lives in bench/)."""

import os

from hypothesis import settings

# A per-example deadline would turn a slow, shared CI machine into flaky failures; in CI the
# examples are also derandomised so a failure reproduces from the log.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "default")
