"""Many devices in one asyncio process, for the relay load test.

Usage: ``python device_swarm.py PORT FIRST COUNT RATE_HZ SECONDS``. Devices ``dev{i:03d}``
(token ``t-dev{i:03d}``) connect, say hello (one topic, ``/data``), print ``{"ready": COUNT}``,
wait for a ``go`` line on stdin, then each publishes ``{"seq": k, ...}`` at RATE_HZ on an
absolute schedule for SECONDS, waits (bounded) until the relay acked everything, and prints one
JSON summary line: sent, acked, every status message received, elapsed seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from pyros.cloud import device_protocol as dp


class Device:
    def __init__(self, port: int, index: int) -> None:
        self.port = port
        self.id = f"dev{index:03d}"
        self.ws: ClientConnection | None = None
        self.sent = 0
        self.acked = 0
        self.statuses: list[dict[str, Any]] = []
        self.acked_all = asyncio.Event()
        self.finished = False

    async def open(self) -> None:
        self.ws = await connect(
            f"ws://127.0.0.1:{self.port}{dp.DEVICE_PATH}",
            additional_headers=dp.handshake_headers(self.id, f"t-{self.id}"),
            open_timeout=30,
        )
        await self.ws.send(
            dp.encode(dp.hello(self.id, f"load-{self.id}", topics={"/data": "pyros/Sample"}))
        )
        welcome = dp.decode_from_relay(await self.ws.recv())
        assert welcome["op"] == "welcome", welcome

    async def read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            message = dp.decode_from_relay(frame)
            if message["op"] == "ack":
                self.acked = message["seq"]
                if self.finished and self.acked >= self.sent:
                    self.acked_all.set()
            else:
                self.statuses.append(message)

    async def stream(self, start: float, rate: float, seconds: float) -> None:
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        count = int(round(rate * seconds))
        for k in range(1, count + 1):
            delay = start + (k - 1) / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            msg = {"seq": k, "device": self.id, "stamp": time.time(), "payload": "x" * 64}
            await self.ws.send(dp.encode(dp.publish("/data", msg, k)))
            self.sent = k
        self.finished = True
        if self.acked >= self.sent:
            self.acked_all.set()


async def main(port: int, first: int, count: int, rate: float, seconds: float) -> None:
    devices = [Device(port, index) for index in range(first, first + count)]
    await asyncio.gather(*(device.open() for device in devices))
    readers = [asyncio.create_task(device.read()) for device in devices]
    print(json.dumps({"ready": count}), flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    assert line.strip() == "go", line
    start = loop.time() + 0.2
    began = time.monotonic()
    await asyncio.gather(*(device.stream(start, rate, seconds) for device in devices))
    streamed = time.monotonic() - began
    try:
        await asyncio.wait_for(asyncio.gather(*(device.acked_all.wait() for device in devices)), 15)
    except TimeoutError:
        pass  # reported below: acked < sent
    summary = {
        "sent": sum(device.sent for device in devices),
        "acked": sum(device.acked for device in devices),
        "unacked_devices": [d.id for d in devices if d.acked < d.sent],
        "statuses": [s for device in devices for s in device.statuses],
        "elapsed": streamed,
    }
    await asyncio.gather(*(device.ws.close() for device in devices if device.ws is not None))
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    port, first, count = (int(arg) for arg in sys.argv[1:4])
    asyncio.run(main(port, first, count, float(sys.argv[4]), float(sys.argv[5])))
