"""The whole chain on loopback: mock robot node, ``pyros connector``, ``pyros relay``, roslibpy.

Every process is real: the relay and the connector run as ``python -m pyros ...`` (the relay
with a tokens file), the operator is roslibpy in a helper process. The outage tests SIGKILL the
relay while the robot streams a counter at 50 Hz, restart it on the same port, and check what an
operator sees through the new relay: every value produced during the outage once and in order,
or, beyond the connector's buffer, exactly the count the connector reported as dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import ssl
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

import pyros
from tests.cloud.connector_support import (
    ConnectorProcess,
    Gate,
    TimedOperator,
    device,
    percentile,
    self_signed_certificate,
    timed_operator,
    wait_device_online,
)
from tests.cloud.relay_support import DEVICE_TOKENS, TOKENS, RelayProcess, wait_for
from tests.support import limit, wait_until

pytestmark = pytest.mark.cloud

TOKEN = DEVICE_TOKENS["robot1"]
TWIST = {"linear": {"x": 2.0, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 1.0}}


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    return path


class Relay:
    """A relay process that a test may SIGKILL and restart on the same port."""

    def __init__(self, tokens_file: Path) -> None:
        self.tokens_file = tokens_file
        self.current: RelayProcess | None = RelayProcess(["--tokens", str(tokens_file)])
        self.port = self.current.port

    def kill(self) -> None:
        """SIGKILL the relay and reap it."""
        assert self.current is not None
        process = self.current.process
        process.kill()
        process.wait(limit(5.0))
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()
        self.current = None

    def restart(self) -> None:
        """Start a new relay on the same port."""
        assert self.current is None
        self.current = RelayProcess(["--tokens", str(self.tokens_file), "--port", str(self.port)])
        assert self.current.port == self.port

    def stop(self) -> None:
        if self.current is not None:
            code = self.current.stop()
            assert code == 0, self.current.stderr
            assert "Traceback" not in self.current.stderr, self.current.stderr
            self.current = None


@pytest.fixture
def relay(tokens_file: Path) -> Iterator[Relay]:
    running = Relay(tokens_file)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def connectors(tmp_path: Path) -> Iterator[list[ConnectorProcess]]:
    """Connector processes a test starts with ``start_connector``; stopped after the test."""
    started: list[ConnectorProcess] = []
    yield started
    for connector in started:
        if connector.process.poll() is None:
            code = connector.stop()
            assert code == 0, connector.output()
        assert "Traceback" not in connector.output(), connector.output()


def start_connector(
    connectors: list[ConnectorProcess], tmp_path: Path, relay_port: int, *args: str
) -> ConnectorProcess:
    log = tmp_path / f"connector-{len(connectors)}.log"
    # --relay may be repeated (failover): a test's own --relay replaces the default one.
    relay = [] if "--relay" in args else ["--relay", f"ws://127.0.0.1:{relay_port}"]
    connector = ConnectorProcess(
        [
            *relay,
            "--device",
            "robot1",
            "--poll-interval",
            "0.2",
            "--log-level",
            "info",
            *args,
        ],
        log,
        env={**os.environ, "PYROS_DEVICE_TOKEN": TOKEN},
    )
    connectors.append(connector)
    return connector


def test_roslibpy_operator_drives_a_mock_robot_through_the_relay(
    relay: Relay, connectors: list[ConnectorProcess], tmp_path: Path
) -> None:
    connector = start_connector(
        connectors,
        tmp_path,
        relay.port,
        "--backend",
        "mock",
        "--topics",
        "/turtle1/pose",
        "--commands",
        "/turtle1/cmd_vel",
        "--services",
        "/reset",
        "--rate",
        "/turtle1/pose=10",
    )
    wait_device_online(relay.port, "robot1", "/turtle1/pose", connector)
    entry = device(relay.port, "robot1")
    assert entry is not None
    assert entry["topics"] == {"/turtle1/pose": "turtlesim/Pose"}
    assert entry["services"] == {"/reset": "std_srvs/Empty"}
    assert entry["commands"] == {"/turtle1/cmd_vel": "geometry_msgs/Twist"}
    assert entry["command_globs"] == ["/turtle1/cmd_vel"]
    assert entry["dropped"] == {}
    assert set(entry["stats"]) == {
        "messages_per_s",
        "latency_ms",
        "dropped",
        "buffered",
        "bytes_per_s",
    }
    # The relay measures what arrives and the round trip; the connector reports its buffer.
    stats = wait_for(
        lambda: (
            (s := (device(relay.port, "robot1") or {}).get("stats", {})).get("messages_per_s")
            and s.get("latency_ms") is not None
            and s
        ),
        timeout=15.0,
    )
    assert stats["messages_per_s"] > 0 and stats["bytes_per_s"] > stats["messages_per_s"]
    assert 0 <= stats["latency_ms"] < 5000 and stats["dropped"] == 0
    assert isinstance(stats["buffered"], int)

    with timed_operator(relay.port) as operator:
        operator.subscribe("/robot1/turtle1/pose", "turtlesim/Pose")
        first = operator.next_message()
        assert first["topic"] == "/robot1/turtle1/pose"
        assert {"x", "y", "theta", "linear_velocity", "angular_velocity"} <= set(first["msg"])

        reply = operator.request("call", service="/robot1/reset", type="std_srvs/Empty", args={})
        assert reply == {"reply": reply["reply"], "ok": True, "values": {}}

        # Drive in a circle for 1.5 s: a command every 0.1 s, as the seed's server did.
        operator.pending_messages()
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            reply = operator.request(
                "publish", topic="/robot1/turtle1/cmd_vel", type="geometry_msgs/Twist", msg=TWIST
            )
            assert reply["ok"], reply
            time.sleep(0.1)
        poses = operator.messages(wait=0.2)
        moving = [p["msg"] for p in poses if p["msg"]["linear_velocity"] == 2.0]
        assert moving, poses[-3:]
        xs = [p["x"] for p in moving]
        ys = [p["y"] for p in moving]
        assert max(xs) - min(xs) > 0.5 and max(ys) - min(ys) > 0.5, "the turtle did not move"
        # --rate /turtle1/pose=10: the mock publishes at 30 Hz, at most 10 Hz are forwarded.
        times = [p["received"] for p in poses]
        span = times[-1] - times[0]
        assert len(times) <= 10 * span + 5, f"{len(times)} poses in {span:.2f} s"

        # What the connector does not offer is refused (by the relay, from the hello).
        reply = operator.request(
            "call", service="/robot1/set_flag", type="std_srvs/SetBool", args={"data": True}
        )
        assert reply["ok"] is False and "set_flag" in reply["error"]

    assert connector.stop() == 0, connector.output()
    assert wait_until(lambda: not device(relay.port, "robot1")["online"], limit(5))  # type: ignore[index]
    assert "forwarding /turtle1/pose (turtlesim/Pose) at most 10 Hz" in connector.output()


def test_a_wrong_device_token_stops_the_connector(
    relay: Relay, connectors: list[ConnectorProcess], tmp_path: Path
) -> None:
    log = tmp_path / "bad.log"
    connector = ConnectorProcess(
        [
            "--relay",
            f"ws://127.0.0.1:{relay.port}",
            "--device",
            "robot1",
            "--token",
            "robot2-secret",
            "--topics",
            "/turtle1/pose",
        ],
        log,
    )
    connectors.append(connector)
    assert connector.wait(limit(20)) == 1
    output = connector.output()
    assert "refused device 'robot1' (HTTP 401)" in output or "(HTTP 403)" in output, output
    assert "Traceback" not in output


class CounterRobot:
    """A named mock node with no turtle; ``/counter`` (std_msgs/Int64) counts up at ``rate``."""

    def __init__(self, rate: float) -> None:
        self.name = f"cloudcount{os.getpid()}"
        self.client = pyros.spawn("mock", name=self.name, topics=["*"], turtle=False)
        self.client.publish("/counter", {"data": 0}, type="std_msgs/Int64")  # it exists now
        self.rate = rate
        self.sent: dict[int, float] = {}
        self.value = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        period = 1.0 / self.rate
        next_time = time.monotonic()
        while not self._stop.is_set():
            value = self.value + 1
            self.sent[value] = time.time()
            self.client.publish("/counter", {"data": value})
            self.value = value
            next_time += period
            self._stop.wait(max(0.0, next_time - time.monotonic()))

    def stop(self) -> int:
        """Stop counting; return the last value published."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(limit(5))
        return self.value

    def close(self) -> None:
        self.stop()
        self.client.close()


