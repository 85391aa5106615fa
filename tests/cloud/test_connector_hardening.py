"""Issue 11's connector defects: backoff that never reset, and a restart that lost the buffer."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

import pyros.asyncio
from pyros.cloud import device_protocol as dp
from pyros.cloud.connector import Backoff, Connector
from pyros.cloud.connector_disk import BufferDirError, DiskSendBuffer
from tests.cloud.connector_support import ConnectorProcess, device
from tests.cloud.relay_support import DEVICE_TOKENS, RelayProcess, wait_for
from tests.support import free_port, limit

pytestmark = pytest.mark.cloud


def test_backoff_resets_after_a_stable_connection() -> None:
    """A relay that drops every connection after 1.5 s (a relay restarting again and again) is
    rejoined after the first, short delay each time, not after ever longer ones."""
    opened: list[float] = []
    closed: list[float] = []

    async def drain(ws: ServerConnection) -> None:
        async for frame in ws:
            message = dp.decode_from_device(frame)
            if message["op"] == "publish":
                await ws.send(dp.encode(dp.ack(message["seq"])))

    async def handle(ws: ServerConnection) -> None:
        opened.append(time.monotonic())
        hello = dp.decode_from_device(await ws.recv())
        await ws.send(dp.encode(dp.welcome(hello["device"], 0)))
        try:  # read (and ack) what comes for 1.5 s
            await asyncio.wait_for(drain(ws), 1.5)
        except TimeoutError:
            pass
        closed.append(time.monotonic())
        await ws.close(1012, "restarting")

    async def scenario() -> None:
        async with serve(handle, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            async with await pyros.asyncio.spawn("mock", topics=["*"]) as robot:
                connector = Connector(
                    robot,
                    relay=f"ws://127.0.0.1:{port}",
                    device="robot1",
                    token="t",
                    topics=["/turtle1/pose"],
                    backoff=Backoff(initial=0.3, maximum=5.0, random=lambda: 0.999),
                )
                task = asyncio.ensure_future(connector.run())
                try:
                    while len(opened) < 6:
                        await asyncio.sleep(0.05)
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(scenario(), limit(60)))
    gaps = [later - earlier for earlier, later in zip(closed, opened[1:], strict=False)]
    # Without the reset the ceilings would be 0.3, 0.6, 1.2, 2.4, 4.8 s.
    assert len(gaps) >= 5 and max(gaps) < 0.3 + limit(0.9), gaps


def test_disk_buffer_keeps_session_seqs_and_drop_counts_across_a_crash(tmp_path: Path) -> None:
    first = DiskSendBuffer(tmp_path, "robot1", 4)
    for n in range(6):  # capacity 4: seqs 1 and 2 dropped (never sent: certainly lost)
        first.add("/a" if n % 2 else "/b", {"n": n})
    first.welcome(0)
    sent = [first.next_to_send() for _ in range(2)]
    assert [entry.seq for entry in sent if entry] == [3, 4]
    first.ack(3)
    # The process dies here: no close(), nothing flushed by hand.
    second = DiskSendBuffer(tmp_path, "robot1", 4)
    assert second.session == first.session
    assert second.seqs() == [4, 5, 6] and second.last_seq == 6 and second.acked == 3
    assert second.take_dropped() == {"/b": 1, "/a": 1} and second.dropped_total == 2
    assert second.add("/a", {"n": 6}) == 7
    second.welcome(5)  # the relay had accepted 4 and 5 before the crash
    assert second.seqs() == [6, 7]
    second.close()
    third = DiskSendBuffer(tmp_path, "robot1", 4)
    assert third.seqs() == [6, 7] and third.take_dropped() == {}
    third.close()
    first.close()
    with pytest.raises(BufferDirError, match="robot1"):
        DiskSendBuffer(tmp_path / "robot1.sqlite3", "robot1", 4)  # a file, not a folder


def test_a_killed_connector_with_buffer_dir_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    buffer_dir = tmp_path / "buffer"
    args = [
        "--relay",
        f"ws://127.0.0.1:{port}",
        "--device",
        "robot1",
        "--token",
        DEVICE_TOKENS["robot1"],
        "--topics",
        "/turtle1/pose",
        "--buffer-dir",
        str(buffer_dir),
        "--poll-interval",
        "0.2",
    ]
    database = buffer_dir / "robot1.sqlite3"

    def buffered() -> tuple[int, int]:
        try:
            with sqlite3.connect(database) as db:
                count, last = db.execute("SELECT COUNT(*), MAX(seq) FROM messages").fetchone()
        except sqlite3.OperationalError:  # created, no table yet
            return 0, 0
        return int(count), int(last or 0)

    offline = ConnectorProcess(args, tmp_path / "connector1.log")
    try:
        wait_for(lambda: database.exists() and buffered()[0] >= 20, timeout=30.0)
    finally:
        os.kill(offline.process.pid, signal.SIGKILL)
        offline.wait(limit(10))
    count, last = buffered()
    assert count == last >= 20  # every message since seq 1 is on disk

    tokens = tmp_path / "tokens.json"
    tokens.write_text(
        '{"devices": {"robot1": "robot1-secret"}, "operators": {"op-all": {"read": ["*"]}}}'
    )
    relay = RelayProcess(["--port", str(port), "--tokens", str(tokens)])
    online = ConnectorProcess(args, tmp_path / "connector2.log")
    try:
        entry: dict[str, Any] = wait_for(
            lambda: (e := device(relay.port, "robot1")) and e["received"] >= last and e,
            timeout=30.0,
        )
        assert entry["dropped"] == {}
        assert "resuming after seq 0, sending" in online.output()
    finally:
        online.stop()
        relay.stop()
    assert "Traceback" not in relay.stderr
