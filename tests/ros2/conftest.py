"""Fixtures for tests against a real ROS 2 graph (rclpy from the PyPI wheels), loopback only.

Every test under ``tests/ros2/`` is marked ``ros2`` (by :func:`pytest_collection_modifyitems`,
so no test file can forget it) and skipped, with the reason, only when rclpy is not
installed. Time limits come from ``ros2_support.limit`` (the scale of ``tests/conftest.py``).

Fixtures:

``ros2_domain`` -> int (session scope, autouse: every test here runs in it)
    A random ``ROS_DOMAIN_ID`` in 1..100 for the whole session, set in ``os.environ``
    together with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a private ``ROS_LOG_DIR``
    (and ``ROS_STATIC_PEERS``/``ROS_LOCALHOST_ONLY`` removed), so that peers and the pyros
    nodes that ``pyros.spawn`` starts all inherit them. Restored at the end of the session.

``ros2_env`` -> dict (session scope)
    The environment for peer processes: ``os.environ`` with the above.

``ros2_peer`` -> factory ``ros2_peer(node_name=None, *args, env=None) -> RclpyPeer``
    (function scope; ``env`` adds variables to the peer's environment)
    Starts ``peers/peer.py`` (a real rclpy node driven by JSON lines) and waits for its
    ``READY``. Every peer is stopped (stdin closed: it leaves the graph; then SIGTERM and
    SIGKILL) and reaped at teardown.

``module_peers`` -> the same factory, module scope, for peers shared by a module's tests.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ros2_support import RclpyPeer, domain_env, limit, pick_domain, ros2_missing_reason

_HERE = Path(__file__).resolve().parent
_MISSING = ros2_missing_reason()
_VARIABLES = (
    "ROS_DOMAIN_ID",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "ROS_LOG_DIR",
    "ROS_STATIC_PEERS",
    "ROS_LOCALHOST_ONLY",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this directory ``ros2``; skip them if ROS 2 is not installed."""
    skip = pytest.mark.skip(reason=_MISSING) if _MISSING else None
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.ros2)
            if skip is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def ros2_domain() -> Iterator[int]:
    """The session's private ROS 2 domain, set in os.environ (see the module docstring)."""
    saved = {name: os.environ.get(name) for name in _VARIABLES}
    log_dir = Path(tempfile.mkdtemp(prefix="pyros-ros2-log-"))
    current = os.environ.get("ROS_DOMAIN_ID", "")
    domain = pick_domain(
        avoid=(int(current),) if current.isdigit() else ()
    )  # the conformance world's
    for name in ("ROS_STATIC_PEERS", "ROS_LOCALHOST_ONLY"):
        os.environ.pop(name, None)
    os.environ.update(domain_env(domain, log_dir))
    try:
        yield domain
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(log_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def ros2_env(ros2_domain: int) -> dict[str, str]:
    """The environment of peer processes: this one's, in the session's domain."""
    return dict(os.environ)


class _Peers:
    """Starts peers and stops them all at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.peers: list[RclpyPeer] = []
        self._count = itertools.count()

    def __call__(
        self, node_name: str | None = None, *args: str, env: dict[str, str] | None = None
    ) -> RclpyPeer:
        number = next(self._count)
        name = node_name or f"peer{os.getpid()}_{number}"
        log = self.log_dir / f"peer-{name}-{number}.stderr"
        peer = RclpyPeer(name, {**self.env, **(env or {})}, log, args)
        self.peers.append(peer)
        return peer.wait_ready(limit(20))

    def close(self) -> None:
        for peer in self.peers:
            peer.begin_stop()
        for peer in self.peers:
            peer.stop()


@pytest.fixture
def ros2_peer(ros2_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., RclpyPeer]]:
    """Factory of rclpy peers stopped at the end of the test (see the module docstring)."""
    peers = _Peers(ros2_env, tmp_path)
    try:
        yield peers
    finally:
        peers.close()


@pytest.fixture(scope="module")
def module_peers(
    ros2_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., RclpyPeer]]:
    """Factory of rclpy peers shared by a module's tests, stopped after the module."""
    peers = _Peers(ros2_env, tmp_path_factory.mktemp("peers"))
    try:
        yield peers
    finally:
        peers.close()
