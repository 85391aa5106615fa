"""The connector against a scripted relay on real loopback websockets and a real mock node.

The relay here is a few lines of ``websockets`` that record what the connector sends and send
what a test tells them to, frame by frame, using :mod:`pyros.cloud.device_protocol`: it checks
the connector's half of the contract exactly (hello contents, seq numbers, resends after a
welcome, refusals), independently of the real relay. End-to-end tests with the real relay and
roslibpy operators are in ``test_connector_e2e.py``.
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

import pyros
import pyros.asyncio
from pyros.cloud import device_protocol
from pyros.cloud.connector import Backoff, Connector, ConnectorError
from tests.support import limit

pytestmark = pytest.mark.cloud


class ScriptedRelay:
    """A relay that records the device's frames and sends what the test says."""

    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.websocket: ServerConnection | None = None
        self.connected = asyncio.Event()
        self.handshakes: list[Headers] = []
        self.close_codes: list[int | None] = []
        self.server: Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> None:
        self.server = await serve(
            self._handle, "127.0.0.1", port, process_request=self._check, close_timeout=1
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes.append(request.headers)
        if self.refuse is not None:
            return connection.respond(http.HTTPStatus(self.refuse), "refused\n")
        return None

    async def _handle(self, websocket: ServerConnection) -> None:
        self.websocket = websocket
        self.connected.set()
        try:
            async for frame in websocket:
                await self.frames.put(device_protocol.decode_from_device(frame))
        except ConnectionClosed:
            pass  # the tests abort connections on purpose
        self.close_codes.append(websocket.close_code)

    async def expect(self, op: str, timeout: float = 5.0) -> dict[str, Any]:
        """Return the next frame with this op (others before it are skipped)."""
        while True:
            frame = await asyncio.wait_for(self.frames.get(), limit(timeout))
            if frame["op"] == op:
                return frame

    async def send(self, message: dict[str, Any]) -> None:
        assert self.websocket is not None
        await self.websocket.send(device_protocol.encode(message))


Scenario = Callable[[pyros.asyncio.Client, ScriptedRelay], Awaitable[None]]


def run(coroutine: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, limit(60)))  # type: ignore[arg-type]


async def with_connector(
    scenario: Callable[[pyros.asyncio.Client, ScriptedRelay, Connector], Awaitable[None]],
    *,
    refuse: int | None = None,
    **options: Any,
) -> None:
    relay = ScriptedRelay(refuse)
    await relay.start()
    async with await pyros.asyncio.spawn("mock", topics=["*"], services=["*"]) as robot:
        options.setdefault("topics", ["/turtle1/pose"])
        options.setdefault("poll_interval", 0.1)
        options.setdefault("backoff", Backoff(initial=0.05, maximum=0.2))
        connector = Connector(robot, relay=relay.url, device="robot1", token="secret", **options)
        task = asyncio.ensure_future(connector.run())
        try:
            await scenario(robot, relay, connector)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await relay.stop()


def test_hello_then_forwarded_data_in_seq_order_after_the_welcome() -> None:
    async def scenario(robot: pyros.asyncio.Client, relay: ScriptedRelay, c: Connector) -> None:
        hello = await relay.expect("hello")
        assert relay.handshakes[0]["Authorization"] == "Bearer secret"
        assert relay.handshakes[0]["X-Pyros-Device"] == "robot1"
        definitions = hello.pop("definitions")
        assert "float32 theta" in definitions["turtlesim/Pose"]
        assert "Vector3 linear" in definitions["geometry_msgs/Twist"]
        assert "float64 x" in definitions["geometry_msgs/Vector3"]  # nested types too
        assert hello == {
            "op": "hello",
            "device": "robot1",
            "session": c.session,
            "topics": {"/turtle1/pose": "turtlesim/Pose"},
            "services": {"/reset": "std_srvs/Empty", "/fail": "std_srvs/Trigger"},
            "commands": ["/turtle1/cmd_vel"],
            "dropped": {},
            "command_topics": {"/turtle1/cmd_vel": "geometry_msgs/Twist"},
            "actions": {},
            "params": [],
            "latest": [],
            "version": 1,
        }
        await asyncio.sleep(0.2)
        assert relay.frames.empty(), "data was sent before the welcome"
        await relay.send(device_protocol.welcome("robot1", 0))
        seqs = []
        for _ in range(5):
            frame = await relay.expect("publish")
            assert frame["topic"] == "/turtle1/pose" and {"x", "y", "theta"} <= set(frame["msg"])
            seqs.append(frame["seq"])
        assert seqs == list(range(1, 6))  # the pose messages buffered before the welcome too
        await c.wait_online(limit(1))

        # A topic that appears later is forwarded after a new hello.
        await robot.publish("/extra/chat", {"data": "hi"}, type="std_msgs/String")
        hello = await relay.expect("hello")
        assert hello["topics"] == {
            "/turtle1/pose": "turtlesim/Pose",
            "/extra/chat": "std_msgs/String",
        }
        await robot.publish("/extra/chat", {"data": "second"})
        frame = await relay.expect("publish")
        while frame["topic"] != "/extra/chat":
            frame = await relay.expect("publish")
        assert frame["msg"] == {"data": "second"}

    run(
        with_connector(
            scenario,
            topics=["/turtle1/pose", "/extra/*"],
            commands=["/turtle1/cmd_vel"],
            services=["/reset", "/fail"],
        )
    )


