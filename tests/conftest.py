"""Fixtures and limits shared by every test tier.

Every time limit in the tests comes from :data:`SCALE` so a slow machine can stretch them all
at once: ``PYROS_TEST_TIME_SCALE=3 pytest``.
"""

from __future__ import annotations

import os

SCALE = float(os.environ.get("PYROS_TEST_TIME_SCALE", "1"))


def limit(seconds: float) -> float:
    """Return a test time limit of ``seconds`` times :data:`SCALE`."""
    return seconds * SCALE
