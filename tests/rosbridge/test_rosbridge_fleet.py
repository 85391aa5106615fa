"""A fleet operator through the pyros relay: ``pyros.spawn("rosbridge", url=RELAY, token=...)``.

Real processes: ``pyros relay`` with a tokens file, one ``pyros connector`` per mock robot
(``robot1`` and ``robot2``, each its own mock node), and the operator's pyros node with the
rosbridge backend. The relay answers ``/rosapi/topics`` from its registry, so listing works
without any rosapi on the robots.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyros
from pyros.exceptions import ActionError, PyrosError
from tests.cloud.connector_support import ConnectorProcess, wait_device_online
from tests.cloud.relay_support import DEVICE_TOKENS, relay_process
from tests.support import limit


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Any, dict[str, ConnectorProcess]]]:
    with relay_process(tmp_path) as relay:
        connectors: dict[str, ConnectorProcess] = {}
        try:
            for robot in ("robot1", "robot2"):
                connectors[robot] = ConnectorProcess(
                    [
                        "--relay",
                        relay.url,
                        "--device",
                        robot,
                        "--backend",
                        "mock",
                        "--topics",
                        "/turtle1/pose",
                        "--commands",
                        "/turtle1/cmd_vel",
                        "--services",
                        "/reset",
                        "--rate",
                        "/turtle1/pose=20",
                        "--poll-interval",
                        "0.2",
                    ],
                    tmp_path / f"{robot}.log",
                    env={**os.environ, "PYROS_DEVICE_TOKEN": DEVICE_TOKENS[robot]},
                )
            for robot, connector in connectors.items():
                wait_device_online(relay.port, robot, "/turtle1/pose", connector, timeout=30)
            yield relay, connectors
        finally:
            for connector in connectors.values():
                if connector.process.poll() is None:
                    connector.stop()


def test_operator_sees_and_drives_the_fleet(fleet: tuple[Any, dict[str, ConnectorProcess]]) -> None:
    relay, connectors = fleet
    with pyros.spawn(
        "rosbridge", url=relay.url, token="op-all", topics=["*"], services=["*"]
    ) as client:
        topics = client.topics()
        assert topics["/robot1/turtle1/pose"] in ("turtlesim/Pose", "turtlesim/msg/Pose")
        assert "/robot2/turtle1/pose" in topics
        assert "/robot1/reset" in client.services()

        with client.subscribe("/robot1/turtle1/pose") as pose:
            start = pose.get(timeout=limit(10))
            assert {"x", "y", "theta"} <= set(start)
            twist = {
                "linear": {"x": 2.0, "y": 0.0, "z": 0.0},
                "angular": {"x": 0.0, "y": 0.0, "z": 1.0},
            }
            deadline = time.monotonic() + limit(10)
            moved = False
            while time.monotonic() < deadline and not moved:
                client.publish("/robot1/turtle1/cmd_vel", twist, type="geometry_msgs/Twist")
                now = pose.get(timeout=limit(5))
                moved = abs(now["x"] - start["x"]) + abs(now["y"] - start["y"]) > 0.05
            assert moved, "robot1 never moved under the operator's commands"

        assert client.call("/robot1/reset", {}, timeout=limit(10)) == {}

        # Only robot1 accepts commands from this token: robot2's are refused clearly.
        with pytest.raises(PyrosError):
            client.call("/robot2/reset", {}, timeout=limit(10))


def test_a_dropped_device_fails_clearly_and_the_others_work(
    fleet: tuple[Any, dict[str, ConnectorProcess]],
) -> None:
    relay, connectors = fleet
    with pyros.spawn(
        "rosbridge", url=relay.url, token="op-all", topics=["*"], services=["*"]
    ) as client:
        assert client.call("/robot1/reset", {}, timeout=limit(10)) == {}
        connectors["robot2"].stop()
        with client.subscribe("/robot1/turtle1/pose") as pose:
            assert pose.get(timeout=limit(10))
        assert client.call("/robot1/reset", {}, timeout=limit(10)) == {}


def test_concurrent_calls_through_the_relay_all_reach_their_caller(
    fleet: tuple[Any, dict[str, ConnectorProcess]],
) -> None:
    """20 threads call at once through one connection; each gets its own reply (the relay
    and the mock robot lose nothing, unlike a ROS 2 graph under load)."""
    relay, _ = fleet
    from pyros_ros.rosbridge import RosbridgeBackend

    bridge = RosbridgeBackend("pyros_test", url=relay.url, token="op-all")
    bridge.start()
    try:
        results: dict[int, Any] = {}

        def one(n: int) -> None:
            results[n] = bridge.call("/robot1/reset", "std_srvs/Empty", {}, limit(10))

        threads = [threading.Thread(target=one, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(limit(15))
        assert results == {n: {} for n in range(20)}
    finally:
        bridge.stop()


def test_read_only_token_sees_only_its_device(
    fleet: tuple[Any, dict[str, ConnectorProcess]],
) -> None:
    relay, _ = fleet
    with pyros.spawn("rosbridge", url=relay.url, token="op-robot2", topics=["*"]) as client:
        topics = client.topics()
        assert "/robot2/turtle1/pose" in topics
        assert not any(name.startswith("/robot1/") for name in topics)


def test_action_goal_through_the_relay_is_answered(
    fleet: tuple[Any, dict[str, ConnectorProcess]],
) -> None:
    """Relay-side action forwarding is the cloud branch's work; until it lands the relay
    refuses the op, and send_goal must say so at once (ActionError), never hang."""
    relay, _ = fleet
    from pyros_ros.rosbridge import RosbridgeBackend

    bridge = RosbridgeBackend("pyros_test", url=relay.url, token="op-all")
    bridge.start()
    try:
        done = threading.Event()
        outcomes: list[Any] = []

        def on_done(outcome: Any) -> None:
            outcomes.append(outcome)
            done.set()

        started = time.monotonic()
        try:
            bridge.send_goal(
                "/robot1/turtle1/rotate_absolute",
                "turtlesim/RotateAbsolute",
                {"theta": 1.0},
                lambda f: None,
                on_done,
                5.0,
            )
        except ActionError as exc:  # the relay refused the op
            assert exc.status == "rejected" and "send_action_goal" in str(exc)
            assert time.monotonic() - started < limit(5)
            return
        assert done.wait(limit(10)), "the goal hung"
        assert outcomes[0].status in ("succeeded", "rejected", "aborted"), outcomes
    finally:
        bridge.stop()
