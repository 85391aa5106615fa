"""The asyncio client against real mock-backend node processes: same names, with await."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

import pyros
import pyros.asyncio
from tests.support import RUNTIME_DIR, limit

pytestmark = pytest.mark.process


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coroutine, limit(30)))


def test_same_names_as_the_sync_client() -> None:
    public = {n for n in dir(pyros.Client) if not n.startswith("_")}
    assert public <= {n for n in dir(pyros.asyncio.Client) if not n.startswith("_")}
    sub_public = {n for n in dir(pyros.Subscription) if not n.startswith("_")}
    assert sub_public <= {n for n in dir(pyros.asyncio.Subscription) if not n.startswith("_")}


def test_publish_subscribe_call_params() -> None:
    async def scenario() -> None:
        async with await pyros.asyncio.spawn(
            "mock", topics=["*"], services=["*"], params=["*"]
        ) as robot:
            assert (await robot.topics())["/turtle1/pose"] == "turtlesim/Pose"
            async with await robot.subscribe("/async_chat") as sub:
                await robot.publish("/async_chat", {"data": "a"}, type="std_msgs/String")
                await robot.publish("/async_chat", {"data": "b"})
                assert (await sub.get(timeout=limit(2)))["data"] == "a"
                assert (await sub.get(timeout=limit(2)))["data"] == "b"
            assert (await robot.call("/set_flag", {"data": True}))["success"] is True
            await robot.set_param("/async/x", [1, 2])
            assert await robot.get_param("/async/x") == [1, 2]
            with pytest.raises(KeyError):
                await robot.get_param("/async/unset")
            with pytest.raises(pyros.MessageError) as info:
                await robot.publish("/turtle1/cmd_vel", {"linear": {"x": "no"}})
            assert info.value.field == "linear.x"
            with pytest.raises(pyros.ServiceError):
                await robot.call("/fail")

    run(scenario())


def test_many_requests_in_flight_at_once() -> None:
    async def scenario() -> None:
        async with await pyros.asyncio.spawn("mock", services=["*"], params=["*"]) as robot:
            await asyncio.gather(*(robot.set_param(f"/many/p{i}", i) for i in range(100)))
            values = await asyncio.gather(*(robot.get_param(f"/many/p{i}") for i in range(100)))
            assert values == list(range(100))
            replies = await asyncio.gather(
                *(robot.call("/set_flag", {"data": i % 2 == 0}) for i in range(50))
            )
            assert all(reply["success"] for reply in replies)

    run(scenario())


def test_async_for_and_async_callback() -> None:
    async def scenario() -> None:
        async with await pyros.asyncio.spawn("mock", topics=["*"]) as robot:
            poses = []
            async with await robot.subscribe("/turtle1/pose") as sub:
                async for pose in sub:
                    poses.append(pose)
                    if len(poses) == 3:
                        break
            assert {"x", "y", "theta"} <= set(poses[0])
            seen: list[int] = []
            done = asyncio.Event()

            async def on_message(message: dict) -> None:
                await asyncio.sleep(0)
                seen.append(message["data"])
                if len(seen) == 5:
                    done.set()

            async with await robot.subscribe("/async_cb", on_message):
                for i in range(5):
                    await robot.publish("/async_cb", {"data": i}, type="std_msgs/Int32")
                await asyncio.wait_for(done.wait(), limit(2))
            assert seen == [0, 1, 2, 3, 4]

    run(scenario())


def test_node_death_fails_waiting_tasks() -> None:
    async def scenario() -> None:
        robot = await pyros.asyncio.spawn("mock", topics=["*"])
        sub = await robot.subscribe("/never_async")
        waiter = asyncio.ensure_future(sub.get())
        await asyncio.sleep(0.1)
        os.kill(robot.node_pid, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(pyros.NodeDiedError):
            await asyncio.wait_for(waiter, limit(2))
        assert time.monotonic() - started < limit(2)
        with pytest.raises(pyros.NodeDiedError):
            await robot.topics()
        await robot.close()
        assert not (RUNTIME_DIR / robot.name).exists()

    run(scenario())


def test_connect_and_attach() -> None:
    async def scenario() -> None:
        first = await pyros.asyncio.attach("async_shared", topics=["*"], idle_timeout=None)
        second = await pyros.asyncio.attach("async_shared", topics=["*"])
        assert first.node_pid == second.node_pid and not first.owns_node
        with pytest.raises(pyros.SpawnError, match="topics patterns"):
            await pyros.asyncio.attach("async_shared")
        third = await pyros.asyncio.connect("async_shared")
        assert (await third.info())["clients"] >= 1
        for client in (first, second, third):
            await client.close()

    run(scenario())
    from pyros._shared import stop_shared

    stop_shared("async_shared")
