"""Device-to-device broadcast (robot chat) and TLS (wss:// with --certfile/--keyfile)."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pyros.cloud import device_protocol as dp
from tests.cloud.relay_support import (
    no_message,
    open_device,
    recv_json,
    recv_until,
    relay_process,
    roslibpy_operator,
    run,
)
from tests.support import limit

pytestmark = pytest.mark.cloud

CHAT = {"/chat": "std_msgs/String"}


def test_robot_chat_goes_to_the_other_devices_that_subscribe(tmp_path: Path) -> None:
    with relay_process(tmp_path) as relay:

        async def scenario() -> None:
            robot1, _ = await open_device(relay.port, "robot1", topics=CHAT, latest=("/chat",))
            robot2, _ = await open_device(relay.port, "robot2", topics=CHAT)
            robot3, _ = await open_device(relay.port, "robot3", topics=CHAT)  # reads robot1 only
            await robot1.send(dp.encode(dp.publish("/chat", {"data": "early"}, 1)))
            await recv_until(robot1, lambda m: m["op"] == "ack")
            # Everyone's chat: robot2 gets robot1's latest value at once, never its own.
            await robot2.send(dp.encode(dp.subscribe("/*/chat")))
            early = await recv_until(robot2, lambda m: m["op"] == "publish")
            assert early == {
                "op": "publish",
                "topic": "/robot1/chat",
                "msg": {"data": "early"},
                "type": "std_msgs/String",
            }
            await robot3.send(dp.encode(dp.subscribe("/robot2/chat")))
            refused = await recv_json(robot3)
            assert refused["level"] == "error" and "robot2" in refused["msg"]
            await robot3.send(dp.encode(dp.subscribe("/*/chat")))
            assert (await recv_until(robot3, lambda m: m["op"] == "publish"))["msg"] == {
                "data": "early"
            }

            await robot1.send(dp.encode(dp.publish("/chat", {"data": "hello from 1"}, 2)))
            for robot in (robot2, robot3):
                message = await recv_until(robot, lambda m: m["op"] == "publish")
                assert message["topic"] == "/robot1/chat"
                assert message["msg"] == {"data": "hello from 1"}
            await robot2.send(dp.encode(dp.publish("/chat", {"data": "hello from 2"}, 1)))
            # robot1 did not subscribe; robot3 may not read robot2; robot2 never hears itself.
            assert (await recv_until(robot2, lambda m: m["op"] != "publish"))["op"] == "ack"
            assert await no_message(robot3)
            assert not [m for m in await drain(robot1) if m["op"] == "publish"]
            await robot2.send(dp.encode(dp.unsubscribe("/*/chat")))
            await robot1.send(dp.encode(dp.publish("/chat", {"data": "bye"}, 3)))
            await recv_until(robot3, lambda m: m["op"] == "publish")
            assert not [m for m in await drain(robot2) if m["op"] == "publish"]
            for robot in (robot1, robot2, robot3):
                await robot.close()

        run(scenario())


async def drain(ws: Any, seconds: float = 0.3) -> list[dict[str, Any]]:
    """Return every frame that arrives within ``seconds``."""
    frames = []
    while True:
        try:
            frames.append(await recv_json(ws, seconds))
        except TimeoutError:
            return frames


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=limit(30.0),
    )
    return cert, key


def test_tls(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    trust = ssl.create_default_context(cafile=str(cert))
    with relay_process(tmp_path, "--certfile", str(cert), "--keyfile", str(key)) as relay:
        assert relay.url.startswith("wss://")

        async def scenario() -> None:
            robot, _ = await open_device(relay.port, "robot1", scheme="wss", ssl=trust)
            # The real roslibpy over wss:// (twisted does not verify by default).
            with roslibpy_operator(relay.port, secure=True) as operator:
                await asyncio.to_thread(
                    operator.request, "subscribe", topic="/robot1/data", type="std_msgs/String"
                )
                await asyncio.to_thread(operator.request, "rosapi", what="nodes")
                await robot.send(dp.encode(dp.publish("/data", {"data": "secret"}, 1)))
                message = await asyncio.to_thread(operator.next_message)
                assert message["msg"] == {"data": "secret"}
            request = urllib.request.Request(
                f"https://127.0.0.1:{relay.port}/api/devices",
                headers={"Authorization": "Bearer op-all"},
            )
            with urllib.request.urlopen(request, context=trust, timeout=limit(5.0)) as answer:
                assert [d["id"] for d in json.loads(answer.read())] == ["robot1"]
            await robot.close()

        run(scenario())
    # Plain ws:// to a TLS relay fails the handshake; the relay survives (checked above by
    # the clean exit of relay_process).


def test_relay_refuses_a_bad_certificate_path(tmp_path: Path) -> None:
    from tests.cloud.relay_support import RelayProcess

    with pytest.raises(RuntimeError, match="TLS"):
        RelayProcess(["--certfile", str(tmp_path / "missing.pem")])
