"""The cloud chain on ROS 1: rospy peers <-> pyros node (ros1) <-> connector <-> relay <-> roslibpy.

A real rosmaster on loopback, real rospy peers (a small turtle written below: it subscribes
``/turtle1/cmd_vel`` geometry_msgs/Twist, publishes ``/turtle1/pose`` at 30 Hz and serves
``/reset`` std_srvs/Empty, like turtlesim, with geometry_msgs/Pose2D as the pose since
turtlesim's messages are not in Debian; and the ``talker`` peer), ``pyros connector --backend
ros1`` and ``pyros relay`` as processes, and roslibpy as the operator.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ros1_support import PEERS_DIR, Peer, Ros1Master, limit

from tests.cloud.connector_support import ConnectorProcess, device, timed_operator
from tests.cloud.relay_support import DEVICE_TOKENS, RelayProcess, relay_process
from tests.support import wait_until

TURTLE = f'''"""A rospy turtle: /turtle1/cmd_vel in, /turtle1/pose (Pose2D) out at 30 Hz, /reset."""
import math
import sys
import threading
import time

sys.path.insert(0, {str(PEERS_DIR)!r})
import _peer  # noqa: E402


def main():
    args = _peer.parser(__doc__).parse_args()
    rospy = _peer.start_node("turtle", args.node_name)
    from geometry_msgs.msg import Pose2D, Twist
    from std_srvs.srv import Empty, EmptyResponse

    lock = threading.Lock()
    start = 5.544445
    state = {{"x": start, "y": start, "theta": 0.0, "v": 0.0, "w": 0.0, "cmd": 0.0}}

    def on_cmd(msg):
        with lock:
            state.update(v=msg.linear.x, w=msg.angular.z, cmd=time.monotonic())
        _peer.emit({{"cmd": [msg.linear.x, msg.angular.z]}})

    def reset(request):
        with lock:
            state.update(x=start, y=start, theta=0.0, v=0.0, w=0.0)
        _peer.emit({{"reset": True}})
        return EmptyResponse()

    publisher = rospy.Publisher("/turtle1/pose", Pose2D, queue_size=10)
    rospy.Subscriber("/turtle1/cmd_vel", Twist, on_cmd)
    rospy.Service("/reset", Empty, reset)
    _peer.ready()
    last = time.monotonic()
    rate = rospy.Rate(30)
    while not rospy.is_shutdown():
        now = time.monotonic()
        with lock:
            if now - state["cmd"] > 1.0:
                state.update(v=0.0, w=0.0)
            dt = now - last
            state["theta"] += state["w"] * dt
            state["x"] += state["v"] * math.cos(state["theta"]) * dt
            state["y"] += state["v"] * math.sin(state["theta"]) * dt
            pose = Pose2D(state["x"], state["y"], state["theta"])
        last = now
        publisher.publish(pose)
        try:
            rate.sleep()
        except rospy.ROSInterruptException:
            break


if __name__ == "__main__":
    main()
'''

TWIST = {"linear": {"x": 2.0, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 1.0}}


@pytest.fixture
def turtle(ros1_master: Ros1Master, tmp_path: Path) -> Iterator[Peer]:
    script = tmp_path / "turtle_peer.py"
    script.write_text(TURTLE)
    peer = Peer(script, [], ros1_master.env, tmp_path / "turtle.stderr", stdin=False)
    try:
        peer.wait_ready(limit(15))
        yield peer
    finally:
        peer.stop()
        assert peer.proc.returncode is not None


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with relay_process(tmp_path) as running:
        yield running


def test_roslibpy_operator_drives_a_rospy_turtle_through_the_relay(
    ros1_master: Ros1Master,
    ros1_peer: Callable[..., Peer],
    turtle: Peer,
    relay: RelayProcess,
    tmp_path: Path,
) -> None:
    ros1_peer("talker", "--topic", "/chatter", "--rate", "20")
    connector = ConnectorProcess(
        [
            "--relay",
            f"ws://127.0.0.1:{relay.port}",
            "--device",
            "robot1",
            "--backend",
            "ros1",
            "--master-uri",
            ros1_master.uri,
            "--topics",
            "/turtle1/pose",
            "--topics",
            "/chatter",
            "--commands",
            "/turtle1/cmd_vel",
            "--services",
            "/reset",
            "--poll-interval",
            "0.2",
        ],
        tmp_path / "connector.log",
        env={**ros1_master.env, "PYROS_DEVICE_TOKEN": DEVICE_TOKENS["robot1"]},
    )
    try:

        def online() -> bool:
            assert connector.process.poll() is None, connector.output()
            entry = device(relay.port, "robot1")
            return bool(entry and entry["online"] and len(entry["topics"]) == 2)

        assert wait_until(online, limit(30), 0.1), connector.output()
        entry = device(relay.port, "robot1")
        assert entry is not None
        assert entry["topics"] == {
            "/turtle1/pose": "geometry_msgs/Pose2D",
            "/chatter": "std_msgs/String",
        }
        assert entry["services"] == {"/reset": "std_srvs/Empty"}
        # The connector's node is in the ROS graph under its pyros name.
        assert any(name.startswith("/pyros_") for name in ros1_master.node_names())

        with timed_operator(relay.port) as operator:
            operator.subscribe("/robot1/chatter", "std_msgs/String")
            chat = [operator.next_message(timeout=10) for _ in range(5)]
            counts = [int(m["msg"]["data"].split()[1]) for m in chat]
            assert counts == list(range(counts[0], counts[0] + 5)), counts
            operator.request("unsubscribe", topic="/robot1/chatter")

            operator.subscribe("/robot1/turtle1/pose", "geometry_msgs/Pose2D")
            operator.next_message(timeout=10)
            reply = operator.request(
                "call", service="/robot1/reset", type="std_srvs/Empty", args={}
            )
            assert reply["ok"] and reply["values"] == {}, reply
            assert turtle.read_json(limit(5)) == {"reset": True}

            operator.pending_messages()
            started = time.monotonic()
            while time.monotonic() - started < 2.0:
                reply = operator.request(
                    "publish",
                    topic="/robot1/turtle1/cmd_vel",
                    type="geometry_msgs/Twist",
                    msg=TWIST,
                )
                assert reply["ok"], reply
                time.sleep(0.1)
            poses = [m["msg"] for m in operator.messages(wait=0.3)]
            poses = [p for p in poses if "x" in p]
            xs = [p["x"] for p in poses]
            ys = [p["y"] for p in poses]
            assert max(xs) - min(xs) > 0.5 and max(ys) - min(ys) > 0.5, poses[-3:]
            commands = [line for line in turtle.lines() if '"cmd"' in line]
            assert commands and '"cmd":[2.0,1.0]' in commands[-1], commands[-3:]
    finally:
        code = connector.stop()
    assert code == 0, connector.output()
    assert "Traceback" not in connector.output(), connector.output()
    # Stopping the connector stops its node: nothing of it is left in the master.
    assert wait_until(
        lambda: not any(n.startswith("/pyros_") for n in ros1_master.node_names()), limit(5)
    )
    assert os.environ.get("ROS_MASTER_URI") != ros1_master.uri  # the test itself is not a node
