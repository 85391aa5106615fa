"""Fixtures and limits shared by every test tier.

Every time limit in the tests comes from :data:`SCALE` so a slow machine can stretch them all
at once: ``PYROS_TEST_TIME_SCALE=3 pytest``.

The whole run uses a private runtime directory (``PYROS_RUNTIME_DIR``) so tests never meet the
user's own nodes, and each test checks that it left no child process and no node directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

SCALE = float(os.environ.get("PYROS_TEST_TIME_SCALE", "1"))

RUNTIME_DIR = Path(tempfile.mkdtemp(prefix="pyros-test-"))
os.environ["PYROS_RUNTIME_DIR"] = str(RUNTIME_DIR)


def limit(seconds: float) -> float:
    """Return a test time limit of ``seconds`` times :data:`SCALE`."""
    return seconds * SCALE


def wait_until(predicate, timeout: float, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it is true or ``timeout`` (already scaled) seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@pytest.fixture(autouse=True)
def no_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a child process or a node directory behind.

    Processes and directories that existed before the test (from module- or session-scoped
    fixtures) are not counted.
    """
    me = psutil.Process()
    before_children = {c.pid for c in me.children(recursive=True)}
    before_dirs = {p.name for p in RUNTIME_DIR.iterdir()}
    yield

    def new_children() -> list[psutil.Process]:
        found = []
        for child in me.children(recursive=True):
            try:
                if child.pid not in before_children and child.status() != psutil.STATUS_ZOMBIE:
                    found.append(child)
            except psutil.NoSuchProcess:
                pass
        return found

    def new_dirs() -> list[str]:
        return [p.name for p in RUNTIME_DIR.iterdir() if p.is_dir() and p.name not in before_dirs]

    if not wait_until(lambda: not new_children() and not new_dirs(), limit(5.0)):
        children = [f"{c.pid} {c.cmdline()[:5]}" for c in new_children()]
        pytest.fail(f"left behind: processes {children}, node directories {new_dirs()}")


@pytest.fixture(scope="session", autouse=True)
def remove_runtime_dir() -> Iterator[None]:
    """Remove the run's private runtime directory at the end."""
    yield
    shutil.rmtree(RUNTIME_DIR, ignore_errors=True)
