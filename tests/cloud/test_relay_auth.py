"""Authentication over real loopback websockets: devices, operators, /api/devices, no tokens."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

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


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with relay_process(tmp_path, "--auth-timeout", "1") as running:
        yield running


async def refused_status(url: str, headers: dict[str, str] | None = None) -> int:
    with pytest.raises(InvalidStatus) as caught:
        await connect(url, additional_headers=headers or {}, open_timeout=limit(5.0))
    return caught.value.response.status_code


def http_status(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=limit(5.0)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_device_credentials_are_checked(relay: RelayProcess) -> None:
    base = f"ws://127.0.0.1:{relay.port}/device"

    async def scenario() -> None:
        # Wrong token, unknown device, missing credentials: 401.
        assert await refused_status(base, dp.handshake_headers("robot1", "wrong")) == 401
        assert await refused_status(base, dp.handshake_headers("robotX", "robot1-secret")) == 401
        assert await refused_status(base) == 401
        # robot1's token does not open robot2's id: no impersonation.
        assert await refused_status(base, dp.handshake_headers("robot2", "robot1-secret")) == 401
        assert await refused_status(f"{base}?device=robot2&token=robot1-secret") == 401
        # An operator token is not a device token.
        assert await refused_status(base, dp.handshake_headers("robot1", "op-all")) == 401
        # Credentials in the URL query work too.
        ws = await connect(f"{base}?{dp.device_query('robot1', 'robot1-secret')}")
        await ws.send(dp.encode(dp.hello("robot1", "s")))
        assert (await recv_json(ws))["op"] == "welcome"
        await ws.close()

    run(scenario())


def test_a_device_cannot_say_hello_as_another_device(relay: RelayProcess) -> None:
    async def scenario() -> None:
        ws = await connect(
            f"ws://127.0.0.1:{relay.port}/device",
            additional_headers=dp.handshake_headers("robot1", "robot1-secret"),
        )
        await ws.send(dp.encode(dp.hello("robot2", "s")))
        error = await recv_json(ws)
        assert error["op"] == "status" and error["level"] == "error"
        assert "robot2" in error["msg"] and "robot1" in error["msg"]
        with pytest.raises(ConnectionClosed):
            await recv_json(ws)
        assert ws.close_code == 1008
        # robot2 is untouched; robot1 is known (it connected) but offline, with no topics.
        ws, _ = await open_device(relay.port, "robot2")
        status, body = http_status(f"http://127.0.0.1:{relay.port}/api/devices?token=op-all")
        assert status == 200 and [d["id"] for d in body] == ["robot1", "robot2"]
        assert not body[0]["online"] and body[0]["topics"] == {}
        await ws.close()

    run(scenario())


def test_operator_credentials(relay: RelayProcess) -> None:
    base = f"ws://127.0.0.1:{relay.port}/"

    async def scenario() -> None:
        assert await refused_status(base, {"Authorization": "Bearer wrong"}) == 401
        assert await refused_status(f"{base}?token=wrong") == 401
        assert await refused_status(base, {"Authorization": "Bearer robot1-secret"}) == 401
        assert await refused_status(f"ws://127.0.0.1:{relay.port}/elsewhere") == 404
        # Header, query, and first-message auth all work.
        for ws in (
            await open_operator(relay.port),
            await open_operator(relay.port, None, query="?token=op-all"),
        ):
            await ws.send(json.dumps({"op": "call_service", "id": 1, "service": "/rosapi/nodes"}))
            assert (await recv_json(ws))["result"] is True
            await ws.close()
        ws = await open_operator(relay.port, None)
        await ws.send(json.dumps({"op": "auth", "token": "op-all"}))
        await ws.send(json.dumps({"op": "call_service", "id": 2, "service": "/rosapi/nodes"}))
        assert (await recv_json(ws)) == {"op": "status", "level": "info", "msg": "authenticated"}
        answer = await recv_json(ws)
        assert answer["id"] == 2 and answer["result"] is True
        await ws.close()
        # A wrong auth message: an error, then the relay closes (policy violation).
        ws = await open_operator(relay.port, None)
        await ws.send(json.dumps({"op": "auth", "token": "wrong"}))
        assert "unknown operator token" in (await recv_json(ws))["msg"]
        with pytest.raises(ConnectionClosed):
            await recv_json(ws)
        assert ws.close_code == 1008
        # Anything but auth first: an error, then closed.
        ws = await open_operator(relay.port, None)
        await ws.send(json.dumps({"op": "subscribe", "topic": "/robot1/data"}))
        assert "authenticate first" in (await recv_json(ws))["msg"]
        with pytest.raises(ConnectionClosed):
            await recv_json(ws)
        # Silence: closed after --auth-timeout.
        ws = await open_operator(relay.port, None)
        assert "in time" in (await recv_json(ws, limit(5.0)))["msg"]
        with pytest.raises(ConnectionClosed):
            await recv_json(ws)
        assert ws.close_code == 1008

    run(scenario())


def test_operator_rights(relay: RelayProcess) -> None:
    async def scenario() -> None:
        robot1, _ = await open_device(
            relay.port, "robot1", commands=("/cmd_vel",), services={"/reset": "std_srvs/Empty"}
        )
        robot2, _ = await open_device(relay.port, "robot2", commands=("/cmd_vel",))
        reader = await open_operator(relay.port, "op-robot2")
        await reader.send(json.dumps({"op": "subscribe", "id": "s1", "topic": "/robot1/data"}))
        refused = await recv_json(reader)
        assert refused == {
            "op": "status",
            "level": "error",
            "msg": "subscribe: not allowed to read device 'robot1'",
            "id": "s1",
        }
        for op in ("advertise", "publish"):
            await reader.send(
                json.dumps({"op": op, "id": op, "topic": "/robot2/cmd_vel", "type": "t", "msg": {}})
            )
            error = await recv_json(reader)
            assert error["id"] == op and "not allowed to command" in error["msg"]
        await reader.send(json.dumps({"op": "call_service", "id": "c", "service": "/robot1/reset"}))
        answer = await recv_until(reader, lambda m: m["op"] == "service_response")
        assert answer["result"] is False
        # The commander: command topics are checked against the device's globs.
        commander = await open_operator(relay.port, "op-all")
        await commander.send(
            json.dumps({"op": "publish", "id": "x", "topic": "/robot1/other", "msg": {}})
        )
        assert "not a command topic" in (await recv_json(commander))["msg"]
        await commander.send(
            json.dumps({"op": "publish", "id": "y", "topic": "/robot1/cmd_vel", "msg": {"a": 1}})
        )
        command = await recv_until(robot1, lambda m: m["op"] == "publish")
        assert command["topic"] == "/cmd_vel" and command["msg"] == {"a": 1}
        assert "type" not in command  # nothing advertised: the device uses the topic's type
        # After an advertise, the type travels with each command (a new topic needs it).
        await commander.send(
            json.dumps({"op": "advertise", "id": "a", "topic": "/robot1/cmd_vel", "type": "x/Cmd"})
        )
        await commander.send(
            json.dumps({"op": "publish", "id": "z", "topic": "/robot1/cmd_vel", "msg": {"a": 2}})
        )
        typed = await recv_until(robot1, lambda m: m["op"] == "publish")
        assert typed["type"] == "x/Cmd" and typed["msg"] == {"a": 2}
        # The device refuses it: the status reaches the operator with the operator's id.
        await robot1.send(dp.encode(dp.status("error", "cmd_vel is locked", command["id"])))
        routed = await recv_json(commander)
        assert routed["id"] == "y" and routed["msg"] == "robot1: cmd_vel is locked"
        assert await no_message(robot2)
        for ws in (robot1, robot2, reader, commander):
            await ws.close()

    run(scenario())


def test_api_devices_needs_an_operator_token(relay: RelayProcess) -> None:
    async def scenario() -> None:
        robot1, _ = await open_device(relay.port, "robot1")
        robot2, _ = await open_device(relay.port, "robot2")
        url = f"http://127.0.0.1:{relay.port}/api/devices"
        assert http_status(url)[0] == 401
        assert http_status(url, {"Authorization": "Bearer wrong"})[0] == 401
        assert http_status(url, {"Authorization": "Bearer robot1-secret"})[0] == 401
        status, body = http_status(url, {"Authorization": "Bearer op-robot2"})
        assert status == 200 and [d["id"] for d in body] == ["robot2"]
        assert body[0]["online"] is True and body[0]["topics"] == {"/data": "std_msgs/String"}
        status, body = http_status(f"{url}?token=op-all")
        assert [d["id"] for d in body] == ["robot1", "robot2"]
        await robot1.close()
        await robot2.close()

    run(scenario())


def test_without_tokens_loopback_is_accepted_and_the_relay_says_so(tmp_path: Path) -> None:
    with relay_process(tmp_path, tokens=None) as relay:

        async def scenario() -> None:
            ws, welcome = await open_device(relay.port, "any-robot", token="")
            assert welcome["device"] == "any-robot"
            operator = await open_operator(relay.port, None)
            await operator.send(json.dumps({"op": "subscribe", "topic": "/any-robot/data"}))
            await asyncio.sleep(0.1)
            await ws.send(dp.encode(dp.publish("/data", {"data": "x"}, 1)))
            assert (await recv_json(operator))["msg"] == {"data": "x"}
            await ws.close()
            await operator.close()

        run(scenario())
        # A reverse proxy on this machine is loopback too: what it forwards is refused.
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            status, body = http_status(
                f"http://127.0.0.1:{relay.port}/api/devices", {header: "203.0.113.7"}
            )
            assert status == 403 and "proxied" in str(body), (header, status, body)
            status, _ = http_status(f"http://127.0.0.1:{relay.port}/metrics", {header: "x"})
            assert status == 403

        async def proxied_operator() -> None:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(
                    f"ws://127.0.0.1:{relay.port}/",
                    additional_headers={"X-Forwarded-For": "203.0.113.7"},
                ):
                    pass
            assert refused.value.response.status_code == 403

        run(proxied_operator())
    assert "only loopback" in relay.stderr


def test_a_second_connection_replaces_the_first(relay: RelayProcess) -> None:
    async def scenario() -> None:
        old, _ = await open_device(relay.port, "robot1", session="a")
        new, _ = await open_device(relay.port, "robot1", session="a")
        with pytest.raises(ConnectionClosed):
            await recv_until(old, lambda m: False)
        assert old.close_code == dp.REPLACED_CLOSE_CODE
        status, body = http_status(f"http://127.0.0.1:{relay.port}/api/devices?token=op-all")
        assert body[0]["online"] is True
        await new.close()

    run(scenario())
