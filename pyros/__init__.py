"""pyros: use a ROS robot from ordinary Python, through one isolated node process.

.. code-block:: python

    import pyros

    with pyros.spawn("mock", topics=["/turtle1/*"], services=["/reset"]) as robot:
        robot.publish("/turtle1/cmd_vel", {"linear": {"x": 1.0}, "angular": {"z": 0.5}})
        with robot.subscribe("/turtle1/pose") as poses:
            print(poses.get(timeout=2.0))
        robot.call("/reset")

Importing pyros imports no ROS library (rospy, rclpy, roslibpy) and no websockets: only the
node process does, and only for the backend it runs.
"""

from __future__ import annotations

from pyros._shared import SharedClient, attach
from pyros.client import Client, Goal, Subscription, connect, spawn
from pyros.exceptions import (
    ActionError,
    ConnectionLostError,
    ForkError,
    MessageError,
    NodeDiedError,
    NotExposedError,
    ParamNotSetError,
    ProtocolError,
    PyrosError,
    ServiceError,
    SpawnError,
    TimeoutError,
)

__all__ = [
    "spawn",
    "connect",
    "attach",
    "Client",
    "Subscription",
    "Goal",
    "SharedClient",
    "PyrosError",
    "NotExposedError",
    "MessageError",
    "ServiceError",
    "ActionError",
    "ConnectionLostError",
    "ParamNotSetError",
    "NodeDiedError",
    "TimeoutError",
    "SpawnError",
    "ProtocolError",
    "ForkError",
]

__version__ = "0.1.0"
