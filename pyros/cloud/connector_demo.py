"""``pyros demo``: the whole cloud chain on one machine, with the mock robot.

.. code-block:: text

    mock turtle <-> pyros node <-> Connector ==ws==> Relay <==ws== operator (rosbridge v2)

Everything binds ``127.0.0.1``; the relay takes a free port. The operator is a plain
``websockets`` client speaking rosbridge v2 (``ROSBRIDGE_PROTOCOL.md`` of rosbridge_suite), as
roslibpy or roslibjs would: it calls ``/demo/reset``, advertises ``/demo/turtle1/cmd_vel`` and
publishes a constant circle command on it (linear.x 2 m/s, angular.z 1 rad/s, as the server of
the original AWS connection scripts did), and prints the poses coming back through the relay on
``/demo/turtle1/pose``.

:func:`run_fleet_demo` (``pyros demo --dashboard``) runs a small fleet instead: several mock
robots, each with its own node and connector, the fleet dashboard beside the relay, and the
robots other than the first driving themselves in circles while the first waits for the user's
joystick. Each robot also sends a small camera picture (``sensor_msgs/CompressedImage``, PNG):
its arena seen from above, drawn with Pillow from the dashboard extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import math
import signal
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

import pyros.asyncio
from pyros.cloud.connector import Connector
from pyros.exceptions import PyrosError

__all__ = ["run_demo", "run_fleet_demo", "DEVICE", "CIRCLE", "CAMERA_TOPIC"]

DEVICE = "demo"
"""The demo robot's device id: its topics appear as ``/demo/turtle1/...`` at the relay."""

CIRCLE = {"linear": {"x": 2.0, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 1.0}}
"""The operator's constant command: 2 m/s forward, turning at 1 rad/s (a 2 m radius circle)."""

_COMMAND_PERIOD = 0.1  # seconds between two commands (the turtle stops 1 s after the last one)

CAMERA_TOPIC = "/camera/image/compressed"
"""The fleet demo's camera topic (sensor_msgs/CompressedImage, PNG), 2 pictures a second."""

_CAMERA_PERIOD = 0.5
_FLEET_SERVICES = ["/reset", "/turtle1/teleport_absolute", "/set_flag", "/trigger"]


async def run_demo(
    duration: float = 5.0, rate: float = 5.0, echo: Callable[[str], None] = print
) -> None:
    """Run the chain for ``duration`` seconds, printing poses ``rate`` times per second.

    Args:
        duration: seconds the operator drives the turtle.
        rate: pose lines printed per second.
        echo: where lines go.

    Raises:
        PyrosError: the chain failed (the node, the relay or the connector), with the reason.
    """
    from pyros.cloud.relay import Relay

    relay = Relay()
    await relay.start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{relay.port}"
    try:
        async with await pyros.asyncio.spawn(
            "mock", topics=["/turtle1/*"], services=["/reset"]
        ) as robot:
            connector = Connector(
                robot,
                relay=url,
                device=DEVICE,
                token="demo",
                topics=["/turtle1/pose"],
                commands=["/turtle1/cmd_vel"],
                services=["/reset"],
            )
            connecting = asyncio.ensure_future(connector.run())
            try:
                online = asyncio.ensure_future(connector.wait_online())
                await asyncio.wait((online, connecting), return_when=asyncio.FIRST_COMPLETED)
                if connecting.done():
                    online.cancel()
                    connecting.result()  # raises why the connector stopped
                echo(f"relay on {url}; robot {DEVICE!r} connected through the cloud connector")
                async with connect(url + "/", open_timeout=5) as operator:
                    await _operate(operator, duration, rate, echo)
            finally:
                connecting.cancel()
                await asyncio.gather(connecting, return_exceptions=True)
    finally:
        await relay.close()
    echo("done")


async def _operate(
    operator: ClientConnection, duration: float, rate: float, echo: Callable[[str], None]
) -> None:
    ids = (f"demo-{n}" for n in itertools.count(1))
    pose_topic = f"/{DEVICE}/turtle1/pose"
    command_topic = f"/{DEVICE}/turtle1/cmd_vel"
    await _send(operator, op="call_service", id=next(ids), service=f"/{DEVICE}/reset", args={})
    await _send(
        operator, op="advertise", id=next(ids), topic=command_topic, type="geometry_msgs/Twist"
    )
    await _send(operator, op="subscribe", id=next(ids), topic=pose_topic, type="turtlesim/Pose")
    echo(
        f"operator: {CIRCLE['linear']['x']} m/s, {CIRCLE['angular']['z']} rad/s on "
        f"{command_topic}; poses from {pose_topic}"
    )
    start = time.monotonic()
    next_command = next_print = start
    pose: dict[str, Any] | None = None
    while (elapsed := time.monotonic() - start) < duration:
        now = time.monotonic()
        if now >= next_command:
            await _send(operator, op="publish", topic=command_topic, msg=CIRCLE)
            next_command += _COMMAND_PERIOD
        if pose is not None and now >= next_print:
            echo(
                f"t={elapsed:4.1f}s  x={pose['x']:6.3f}  y={pose['y']:6.3f}  "
                f"theta={math.degrees(pose['theta']):7.1f} deg  "
                f"v={pose['linear_velocity']:.2f}"
            )
            next_print = max(next_print + 1.0 / rate, now)
        deadline = min(next_command, start + duration)
        if pose is not None:
            deadline = min(deadline, next_print)
        try:
            frame = await asyncio.wait_for(operator.recv(), max(0.001, deadline - now))
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            continue
        message = json.loads(frame)
        if message.get("op") == "publish" and message.get("topic") == pose_topic:
            pose = message["msg"]
        elif message.get("op") == "status" and message.get("level") == "error":
            raise PyrosError(f"the relay refused the operator: {message.get('msg')}")
        elif message.get("op") == "service_response" and not message.get("result", True):
            raise PyrosError(f"reset failed: {message.get('values')}")
    await _send(operator, op="publish", topic=command_topic, msg={})
    if pose is None:
        raise PyrosError(f"no pose came back through the relay within {duration} s")
    await _send(operator, op="unsubscribe", topic=pose_topic)
    await _send(operator, op="unadvertise", topic=command_topic)


