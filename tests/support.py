"""What every test tier shares: time limits and the run's private runtime directory.

Import it as ``from tests.support import ...`` (the repository root is on pytest's
``pythonpath``), never ``from tests.conftest import``: pytest loads ``conftest.py`` under its
own module name, and importing it again would run it twice.

Every time limit in the tests comes from :data:`SCALE` so a slow machine can stretch them all
at once: ``PYROS_TEST_TIME_SCALE=3 pytest``. The whole run uses one private runtime directory
(``PYROS_RUNTIME_DIR``) so tests never meet the user's own nodes.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["SCALE", "RUNTIME_DIR", "limit", "wait_until", "free_port"]

SCALE = float(os.environ.get("PYROS_TEST_TIME_SCALE", "1"))

RUNTIME_DIR = Path(tempfile.mkdtemp(prefix="pyros-test-"))
os.environ["PYROS_RUNTIME_DIR"] = str(RUNTIME_DIR)


def limit(seconds: float) -> float:
    """Return a test time limit of ``seconds`` times :data:`SCALE`."""
    return seconds * SCALE


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` (already scaled) seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
