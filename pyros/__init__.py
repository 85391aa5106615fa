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

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

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

__version__ = "0.5.0"

if _TYPE_CHECKING:
    from pyros._shared import SharedClient, attach
    from pyros.client import Client, Goal, Subscription, connect, spawn

# The client side (zmq, msgpack, psutil, threads) loads on first use of one of these names, so
# that importing a submodule such as pyros.cli or the node process's pyros._node does not pay
# for it (PEP 562). ``from pyros import spawn`` and ``pyros.spawn`` work as before.
_LAZY = {
    "spawn": "pyros.client",
    "connect": "pyros.client",
    "Client": "pyros.client",
    "Subscription": "pyros.client",
    "Goal": "pyros.client",
    "attach": "pyros._shared",
    "SharedClient": "pyros._shared",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyros' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
