"""Faults: the server SIGKILLed mid-stream and restarted, an unreachable URL, a refused token, a
server that answers garbage. Real processes throughout: rosbridge-server-rs, the rclpy peer,
``pyros relay`` for the token check, and pyros node processes through ``pyros.spawn``.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

import pyros
from pyros.exceptions import ConnectionLostError, PyrosError, SpawnError
from pyros_ros.rosbridge import RosbridgeBackend
from tests.cloud.relay_support import relay_process
from tests.rosbridge_server import RosbridgeServer
from tests.support import free_port, limit


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + limit(timeout)
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def test_server_killed_mid_stream_and_restarted(own_server: RosbridgeServer) -> None:
    bridge = RosbridgeBackend("pyros_test", url=own_server.url)
    bridge.start()
    events: list[dict[str, Any]] = []
    bridge.events = events.append
    try:
        received: queue.Queue[dict[str, Any]] = queue.Queue()
        bridge.subscribe("/chatter", "std_msgs/String", received.put)
        bridge.publish("/cmd", "std_msgs/String", {"data": "before"})
        assert received.get(timeout=limit(10))["data"].startswith("hello")

        outcome: list[BaseException | dict[str, Any]] = []

        def slow_call() -> None:
            try:
                outcome.append(bridge.call("/slow", "std_srvs/Trigger", {}, 30.0))
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                outcome.append(exc)

        caller = threading.Thread(target=slow_call)
        caller.start()
        time.sleep(0.3)  # the call is in flight at the server
        own_server.kill()
        caller.join(limit(5))
        assert not caller.is_alive(), "the call in flight hung after the server died"
        assert isinstance(outcome[0], ConnectionLostError), outcome
        assert wait_for(lambda: any(e["event"] == "disconnected" for e in events))
        assert bridge.connection_info()["connected"] is False
        with pytest.raises(ConnectionLostError, match="reconnecting"):
            bridge.publish("/cmd", "std_msgs/String", {"data": "while down"})

        own_server.restart()
        assert wait_for(lambda: any(e["event"] == "reconnected" for e in events), 20)
        reconnected = next(e for e in events if e["event"] == "reconnected")
        assert reconnected["resubscribed"] == ["/chatter"]
        assert reconnected["down_for"] > 0
        while not received.empty():
            received.get()
        # The subscription resumes by itself, and the advertisement was replayed too.
        assert received.get(timeout=limit(20))["data"].startswith("hello")
        bridge.publish("/cmd", "std_msgs/String", {"data": "after"})
        assert bridge.call("/set_flag", "std_srvs/SetBool", {"data": True}, 10.0)["success"]
        info = bridge.connection_info()
        assert info["connected"] and info["connects"] == 2 and info["disconnects"] == 1
    finally:
        bridge.stop()


def test_spawned_node_survives_a_server_restart(own_server: RosbridgeServer) -> None:
    with pyros.spawn(
        "rosbridge", url=own_server.url, topics=["/chatter", "/cmd"], services=["/set_flag"]
    ) as client:
        events: list[dict[str, Any]] = []
        client.on_event(events.append)
        client.publish("/cmd", {"data": "x"}, type="std_msgs/String")
        with client.subscribe("/chatter") as chatter:
            assert chatter.get(timeout=limit(10))["data"].startswith("hello")
            own_server.kill()
            assert wait_for(lambda: any(e["event"] == "disconnected" for e in events))
            assert client.info()["connection"]["connected"] is False
            time.sleep(0.2)  # anything sent before the kill has arrived
            cut = _number(chatter.latest())  # the newest message before the server died
            own_server.restart()
            assert wait_for(lambda: any(e["event"] == "reconnected" for e in events), 20)
            reconnected = next(e for e in events if e["event"] == "reconnected")
            assert reconnected["backend"] == "rosbridge"
            assert reconnected["resubscribed"] == ["/chatter"]
            # The subscription resumes by itself: a message newer than any before the kill.
            while _number(chatter.get(timeout=limit(20))) <= cut:
                pass
        assert wait_for(lambda: _publishes(client), 20)
        info = client.info()["connection"]
        assert info["connected"] and info["connects"] == 2 and info["disconnects"] == 1


def _number(message: dict[str, Any] | None) -> int:
    assert message is not None
    return int(message["data"].split()[1])  # "hello N"


def _publishes(client: Any) -> bool:
    try:
        client.publish("/cmd", {"data": "y"}, type="std_msgs/String")
        return True
    except ConnectionLostError:
        return False


def test_unreachable_url_is_a_spawn_error_within_ready_timeout() -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(SpawnError, match=f"cannot reach the rosbridge server at {url}"):
        pyros.spawn("rosbridge", url=url, ready_timeout=limit(10))
    assert time.monotonic() - started < limit(10)


def test_bad_url_is_a_spawn_error() -> None:
    with pytest.raises(SpawnError, match="ws:// or wss://"):
        pyros.spawn("rosbridge", url="http://127.0.0.1:1/")


def test_refused_token_is_a_spawn_error_saying_so(tmp_path: Path) -> None:
    with relay_process(tmp_path) as relay:
        with pytest.raises(SpawnError, match="refused the token"):
            pyros.spawn("rosbridge", url=relay.url, token="wrong-token")
        with pyros.spawn("rosbridge", url=relay.url, token="op-all") as client:
            assert client.info()["backend"] == "rosbridge"


@pytest.fixture
def garbage_server() -> Iterator[str]:
    """A websocket server that answers every frame with garbage, and calls with a status error."""
    loop = asyncio.new_event_loop()
    port = free_port()
    ready = threading.Event()
    stop: asyncio.Future[None] | None = None

    async def handler(ws: ServerConnection) -> None:
        async for frame in ws:
            message = json.loads(frame) if isinstance(frame, str) else {}
            if message.get("service") == "/pyros_rosbridge/barrier":
                await ws.send(
                    json.dumps(
                        {
                            "op": "service_response",
                            "id": message["id"],
                            "service": message["service"],
                            "result": False,
                            "values": "no such service",
                        }
                    )
                )
            elif message.get("op") == "call_service":
                await ws.send("}}garbage{{")
                await ws.send(
                    json.dumps(
                        {
                            "op": "status",
                            "level": "error",
                            "id": message["id"],
                            "msg": "the server is broken",
                        }
                    )
                )
            else:
                await ws.send(b"\xff\x00 not cbor")

    async def main() -> None:
        nonlocal stop
        stop = loop.create_future()
        async with serve(handler, "127.0.0.1", port):
            ready.set()
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(5)
    yield f"ws://127.0.0.1:{port}"
    loop.call_soon_threadsafe(lambda: stop.set_result(None) if stop else None)
    thread.join(5)
    loop.close()


def test_garbage_and_status_errors_are_pyros_errors_and_the_node_serves_on(
    garbage_server: str,
) -> None:
    with pyros.spawn("rosbridge", url=garbage_server, services=["/x"], topics=["/t"]) as client:
        # No rosapi to find the type: the node calls with type "" and the status error is it.
        with pytest.raises(PyrosError, match="the server is broken"):
            client.call("/x", {}, timeout=2.0)
        client.publish("/t", {"data": "x"}, type="std_msgs/String")  # answered with garbage
        assert client.info()["backend"] == "rosbridge"
    bridge = RosbridgeBackend("pyros_test", url=garbage_server)
    bridge.start()
    try:
        with pytest.raises(PyrosError, match="the server is broken"):
            bridge.call("/x", "std_srvs/Trigger", {}, 2.0)
        assert wait_for(lambda: any("undecodable" in e for e in bridge.connection_info()["errors"]))
        with pytest.raises(PyrosError, match="the server is broken"):
            bridge.call("/x", "std_srvs/Trigger", {}, 2.0)
    finally:
        bridge.stop()


def test_a_spawned_node_works_by_name_without_rosapi(bare_server: RosbridgeServer) -> None:
    """resolves_types: listing fails (no rosapi), so the node subscribes and calls with type
    "" and the server finds the types in the graph."""
    with pyros.spawn(
        "rosbridge", url=bare_server.url, topics=["/out", "/in", "/chatter"], services=["/set_flag"]
    ) as client:
        with pytest.raises(PyrosError, match="offers no rosapi"):
            client.topics()
        assert client.call("/set_flag", {"data": True}, timeout=limit(10))["success"] is True
        with client.subscribe("/chatter") as chatter:
            assert chatter.get(timeout=limit(10))["data"].startswith("hello")
        with client.subscribe("/out") as out:
            deadline = time.monotonic() + limit(20)
            while time.monotonic() < deadline:
                client.publish("/in", {"data": "through the node"}, type="std_msgs/String")
                try:
                    if out.get(timeout=0.2)["data"] == "through the node":
                        return
                except pyros.TimeoutError:
                    continue
        raise AssertionError("no echo through the node")
