"""Issue 13 end to end through a real connector and the mock robot: an operator's goal runs on
the robot through the pyros client (feedback, result, cancel, refusal), parameters are read and
set through rosapi, a state topic is replayed to a late subscriber while an event topic is not,
and a second operator misses none of the messages a first one advertises and publishes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyros.asyncio
from pyros.cloud.connector import Backoff, Connector
from tests.cloud.relay_support import (
    DEVICE_TOKENS,
    RelayProcess,
    no_message,
    open_operator,
    recv_until,
    relay_process,
)
from tests.support import limit

pytestmark = pytest.mark.cloud


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with relay_process(tmp_path) as running:
        yield running


async def with_robot(port: int, scenario: Any) -> None:
    async with await pyros.asyncio.spawn(
        "mock", topics=["*"], services=["*"], params=["*"], actions=["*"]
    ) as robot:
        connector = Connector(
            robot,
            relay=f"ws://127.0.0.1:{port}",
            device="robot1",
            token=DEVICE_TOKENS["robot1"],
            topics=["/turtle1/pose", "/chatter"],
            commands=["/turtle1/cmd_vel", "/chatter"],
            actions=["/turtle1/*"],
            params=["/**"],
            latest=["/turtle1/pose"],
            poll_interval=0.2,
            backoff=Backoff(initial=0.1, maximum=0.5),
        )
        running = asyncio.ensure_future(connector.run())
        try:
            await connector.wait_online(limit(20))
            await scenario(robot, connector)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


def reply_to(op: str, id: Any) -> Any:
    return lambda m: m.get("op") == op and m.get("id") == id


def test_goals_through_the_connector(relay: RelayProcess) -> None:
    async def scenario(robot: pyros.asyncio.Client, connector: Connector) -> None:
        while "/turtle1/rotate_absolute" not in connector.actions:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the hello with the action reached the relay
        operator = await open_operator(relay.port)
        goal = {
            "op": "send_action_goal",
            "id": "g1",
            "action": "/robot1/turtle1/rotate_absolute",
            "action_type": "turtlesim/action/RotateAbsolute",
            "args": {"theta": 1.0},
            "feedback": True,
        }
        await operator.send(json.dumps(goal))
        feedback = await recv_until(operator, reply_to("action_feedback", "g1"))
        assert "remaining" in feedback["values"]
        result = await recv_until(operator, reply_to("action_result", "g1"), timeout=30)
        assert result["status"] == 4 and result["result"] is True, result
        assert "delta" in result["values"]
        # Cancel a long turn: the canceled result comes back.
        await operator.send(json.dumps(dict(goal, id="g2", args={"theta": -3.0})))
        await recv_until(operator, reply_to("action_feedback", "g2"))
        await operator.send(
            json.dumps({"op": "cancel_action_goal", "id": "g2", "action": goal["action"]})
        )
        canceled = await recv_until(operator, reply_to("action_result", "g2"), timeout=30)
        assert canceled["status"] == 5, canceled
        # An action the connector does not offer: refused in the form the client waits for.
        await operator.send(json.dumps(dict(goal, id="g3", action="/robot1/other/action")))
        refused = await recv_until(operator, reply_to("action_result", "g3"))
        assert refused["result"] is False and refused["status"] == 6
        await operator.close()

    asyncio.run(asyncio.wait_for(with_robot(relay.port, scenario), limit(90)))


def test_params_state_replay_and_no_first_message_lost(relay: RelayProcess) -> None:
    async def scenario(robot: pyros.asyncio.Client, connector: Connector) -> None:
        await robot.set_param("/gain", 2.5)
        while "/gain" not in connector.params:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        operator = await open_operator(relay.port)

        async def call(service: str, **args: Any) -> dict[str, Any]:
            await operator.send(
                json.dumps({"op": "call_service", "id": service, "service": service, "args": args})
            )
            return await recv_until(operator, reply_to("service_response", service))

        details = await call("/rosapi/message_details", type="geometry_msgs/msg/Twist")
        typedefs = details["values"]["typedefs"]
        assert [t["type"] for t in typedefs] == [
            "geometry_msgs/msg/Twist",
            "geometry_msgs/msg/Vector3",
        ]
        assert typedefs[0]["fieldtypes"] == ["geometry_msgs/msg/Vector3"] * 2
        assert typedefs[0]["fieldnames"] == ["linear", "angular"]
        assert typedefs[1]["fieldtypes"] == ["float64"] * 3
        names = await call("/rosapi/get_param_names")
        assert "/robot1/gain" in names["values"]["names"]
        assert (await call("/rosapi/get_param", name="/robot1/gain"))["values"] == {"value": "2.5"}
        assert (await call("/rosapi/set_param", name="/robot1/gain", value="4"))["result"]
        assert await robot.get_param("/gain") == 4

        # State is replayed to a late subscriber; an event topic's old message is not.
        await robot.publish("/chatter", {"data": "old"}, "std_msgs/String")
        await asyncio.sleep(0.5)
        late = await open_operator(relay.port)
        await late.send(json.dumps({"op": "subscribe", "topic": "/robot1/turtle1/pose"}))
        pose = await recv_until(late, lambda m: m.get("op") == "publish")
        assert pose["topic"] == "/robot1/turtle1/pose"
        await late.send(json.dumps({"op": "subscribe", "topic": "/robot1/chatter"}))
        await asyncio.sleep(0.3)
        assert not any(m.get("topic") == "/robot1/chatter" for m in await drain(late, 0.5)), (
            "an old event was replayed"
        )

        # A second operator subscribed before the first publish gets all 15 messages.
        listener = await open_operator(relay.port)
        await listener.send(json.dumps({"op": "subscribe", "topic": "/robot1/chatter"}))
        talker = await open_operator(relay.port)
        await talker.send(
            json.dumps({"op": "advertise", "topic": "/robot1/chatter", "type": "std_msgs/String"})
        )
        await asyncio.sleep(0.2)
        for n in range(15):
            await talker.send(
                json.dumps({"op": "publish", "topic": "/robot1/chatter", "msg": {"data": str(n)}})
            )
        got: list[str] = []
        while len(got) < 15:
            message = await recv_until(listener, lambda m: m.get("op") == "publish")
            got.append(message["msg"]["data"])
        assert got == [str(n) for n in range(15)]
        assert await no_message(listener, 0.3)
        for ws in (operator, late, listener, talker):
            await ws.close()

    asyncio.run(asyncio.wait_for(with_robot(relay.port, scenario), limit(60)))


async def drain(ws: Any, seconds: float) -> list[dict[str, Any]]:
    """Return what arrives on ``ws`` within ``seconds``."""
    found = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            found.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except asyncio.TimeoutError:
            break
    return found