def test_commands_and_service_calls_only_on_their_globs() -> None:
    async def scenario(robot: pyros.asyncio.Client, relay: ScriptedRelay, c: Connector) -> None:
        await relay.expect("hello")
        await relay.send(device_protocol.welcome("robot1", 0))
        twist = {"linear": {"x": 2.0}, "angular": {"z": 0.0}}
        await relay.send(device_protocol.command("/turtle1/cmd_vel", twist, "p0"))
        async with await robot.subscribe("/turtle1/pose", queue_size=1) as poses:
            for _ in range(100):
                if (await poses.get(timeout=limit(2)))["linear_velocity"] == 2.0:
                    break
            else:
                pytest.fail("the command did not reach the turtle")

        await relay.send(device_protocol.command("/turtle1/teleport", {"x": 1}, "p1"))
        status = await relay.expect("status")
        assert status["id"] == "p1" and status["level"] == "error"
        assert "/turtle1/teleport is not a command topic of robot1" in status["msg"]

        await relay.send(device_protocol.command("/turtle1/cmd_vel", {"linear": {"x": "f"}}, "p2"))
        status = await relay.expect("status")
        assert status["id"] == "p2" and "linear.x" in status["msg"]

        await relay.send(device_protocol.call_service("c1", "/reset"))
        assert await relay.expect("service_response") == device_protocol.service_response(
            "c1", {}, True
        )
        await relay.send(device_protocol.call_service("c2", "/set_flag", {"data": True}))
        response = await relay.expect("service_response")
        assert response["id"] == "c2" and response["result"] is False
        assert "/set_flag is not callable on robot1" in response["values"]
        await relay.send(device_protocol.call_service("c3", "/fail"))
        response = await relay.expect("service_response")
        assert response["id"] == "c3" and response["result"] is False
        assert "ServiceError" in response["values"]

        assert relay.websocket is not None
        await relay.websocket.send("{not json")
        status = await relay.expect("status")
        assert status["level"] == "error" and "bad JSON" in status["msg"]
        await relay.send({"op": "launch_missiles", "id": "x9"})
        status = await relay.expect("status")
        assert status["id"] == "x9" and "unknown op" in status["msg"]
        assert c.online, "a bad frame closed the connection"

    run(
        with_connector(
            scenario,
            commands=["/turtle1/cmd_vel"],
            services=["/reset", "/fail"],
        )
    )


def test_reconnect_resends_what_the_relay_did_not_accept_in_order() -> None:
    async def scenario(robot: pyros.asyncio.Client, relay: ScriptedRelay, c: Connector) -> None:
        hello = await relay.expect("hello")
        await relay.send(device_protocol.welcome("robot1", 0))
        first = [(await relay.expect("publish"))["seq"] for _ in range(10)]
        assert first == list(range(1, 11))
        await relay.send(device_protocol.ack(6))
        await asyncio.sleep(0.05)
        assert relay.websocket is not None
        relay.connected.clear()
        relay.websocket.transport.abort()  # like a dying network: no close frame
        await asyncio.wait_for(relay.connected.wait(), limit(5))
        again = await relay.expect("hello")
        assert again["session"] == hello["session"] and again["dropped"] == {}
        while not relay.frames.empty():
            relay.frames.get_nowait()
        await relay.send(device_protocol.welcome("robot1", 8))  # it had 7 and 8 unacked
        after = [(await relay.expect("publish"))["seq"] for _ in range(10)]
        assert after == list(range(9, 19))
        assert c.connections == 2

    run(with_connector(scenario, topics=["/turtle1/pose"]))


