"""Fixtures for tests against a real ROS 1 (Debian's rospy and rosmaster), on loopback only.

Every test under ``tests/ros1/`` is marked ``ros1`` (by :func:`pytest_collection_modifyitems`
below, so no test file can forget it) and skipped, with the reason, only when ROS 1 is not
installed. Time limits come from ``ros1_support.limit`` (the scale of ``tests/conftest.py``).

Fixtures (reusable by any test module under ``tests/ros1/``):

``ros1_master`` -> :class:`ros1_support.Ros1Master` (function scope)
    A fresh ``rosmaster --core -p <free port>`` on 127.0.0.1 with ``ROS_IP=127.0.0.1`` and a
    private ``ROS_HOME`` in ``tmp_path``. ``.uri``, ``.port``, ``.env`` (environment for peers
    and clients: ``ROS_MASTER_URI``, ``ROS_IP``, ``ROS_HOME``), ``.state()`` (getSystemState:
    publishers, subscribers, services), ``.node_names()``, ``.entries_of(node)``,
    ``.topic_types()``, ``.call(method, *args)``, ``.wait_for(predicate, timeout, what)``.
    At teardown the master gets SIGTERM (SIGKILL after 5 s, scaled), is reaped, and the
    fixture asserts it exited.

``ros1_peer`` -> factory ``ros1_peer(name, *args, ready_timeout=None) -> Peer``
    Starts ``peers/<name>.py *args`` with this venv's Python and the master's environment and
    waits for its ``READY`` line. Peers: ``talker`` (``--topic``, ``--rate``), ``listener``
    (``--topic``, ``--type``; ``.read_json(timeout)`` gives ``{"msg", "time",
    "monotonic"}``), ``setbool_server`` (``--name``, default ``/set_flag``),
    ``trigger_server`` (``--name``, default ``/trigger``; prints ``{"calls": n}``),
    ``failing_server`` (``--name``, default ``/fail``, ``--error``), ``echo`` (``--in``,
    ``--out``, ``--type``); all take ``--node-name``. ``.lines()`` returns output so far,
    ``.stop()`` ends one early. Every peer is stopped (SIGTERM, then SIGKILL) and reaped at
    teardown.

``ros1_backend`` -> factory ``ros1_backend(node_name=None, env=None, **options) -> BackendDriver``
    Starts ``peers/backend_driver.py``: one ``Ros1Backend(node_name, **options)`` in its own
    process (rospy allows one node per process), started against ``ros1_master`` unless
    ``env`` says otherwise. Raises what ``start()`` raised (``SpawnError``...).
    ``.request(op, *args)`` runs a backend method there and raises the same pyros exception
    classes; ``.next_message(topic, timeout)`` returns what a subscription delivered;
    ``.started`` is the start report (``{"node": "/pyros_x", "start_seconds": s}``).
    Drivers are closed at teardown (stdin closed: the backend stops, then the process exits).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ros1_support import (
    PEERS_DIR,
    BackendDriver,
    Peer,
    Ros1Master,
    limit,
    ros1_missing_reason,
)

_HERE = Path(__file__).resolve().parent
_MISSING = ros1_missing_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this directory ``ros1``; skip them if ROS 1 is not installed."""
    skip = pytest.mark.skip(reason=_MISSING) if _MISSING else None
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.ros1)
            if skip is not None:
                item.add_marker(skip)


@pytest.fixture
def ros1_master(tmp_path: Path) -> Iterator[Ros1Master]:
    """A rosmaster on 127.0.0.1 for one test (see the module docstring)."""
    master = Ros1Master(tmp_path / "ros_home")
    try:
        yield master
    finally:
        master.stop()
        assert master.proc.returncode is not None, "rosmaster did not exit"


@pytest.fixture
def ros1_peer(ros1_master: Ros1Master, tmp_path: Path) -> Iterator[Callable[..., Peer]]:
    """Factory of peer processes (see the module docstring)."""
    peers: list[Peer] = []
    counter = itertools.count()

    def start(name: str, *args: str, ready_timeout: float | None = None) -> Peer:
        script = PEERS_DIR / f"{name}.py"
        if not script.is_file():
            raise ValueError(f"no peer script {script}")
        log = tmp_path / f"peer-{name}-{next(counter)}.stderr"
        peer = Peer(script, list(args), ros1_master.env, log, stdin=False)
        peers.append(peer)
        peer.wait_ready(limit(15) if ready_timeout is None else ready_timeout)
        return peer

    try:
        yield start
    finally:
        for peer in peers:
            peer.begin_stop()  # all at once: each rospy node takes a moment to shut down
        for peer in peers:
            peer.stop()
        assert all(peer.proc.returncode is not None for peer in peers)


@pytest.fixture
def ros1_backend(ros1_master: Ros1Master, tmp_path: Path) -> Iterator[Callable[..., BackendDriver]]:
    """Factory of backend drivers (see the module docstring)."""
    drivers: list[BackendDriver] = []
    counter = itertools.count()

    def start(
        node_name: str | None = None, env: dict[str, str] | None = None, **options: Any
    ) -> BackendDriver:
        number = next(counter)
        name = node_name or f"pyros_test{os.getpid()}_{number}"
        log = tmp_path / f"backend-{number}.stderr"
        driver = BackendDriver(
            PEERS_DIR / "backend_driver.py",
            [name, json.dumps(options)],
            ros1_master.env if env is None else env,
            log,
        )
        drivers.append(driver)
        driver.started = driver.wait_started(limit(20))
        return driver

    try:
        yield start
    finally:
        for driver in drivers:
            driver.begin_stop()
        for driver in drivers:
            driver.stop()
        assert all(driver.proc.returncode is not None for driver in drivers)
