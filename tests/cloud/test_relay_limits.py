"""Rate limits and the send-queue drop policy over real loopback websockets."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from pyros.cloud import device_protocol as dp
from tests.cloud.relay_support import (
    open_device,
    open_operator,
    recv_json,
    recv_until,
    relay_process,
    run,
)

pytestmark = pytest.mark.cloud


def test_rate_limit_refuses_without_losing_device_messages(tmp_path: Path) -> None:
    with relay_process(tmp_path, "--rate-limit", "20", "--rate-burst", "10") as relay:

        async def scenario() -> None:
            robot, _ = await open_device(relay.port, "robot1", session="s1")  # hello: 1 token
            for seq in range(1, 31):
                await robot.send(dp.encode(dp.publish("/data", {"data": str(seq)}, seq)))
            frames = [m async for m in _frames(robot, 1.0)]
            assert any(m["op"] == "status" and "rate limit" in m["msg"] for m in frames)
            acked = max((m["seq"] for m in frames if m["op"] == "ack"), default=0)
            assert acked <= 12
            await robot.wait_closed()
            assert robot.close_code == 1013  # try again later: nothing after the refusal counts
            # Reconnecting resumes right after the last message the relay accepted.
            await asyncio.sleep(0.5)  # the bucket refills: 20 messages/s
            robot, welcome = await open_device(relay.port, "robot1", session="s1")
            accepted = welcome["resume_after"]  # the last message the relay took
            assert acked <= accepted <= 12
            await robot.send(dp.encode(dp.publish("/data", {"data": "again"}, accepted + 1)))
            assert (await recv_until(robot, lambda m: m["op"] == "ack"))["seq"] == accepted + 1

            operator = await open_operator(relay.port)
            for n in range(30):
                await operator.send(
                    json.dumps({"op": "call_service", "id": n, "service": "/rosapi/nodes"})
                )
            answers = [m async for m in _frames(operator, 0.5)]
            assert any(m["op"] == "status" and "rate limit" in m["msg"] for m in answers)
            assert 5 <= sum(m["op"] == "service_response" for m in answers) < 30
            await robot.close()
            await operator.close()

        run(scenario(), 60)


async def _frames(ws: Any, quiet: float) -> Any:
    """Yield frames until none arrives for ``quiet`` seconds."""
    while True:
        try:
            yield await recv_json(ws, quiet)
        except TimeoutError:
            return


def test_a_slow_operator_loses_its_oldest_messages_and_slows_no_one(tmp_path: Path) -> None:
    # 3000 x 8 kB of incompressible text (websockets compresses): more than the loopback
    # socket buffers hold.
    count, payload = 3000, base64.b64encode(os.urandom(6000)).decode()
    with relay_process(tmp_path, "--send-queue", "200") as relay:

        async def scenario() -> None:
            robot, _ = await open_device(relay.port, "robot1")
            fast = await open_operator(relay.port)
            slow = await connect(
                f"ws://127.0.0.1:{relay.port}/?token=op-all", max_queue=1, max_size=None
            )
            for operator in (fast, slow):
                await operator.send(json.dumps({"op": "subscribe", "topic": "/robot1/data"}))
                await operator.send(json.dumps({"op": "set_level", "level": "warning"}))
            await fast.send(json.dumps({"op": "call_service", "id": 0, "service": "/rosapi/nodes"}))
            await recv_json(fast)
            await asyncio.sleep(0.2)  # the slow operator's subscribe is handled too

            async def fast_reader() -> list[int]:
                seen: list[int] = []
                while len(seen) < count:
                    message = await recv_json(fast)
                    if message["op"] == "publish":
                        seen.append(message["msg"]["seq"])
                return seen

            reading = asyncio.create_task(fast_reader())
            loop = asyncio.get_running_loop()
            began = loop.time()
            for seq in range(1, count + 1):
                msg = {"seq": seq, "data": payload}
                await robot.send(dp.encode(dp.publish("/data", msg, seq)))
                if seq % 20 == 0:
                    await asyncio.sleep(0.002)  # about 10000 messages/s, under the rate limit
            await recv_until(robot, lambda m: m == {"op": "ack", "seq": count})
            device_seconds = loop.time() - began
            assert await reading == list(range(1, count + 1))  # the fast one lost nothing
            # The slow operator now reads: a warning with the count, and fewer messages.
            received, warnings = 0, []
            async for message in _frames(slow, 2.5):  # longer than the warning interval
                if message["op"] == "publish":
                    received += 1
                else:
                    warnings.append(message)
            dropped = sum(int(w["msg"].split()[1]) for w in warnings)
            assert warnings and all(w["level"] == "warning" for w in warnings), warnings
            assert dropped > 0 and received + dropped >= count - 1, (received, dropped, warnings)
            assert received < count
            print(f"\ndevice done in {device_seconds:.2f} s; slow got {received}, lost {dropped}")
            for ws in (robot, fast, slow):
                await ws.close()

        run(scenario(), 60)
