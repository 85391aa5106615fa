"""The asyncio client on the ros2 backend: the same operations with ``await``, in one event
loop, against real rclpy peers (rclpy's executors stay in the node process, away from the
loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from ros2_support import RclpyPeer, limit

import pyros
import pyros.asyncio


@pytest.fixture(scope="module")
def peer(module_peers: Callable[..., RclpyPeer]) -> RclpyPeer:
    peer = module_peers("async_robot", "--params", '{"speed": 0.5}')
    peer.request("talk", topic="/async_chatter", rate=50.0)
    peer.request("service", name="/async_flag", kind="setbool")
    peer.request("subscribe", topic="/async_cmd", type="geometry_msgs/msg/Twist")
    peer.request("action", name="/async_fibonacci")
    return peer


async def wait_for_names(robot: pyros.asyncio.Client) -> None:
    async def seen() -> bool:
        services, actions = await asyncio.gather(robot.services(), robot.actions())
        return "/async_flag" in services and "/async_fibonacci" in actions

    for _ in range(int(limit(10) / 0.05)):
        if await seen():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the peer's service and action were not discovered")


def test_every_operation_from_one_event_loop(peer: RclpyPeer) -> None:
    async def main() -> None:
        async with pyros.asyncio.spawn(
            "ros2",
            topics=["*"],
            services=["*"],
            params=["*"],
            actions=["*"],
            ready_timeout=limit(20),
        ) as robot:
            await wait_for_names(robot)
            assert (await robot.topics())["/async_chatter"] == "std_msgs/msg/String"
            async with robot.subscribe("/async_chatter") as chatter:
                first = await chatter.get(timeout=limit(5))
                assert first["data"].startswith("hello ")
            # Several requests in flight at once from one loop.
            replies = await asyncio.gather(
                *(robot.call("/async_flag", {"data": i % 2 == 0}) for i in range(10))
            )
            assert [reply["success"] for reply in replies] == [i % 2 == 0 for i in range(10)]
            await robot.publish("/async_cmd", {"angular": {"z": 0.5}}, "geometry_msgs/Twist")
            assert await robot.get_param("/async_robot:speed") == 0.5
            await robot.set_param("/async_robot:speed", 1.5)
            assert await robot.get_param("/async_robot:speed") == 1.5
            feedback: list[list[int]] = []
            result = await robot.send_goal(
                "/async_fibonacci",
                {"order": 5},
                feedback=lambda f: feedback.append(f["sequence"]),
                timeout=limit(10),
            )
            assert result == {"sequence": [0, 1, 1, 2, 3, 5]}
            assert feedback[-1] == [0, 1, 1, 2, 3, 5]
            with pytest.raises(pyros.ActionError):
                await robot.send_goal("/async_fibonacci", {"order": -3}, timeout=limit(5))
            with pytest.raises(pyros.MessageError):
                await robot.publish("/async_cmd", {"angular": {"z": "left"}})

    asyncio.run(main())
    message = peer.event(event="message", topic="/async_cmd")["message"]
    assert message["angular"]["z"] == 0.5