def test_a_full_buffer_reports_exact_drop_counts_in_the_next_hello() -> None:
    async def scenario(robot: pyros.asyncio.Client, relay: ScriptedRelay, c: Connector) -> None:
        await relay.expect("hello")  # no welcome: everything stays buffered
        for n in range(1, 31):
            await robot.publish("/count", {"data": n})
        await asyncio.sleep(0.3)
        assert c.buffer.seqs() == list(range(21, 31))
        assert relay.websocket is not None
        relay.websocket.transport.abort()
        hello = await relay.expect("hello")
        assert hello["dropped"] == {"/count": 20}
        await relay.send(device_protocol.welcome("robot1", 0))
        data = [(await relay.expect("publish"))["msg"]["data"] for _ in range(10)]
        assert data == list(range(21, 31))

    async def prepare(robot: pyros.asyncio.Client, relay: ScriptedRelay, c: Connector) -> None:
        await scenario(robot, relay, c)

    async def main() -> None:
        relay = ScriptedRelay()
        await relay.start()
        async with await pyros.asyncio.spawn("mock", topics=["*"], rate=0) as robot:
            await robot.publish("/count", {"data": 0}, type="std_msgs/Int64")  # make it exist
            connector = Connector(
                robot, relay=relay.url, device="robot1", token="t", topics=["/count"], buffer=10
            )
            task = asyncio.ensure_future(connector.run())
            try:
                await scenario(robot, relay, connector)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await relay.stop()

    run(main())


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_fatal(status: int) -> None:
    async def scenario(robot: pyros.asyncio.Client, relay: ScriptedRelay, c: Connector) -> None:
        with pytest.raises(ConnectorError, match=f"HTTP {status}"):
            await asyncio.wait_for(c.run(), limit(5))

    async def main() -> None:
        relay = ScriptedRelay(refuse=status)
        await relay.start()
        async with await pyros.asyncio.spawn("mock", topics=["*"]) as robot:
            connector = Connector(robot, relay=relay.url, device="robot1", token="bad")
            await scenario(robot, relay, connector)
        await relay.stop()

    run(main())


def test_being_replaced_by_another_connection_is_fatal() -> None:
    async def main() -> None:
        relay = ScriptedRelay()
        await relay.start()
        async with await pyros.asyncio.spawn("mock", topics=["*"]) as robot:
            connector = Connector(robot, relay=relay.url, device="robot1", token="t")
            task = asyncio.ensure_future(connector.run())
            await relay.expect("hello")
            assert relay.websocket is not None
            await relay.websocket.close(device_protocol.REPLACED_CLOSE_CODE, "replaced")
            with pytest.raises(ConnectorError, match="took over device 'robot1'"):
                await asyncio.wait_for(task, limit(5))
        await relay.stop()

    run(main())


def test_a_dead_node_ends_the_connector() -> None:
    async def main() -> None:
        relay = ScriptedRelay()
        await relay.start()
        robot = await pyros.asyncio.spawn("mock", topics=["*"])
        try:
            connector = Connector(robot, relay=relay.url, device="robot1", token="t", topics=["*"])
            task = asyncio.ensure_future(connector.run())
            await relay.expect("hello")
            robot._process.stop()  # type: ignore[union-attr]
            with pytest.raises(pyros.NodeDiedError):
                await asyncio.wait_for(task, limit(10))
        finally:
            await robot.close()
        await relay.stop()

    run(main())


def test_stopping_says_going_away() -> None:
    async def main() -> None:
        relay = ScriptedRelay()
        await relay.start()
        async with await pyros.asyncio.spawn("mock", topics=["*"]) as robot:
            connector = Connector(robot, relay=relay.url, device="robot1", token="t")
            task = asyncio.ensure_future(connector.run())
            await relay.expect("hello")
            await relay.send(device_protocol.welcome("robot1", 0))
            await connector.wait_online(limit(5))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            for _ in range(100):
                if relay.close_codes:
                    break
                await asyncio.sleep(0.01)
            assert relay.close_codes == [1001]
        await relay.stop()

    run(main())


def test_an_oversize_message_is_reported_not_forwarded() -> None:
    async def main() -> None:
        relay = ScriptedRelay()
        await relay.start()
        async with await pyros.asyncio.spawn("mock", topics=["*"], turtle=False) as robot:
            await robot.publish("/blob", {"data": "x"}, type="std_msgs/String")
            connector = Connector(
                robot,
                relay=relay.url,
                device="robot1",
                token="t",
                topics=["/blob"],
                max_message_bytes=1000,
                poll_interval=0.1,
            )
            task = asyncio.ensure_future(connector.run())
            try:
                await relay.expect("hello")
                await relay.send(device_protocol.welcome("robot1", 0))
                await connector.wait_online(limit(5))
                await robot.publish("/blob", {"data": "x" * 5000})
                status = await relay.expect("status")
                assert status["level"] == "error" and "above the limit of 1000" in status["msg"]
                await robot.publish("/blob", {"data": "small"})
                frame = await relay.expect("publish")
                assert frame["msg"] == {"data": "small"} and frame["seq"] == 1
                assert relay.websocket is not None
                relay.websocket.transport.abort()
                hello = await relay.expect("hello")
                assert hello["dropped"] == {"/blob": 1}
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await relay.stop()

    run(main())