async def _send(operator: ClientConnection, **message: Any) -> None:
    await operator.send(json.dumps(message))


async def run_fleet_demo(
    devices: int = 3,
    dashboard_port: int = 0,
    duration: float = 0.0,
    echo: Callable[[str], None] = print,
) -> None:
    """Run a fleet of mock robots with the relay and the fleet dashboard.

    Args:
        devices: robots in the fleet: ``demo`` (waits for the user to drive it), ``demo2``...
            (drive in circles).
        dashboard_port: the dashboard's TCP port on 127.0.0.1; 0 picks a free one.
        duration: seconds to run; 0 runs until SIGINT or SIGTERM.
        echo: where lines go (the dashboard URL among them).

    Raises:
        PyrosError: a node, the relay, a connector or the dashboard failed to start.
    """
    from pyros.cloud.relay import Relay
    from pyros.dashboard.process import DashboardProcess

    relay = Relay()
    await relay.start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{relay.port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tasks: list[asyncio.Future[Any]] = []
    dashboard: DashboardProcess | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            connectors = []
            for index in range(devices):
                name = DEVICE if index == 0 else f"{DEVICE}{index + 1}"
                robot = await stack.enter_async_context(
                    await pyros.asyncio.spawn(
                        "mock",
                        topics=["/turtle1/*", "/camera/**"],
                        services=_FLEET_SERVICES,
                        name=f"fleet_demo_{name}_{relay.port}",
                    )
                )
                connector = Connector(
                    robot,
                    relay=url,
                    device=name,
                    token="demo",
                    topics=["/turtle1/pose", CAMERA_TOPIC],
                    commands=["/turtle1/cmd_vel"],
                    services=_FLEET_SERVICES,
                )
                connectors.append(connector)
                tasks.append(asyncio.ensure_future(connector.run()))
                tasks.append(asyncio.ensure_future(_camera(robot)))
                if index > 0:
                    tasks.append(asyncio.ensure_future(_circle(robot, 1.0 + 0.3 * index)))
            # Pushed last, run first: the connectors and drivers stop before the robots' nodes
            # close (a connector whose node closed first reports closed subscriptions).
            stack.push_async_callback(_cancel, tasks)
            for connector in connectors:
                await connector.wait_online(timeout=30.0)
            echo(f"relay on {url}; robots {', '.join(c.device for c in connectors)} connected")
            dashboard = await asyncio.to_thread(DashboardProcess.start, url, port=dashboard_port)
            relay.dashboard_port = dashboard.port
            echo(f"dashboard: open {dashboard.url}")
            echo(
                "  (this demo relay has no tokens file: it serves this machine only; sign in "
                "with an empty token)"
            )
            echo(f"  drive {DEVICE!r} with its joystick or the arrow keys; Ctrl-C stops the demo")
            waiting: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait(
                [waiting, *tasks],
                timeout=duration if duration > 0 else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiting.cancel()
            for task in done:
                if task is not waiting and not task.cancelled() and task.exception() is not None:
                    raise PyrosError(f"the demo fleet failed: {task.exception()!r}")
    finally:
        await _cancel(tasks)
        if dashboard is not None:
            await asyncio.to_thread(dashboard.stop)
        await relay.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    echo("done")


async def _cancel(tasks: list[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _circle(robot: pyros.asyncio.Client, speed: float) -> None:
    """Drive a robot in a circle of 2 m radius at ``speed`` m/s, forever."""
    command = {"linear": {"x": speed}, "angular": {"z": speed / 2.0}}
    while True:
        await robot.publish("/turtle1/cmd_vel", command, "geometry_msgs/Twist")
        await asyncio.sleep(_COMMAND_PERIOD)


async def _camera(robot: pyros.asyncio.Client) -> None:
    """Publish the arena seen from above as a PNG ``sensor_msgs/CompressedImage``."""
    try:
        from PIL import Image, ImageDraw  # the dashboard extra
    except ImportError:
        return  # no camera without Pillow
    from pyros.backends.mock import ARENA_SIZE

    poses = await robot.subscribe("/turtle1/pose", queue_size=1)  # only the newest pose
    trail: list[tuple[float, float]] = []
    try:
        while True:
            pose = await poses.get(timeout=10.0)
            scale = 160 / ARENA_SIZE
            point = (pose["x"] * scale, 160 - pose["y"] * scale)
            trail = (trail + [point])[-40:]
            image = Image.new("RGB", (160, 160), (69, 86, 255))
            draw = ImageDraw.Draw(image)
            if len(trail) > 1:
                draw.line(trail, fill=(255, 255, 255), width=2)
            x, y = point
            draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=(255, 210, 0))
            heading = pose["theta"]
            draw.line(
                (x, y, x + 12 * math.cos(heading), y - 12 * math.sin(heading)),
                fill=(0, 0, 0),
                width=3,
            )
            out = io.BytesIO()
            image.save(out, format="PNG")
            await robot.publish(
                CAMERA_TOPIC,
                {
                    "header": {"seq": 0, "stamp": {"secs": 0, "nsecs": 0}, "frame_id": "camera"},
                    "format": "png",
                    "data": out.getvalue(),
                },
                "sensor_msgs/CompressedImage",
            )
            await asyncio.sleep(_CAMERA_PERIOD)
    finally:
        await poses.close()
