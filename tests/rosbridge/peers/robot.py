"""An rclpy peer for the rosbridge tests (runs in the ROS 2 Jazzy venv, not the project's).

One node, ``/robot``, with what the tests talk to through the rosbridge server:

* ``/chatter`` (std_msgs/String, ``"hello N"``) published at ``--rate`` Hz (0: not at all);
* ``/in`` -> ``/out`` (std_msgs/String) and ``/bytes_in`` -> ``/bytes_out``
  (std_msgs/UInt8MultiArray) echoed;
* ``/latched`` (std_msgs/String, transient local): one message at start;
* ``/heard`` (std_msgs/String): what it hears on ``/cmd`` is printed on stdout as
  ``HEARD <data>``;
* ``/set_flag`` (std_srvs/SetBool): answers ``success = data``, ``message = "flag N"``;
* ``/slow`` (std_srvs/Trigger): answers after ``--slow`` seconds;
* ``/fibonacci`` (test_msgs/action/Fibonacci): one feedback per step every ``--step``
  seconds; order < 0 is rejected, order 13 aborts, a cancel is accepted;
* parameters ``gains.p`` (double 1.5), ``label`` (string "robot"), ``count`` (integer 3).

Prints ``READY`` once everything is created. Ends on SIGTERM or when stdin closes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String, UInt8MultiArray
from std_srvs.srv import SetBool, Trigger
from test_msgs.action import Fibonacci

SERVICE_QOS = QoSProfile(depth=1000)
"""ROS 2 services keep 10 requests by default (``rmw_qos_profile_services_default``): a burst
of concurrent calls from one client would lose the rest before the executor takes them."""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--slow", type=float, default=30.0)
    parser.add_argument("--step", type=float, default=0.05)
    parser.add_argument("--name", default="robot")
    args = parser.parse_args()

    rclpy.init()
    node = Node(args.name)
    group = ReentrantCallbackGroup()
    node.declare_parameter("gains.p", 1.5)
    node.declare_parameter("label", "robot")
    node.declare_parameter("count", 3)

    chatter = node.create_publisher(String, "/chatter", 1000)
    out = node.create_publisher(String, "/out", 10)
    bytes_out = node.create_publisher(UInt8MultiArray, "/bytes_out", 10)
    latched = node.create_publisher(
        String, "/latched", QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    )
    latched.publish(String(data="latched hello"))
    node.create_subscription(String, "/in", out.publish, 10)
    node.create_subscription(UInt8MultiArray, "/bytes_in", bytes_out.publish, 10)

    def heard(msg: String) -> None:
        print(f"HEARD {msg.data}", flush=True)

    node.create_subscription(String, "/cmd", heard, 100)

    def set_flag(request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        response.success = request.data
        response.message = f"flag {request.data}"
        return response

    def slow(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        time.sleep(args.slow)
        response.success = True
        response.message = "slow done"
        return response

    # Each service in its own group: a sleeping /slow never holds up /set_flag.
    node.create_service(
        SetBool,
        "/set_flag",
        set_flag,
        qos_profile=SERVICE_QOS,
        callback_group=MutuallyExclusiveCallbackGroup(),
    )
    node.create_service(Trigger, "/slow", slow, callback_group=ReentrantCallbackGroup())

    def on_goal(goal: Fibonacci.Goal) -> GoalResponse:
        return GoalResponse.REJECT if goal.order < 0 else GoalResponse.ACCEPT

    def execute(handle):  # type: ignore[no-untyped-def]
        sequence = [0, 1]
        feedback = Fibonacci.Feedback()
        for _ in range(1, handle.request.order):
            if handle.is_cancel_requested:
                handle.canceled()
                return Fibonacci.Result(sequence=sequence)
            sequence.append(sequence[-1] + sequence[-2])
            feedback.sequence = sequence
            handle.publish_feedback(feedback)
            time.sleep(args.step)
        if handle.request.order == 13:
            handle.abort()
            return Fibonacci.Result(sequence=sequence)
        handle.succeed()
        return Fibonacci.Result(sequence=sequence)

    ActionServer(
        node,
        Fibonacci,
        "/fibonacci",
        execute,
        goal_callback=on_goal,
        cancel_callback=lambda handle: CancelResponse.ACCEPT,
        callback_group=group,
    )

    count = 0

    def tick() -> None:
        nonlocal count
        chatter.publish(String(data=f"hello {count}"))
        count += 1

    if args.rate > 0:
        node.create_timer(1.0 / args.rate, tick)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    executor = MultiThreadedExecutor(8)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    print("READY", flush=True)
    stop.wait()
    executor.shutdown(timeout_sec=1)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
