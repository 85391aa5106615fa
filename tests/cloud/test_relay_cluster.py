"""Issue 13's scale-out: relay processes on one real redis-server are one relay.

A device on relay A is reached by an operator on relay B (data, commands, refusals, service
calls, goals, parameters); a relay killed and started again loses no registry entry, latest
value or sequence number (so a device resuming gets no duplicate delivered); a connector given
two relays fails over when one is SIGKILLed, and an operator sees every message once, in order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyros.asyncio
from pyros.cloud import device_protocol as dp
from pyros.cloud.connector import Backoff, Connector
from tests.cloud.connector_support import api_devices
from tests.cloud.redis_support import RedisServer, redis_server
from tests.cloud.relay_support import (
    DEVICE_TOKENS,
    TOKENS,
    RelayProcess,
    no_message,
    open_device,
    open_operator,
    recv_json,
    recv_until,
    run,
    wait_for,
)
from tests.support import limit

pytestmark = pytest.mark.cloud


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


def start_relay(tmp_path: Path, redis: RedisServer, *args: str) -> RelayProcess:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TOKENS))
    return RelayProcess(["--tokens", str(tokens), "--redis", redis.url, *args])


def online(port: int, device: str) -> bool:
    return any(d["id"] == device and d["online"] for d in api_devices(port))


def test_a_device_on_relay_a_is_reached_from_relay_b(tmp_path: Path, redis: RedisServer) -> None:
    a, b = start_relay(tmp_path, redis), start_relay(tmp_path, redis)
    try:

        async def scenario() -> None:
            robot, _ = await open_device(
                a.port,
                "robot1",
                topics={"/data": "std_msgs/String"},
                services={"/reset": "std_srvs/Empty"},
                commands=("/cmd",),
                actions={"/turn": "turtlesim/action/RotateAbsolute"},
                params=("/run_id",),
            )
            await asyncio.to_thread(wait_for, lambda: online(b.port, "robot1"))
            (entry,) = [d for d in api_devices(b.port) if d["id"] == "robot1"]
            assert entry["topics"] == {"/data": "std_msgs/String"}
            assert entry["actions"] == {"/turn": "turtlesim/action/RotateAbsolute"}
            operator = await open_operator(b.port)
            await operator.send(json.dumps({"op": "set_level", "level": "info"}))
            await operator.send(json.dumps({"op": "subscribe", "topic": "/robot1/data"}))
            await asyncio.sleep(0.3)
            for seq in (1, 2, 3):
                await robot.send(dp.encode(dp.publish("/data", {"data": str(seq)}, seq)))
            got = [(await recv_json(operator))["msg"]["data"] for _ in range(3)]
            assert got == ["1", "2", "3"]

            # A command from B, refused by the device on A: the status comes back to B.
            await operator.send(
                json.dumps({"op": "publish", "id": "cmd-1", "topic": "/robot1/cmd", "msg": {}})
            )
            command = await recv_until(robot, lambda m: m.get("op") == "publish")
            await robot.send(dp.encode(dp.status("error", "not now", command["id"])))
            status = await recv_until(operator, lambda m: m.get("op") == "status")
            assert status["id"] == "cmd-1" and "robot1: not now" in status["msg"]

            # A service call.
            await operator.send(
                json.dumps({"op": "call_service", "id": "c", "service": "/robot1/reset"})
            )
            call = await recv_until(robot, lambda m: m.get("op") == "call_service")
            await robot.send(dp.encode(dp.service_response(call["id"], {"done": True})))
            answer = await recv_until(operator, lambda m: m.get("op") == "service_response")
            assert answer == {
                "op": "service_response",
                "service": "/robot1/reset",
                "id": "c",
                "values": {"done": True},
                "result": True,
            }

            # A goal with feedback and result.
            goal = {
                "op": "send_action_goal",
                "id": "g",
                "action": "/robot1/turn",
                "args": {"theta": 1},
                "feedback": True,
            }
            await operator.send(json.dumps(goal))
            sent = await recv_until(robot, lambda m: m.get("op") == "send_goal")
            await robot.send(dp.encode(dp.action_feedback(sent["id"], {"left": 0.5})))
            await robot.send(dp.encode(dp.action_result(sent["id"], "succeeded", {"delta": 1})))
            feedback = await recv_until(operator, lambda m: m.get("op") == "action_feedback")
            result = await recv_until(operator, lambda m: m.get("op") == "action_result")
            assert feedback["values"] == {"left": 0.5} and result["values"] == {"delta": 1}
            assert result["status"] == 4 and result["result"] is True

            # A parameter, then a call that the device leaves unanswered as it goes away.
            await operator.send(
                json.dumps(
                    {
                        "op": "call_service",
                        "id": "p",
                        "service": "/rosapi/get_param",
                        "args": {"name": "/robot1/run_id"},
                    }
                )
            )
            request = await recv_until(robot, lambda m: m.get("op") == "param")
            await robot.send(dp.encode(dp.param_response(request["id"], "abc")))
            value = await recv_until(operator, lambda m: m.get("op") == "service_response")
            assert value["values"] == {"value": '"abc"'}
            await operator.send(
                json.dumps({"op": "call_service", "id": "lost", "service": "/robot1/reset"})
            )
            await recv_until(robot, lambda m: m.get("op") == "call_service")
            await robot.close()
            lost = await recv_until(operator, lambda m: m.get("op") == "service_response")
            assert lost["id"] == "lost" and lost["result"] is False
            await operator.close()

        run(scenario(), 60)
    finally:
        for relay in (a, b):
            assert relay.stop() == 0, relay.stderr
            assert "Traceback" not in relay.stderr, relay.stderr


def test_a_killed_relay_loses_no_registry_latest_value_or_seq(
    tmp_path: Path, redis: RedisServer
) -> None:
    first = start_relay(tmp_path, redis)
    try:

        async def before() -> None:
            robot, _ = await open_device(first.port, "robot1", session="s1", latest=("/data",))
            operator = await open_operator(first.port)
            await operator.send(json.dumps({"op": "subscribe", "topic": "/robot1/data"}))
            await asyncio.sleep(0.2)
            for seq in range(1, 6):
                await robot.send(dp.encode(dp.publish("/data", {"data": str(seq)}, seq)))
            for _ in range(5):  # delivered, so stored in Redis
                await recv_json(operator)
            # The relay dies before the device hears an ack for all of them.
            first.process.kill()
            first.process.wait(limit(10))

        run(before(), 60)
    finally:
        first.stop()
    second = start_relay(tmp_path, redis)
    try:

        async def after() -> None:
            (entry,) = [d for d in api_devices(second.port) if d["id"] == "robot1"]
            assert entry["topics"] == {"/data": "std_msgs/String"}
            operator = await open_operator(second.port)
            await operator.send(json.dumps({"op": "subscribe", "topic": "/robot1/data"}))
            latest = await recv_json(operator)
            assert latest["msg"] == {"data": "5"}  # a state topic: replayed after the restart
            robot, welcome = await open_device(
                second.port, "robot1", session="s1", latest=("/data",)
            )
            assert welcome["resume_after"] == 5
            for seq in range(3, 8):  # the connector resends what it has no ack for
                await robot.send(dp.encode(dp.publish("/data", {"data": str(seq)}, seq)))
            got = [(await recv_json(operator))["msg"]["data"] for _ in range(2)]
            assert got == ["6", "7"] and await no_message(operator, 0.5)
            await robot.close()
            await operator.close()

        run(after(), 60)
    finally:
        assert second.stop() == 0
        assert "Traceback" not in second.stderr, second.stderr


def test_a_connector_fails_over_and_nothing_is_lost_or_repeated(
    tmp_path: Path, redis: RedisServer
) -> None:
    a, b = start_relay(tmp_path, redis), start_relay(tmp_path, redis)
    received: list[int] = []
    try:

        async def scenario() -> None:
            operator = await open_operator(b.port)
            await operator.send(json.dumps({"op": "subscribe", "topic": "/robot1/counter"}))

            async def read() -> None:
                while True:
                    message = await recv_json(operator, limit(30))
                    if message.get("op") == "publish":
                        received.append(message["msg"]["data"])

            reader = asyncio.ensure_future(read())
            async with await pyros.asyncio.spawn("mock", topics=["*"]) as robot:
                await robot.publish("/counter", {"data": 0}, "std_msgs/Int32")
                connector = Connector(
                    robot,
                    relay=[f"ws://127.0.0.1:{a.port}", f"ws://127.0.0.1:{b.port}"],
                    device="robot1",
                    token=DEVICE_TOKENS["robot1"],
                    topics=["/counter"],
                    poll_interval=0.1,
                    backoff=Backoff(initial=0.1, maximum=0.5),
                )
                running = asyncio.ensure_future(connector.run())
                await connector.wait_online(limit(20))
                assert connector.url.endswith(f":{a.port}/device")
                await asyncio.sleep(0.5)
                for n in range(1, 301):  # 6 s at 50 Hz; relay A dies after 2 s
                    await robot.publish("/counter", {"data": n}, "std_msgs/Int32")
                    if n == 100:
                        a.process.kill()
                    await asyncio.sleep(0.02)
                await asyncio.to_thread(wait_for, lambda: received and received[-1] == 300, 30)
                assert connector.url.endswith(f":{b.port}/device")
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await operator.close()

        run(scenario(), 90)
    finally:
        a.stop()
        assert b.stop() == 0
        assert "Traceback" not in b.stderr, b.stderr
    start = received.index(1)
    assert received[start:] == list(range(1, 301)), received  # once each, in order
