"""Issue 11's relay defects, each over real loopback websockets against a relay process.

Every test here failed before its fix: strangers could send 16 MiB frames with deflate and had
10 s; failed sign-ins were unlimited; a duplicate ``Authorization`` header gave HTTP 500 with a
traceback; ``throttle_rate`` NaN logged a traceback per frame; ``..`` crossed command globs and
``*`` matched several name levels; a device could answer another device's command.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

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
    with relay_process(tmp_path, "--auth-timeout", "1", "--auth-failures", "5") as running:
        yield running


def test_a_stranger_gets_a_small_frame_cap_no_deflate_and_a_short_deadline(
    relay: RelayProcess,
) -> None:
    async def scenario() -> None:
        stranger = await open_operator(relay.port, token=None)
        assert stranger.response is not None
        assert "Sec-WebSocket-Extensions" not in stranger.response.headers  # no deflate
        await stranger.send(json.dumps({"op": "auth", "token": "x" * 8000}))
        with pytest.raises(ConnectionClosed) as caught:
            await asyncio.wait_for(stranger.recv(), limit(5))
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009

        idle = await open_operator(relay.port, token=None)
        started = asyncio.get_running_loop().time()
        status = await recv_json(idle, limit(5))
        assert status["op"] == "status" and "in time" in status["msg"]
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(idle.recv(), limit(5))
        assert asyncio.get_running_loop().time() - started < limit(3)

        # After authentication the cap is the large one (a 100 KB publish is handled).
        late = await open_operator(relay.port, token=None)
        await late.send(json.dumps({"op": "auth", "token": "op-all"}))
        assert (await recv_json(late))["msg"] == "authenticated"
        await late.send(
            json.dumps({"op": "publish", "topic": "/robot1/x", "msg": {"d": "y" * 100_000}})
        )
        reply = await recv_json(late)
        assert reply["op"] == "status" and "robot1" in reply["msg"]

        signed = await open_operator(relay.port)  # Authorization header: trusted at once
        assert signed.response is not None
        assert "permessage-deflate" in signed.response.headers.get("Sec-WebSocket-Extensions", "")
        for ws in (late, signed):
            await ws.close()

    run(scenario())


def test_failed_sign_ins_are_rate_limited_per_address(relay: RelayProcess) -> None:
    async def attempt(token: str) -> int:
        try:
            ws = await connect(
                f"ws://127.0.0.1:{relay.port}/",
                additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=limit(5),
            )
        except InvalidStatus as exc:
            return exc.response.status_code
        await ws.close()
        return 101

    async def scenario() -> None:
        assert await attempt("op-all") == 101
        codes = [await attempt(f"guess-{n}") for n in range(8)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
        assert await attempt("op-all") == 429  # even the right token waits now
        # A device's failed handshake counts for the same address too.
        with pytest.raises(InvalidStatus) as caught:
            await open_device(relay.port, "robot1")
        assert caught.value.response.status_code == 429

    run(scenario())


def _raw_get(port: int, path: str, headers: list[tuple[str, str]]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=limit(5))
    connection.putrequest("GET", path)
    for name, value in headers:
        connection.putheader(name, value)
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


def test_duplicate_credential_headers_are_a_clean_400(relay: RelayProcess) -> None:
    upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]
    twice = [("Authorization", "Bearer op-all"), ("Authorization", "Bearer op-robot2")]
    assert _raw_get(relay.port, "/", upgrade + twice) == 400
    assert _raw_get(relay.port, "/api/devices", twice) == 400
    device = [("Authorization", "Bearer robot1-secret")]
    both = device + [("X-Pyros-Device", "robot1"), ("X-Pyros-Device", "robot2")]
    assert _raw_get(relay.port, "/device", upgrade + both) == 400
    # relay_process checks at exit that the relay logged no traceback


def test_non_finite_counts_get_one_status_error_each_and_no_traceback(
    relay: RelayProcess,
) -> None:
    async def scenario() -> None:
        operator = await open_operator(relay.port)
        for field, text in [
            ("throttle_rate", "NaN"),
            ("queue_length", "Infinity"),
            ("queue_length", "1e400"),
            ("throttle_rate", "-Infinity"),
        ]:
            for _ in range(50):
                frame = f'{{"op":"subscribe","id":"s","topic":"/robot1/data","{field}":{text}}}'
                await operator.send(frame)
            for _ in range(50):
                status = await recv_json(operator)
                assert status["level"] == "error" and field in status["msg"], status
        await operator.close()

    run(scenario())


def test_names_are_validated_and_a_star_matches_one_level(relay: RelayProcess) -> None:
    async def scenario() -> None:
        device, _ = await open_device(relay.port, "robot1", commands=("/turtle1/*",))
        operator = await open_operator(relay.port)
        await operator.send(json.dumps({"op": "set_level", "level": "info"}))
        refused = {
            "/robot1/turtle1/../../secret": "not a valid ROS name",
            "/robot1/turtle1/./cmd_vel": "not a valid ROS name",
            "/robot1//turtle1/x": "not a valid ROS name",
            "/robot1/turtle1/a/b": "not a command topic",
        }
        for topic, reason in refused.items():
            await operator.send(json.dumps({"op": "publish", "topic": topic, "msg": {}}))
            status = await recv_json(operator)
            assert status["level"] == "error" and reason in status["msg"], (topic, status)
        assert await no_message(device, 0.3) or True  # acks only; checked below
        await operator.send(
            json.dumps({"op": "publish", "topic": "/robot1/turtle1/cmd_vel", "msg": {"a": 1}})
        )
        command = await recv_until(device, lambda m: m.get("op") == "publish")
        assert command["topic"] == "/turtle1/cmd_vel"
        await device.close()
        await operator.close()

    run(scenario())


def test_only_the_commanded_device_may_answer_and_ids_are_unguessable(
    relay: RelayProcess,
) -> None:
    async def scenario() -> None:
        robot1, _ = await open_device(relay.port, "robot1", commands=("/cmd",))
        robot2, _ = await open_device(relay.port, "robot2", commands=("/cmd",))
        operator = await open_operator(relay.port)
        await operator.send(json.dumps({"op": "set_level", "level": "info"}))
        ids = []
        for n in range(2):
            await operator.send(
                json.dumps({"op": "publish", "id": f"op-{n}", "topic": "/robot1/cmd", "msg": {}})
            )
            command = await recv_until(robot1, lambda m: m.get("op") == "publish")
            ids.append(command["id"])
        assert all(len(i) >= 16 for i in ids) and ids[0][-8:] != ids[1][-8:]
        # robot2 learns (or guesses) the id and answers in robot1's place: ignored.
        await robot2.send(dp.encode(dp.status("error", "forged refusal", ids[0])))
        assert await no_message(operator, 0.5)
        await robot1.send(dp.encode(dp.status("error", "real refusal", ids[0])))
        status = await recv_json(operator)
        assert status["id"] == "op-0" and "robot1: real refusal" in status["msg"]
        for ws in (robot1, robot2, operator):
            await ws.close()

    run(scenario())
