"""The rclpy peers of the conformance suite's rosbridge world (run in the ROS 2 Jazzy venv).

One role per process, so that a test can take one away (``tests/conformance/
world_rosbridge.py`` starts them):

* ``--role robot``: node ``/conformance_robot`` with ``/set_flag`` (std_srvs/SetBool:
  ``success`` True, ``message`` saying the old and the new value), ``/trigger``
  (std_srvs/Trigger, succeeds) and ``/slow`` (std_srvs/Trigger, answers after 1 s); it allows
  undeclared parameters, so the suite may set, read and delete ``/conformance_robot:gain``;
* ``--role fail``: node ``/conformance_fail`` with ``/fail`` (std_srvs/Trigger), whose
  handler ends the process instead of answering (a ROS 2 service cannot answer with an error;
  rclpy's servers crash when their handler raises);
* ``--role actions``: node ``/conformance_actions`` with ``/fibonacci``
  (test_msgs/action/Fibonacci): order ``n`` sends the sequence as feedback as it grows, one
  number every 10 ms, and ends with the ``n + 1`` numbers; a negative order is rejected, an
  order above 46 (beyond int32) aborted, a cancel accepted.

Prints ``READY`` once everything is created. With ``--standby`` it creates its node only
when it reads ``GO`` on stdin (a replacement started before the tests, so that no test leaves
a process behind), then prints ``SERVING``. Ends on SIGTERM or when stdin closes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from std_srvs.srv import SetBool, Trigger
from test_msgs.action import Fibonacci

SERVICE_QOS = QoSProfile(depth=1000)
"""ROS 2 services keep 10 requests by default; a burst of calls would lose the rest."""


def robot() -> Node:
    node = Node("conformance_robot", allow_undeclared_parameters=True)
    group = ReentrantCallbackGroup()
    flag = [False]

    def set_flag(request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        old, flag[0] = flag[0], request.data
        response.success = True
        response.message = f"flag was {old}, is {request.data}"
        return response

    def trigger(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success = True
        response.message = "triggered"
        return response

    def slow(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        time.sleep(1.0)
        response.success = True
        response.message = "slow done"
        return response

    for kind, name, handler in (
        (SetBool, "/set_flag", set_flag),
        (Trigger, "/trigger", trigger),
        (Trigger, "/slow", slow),
    ):
        node.create_service(kind, name, handler, qos_profile=SERVICE_QOS, callback_group=group)
    return node


def fail() -> Node:
    node = Node("conformance_fail")

    def leave(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        sys.stdout.flush()
        os._exit(3)  # no answer, no goodbye: the graph forgets it after its DDS lease

    node.create_service(Trigger, "/fail", leave, qos_profile=SERVICE_QOS)
    return node


def actions() -> Node:
    node = Node("conformance_actions")

    def on_goal(goal: Fibonacci.Goal) -> GoalResponse:
        return GoalResponse.REJECT if goal.order < 0 else GoalResponse.ACCEPT

    def execute(handle):  # type: ignore[no-untyped-def]
        order = handle.request.order
        sequence = [0, 1][: order + 1]
        feedback = Fibonacci.Feedback()
        while len(sequence) < order + 1:
            if handle.is_cancel_requested:
                handle.canceled()
                return Fibonacci.Result(sequence=sequence)
            if len(sequence) > 46:  # the next number is beyond int32
                handle.abort()
                return Fibonacci.Result(sequence=sequence)
            sequence.append(sequence[-1] + sequence[-2])
            feedback.sequence = sequence
            handle.publish_feedback(feedback)
            time.sleep(0.01)
        handle.succeed()
        return Fibonacci.Result(sequence=sequence)

    ActionServer(
        node,
        Fibonacci,
        "/fibonacci",
        execute,
        goal_callback=on_goal,
        cancel_callback=lambda handle: CancelResponse.ACCEPT,
        callback_group=ReentrantCallbackGroup(),
    )
    return node


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=("robot", "fail", "actions"), required=True)
    parser.add_argument("--standby", action="store_true", help="create the node on GO")
    args = parser.parse_args()
    rclpy.init()
    executor = MultiThreadedExecutor(8)
    nodes: list[Node] = []

    def serve() -> None:
        node = {"robot": robot, "fail": fail, "actions": actions}[args.role]()
        nodes.append(node)
        executor.add_node(node)

    stop = threading.Event()

    def read_commands() -> None:
        for line in sys.stdin:
            if line.strip() == "GO" and not nodes:
                serve()
                print("SERVING", flush=True)
        stop.set()

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not args.standby:
        serve()
    threading.Thread(target=executor.spin, daemon=True).start()
    threading.Thread(target=read_commands, daemon=True).start()
    print("READY", flush=True)
    stop.wait()
    executor.shutdown(timeout_sec=1)
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
