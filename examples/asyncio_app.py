"""Drive a robot from asyncio: one task steers, another watches the pose, a third calls a service.

Run it with no ROS at all (the mock backend's turtle)::

    python examples/asyncio_app.py --duration 3

or against ROS 1 (turtlesim running under a master)::

    python examples/asyncio_app.py --backend ros1 --master-uri http://127.0.0.1:11311

Prints one line per pose received (at most 5 per second) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import pyros.asyncio


async def steer(robot: pyros.asyncio.Client, stop: asyncio.Event) -> None:
    """Publish a circle command at 10 Hz until ``stop`` is set, then stop the turtle."""
    twist = {"linear": {"x": 1.5}, "angular": {"z": 1.0}}
    while not stop.is_set():
        await robot.publish("/turtle1/cmd_vel", twist, type="geometry_msgs/Twist")
        await asyncio.sleep(0.1)
    await robot.publish("/turtle1/cmd_vel", {}, type="geometry_msgs/Twist")


async def watch(robot: pyros.asyncio.Client, stop: asyncio.Event) -> int:
    """Print the pose at most 5 times a second until ``stop`` is set; return lines printed."""
    printed = 0
    last = 0.0
    loop = asyncio.get_running_loop()
    async with robot.subscribe("/turtle1/pose", queue_size=1) as poses:
        while not stop.is_set():
            try:
                pose = await poses.get(timeout=0.5)
            except pyros.TimeoutError:
                continue
            if loop.time() - last >= 0.2:
                last = loop.time()
                print(f"pose x={pose['x']:.2f} y={pose['y']:.2f} theta={pose['theta']:.2f}")
                printed += 1
    return printed


async def main(backend: str, duration: float, options: dict[str, Any]) -> int:
    """Run the three tasks for ``duration`` seconds; return the number of poses printed."""
    async with pyros.asyncio.spawn(
        backend, topics=["/turtle1/*"], services=["/reset"], **options
    ) as robot:
        await robot.call("/reset")
        stop = asyncio.Event()
        steering = asyncio.create_task(steer(robot, stop))
        watching = asyncio.create_task(watch(robot, stop))
        await asyncio.sleep(duration)
        stop.set()
        await steering
        return await watching


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="mock")
    parser.add_argument("--master-uri")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds")
    args = parser.parse_args()
    extra = {"master_uri": args.master_uri} if args.master_uri else {}
    count = asyncio.run(main(args.backend, args.duration, extra))
    print(f"{count} poses")