@pytest.fixture
def counter_robot() -> Iterator[CounterRobot]:
    robot = CounterRobot(rate=50.0)
    try:
        yield robot
    finally:
        robot.close()


def values(messages: list[dict[str, Any]]) -> list[int]:
    return [int(m["msg"]["data"]) for m in messages]


def collect_until(operator: TimedOperator, last: int, timeout: float) -> list[dict[str, Any]]:
    """Collect messages until one carries ``last`` (or the time is up)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found.extend(operator.pending_messages())
        if found and int(found[-1]["msg"]["data"]) >= last:
            break
        time.sleep(0.05)
    return found


@pytest.mark.parametrize("buffer", [10_000, 25], ids=["within-buffer", "beyond-buffer"])
def test_relay_killed_while_streaming_at_50hz(
    buffer: int,
    relay: Relay,
    counter_robot: CounterRobot,
    connectors: list[ConnectorProcess],
    tmp_path: Path,
) -> None:
    gate = Gate(relay.port)  # the connector dials the gate; the test opens it when ready
    try:
        connector = start_connector(
            connectors,
            tmp_path,
            gate.port,
            "--name",
            counter_robot.name,
            "--topics",
            "/counter",
            "--buffer",
            str(buffer),
        )
        wait_device_online(relay.port, "robot1", "/counter", connector)
        with timed_operator(relay.port) as before:
            before.subscribe("/robot1/counter", "std_msgs/Int64")
            counter_robot.start()
            seen_before = collect_until(before, 50, limit(10))
            assert values(seen_before)[:50] == list(range(1, 51)), values(seen_before)[:60]

            gate.close()  # nobody reconnects until the new relay has its operator
            relay.kill()
            killed_at = counter_robot.value
            seen_before += before.messages(wait=0.2)
        time.sleep(2.0)  # the outage: ~100 values at 50 Hz
        relay.restart()
        with timed_operator(relay.port) as after:
            after.subscribe("/robot1/counter", "std_msgs/Int64")
            reopened_at = counter_robot.value
            gate.open()
            wait_device_online(relay.port, "robot1", "/counter", connector, timeout=30)
            time.sleep(1.0)
            last = counter_robot.stop()
            seen_after = collect_until(after, last, limit(10))
        entry = device(relay.port, "robot1")
        assert entry is not None
    finally:
        gate.stop()

    got = values(seen_after)
    outage = reopened_at - killed_at
    assert outage >= 90, f"only {outage} values during the outage"
    assert got, "nothing came through the new relay"
    assert all(a < b for a, b in itertools.pairwise(got)), (
        "duplicates or disorder after the restart"
    )
    assert got == list(range(got[0], last + 1)), "a gap after the restart"
    assert entry["received"] == len(got), "the relay accepted something the operator missed"
    before_values = values(seen_before)
    assert before_values == list(range(1, before_values[-1] + 1))

    acked = connector.acked_at_disconnect()  # the first line is the kill's
    assert acked, connector.output()
    dropped = entry["dropped"].get("/counter", 0)
    # The new relay knows nothing of the session: the connector resends everything it still
    # holds after the last seq the old relay acknowledged, and counts what it had to drop.
    # Seqs and values coincide: /counter is the only forwarded topic and starts at 1.
    assert dropped == got[0] - 1 - acked[0], (dropped, got[0], acked, connector.output())
    if buffer == 10_000:
        assert dropped == 0
        assert got[0] <= killed_at + 1, "values produced during the outage were lost"
    else:
        assert dropped > outage - buffer - 10, (dropped, outage)
        assert got[0] > killed_at, "more than the buffer survived the outage"
    print(
        f"\noutage (buffer {buffer}): {outage} values produced while the relay was down; "
        f"the new relay got {len(got)} values from {got[0]} to {last} once and in order; "
        f"dropped {dropped} (acked through {acked[0]} before the kill)"
    )


def test_latency_device_to_operator_through_the_relay(
    relay: Relay,
    counter_robot: CounterRobot,
    connectors: list[ConnectorProcess],
    tmp_path: Path,
) -> None:
    """Measure publish-on-the-robot to roslibpy-callback time (printed, never asserted)."""
    connector = start_connector(
        connectors, tmp_path, relay.port, "--name", counter_robot.name, "--topics", "/counter"
    )
    wait_device_online(relay.port, "robot1", "/counter", connector)
    with timed_operator(relay.port) as operator:
        operator.subscribe("/robot1/counter", "std_msgs/Int64")
        counter_robot.start()
        time.sleep(6.0)
        last = counter_robot.stop()
        messages = collect_until(operator, last, limit(10))
    got = values(messages)
    assert got == list(range(1, last + 1))
    latencies = [
        (m["received"] - counter_robot.sent[int(m["msg"]["data"])]) * 1000.0
        for m in messages[25:]  # skip the first half second (warm-up)
    ]
    median = statistics.median(latencies)
    p99 = percentile(latencies, 0.99)
    print(
        f"\ndevice->operator latency through the relay ({len(latencies)} messages at 50 Hz, "
        f"pyros publish -> node -> connector -> relay -> roslibpy callback): "
        f"median {median:.2f} ms, p99 {p99:.2f} ms, max {max(latencies):.2f} ms"
    )


def test_wss_relay_with_a_self_signed_certificate(
    tokens_file: Path, connectors: list[ConnectorProcess], tmp_path: Path
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    relay = RelayProcess(
        ["--tokens", str(tokens_file), "--certfile", str(cert), "--keyfile", str(key)]
    )
    try:
        assert relay.url.startswith("wss://")
        args = ["--topics", "/turtle1/pose", "--relay", f"wss://127.0.0.1:{relay.port}"]
        untrusting = start_connector(connectors, tmp_path, relay.port, *args)
        trusting = start_connector(connectors, tmp_path, relay.port, *args, "--cafile", str(cert))
        assert wait_until(lambda: "welcomed by the relay" in trusting.output(), limit(20)), (
            trusting.output()
        )
        assert wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in untrusting.output(), limit(20)), (
            untrusting.output()
        )
        assert "welcomed" not in untrusting.output()

        async def operate() -> dict[str, Any]:
            context = ssl.create_default_context(cafile=str(cert))
            async with connect(
                f"wss://127.0.0.1:{relay.port}/",
                ssl=context,
                additional_headers={"Authorization": "Bearer op-all"},
            ) as operator:
                await operator.send(
                    json.dumps({"op": "subscribe", "topic": "/robot1/turtle1/pose"})
                )
                message: dict[str, Any] = json.loads(await operator.recv())
                return message

        message = asyncio.run(asyncio.wait_for(operate(), limit(20)))
        assert message["op"] == "publish" and message["topic"] == "/robot1/turtle1/pose"
        assert {"x", "y", "theta"} <= set(message["msg"])
    finally:
        for connector in connectors:
            assert connector.stop() == 0, connector.output()
        assert relay.stop() == 0, relay.stderr


def test_device_to_device_broadcast_through_two_connectors(
    relay: Relay, connectors: list[ConnectorProcess], tmp_path: Path
) -> None:
    """robot1 forwards its pose; robot2 listens to it (the robot chat of seed 002)."""
    from pyros._shared import start_shared, stop_shared

    robot1 = start_connector(
        connectors, tmp_path, relay.port, "--backend", "mock", "--topics", "/turtle1/pose"
    )
    wait_device_online(relay.port, "robot1", "/turtle1/pose", robot1)
    start_shared("robot2_node", topics=["*"], idle_timeout=None)
    try:
        robot2 = ConnectorProcess(
            [
                "--relay",
                f"ws://127.0.0.1:{relay.port}",
                "--device",
                "robot2",
                "--name",
                "robot2_node",
                "--topics",
                "*",
                "--listen",
                "/robot1/turtle1/*",
                "--poll-interval",
                "0.2",
            ],
            tmp_path / "robot2.log",
            env={**os.environ, "PYROS_DEVICE_TOKEN": DEVICE_TOKENS["robot2"]},
        )
        connectors.append(robot2)
        with pyros.connect("robot2_node") as local:
            with local.subscribe("/robot1/turtle1/pose") as poses:
                pose = poses.get(timeout=limit(20))
                assert {"x", "y", "theta"} <= set(pose)
                assert local.topics()["/robot1/turtle1/pose"] == "turtlesim/Pose"
            # robot2 forwards its own topics (--topics '*') but never robot1's back.
            time.sleep(1.0)
            entry = device(relay.port, "robot2")
            assert entry is not None and entry["online"]
            assert not any("robot1" in topic for topic in entry["topics"]), entry["topics"]
            assert "/turtle1/pose" in entry["topics"]  # robot2's own mock turtle
        assert robot2.stop() == 0, robot2.output()
    finally:
        stop_shared("robot2_node")
