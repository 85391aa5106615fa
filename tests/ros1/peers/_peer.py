"""What every peer script shares: paths, ROS 1 set-up, rospy start, JSON output.

A peer is a real rospy node, independent of the backend under test: it finds ROS with
``pyros_ros.environment.setup_ros1()`` (the one pyros function it uses) and converts the
messages it prints with its own small walker (:func:`plain`), not with
``pyros_ros.ros1.conversion``, so that it can check that module from outside.

Output is one line per event on stdout: ``READY`` once the node's registrations are done,
then JSON lines (``bytes`` as ``{"$bytes": base64}``, see ``tests.json_lines``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parents[2]), str(_HERE.parent)]  # the repository, tests/ros1

from pyros_ros.environment import setup_ros1  # noqa: E402
from tests.json_lines import dumps  # noqa: E402

__all__ = ["parser", "start_node", "ready", "emit", "plain", "message_class"]

_output = threading.Lock()


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the option every peer has: ``--node-name``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--node-name", default=None, help="node base name (default: unique)")
    return parser


def start_node(default_name: str, node_name: str | None) -> Any:
    """Put ROS 1 on sys.path, start a rospy node and return the rospy module.

    rospy keeps its signal handlers, so SIGTERM and SIGINT shut the node down cleanly and it
    unregisters from the master.
    """
    setup_ros1()
    import rospy

    rospy.init_node(node_name or f"{default_name}_{os.getpid()}", argv=[])
    return rospy


def ready() -> None:
    """Print ``READY``: every registration this peer makes at start is done."""
    with _output:
        print("READY", flush=True)


def emit(value: Any) -> None:
    """Print one JSON line (thread-safe)."""
    line = dumps(value)
    with _output:
        print(line, flush=True)


def plain(value: Any) -> Any:
    """Turn a genpy message (or field value) into plain data, independently of pyros."""
    import genpy

    if isinstance(value, genpy.Message):
        return {name: plain(getattr(value, name)) for name in value.__slots__}
    if isinstance(value, genpy.TVal):
        return {"secs": value.secs, "nsecs": value.nsecs}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def message_class(kind: str, type_name: str) -> Any:
    """The genpy class of ``"pkg/Type"`` (``kind`` is ``"msg"`` or ``"srv"``)."""
    import importlib

    package, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)
