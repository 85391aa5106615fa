"""Real roslibpy operators through a real relay process, with raw websocket devices."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyros.cloud import device_protocol as dp
from tests.cloud.relay_support import (
    RelayProcess,
    open_device,
    recv_json,
    recv_until,
    relay_process,
    roslibpy_operator,
    run,
    wait_for,
)
from tests.support import limit

pytestmark = pytest.mark.cloud

POSE = {"/turtle1/pose": "turtlesim/Pose", "/chatter": "std_msgs/String"}


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with relay_process(tmp_path, "--service-timeout", "1") as running:
        yield running


def pose(x: float) -> dict[str, Any]:
    return {"x": x, "y": 0.0, "theta": 0.0, "linear_velocity": 0.0, "angular_velocity": 0.0}


def api_devices(port: int, token: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/devices", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=limit(5.0)) as response:
        assert response.headers["Content-Type"] == "application/json"
        result: list[dict[str, Any]] = json.loads(response.read())
        return result


def test_subscribe_late_value_publish_and_topics(relay: RelayProcess) -> None:
    async def scenario() -> None:
        robot, welcome = await open_device(
            relay.port,
            "robot1",
            topics=POSE,
            commands=("/turtle1/cmd_vel",),
            latest=("/turtle1/pose",),
        )
        assert welcome == {"op": "welcome", "device": "robot1", "resume_after": 0}
        await robot.send(dp.encode(dp.publish("/turtle1/pose", pose(1.0), 1)))
        assert (await recv_json(robot)) == {"op": "ack", "seq": 1}
        with roslibpy_operator(relay.port) as operator:
            # A late subscriber gets the latest value of a state topic at once.
            reply = await asyncio.to_thread(
                operator.request,
                "subscribe",
                topic="/robot1/turtle1/pose",
                type="turtlesim/Pose",
            )
            assert reply["ok"]
            first = await asyncio.to_thread(operator.next_message)
            assert first == {"event": "msg", "topic": "/robot1/turtle1/pose", "msg": pose(1.0)}
            await robot.send(dp.encode(dp.publish("/turtle1/pose", pose(2.0), 2)))
            second = await asyncio.to_thread(operator.next_message)
            assert second["msg"] == pose(2.0)

            # Publishing to a command topic reaches the device with its local name.
            twist = {"linear": {"x": 2.0, "y": 0.0, "z": 0.0}, "angular": {"x": 0, "y": 0, "z": 1}}
            await asyncio.to_thread(
                operator.request,
                "publish",
                topic="/robot1/turtle1/cmd_vel",
                type="geometry_msgs/Twist",
                msg=twist,
            )
            command = await recv_until(robot, lambda m: m["op"] == "publish")
            assert command["topic"] == "/turtle1/cmd_vel" and command["msg"] == twist

            topics = await asyncio.to_thread(operator.request, "rosapi", what="topics")
            assert topics["values"] == ["/robot1/chatter", "/robot1/turtle1/pose"]
            nodes = await asyncio.to_thread(operator.request, "rosapi", what="nodes")
            assert nodes["values"] == ["/robot1"]
            kind = await asyncio.to_thread(
                operator.request, "rosapi", what="topic_type", arg="/robot1/turtle1/pose"
            )
            assert kind["values"] == "turtlesim/Pose"
        await robot.close()

    run(scenario(), 40)


def test_service_calls_success_failure_timeout_and_offline(relay: RelayProcess) -> None:
    async def device_answers(robot: Any) -> None:
        while True:
            request = await recv_until(robot, lambda m: m["op"] == "call_service", timeout=30)
            if request["args"].get("data") is True:
                await robot.send(dp.encode(dp.service_response(request["id"], {"success": True})))
            elif request["args"].get("data") is False:
                await robot.send(
                    dp.encode(dp.service_response(request["id"], "flag refused", result=False))
                )
            # anything else: never answered (the relay times the call out)

    async def scenario() -> None:
        services = {"/set_flag": "std_srvs/SetBool"}
        robot, _ = await open_device(relay.port, "robot1", topics=POSE, services=services)
        answering = asyncio.create_task(device_answers(robot))
        with roslibpy_operator(relay.port) as operator:
            call = await asyncio.to_thread(
                operator.request,
                "call",
                service="/robot1/set_flag",
                type="std_srvs/SetBool",
                args={"data": True},
            )
            assert call == {"reply": call["reply"], "ok": True, "values": {"success": True}}
            failed = await asyncio.to_thread(
                operator.request,
                "call",
                service="/robot1/set_flag",
                type="std_srvs/SetBool",
                args={"data": False},
            )
            assert not failed["ok"] and "flag refused" in failed["error"]
            slow = await asyncio.to_thread(
                operator.request,
                "call",
                service="/robot1/set_flag",
                type="std_srvs/SetBool",
                args={"data": "never answered"},
            )
            assert not slow["ok"] and "within 1 s" in slow["error"]
            unknown = await asyncio.to_thread(
                operator.request, "call", service="/robot1/nope", type="std_srvs/Empty"
            )
            assert not unknown["ok"] and "no service /nope" in unknown["error"]
            services_reply = await asyncio.to_thread(operator.request, "rosapi", what="services")
            assert "/robot1/set_flag" in services_reply["values"]

            # The device goes offline while a call is pending: the call fails at once.
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
            pending = asyncio.create_task(
                asyncio.to_thread(
                    operator.request,
                    "call",
                    service="/robot1/set_flag",
                    type="std_srvs/SetBool",
                    args={"data": "pending"},
                )
            )
            await recv_until(robot, lambda m: m["op"] == "call_service")
            await robot.close()
            offline = await pending
            assert not offline["ok"] and "offline" in offline["error"]
            devices = api_devices(relay.port, "op-all")
            assert [(d["id"], d["online"]) for d in devices] == [("robot1", False)]

    run(scenario(), 40)


def test_offline_device_keeps_latest_value_and_resumes(relay: RelayProcess) -> None:
    async def scenario() -> None:
        robot, _ = await open_device(
            relay.port, "robot1", topics=POSE, session="s-1", latest=("/turtle1/pose",)
        )
        for seq in (1, 2, 3):
            await robot.send(dp.encode(dp.publish("/turtle1/pose", pose(float(seq)), seq)))
        await recv_until(robot, lambda m: m == {"op": "ack", "seq": 3})
        await robot.close()
        (entry,) = wait_for(
            lambda: [d for d in api_devices(relay.port, "op-all") if not d["online"]]
        )
        assert entry["id"] == "robot1" and entry["topics"] == POSE and entry["last_seen"] > 0
        with roslibpy_operator(relay.port) as operator:
            await asyncio.to_thread(
                operator.request, "subscribe", topic="/robot1/turtle1/pose", type="turtlesim/Pose"
            )
            latest = await asyncio.to_thread(operator.next_message)
            assert latest["msg"] == pose(3.0)
            # Same session again: the relay says what it has; a re-sent seq is not delivered.
            robot, welcome = await open_device(relay.port, "robot1", topics=POSE, session="s-1")
            assert welcome["resume_after"] == 3
            await robot.send(dp.encode(dp.publish("/turtle1/pose", pose(3.0), 3)))
            await robot.send(dp.encode(dp.publish("/turtle1/pose", pose(4.0), 4)))
            await recv_until(robot, lambda m: m == {"op": "ack", "seq": 4})
            fourth = await asyncio.to_thread(operator.next_message)
            assert fourth["msg"] == pose(4.0)
            assert operator.pending_messages() == []
            await robot.close()

    run(scenario(), 40)


def test_throttle_rate_limits_what_roslibpy_receives(relay: RelayProcess) -> None:
    async def scenario() -> None:
        robot, _ = await open_device(relay.port, "robot1", topics=POSE)
        with roslibpy_operator(relay.port) as operator:
            await asyncio.to_thread(
                operator.request,
                "subscribe",
                topic="/robot1/chatter",
                type="std_msgs/String",
                throttle_rate=200,
            )
            await asyncio.to_thread(operator.request, "rosapi", what="nodes")  # after subscribe
            for seq in range(1, 101):  # 100 messages over about 1 s
                await robot.send(dp.encode(dp.publish("/chatter", {"data": str(seq)}, seq)))
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)
            received = operator.pending_messages()
            # 200 ms throttle over ~1.3 s: a handful, the last one included (queue_length 0
            # keeps the newest).
            assert 3 <= len(received) <= 10, received
            assert received[-1]["msg"] == {"data": "100"}
        await robot.close()

    run(scenario(), 40)


def test_roslibpy_with_a_wrong_token_is_refused(relay: RelayProcess) -> None:
    from tests.cloud.relay_support import RoslibpyOperator

    operator = RoslibpyOperator()
    try:
        reply = operator.request(
            "connect", host="127.0.0.1", port=relay.port, token="wrong", connect_timeout=2
        )
        assert not reply["ok"]
    finally:
        operator.close()


def test_roslibpy_operator_without_read_rights(relay: RelayProcess) -> None:
    async def scenario() -> None:
        robot1, _ = await open_device(relay.port, "robot1", topics=POSE)
        robot2, _ = await open_device(relay.port, "robot2", topics=POSE)
        with roslibpy_operator(relay.port, token="op-robot2") as operator:
            topics = await asyncio.to_thread(operator.request, "rosapi", what="topics")
            assert topics["values"] == ["/robot2/chatter", "/robot2/turtle1/pose"]
            await asyncio.to_thread(
                operator.request, "subscribe", topic="/robot1/chatter", type="std_msgs/String"
            )
            await asyncio.to_thread(
                operator.request, "subscribe", topic="/robot2/chatter", type="std_msgs/String"
            )
            # A round trip after the subscribes: the relay handles an operator's frames in
            # order, so both subscriptions are in place before anything is published (chatter
            # is an event topic: nothing published earlier would be replayed).
            await asyncio.to_thread(operator.request, "rosapi", what="topics")
            await robot1.send(dp.encode(dp.publish("/chatter", {"data": "secret"}, 1)))
            await robot2.send(dp.encode(dp.publish("/chatter", {"data": "public"}, 1)))
            message = await asyncio.to_thread(operator.next_message)
            assert message["topic"] == "/robot2/chatter"
            await asyncio.sleep(0.3)
            assert operator.pending_messages() == []
            refused = await asyncio.to_thread(
                operator.request, "call", service="/robot2/reset", type="std_srvs/Empty"
            )
            assert not refused["ok"] and "not allowed to command" in refused["error"]
        assert [d["id"] for d in api_devices(relay.port, "op-robot2")] == ["robot2"]
        await robot1.close()
        await robot2.close()

    run(scenario(), 40)
