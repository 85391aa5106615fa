"""Malformed input from each side gets an error to that peer only; every other peer carries on.

Bad JSON, unknown ops, frames above --max-message-bytes, binary garbage and wrong field types,
from a device and from an operator, while a second device streams to a second operator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from pyros.cloud import device_protocol as dp
from tests.cloud.relay_support import (
    RelayProcess,
    open_device,
    open_operator,
    recv_json,
    recv_until,
    relay_process,
    run,
)

pytestmark = pytest.mark.cloud

MAX_MESSAGE = 64 * 1024
HARD_CAP = 256 * 1024

GARBAGE: list[tuple[str, str | bytes, str]] = [
    ("bad JSON", '{"op": "publish", ', "bad JSON"),
    ("not an object", "[1, 2, 3]", "object"),
    ("unknown op", '{"op": "explode", "id": "e1"}', "unknown op 'explode'"),
    ("no op", '{"topic": "/x"}', "'op'"),
    ("huge frame", json.dumps({"op": "publish", "pad": "x" * (MAX_MESSAGE + 10)}), "limit"),
    ("binary garbage", os.urandom(512), "binary"),
    ("non-UTF-8 binary", b"\xff\xfe\x00garbage", "binary"),
]


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with relay_process(
        tmp_path, "--max-message-bytes", str(MAX_MESSAGE), "--max-frame-bytes", str(HARD_CAP)
    ) as running:
        yield running


class Bystanders:
    """robot2 streaming /data to a second operator, checked for continuity."""

    def __init__(self, device: ClientConnection, operator: ClientConnection) -> None:
        self.device = device
        self.operator = operator
        self.seq = 0

    @classmethod
    async def start(cls, port: int) -> Bystanders:
        device, _ = await open_device(port, "robot2")
        operator = await open_operator(port, "op-all")
        await operator.send(json.dumps({"op": "subscribe", "id": "b", "topic": "/robot2/data"}))
        await operator.send(
            json.dumps({"op": "call_service", "id": "sync", "service": "/rosapi/nodes"})
        )
        await recv_json(operator)  # the subscribe was handled before this answer
        return cls(device, operator)

    async def still_fine(self) -> None:
        self.seq += 1
        await self.device.send(dp.encode(dp.publish("/data", {"data": str(self.seq)}, self.seq)))
        message = await recv_json(self.operator)
        assert message == {"op": "publish", "topic": "/robot2/data", "msg": {"data": str(self.seq)}}

    async def close(self) -> None:
        await self.device.close()
        await self.operator.close()


@pytest.mark.parametrize(("what", "frame", "fragment"), GARBAGE, ids=[g[0] for g in GARBAGE])
def test_malformed_device_input(
    relay: RelayProcess, what: str, frame: str | bytes, fragment: str
) -> None:
    async def scenario() -> None:
        others = await Bystanders.start(relay.port)
        robot, _ = await open_device(relay.port, "robot1")
        await robot.send(frame)
        error = await recv_until(robot, lambda m: m["op"] == "status")
        assert error["level"] == "error" and fragment in error["msg"], error
        await others.still_fine()
        # The offending connection is still open and still works.
        await robot.send(dp.encode(dp.publish("/data", {"data": "ok"}, 1)))
        assert (await recv_until(robot, lambda m: m["op"] == "ack")) == {"op": "ack", "seq": 1}
        await others.still_fine()
        await robot.close()
        await others.close()

    run(scenario(), 40)


@pytest.mark.parametrize(("what", "frame", "fragment"), GARBAGE, ids=[g[0] for g in GARBAGE])
def test_malformed_operator_input(
    relay: RelayProcess, what: str, frame: str | bytes, fragment: str
) -> None:
    async def scenario() -> None:
        others = await Bystanders.start(relay.port)
        operator = await open_operator(relay.port, "op-all")
        await operator.send(frame)
        error = await recv_json(operator)
        assert error["op"] == "status" and error["level"] == "error", error
        assert fragment in error["msg"], error
        await others.still_fine()
        await operator.send(json.dumps({"op": "call_service", "id": 7, "service": "/rosapi/nodes"}))
        answer = await recv_json(operator)
        assert answer["id"] == 7 and answer["values"] == {"nodes": ["/robot2"]}
        await operator.close()
        await others.close()

    run(scenario(), 40)


WRONG_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("device", {"op": "publish", "topic": "/data", "msg": "text", "seq": 1}, "'msg' must be"),
    ("device", {"op": "publish", "topic": "/data", "msg": {}, "seq": "1"}, "'seq' must be"),
    ("device", {"op": "publish", "topic": "/undeclared", "msg": {}, "seq": 1}, "not among"),
    ("device", {"op": "hello", "device": "robot1", "session": 5}, "'session' must be"),
    (
        "device",
        {"op": "service_response", "id": "nope", "result": True, "values": {}},
        "no pending",
    ),
    ("device", {"op": "subscribe", "topic": "nodevice"}, "starting with '/'"),
    ("operator", {"op": "subscribe", "id": 3, "topic": 42}, "'topic' must be a string"),
    ("operator", {"op": "subscribe", "topic": "/rosout"}, "not a device name"),
    (
        "operator",
        {"op": "subscribe", "topic": "/robot1/data", "throttle_rate": -1},
        "finite number from 0",
    ),
    ("operator", {"op": "subscribe", "topic": "/robot1/data", "type": "wrong/Type"}, "has type"),
    (
        "operator",
        {"op": "subscribe", "topic": "/robot1/data", "compression": "cbor-raw"},
        "cbor-raw",
    ),
    ("operator", {"op": "publish", "topic": "/robot1/data", "msg": [1]}, "'msg' must be"),
    ("operator", {"op": "set_level", "level": "loud"}, "level must be"),
    ("operator", {"op": "advertise_service", "service": "/s", "type": "t"}, "not supported"),
    ("operator", {"op": "service_response", "id": "x", "values": {}, "result": True}, "not supp"),
]


@pytest.mark.parametrize(("side", "message", "fragment"), WRONG_FIELDS)
def test_wrong_field_types(
    relay: RelayProcess, side: str, message: dict[str, Any], fragment: str
) -> None:
    async def scenario() -> None:
        others = await Bystanders.start(relay.port)
        robot, _ = await open_device(relay.port, "robot1")
        peer = robot if side == "device" else await open_operator(relay.port, "op-all")
        await peer.send(json.dumps(message))
        error = await recv_until(peer, lambda m: m["op"] == "status")
        assert fragment in error["msg"], error
        await others.still_fine()
        await robot.close()
        if peer is not robot:
            await peer.close()
        await others.close()

    run(scenario(), 40)


def test_a_frame_above_the_hard_cap_closes_only_that_connection(relay: RelayProcess) -> None:
    async def scenario() -> None:
        others = await Bystanders.start(relay.port)
        robot, _ = await open_device(relay.port, "robot1", max_size=None)
        await robot.send("x" * (HARD_CAP + 1))
        with pytest.raises(ConnectionClosed):
            await recv_until(robot, lambda m: False)
        assert robot.close_code == 1009  # message too big
        await others.still_fine()
        await others.close()

    run(scenario(), 40)


def test_call_service_with_bad_fields_is_answered(relay: RelayProcess) -> None:
    """A blocking roslibpy call must never hang: bad call_service gets a service_response."""

    async def scenario() -> None:
        operator = await open_operator(relay.port, "op-all")
        await operator.send(json.dumps({"op": "call_service", "id": "c1", "service": 5}))
        frames = [await recv_json(operator), await recv_json(operator)]
        response = next(f for f in frames if f["op"] == "service_response")
        assert response["id"] == "c1" and response["result"] is False
        await operator.close()

    run(scenario(), 40)
