"""The ``world`` fixture: every conformance test runs once per backend (see worlds.py)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conformance.worlds import WORLDS, World

for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
    if module.name.startswith("world_"):
        importlib.import_module(f"tests.conformance.{module.name}")

_cleanups: dict[str, Callable[[], None]] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "world" in metafunc.fixturenames:
        metafunc.parametrize(
            "world_name",
            [pytest.param(name, marks=getattr(pytest.mark, name)) for name in sorted(WORLDS)],
            scope="session",
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what a world cannot do (``World.unsupported``) as a strict xfail, for it alone."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("world_name") if callspec is not None else None
        why = WORLDS[name].unsupported.get(getattr(item, "originalname", "")) if name else None
        if why:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"{name}: {why}"))


@pytest.fixture(scope="session")
def world(world_name: str) -> Iterator[World]:
    """The backend and its graph, started once per session."""
    world = WORLDS[world_name]
    missing = world.available()
    if missing:
        pytest.skip(f"{world_name} is not available here: {missing}")
    cleanup = world.start() if world.start is not None else None
    try:
        yield world
    finally:
        if cleanup is not None:
            cleanup()
