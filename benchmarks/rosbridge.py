"""The ROS 2 side of the benchmark: a venv with ROS 2 Jazzy wheels and rosbridge-server-rs.

:func:`ensure` makes ``<cache>/ros2-jazzy/venv`` with ``pip install rosbridge-server-rs
ros-jazzy-rclpy ros-jazzy-std-msgs ros-jazzy-std-srvs
ros-jazzy-rmw-fastrtps-cpp ros-jazzy-test-msgs`` (never the project's ``.venv``), then sets it
up as the tests' own Jazzy venv is set up (:func:`tests.rosbridge_server.ensure`: the server
binary executable, ``librmw_implementation.so`` linked to Fast DDS's, the environment the binary
needs). The server is the tests' launcher, :class:`tests.rosbridge_server.RosbridgeServer`,
which the ROS 2 world (:mod:`benchmarks.worlds`) starts with ``rosapi=False`` (``--no-rosapi``:
this venv has no ``rosapi_msgs``).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.setup_log import run_logged
from tests import rosbridge_server

__all__ = ["REQUIREMENTS", "Ros2Venv", "ensure"]

REQUIREMENTS = [
    "rosbridge-server-rs",
    "ros-jazzy-rclpy",
    "ros-jazzy-std-msgs",
    "ros-jazzy-std-srvs",
    "ros-jazzy-rmw-fastrtps-cpp",
    "ros-jazzy-test-msgs",  # test_msgs/action/Fibonacci, the action scenario's server
]


@dataclass
class Ros2Venv(rosbridge_server.Ros2Venv):
    """A ready ROS 2 wheels venv (:class:`tests.rosbridge_server.Ros2Venv`: ``python`` runs
    the rclpy peers and the rclpy contender, ``server`` is the rosbridge-server-rs binary).

    Attributes:
        versions: installed versions of the requirements.
    """

    versions: dict[str, str] = field(default_factory=dict)


def _stamp() -> str:
    return hashlib.sha256(repr(REQUIREMENTS).encode()).hexdigest()[:16]


def ensure(cache: Path, *, install: bool, log: Path) -> Ros2Venv:
    """Return the ROS 2 venv, installing it into ``cache`` if needed.

    Raises:
        RuntimeError: not installed and installs are disabled, or a step failed.
    """
    root = cache / "ros2-jazzy"
    venv = root / "venv"
    stamp = root / "stamp"
    if not (stamp.exists() and stamp.read_text() == _stamp()):
        if not install:
            raise RuntimeError(f"not installed in {root} and installs are disabled (--no-install)")
        root.mkdir(parents=True, exist_ok=True)
        run_logged([sys.executable, "-m", "venv", "--clear", str(venv)], log)
        run_logged([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *REQUIREMENTS], log)
        stamp.write_text(_stamp())
    try:
        ready = rosbridge_server.ensure(venv)
    except FileNotFoundError as exc:
        raise RuntimeError(str(exc)) from exc
    versions = {}
    for line in subprocess.run(
        [ready.python, "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        env={**ready.env, "PATH": "/usr/bin:/bin"},
        check=False,
    ).stdout.splitlines():
        name, _, version = line.partition("==")
        if name in REQUIREMENTS:
            versions[name] = version
    return Ros2Venv(**vars(ready), versions=versions)
