"""``pyros demo``: the whole cloud chain on one machine, with the mock robot.

.. code-block:: text

    mock turtle <-> pyros node <-> Connector ==ws==> Relay <==ws== operator (rosbridge v2)

Everything binds ``127.0.0.1``; the relay takes a free port. The operator is a plain
``websockets`` client speaking rosbridge v2 (``ROSBRIDGE_PROTOCOL.md`` of rosbridge_suite), as
roslibpy or roslibjs would: it calls ``/demo/reset``, advertises ``/demo/turtle1/cmd_vel`` and
publishes a constant circle command on it (linear.x 2 m/s, angular.z 1 rad/s, as the server of
the original AWS connection scripts did), and prints the poses coming back through the relay on
``/demo/turtle1/pose``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

import pyros.asyncio
from pyros.cloud.connector import Connector
from pyros.exceptions import PyrosError

__all__ = ["run_demo", "DEVICE", "CIRCLE"]

DEVICE = "demo"
"""The demo robot's device id: its topics appear as ``/demo/turtle1/...`` at the relay."""

CIRCLE = {"linear": {"x": 2.0, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 1.0}}
"""The operator's constant command: 2 m/s forward, turning at 1 rad/s (a 2 m radius circle)."""

_COMMAND_PERIOD = 0.1  # seconds between two commands (the turtle stops 1 s after the last one)


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
