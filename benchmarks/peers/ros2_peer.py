"""ROS 2 peers of the benchmark (rclpy), the counterparts of ``tests/ros1/peers/``.

The repository has no ROS 2 test peers, so the ROS 2 world of the benchmark (the roslibpy
through rosbridge contender and its rclpy floor) gets these. Run with the Python of the ROS 2
wheels venv; ``--mode`` picks what the node does:

* ``echo``: republish every message of ``--in`` on ``--out`` (``--type`` std_msgs/String or
  std_msgs/UInt8MultiArray);
* ``talker``: publish std_msgs/String ``"hello N"`` on ``--topic`` at ``--rate`` Hz (0: as
  fast as the loop goes), forever;
* ``setbool``: serve std_srvs/SetBool at ``--name``: ``success = data``;
* ``fibonacci``: serve the action test_msgs/action/Fibonacci at ``--name``: the sequence of
  ``order + 1`` numbers, one feedback per number, no waiting.

Prints ``READY`` once its publishers, subscriptions and services exist, then (talker) one JSON
line ``{"created": time.monotonic()}`` taken when ``create_publisher`` returned. Keep the
environment loopback-only: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a private
``ROS_DOMAIN_ID`` (the orchestrator sets both).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile


def _message_class(type_name: str) -> type:
    if type_name == "std_msgs/UInt8MultiArray":
        from std_msgs.msg import UInt8MultiArray

        return UInt8MultiArray
    from std_msgs.msg import String

    return String


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("echo", "talker", "setbool", "fibonacci"), required=True)
    parser.add_argument("--in", dest="topic_in", default="/bench/in")
    parser.add_argument("--out", dest="topic_out", default="/bench/out")
    parser.add_argument("--type", default="std_msgs/String")
    parser.add_argument("--topic", default="/bench/stream")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--name", default="/set_flag")
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node(f"bench_{args.mode}_{os.getpid()}")
    qos = QoSProfile(depth=100)
    try:
        if args.mode == "echo":
            cls = _message_class(args.type)
            publisher = node.create_publisher(cls, args.topic_out, qos)
            node.create_subscription(cls, args.topic_in, publisher.publish, qos)
            print("READY", flush=True)
            rclpy.spin(node)
        elif args.mode == "setbool":
            from std_srvs.srv import SetBool

            def handle(request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
                response.success = request.data
                response.message = f"flag is {request.data}"
                return response

            node.create_service(SetBool, args.name, handle)
            print("READY", flush=True)
            rclpy.spin(node)
        elif args.mode == "fibonacci":
            from rclpy.action import ActionServer
            from test_msgs.action import Fibonacci

            def execute(goal: Any) -> Any:
                sequence = [0, 1]
                feedback = Fibonacci.Feedback()
                for _ in range(1, max(goal.request.order, 1)):
                    sequence.append(sequence[-1] + sequence[-2])
                    feedback.sequence = sequence
                    goal.publish_feedback(feedback)
                goal.succeed()
                return Fibonacci.Result(sequence=sequence)

            ActionServer(node, Fibonacci, args.name, execute)
            print("READY", flush=True)
            rclpy.spin(node)
        else:
            from std_msgs.msg import String

            publisher = node.create_publisher(String, args.topic, qos)
            created = time.monotonic()
            print("READY", flush=True)
            print(json.dumps({"created": created}), flush=True)
            period = 1.0 / args.rate if args.rate > 0 else 0.0
            next_at = time.monotonic()
            count = 0
            while rclpy.ok():
                publisher.publish(String(data=f"hello {count}"))
                count += 1
                if period:
                    next_at += period
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    elif delay < -1.0:
                        next_at = time.monotonic()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()


if __name__ == "__main__":
    main()
