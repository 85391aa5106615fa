"""What every test tier shares: time limits and the run's private runtime directory.

Import it as ``from tests.support import ...`` (the repository root is on pytest's
``pythonpath``), never ``from tests.conftest import``: pytest loads ``conftest.py`` under its
own module name, and importing it again would run it twice.

Every time limit in the tests comes from :data:`SCALE` so a slow machine can stretch them all
at once: ``PYROS_TEST_TIME_SCALE=3 pytest``. The whole run uses one private runtime directory
(``PYROS_RUNTIME_DIR``) so tests never meet the user's own nodes: :data:`RUNTIME_DIR`, made
and exported when first imported (``tests/conftest.py`` does, as the run starts). Importing
anything else has no side effect, so peer processes, ``tests/rosbridge_server.py`` and the
benchmarks take :func:`free_port` from here too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SCALE", "RUNTIME_DIR", "limit", "wait_until", "free_port", "stop_process"]

SCALE = float(os.environ.get("PYROS_TEST_TIME_SCALE", "1"))

RUNTIME_DIR: Path
"""The run's runtime directory, also in ``PYROS_RUNTIME_DIR`` (made on first import)."""


def __getattr__(name: str) -> Path:
    """Make :data:`RUNTIME_DIR` when it is first imported (PEP 562)."""
    if name != "RUNTIME_DIR":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    runtime_dir = Path(tempfile.mkdtemp(prefix="pyros-test-"))
    os.environ["PYROS_RUNTIME_DIR"] = str(runtime_dir)
    globals()["RUNTIME_DIR"] = runtime_dir
    return runtime_dir


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


def stop_process(process: subprocess.Popen[Any], timeout: float) -> int:
    """Terminate ``process`` (SIGTERM, then SIGKILL after ``timeout`` seconds, already scaled)
    and reap it; return its exit code. A no-op once it has exited."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode
