"""Fixtures for every test tier: each test checks that it left no child process and no node
directory behind. Limits and the runtime directory live in :mod:`tests.support`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import psutil
import pytest

from tests.support import RUNTIME_DIR, limit, wait_until


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
