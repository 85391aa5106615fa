"""Bounded fuzz tiers over the relay's inputs (issue 11): operator frames, device frames, HTTP.

Tier 1 (in memory): the decoders of both protocols take any frame hypothesis makes and either
return a checked message or raise their protocol error; nothing else escapes.

Tier 2 (a relay process): random and nearly-valid frames from a signed-in operator, from a
device and from a stranger, and random HTTP requests with random and duplicated headers; after
each batch the relay still forwards a device's data to a subscriber, it never answers 5xx, and
its log holds no traceback (checked when the module's relay stops). A few hundred cases in
all, seeded (``derandomize``), so the tier is the same in every CI run and takes seconds.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pyros.cloud import device_protocol as dp
from pyros.cloud import rosbridge as rb
from tests.cloud.relay_support import (
    RelayProcess,
    open_device,
    open_operator,
    recv_until,
    relay_process,
)
from tests.support import limit

pytestmark = pytest.mark.cloud

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

OPERATOR_OPS = sorted(rb.OPERATOR_OPS | rb.UNSUPPORTED_OPS | {"bogus", ""})
DEVICE_OPS = sorted(dp.DEVICE_OPS | {"welcome", "ack", "bogus"})
NAMES = st.one_of(
    st.sampled_from(
        ["/robot1/data", "/robot1/turtle1/../../secret", "/robot1", "/", "", "robot1/data"]
    ),
    st.text(max_size=30),
)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e400, -0.0]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "id",
    "topic",
    "type",
    "msg",
    "service",
    "args",
    "throttle_rate",
    "queue_length",
    "compression",
    "fragment_size",
    "timeout",
    "level",
    "token",
    "seq",
    "session",
    "device",
    "topics",
    "services",
    "commands",
    "dropped",
    "values",
    "result",
    "action",
    "action_type",
    "goal",
    "buffered",
]


def messages(ops: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with a (mostly) known op and known field names holding any JSON value."""
    return st.fixed_dictionaries(
        {"op": st.one_of(st.sampled_from(ops), VALUES)},
        optional={
            name: st.one_of(NAMES, VALUES) if name in ("topic", "service") else VALUES
            for name in FIELDS
        },
    )


def frames(ops: list[str]) -> st.SearchStrategy[str | bytes]:
    return st.one_of(
        messages(ops).map(lambda m: json.dumps(m, allow_nan=True)),
        VALUES.map(lambda v: json.dumps(v, allow_nan=True)),
        st.text(max_size=60),
        st.binary(max_size=60),
        st.sampled_from(['[1, 7, ["info"], {}]', "{" * 2000, "[" * 3000 + "]" * 3000]),
    )


# --- tier 1: in memory ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None, derandomize=True)
@given(frames(OPERATOR_OPS))
def test_operator_decoder_takes_anything(frame: str | bytes) -> None:
    try:
        message = rb.decode_operator(frame)
    except rb.OperatorProtocolError as exc:
        assert str(exc)
        return
    assert message["op"] in rb.OPERATOR_OPS
    json.dumps(message)  # what the relay keeps is plain data


@settings(max_examples=300, deadline=None, derandomize=True)
@given(frames(DEVICE_OPS))
def test_device_decoder_takes_anything(frame: str | bytes) -> None:
    try:
        message = dp.decode_from_device(frame)
    except dp.DeviceProtocolError as exc:
        assert str(exc)
        return
    assert message["op"] in dp.DEVICE_OPS


# --- tier 2: a relay process ---------------------------------------------------------------


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    home = tmp_path_factory.mktemp("fuzz")
    with relay_process(home, "--auth-timeout", "2", "--auth-failures", "100000") as running:
        yield running


async def _still_serves(port: int) -> None:
    """A device's message still reaches a subscriber (fresh connections on both sides)."""
    device, _ = await open_device(port, "robot2", session="fuzz-check")
    operator = await open_operator(port)
    await operator.send(json.dumps({"op": "subscribe", "topic": "/robot2/data"}))
    await asyncio.sleep(0.05)
    seq = 1 + int(asyncio.get_running_loop().time() * 1000)  # new every call, increasing
    await device.send(dp.encode(dp.publish("/data", {"data": "alive"}, seq)))
    got = await recv_until(
        operator, lambda m: m.get("op") == "publish" and m["msg"] == {"data": "alive"}
    )
    assert got["topic"] == "/robot2/data"
    await device.close()
    await operator.close()


async def _send_all(ws: Any, batch: list[str | bytes]) -> None:
    try:
        for frame in batch:
            await ws.send(frame)
        await asyncio.sleep(0.05)
    except ConnectionClosed:
        pass  # the relay may close a peer that broke the rules; it must keep serving others
    await ws.close()


@FUZZ
@given(st.lists(frames(OPERATOR_OPS), min_size=1, max_size=15))
def test_operator_frames_never_hurt_the_relay(relay: RelayProcess, batch: list[Any]) -> None:
    async def scenario() -> None:
        await _send_all(await open_operator(relay.port), batch)
        await _still_serves(relay.port)

    asyncio.run(asyncio.wait_for(scenario(), limit(20)))


@FUZZ
@given(st.lists(frames(DEVICE_OPS), min_size=1, max_size=15))
def test_device_frames_never_hurt_the_relay(relay: RelayProcess, batch: list[Any]) -> None:
    async def scenario() -> None:
        device, _ = await open_device(relay.port, "robot1", commands=("/cmd",))
        await _send_all(device, batch)
        await _still_serves(relay.port)

    asyncio.run(asyncio.wait_for(scenario(), limit(20)))


@FUZZ
@given(st.lists(frames(OPERATOR_OPS), min_size=1, max_size=5))
def test_a_strangers_frames_never_hurt_the_relay(relay: RelayProcess, batch: list[Any]) -> None:
    async def scenario() -> None:
        await _send_all(await open_operator(relay.port, token=None), batch)
        await _still_serves(relay.port)

    asyncio.run(asyncio.wait_for(scenario(), limit(20)))


HEADER_NAMES = st.sampled_from(
    ["Authorization", "X-Pyros-Device", "Upgrade", "Connection", "Sec-WebSocket-Key", "X-Other"]
)
HEADER_VALUES = st.one_of(
    st.sampled_from(
        ["Bearer op-all", "Bearer robot1-secret", "robot1", "websocket", "Upgrade", "Bearer"]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)
PATHS = st.one_of(
    st.sampled_from(["/", "/device", "/api/devices", "/healthz", "/metrics", "/?token=op-all"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30).map(
        lambda p: "/" + p
    ),
)
UPGRADE = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]


@FUZZ
@given(
    PATHS,
    st.booleans(),
    st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6),
)
def test_http_requests_never_get_a_5xx(
    relay: RelayProcess, path: str, upgrade: bool, headers: list[tuple[str, str]]
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=limit(5))
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in (UPGRADE if upgrade else []) + headers:
            connection.putheader(name, value)
        connection.endheaders()
        status = connection.getresponse().status
    except (http.client.HTTPException, ConnectionError):
        status = 0  # the relay may refuse a malformed request by closing: not a 5xx
    finally:
        connection.close()
    assert status < 500, (path, headers, status)


def test_the_relay_still_serves_after_the_fuzz(relay: RelayProcess) -> None:
    asyncio.run(asyncio.wait_for(_still_serves(relay.port), limit(20)))
    with pytest.raises(InvalidStatus):  # and still refuses strangers at /device
        asyncio.run(open_device(relay.port, "robot1", token="wrong"))
