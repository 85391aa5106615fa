"""The ROS 2 world: a private, loopback-only ROS 2 domain with real rclpy peers.

The peers are ``tests/ros2/peers/peer.py`` (rclpy nodes in processes of their own, started
with :class:`tests.ros2.ros2_support.RclpyPeer`):

* ``/conformance_robot``: ``/set_flag`` (std_srvs/SetBool), ``/trigger`` and ``/slow``
  (std_srvs/Trigger, the latter after 1 s);
* ``/conformance_fail``: ``/fail``, whose handler takes its node out of the graph instead of
  answering;
* ``/conformance_params``: allows undeclared parameters;
* ``/conformance_actions``: ``/fibonacci`` (``test_msgs/action/Fibonacci``: feedback is the
  sequence so far, the result the whole sequence, n + 1 numbers; a negative order rejected,
  an order above 46 aborted), with a 1 s DDS lease (a Fast DDS profile in its environment
  only), so that after a SIGKILL it leaves the graph within about a second instead of Fast
  DDS's default 20 s.

Where ROS 2 differs (said here, the one place):

* types are reported as ``pkg/msg/Type`` (``std_srvs/srv/SetBool``,
  ``test_msgs/action/Fibonacci``);
* parameters belong to nodes: the suite's parameter is ``/conformance_params:gain``;
* a service cannot answer with an error: a failing server is one that leaves the graph while
  answering (rclpy's servers crash when their handler raises);
* a node that joins a graph learns it by DDS discovery, from 0.1 s to a few seconds per peer,
  so :meth:`Ros2World.spawn` waits until the new node sees the peers it exposes.

:func:`_start` picks a random ``ROS_DOMAIN_ID`` and sets it, with
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, in ``os.environ`` for the nodes the suite spawns
(and restores both at the end).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyros
from pyros._names import glob_match
from tests.conformance.worlds import World, register, restore_environ, start_graph
from tests.fastdds import SHORT_LEASE
from tests.ros2.ros2_support import (
    RclpyPeer,
    domain_env,
    limit,
    pick_domain,
    ros2_missing_reason,
    wait_for,
)

__all__ = ["WORLD"]

SERVICES = ("/set_flag", "/trigger", "/slow", "/fail", "/conformance_params/set_parameters")
ACTIONS = ("/fibonacci",)

_ENVIRONMENT = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR", "ROS_STATIC_PEERS")


class _Ros2Graph:
    """The peers of one test session, in a domain of their own."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="pyros-conformance-ros2-"))
        (self.home / "lease.xml").write_text(SHORT_LEASE)
        self._saved = {key: os.environ.get(key) for key in _ENVIRONMENT}
        os.environ.pop("ROS_STATIC_PEERS", None)
        os.environ.update(domain_env(pick_domain(), self.home))
        self.env = dict(os.environ)
        self.peers: list[RclpyPeer] = []
        self.fail: RclpyPeer | None = None
        self.action_server: RclpyPeer | None = None
        self.standbys: dict[str, RclpyPeer] = {}

    def start_peer(self, name: str, *args: str, short_lease: bool = False) -> RclpyPeer:
        env = dict(self.env)
        if short_lease:
            env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(self.home / "lease.xml")
        peer = RclpyPeer(name, env, self.home / f"peer-{name}.stderr", args)
        self.peers.append(peer)
        return peer

    def start(self) -> None:
        robot = self.start_peer("conformance_robot")
        self.fail = self.start_peer("conformance_fail")
        params = self.start_peer("conformance_params", "--allow-undeclared")
        self.action_server = self.start_peer("conformance_actions", short_lease=True)
        # Replacements for the servers tests take away, started now: a test must not leave
        # a process it started behind. They serve nothing until they are told to.
        self.standbys = {
            "fail": self.start_peer("conformance_fail_standby"),
            "actions": self.start_peer("conformance_actions_standby", short_lease=True),
        }
        for peer in self.peers:
            peer.wait_ready(limit(20))
        robot.request("service", name="/set_flag", kind="setbool")
        robot.request("service", name="/trigger", kind="trigger")
        robot.request("service", name="/slow", kind="slow", delay=1.0)
        self.fail.request("service", name="/fail", kind="exit")
        self.action_server.request("action", name="/fibonacci", period=0.02)
        assert params.proc.poll() is None

    def replacement(self, role: str, name: str) -> RclpyPeer:
        """The standby for ``role`` if it is still unused, else a new peer."""
        peer = self.standbys.pop(role, None)
        if peer is None:
            peer = self.start_peer(name, short_lease=role == "actions").wait_ready(limit(20))
        return peer

    def restore_fail(self) -> None:
        """Bring ``/fail`` back if a test made its server leave."""
        assert self.fail is not None
        if self.fail.proc.poll() is None:
            return
        self.fail.stop()
        self.fail = self.replacement("fail", "conformance_fail_again")
        self.fail.request("service", name="/fail", kind="exit")

    def kill_action_server(self) -> None:
        """SIGKILL the action server (no goodbye, as in a crash) and bring up another."""
        assert self.action_server is not None
        self.action_server.proc.send_signal(signal.SIGKILL)
        self.action_server.stop()
        self.action_server = self.replacement("actions", "conformance_actions_again")
        self.action_server.request("action", name="/fibonacci", period=0.02)

    def stop(self) -> None:
        for peer in self.peers:
            peer.begin_stop()
        for peer in self.peers:
            peer.stop()
        restore_environ(self._saved)
        shutil.rmtree(self.home, ignore_errors=True)


_graph: list[_Ros2Graph] = []


class Ros2World(World):
    """The ROS 2 world; :meth:`spawn` waits for the new node's discovery of the peers."""

    @contextlib.contextmanager
    def spawn(self, **patterns: Any) -> Iterator[pyros.Client]:
        """Spawn a node, then wait until it lists the peers' services and actions that its
        patterns expose (see the module docstring)."""
        if _graph:
            _graph[0].restore_fail()
        with super().spawn(**patterns) as client:
            services = [
                name
                for name in SERVICES
                if any(glob_match(p, name) for p in patterns.get("services", ["*"]))
            ]
            actions = [
                name
                for name in ACTIONS
                if any(glob_match(p, name) for p in patterns.get("actions", ["*"]))
            ]
            wait_for(
                lambda: (
                    set(services) <= set(client.services())
                    and set(actions) <= set(client.actions())
                ),
                limit(10),
                f"the new node to discover {services + actions}",
            )
            yield client


def _start() -> Callable[[], None]:
    graph = _Ros2Graph()
    stop = start_graph(WORLD, graph)
    _graph.append(graph)

    def cleanup() -> None:
        _graph.clear()
        stop()

    return cleanup


WORLD = register(
    Ros2World(
        "ros2",
        types_ros2=True,
        param="/conformance_params:gain",
        param_listed="/conformance_params:gain",
        start=_start,
        kill_action_server=lambda: None,  # replaced by the running graph's
        available=ros2_missing_reason,
    )
)
