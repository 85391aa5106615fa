"""The worlds the contenders run in: a ROS 1 graph and a ROS 2 graph, each on loopback only.

:class:`Ros1World` starts a ``rosmaster`` on 127.0.0.1 and the rospy peers of the test tier
(``tests/ros1/peers``: two ``echo`` nodes and the ``setbool_server``), through
``tests/ros1/ros1_support`` (``Ros1Master``, ``Peer``). :class:`Ros2World` starts the rclpy
peers of ``benchmarks/peers/ros2_peer.py`` and, for roslibpy, a rosbridge server, through
``tests/rosbridge_server`` (``RosbridgeServer``, ``LineProcess``, ``ros_env``): with
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a random ``ROS_DOMAIN_ID``.

Both answer the contenders' requests (:meth:`handle`): ``start_peer`` starts a ``talker`` on a
topic and replies with the moment the topic appeared (CLOCK_MONOTONIC), ``stop_peer`` ends it.
"""

from __future__ import annotations

import json
import random
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "ros1"))

from ros1_support import PEERS_DIR, Peer, Ros1Master  # noqa: E402

from tests.rosbridge_server import LineProcess, RosbridgeServer, ros_env  # noqa: E402

__all__ = ["Ros1World", "Ros2World"]

TALKER_FULL_SPEED = 1e9
"""``--rate`` given to the rospy talker peer for "as fast as it goes" (rospy.Rate never sleeps)."""

APPEAR_POLL = 0.001
"""Seconds between two master polls while waiting for a new topic to appear."""


class Ros1World:
    """A rosmaster on 127.0.0.1 with the echo and SetBool peers.

    Args:
        home: a scratch directory (ROS_HOME, logs).
    """

    name = "ros1"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.master = Ros1Master(home / "ros_home")
        self.env = dict(self.master.env)
        self._peers: dict[int, Peer] = {}
        self._ids = iter(range(1, 1 << 30))
        self._always: list[Peer] = []
        try:
            for script, args, log in (
                ("echo.py", ["--in", "/bench/in", "--out", "/bench/out"], "echo_small"),
                (
                    "echo.py",
                    ["--in", "/bench/in_large", "--out", "/bench/out_large"]
                    + ["--type", "std_msgs/UInt8MultiArray"],
                    "echo_large",
                ),
                ("setbool_server.py", ["--name", "/set_flag"], "setbool"),
            ):
                peer = Peer(PEERS_DIR / script, args, self.env, home / f"{log}.log", stdin=False)
                self._always.append(peer)
                peer.wait_ready(30)
        except BaseException:
            self.stop()
            raise

    def handle(self, request: str, args: dict[str, Any]) -> Any:
        """Serve a contender's request (``start_peer``/``stop_peer``)."""
        if request == "start_peer":
            rate = args.get("rate") or TALKER_FULL_SPEED
            topic = args["topic"]
            ident = next(self._ids)
            peer = Peer(
                PEERS_DIR / "talker.py",
                ["--topic", topic, "--rate", repr(float(rate))],
                self.env,
                self.home / f"talker_{ident}.log",
                stdin=False,
            )
            self._peers[ident] = peer
            return {"id": ident, "appeared": self._wait_published(topic, peer)}
        if request == "stop_peer":
            peer = self._peers.pop(args["id"])
            peer.stop()
            return None
        raise ValueError(f"unknown request {request!r}")

    def _wait_published(self, topic: str, peer: Peer) -> float:
        """Poll the master until ``topic`` has a publisher; return when it was first seen."""
        proxy = xmlrpc.client.ServerProxy(self.master.uri)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            code, _, topics = proxy.getPublishedTopics("/bench_orchestrator", "")
            seen = time.monotonic()
            if code == 1 and any(name == topic for name, _ in topics):
                return seen
            if peer.proc.poll() is not None:
                raise RuntimeError(f"talker for {topic} exited: {peer.stderr_tail()}")
            time.sleep(APPEAR_POLL)
        raise RuntimeError(f"{topic} did not appear in the master within 30 s")

    def stop(self) -> None:
        for peer in [*self._peers.values(), *self._always]:
            peer.stop()
        self._peers.clear()
        self.master.stop()


class Ros2World:
    """rclpy echo and SetBool peers on a private, localhost-only ROS 2 domain, and a rosbridge
    server (rosbridge-server-rs) on 127.0.0.1 in front of it.

    Args:
        home: a scratch directory (logs).
        venv: the ROS 2 wheels venv (:func:`benchmarks.rosbridge.ensure`).

    Attributes:
        env: environment of a process in this world that is not itself ROS 2 (roslibpy):
            this one's, with the loopback-only discovery settings and ``ROSBRIDGE_URL``.
        ros_env: ``env`` plus what rclpy from the wheels needs (library paths).
    """

    name = "ros2"

    def __init__(self, home: Path, venv: Any) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.python = venv.python
        domain_id = random.randint(1, 101)
        self.env = ros_env(domain_id)
        self.ros_env = {**self.env, **venv.env}
        self._peers: dict[int, LineProcess] = {}
        self._ids = iter(range(1, 1 << 30))
        self._always: list[LineProcess] = []
        self.server: Any = None
        try:
            for args, log in (
                (["--mode", "echo", "--in", "/bench/in", "--out", "/bench/out"], "echo_small"),
                (
                    ["--mode", "echo", "--in", "/bench/in_large", "--out", "/bench/out_large"]
                    + ["--type", "std_msgs/UInt8MultiArray"],
                    "echo_large",
                ),
                (["--mode", "setbool", "--name", "/set_flag"], "setbool"),
                (["--mode", "fibonacci", "--name", "/bench/fibonacci"], "fibonacci"),
            ):
                peer = self._start(args, home / f"ros2_{log}.log")
                self._always.append(peer)
                peer.wait_ready(60)
            self.server = RosbridgeServer(
                venv, home / "rosbridge_server.log", domain_id=domain_id, rosapi=False
            )
            self.env["ROSBRIDGE_URL"] = self.server.url
        except BaseException:
            self.stop()
            raise

    def _start(self, args: list[str], log: Path) -> LineProcess:
        script = str(HERE / "peers" / "ros2_peer.py")
        return LineProcess([self.python, script, *args], self.ros_env, log)

    def handle(self, request: str, args: dict[str, Any]) -> Any:
        """Serve a contender's request: the talker's own ``create_publisher`` time is the
        moment its topic appeared (ROS 2 has no master to ask)."""
        if request == "start_peer":
            ident = next(self._ids)
            rate = repr(float(args.get("rate") or 0))
            peer = self._start(
                ["--mode", "talker", "--topic", args["topic"], "--rate", rate],
                self.home / f"ros2_talker_{ident}.log",
            )
            self._peers[ident] = peer
            peer.wait_ready(60)
            created = json.loads(peer.next_line(10))["created"]
            return {"id": ident, "appeared": created}
        if request == "stop_peer":
            self._peers.pop(args["id"]).stop()
            return None
        raise ValueError(f"unknown request {request!r}")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        for peer in [*self._peers.values(), *self._always]:
            peer.stop()
        self._peers.clear()
