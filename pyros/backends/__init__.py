"""Backends by name: ``mock`` here, ``ros1``/``ros2``/``rosbridge`` in ``pyros_ros``.

Backends are looked up by name and imported only when a node process starts one, so that
``import pyros`` never imports a ROS library. Third-party backends register an entry point in
the ``pyros.backends`` group (``name = "package.module:Class"``).
"""

from __future__ import annotations

import importlib

from pyros.backends.base import Backend, MessageCallback

__all__ = ["Backend", "MessageCallback", "BACKENDS", "available", "load"]

BACKENDS: dict[str, str] = {
    "mock": "pyros.backends.mock:MockBackend",
    "ros1": "pyros_ros.ros1:Ros1Backend",
    "ros2": "pyros_ros.ros2:Ros2Backend",
    "rosbridge": "pyros_ros.rosbridge:RosbridgeBackend",
}
"""Built-in backends: name -> ``"module:Class"``."""


def available() -> dict[str, str]:
    """Return every known backend name with its ``"module:Class"`` path, entry points included."""
    from importlib.metadata import entry_points  # 10-20 ms: only when really needed

    found = dict(BACKENDS)
    for ep in entry_points(group="pyros.backends"):
        found.setdefault(ep.name, ep.value)
    return found


def load(name: str) -> type[Backend]:
    """Import and return the backend class called ``name``, or at ``"module:Class"``.

    Raises:
        SpawnError: no backend has that name, or its module cannot be imported (the message
            says which, and what to install).
    """
    from pyros.exceptions import SpawnError

    if ":" in name:  # "package.module:Class", a backend that is not registered
        path = name
    elif name in BACKENDS:  # built-ins win over entry points (see available()), so no lookup
        path = BACKENDS[name]
    else:
        known = available()
        if name not in known:
            raise SpawnError(
                f"unknown backend {name!r}; known backends: {', '.join(sorted(known))}"
            )
        path = known[name]
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpawnError(f"backend {name!r} cannot be imported from {module_name}: {exc}") from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise SpawnError(f"{path} is not a pyros Backend class")
    return cls
