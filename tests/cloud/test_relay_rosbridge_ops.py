"""Issue 13's operator protocol over real loopback websockets: raw rosbridge operators against a
relay process, raw devices on the other side (each op's wire form is checked exactly)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from PIL import Image

from pyros.cloud import device_protocol as dp
from tests.cloud.relay_support import (
    RelayProcess,
    no_message,
    open_device,
    open_operator,
    recv_json,
    recv_until,
    relay_process,
    run,
)
from tests.support import limit

pytestmark = pytest.mark.cloud

POSE = {"/turtle1/pose": "turtlesim/Pose", "/event": "std_msgs/String"}
ROTATE = {"/turtle1/rotate_absolute": "turtlesim/action/RotateAbsolute"}


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with relay_process(tmp_path) as running:
        yield running


async def device_op(ws: Any, op: str) -> dict[str, Any]:
    return await recv_until(ws, lambda m: m.get("op") == op)


def test_both_type_spellings_and_latest_only_for_state_topics(relay: RelayProcess) -> None:
    async def scenario() -> None:
        robot, _ = await open_device(relay.port, "robot1", topics=POSE, latest=("/turtle1/pose",))
        await robot.send(dp.encode(dp.publish("/turtle1/pose", {"x": 1.0}, 1)))
        await robot.send(dp.encode(dp.publish("/event", {"data": "old news"}, 2)))
        await recv_until(robot, lambda m: m == {"op": "ack", "seq": 2})
        operator = await open_operator(relay.port)
        for topic, kind in (
            ("/robot1/turtle1/pose", "turtlesim/msg/Pose"),
            ("/robot1/event", "std_msgs/msg/String"),
        ):
            await operator.send(json.dumps({"op": "subscribe", "topic": topic, "type": kind}))
        first = await recv_json(operator)
        assert first == {"op": "publish", "topic": "/robot1/turtle1/pose", "msg": {"x": 1.0}}
        assert await no_message(operator, 0.5)  # the old event is not replayed
        await operator.send(
            json.dumps(
                {
                    "op": "subscribe",
                    "id": "x",
                    "topic": "/robot1/event",
                    "type": "std_msgs/msg/Int32",
                }
            )
        )
        await operator.send(json.dumps({"op": "set_level", "level": "info"}))
        refused = await recv_json(operator)
        assert refused["level"] == "error" and "std_msgs/String" in refused["msg"]
        await robot.send(dp.encode(dp.publish("/event", {"data": "news"}, 3)))
        assert (await recv_json(operator))["msg"] == {"data": "news"}
        for ws in (robot, operator):
            await ws.close()

    run(scenario())


def test_cbor_png_and_fragments(relay: RelayProcess) -> None:
    async def scenario() -> None:
        robot, _ = await open_device(relay.port, "robot1", topics=POSE)
        cbor_op, png_op, frag_op = [await open_operator(relay.port) for _ in range(3)]
        await cbor_op.send(
            json.dumps({"op": "subscribe", "topic": "/robot1/event", "compression": "cbor"})
        )
        await png_op.send(
            json.dumps({"op": "subscribe", "topic": "/robot1/event", "compression": "png"})
        )
        await frag_op.send(
            json.dumps({"op": "subscribe", "topic": "/robot1/event", "fragment_size": 10})
        )
        await asyncio.sleep(0.2)
        message = {"data": "a string of some length ü"}
        await robot.send(dp.encode(dp.publish("/event", message, 1)))
        binary = await asyncio.wait_for(cbor_op.recv(), limit(5))
        assert isinstance(binary, bytes)
        assert cbor2.loads(binary) == {"op": "publish", "topic": "/robot1/event", "msg": message}
        png = await recv_json(png_op)
        assert png["op"] == "png"
        pixels = Image.open(io.BytesIO(base64.b64decode(png["data"]))).tobytes()
        assert json.loads(pixels)["msg"] == message
        pieces = [await recv_json(frag_op)]
        while len(pieces) < pieces[0]["total"]:
            pieces.append(await recv_json(frag_op))
        assert [p["num"] for p in pieces] == list(range(len(pieces))) and len(pieces) > 3
        whole = json.loads("".join(p["data"] for p in pieces))
        assert whole == {"op": "publish", "topic": "/robot1/event", "msg": message}
        # An operator may fragment what it sends, too.
        text = json.dumps({"op": "call_service", "id": "frag", "service": "/rosapi/nodes"})
        for num in range(0, len(text), 7):
            piece = {"op": "fragment", "id": "m", "data": text[num : num + 7], "num": num // 7}
            piece["total"] = -(-len(text) // 7)
            await frag_op.send(json.dumps(piece))
        answer = await recv_until(frag_op, lambda m: m.get("op") == "service_response")
        assert answer["id"] == "frag" and answer["values"] == {"nodes": ["/robot1"]}
        for ws in (robot, cbor_op, png_op, frag_op):
            await ws.close()

    run(scenario())


def test_actions_goal_feedback_result_cancel_and_refusals(relay: RelayProcess) -> None:
    async def scenario() -> None:
        robot, _ = await open_device(relay.port, "robot1", actions=ROTATE)
        operator = await open_operator(relay.port)
        await operator.send(
            json.dumps({"op": "call_service", "id": 1, "service": "/rosapi/action_servers"})
        )
        listed = await recv_json(operator)
        assert listed["values"] == {"action_servers": ["/robot1/turtle1/rotate_absolute"]}
        goal = {
            "op": "send_action_goal",
            "id": "send_action_goal:/robot1/turtle1/rotate_absolute:1",
            "action": "/robot1/turtle1/rotate_absolute",
            "action_type": "turtlesim/action/RotateAbsolute",
            "args": {"theta": 1.5},
            "feedback": True,
        }
        await operator.send(json.dumps(goal))
        sent = await device_op(robot, "send_goal")
        assert sent["action"] == "/turtle1/rotate_absolute" and sent["goal"] == {"theta": 1.5}
        assert sent["feedback"] is True and len(sent["id"]) >= 16
        await robot.send(dp.encode(dp.action_feedback(sent["id"], {"remaining": 0.5})))
        feedback = await recv_json(operator)
        assert feedback == {
            "op": "action_feedback",
            "id": goal["id"],
            "action": goal["action"],
            "values": {"remaining": 0.5},
        }
        await robot.send(dp.encode(dp.action_result(sent["id"], "succeeded", {"delta": 1.5})))
        result = await recv_json(operator)
        assert result == {
            "op": "action_result",
            "id": goal["id"],
            "action": goal["action"],
            "values": {"delta": 1.5},
            "status": 4,
            "result": True,
        }
        # Cancel: the device is asked; the canceled result follows from the device.
        await operator.send(json.dumps(dict(goal, id="g2")))
        second = await device_op(robot, "send_goal")
        await operator.send(
            json.dumps({"op": "cancel_action_goal", "id": "g2", "action": goal["action"]})
        )
        assert (await device_op(robot, "cancel_goal"))["id"] == second["id"]
        await robot.send(dp.encode(dp.action_result(second["id"], "canceled", None, "canceled")))
        canceled = await recv_json(operator)
        assert canceled["status"] == 5 and canceled["result"] is True
        # Refusals come as a failed action_result, so a waiting client hears about it.
        for action, reason in (("/robot1/nope", "no action"), ("/robot9/x", "not allowed")):
            await operator.send(json.dumps(dict(goal, id="bad", action=action)))
            refused = await recv_until(operator, lambda m: m.get("op") == "action_result")
            assert refused["result"] is False and reason in refused["values"], refused
            assert refused["id"] == "bad" and refused["status"] == 6
        # A goal that the device rejects, then a device that goes away mid-goal.
        await operator.send(json.dumps(dict(goal, id="g3")))
        third = await device_op(robot, "send_goal")
        await robot.send(dp.encode(dp.action_result(third["id"], "rejected", None, "busy")))
        rejected = await recv_until(operator, lambda m: m.get("op") == "action_result")
        assert rejected["result"] is False and rejected["values"] == "busy"
        await operator.send(json.dumps(dict(goal, id="g4")))
        await device_op(robot, "send_goal")
        await robot.close()
        lost = await recv_until(operator, lambda m: m.get("op") == "action_result")
        assert lost["id"] == "g4" and lost["result"] is False and "offline" in lost["values"]
        await operator.close()

    run(scenario())


def test_params_through_the_device(relay: RelayProcess) -> None:
    async def scenario() -> None:
        robot, _ = await open_device(relay.port, "robot1", params=("/sim:background_r", "/run_id"))
        operator = await open_operator(relay.port)

        async def call(service: str, **args: Any) -> dict[str, Any]:
            await operator.send(
                json.dumps({"op": "call_service", "id": service, "service": service, "args": args})
            )
            return await recv_until(operator, lambda m: m.get("op") == "service_response")

        names = await call("/rosapi/get_param_names")
        assert names["values"] == {"names": ["/robot1/run_id", "/robot1/sim:background_r"]}
        getting = asyncio.ensure_future(call("/rosapi/get_param", name="/robot1/sim:background_r"))
        request = await device_op(robot, "param")
        assert request == {
            "op": "param",
            "id": request["id"],
            "action": "get",
            "name": "/sim:background_r",
        }
        await robot.send(dp.encode(dp.param_response(request["id"], 69)))
        assert (await getting)["values"] == {"value": "69"}
        setting = asyncio.ensure_future(
            call("/rosapi/set_param", name="/robot1/run_id", value='"abc"')
        )
        request = await device_op(robot, "param")
        assert request["action"] == "set" and request["value"] == "abc"
        await robot.send(dp.encode(dp.param_response(request["id"], None)))
        assert (await setting)["result"] is True
        failing = asyncio.ensure_future(call("/rosapi/delete_param", name="/robot1/run_id"))
        request = await device_op(robot, "param")
        await robot.send(dp.encode(dp.param_response(request["id"], "not allowed", False)))
        failed = await failing
        assert failed["result"] is False and "not allowed" in failed["values"]
        bad = await call("/rosapi/set_param", name="/robot1/run_id", value="{not json")
        assert bad["result"] is False and "JSON" in bad["values"]
        for ws in (robot, operator):
            await ws.close()

    run(scenario())


def test_large_frames_after_authentication(relay: RelayProcess) -> None:
    """A 12 MB camera image (16 MB of base64 JSON... here 10 MB) goes through both ways."""
    big = "A" * (10 << 20)

    async def scenario() -> None:
        robot, _ = await open_device(
            relay.port,
            "robot1",
            topics={"/image": "sensor_msgs/Image"},
            commands=("/image",),
            max_size=None,
        )
        operator = await open_operator(relay.port)
        await operator.send(json.dumps({"op": "subscribe", "topic": "/robot1/image"}))
        await asyncio.sleep(0.2)
        await robot.send(dp.encode(dp.publish("/image", {"data": big}, 1)))
        got = await recv_until(operator, lambda m: m.get("op") == "publish", timeout=20)
        assert len(got["msg"]["data"]) == len(big)
        await operator.send(
            json.dumps({"op": "publish", "topic": "/robot1/image", "msg": {"data": big}})
        )
        command = await device_op(robot, "publish")
        assert len(command["msg"]["data"]) == len(big)
        for ws in (robot, operator):
            await ws.close()

    run(scenario(), 60)
