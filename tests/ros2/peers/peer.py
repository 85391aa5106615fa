"""A real rclpy node for the ROS 2 tests, driven by JSON lines on stdin.

It is independent of the code under test: it finds rclpy with
``pyros_ros.environment.setup_ros2()`` (the one pyros function it uses) and converts messages
with its own small walker (:func:`plain`), not with ``pyros_ros.ros2.conversion``.

Usage: ``peer.py --node-name NAME [--namespace NS] [--allow-undeclared]
[--params JSON]``; it prints ``READY`` once its node exists, then answers each request
``{"id": n, "op": ..., ...}`` with ``{"id": n, "result": ...}`` or ``{"id": n, "error":
"..."}``, and prints events: ``{"event": "message", "topic", "message"}`` for subscriptions,
``{"event": "call", "service", "request"}`` for services, ``{"event": "goal", ...}`` for
action goals, ``{"event": "cancel", ...}``. ``bytes`` travel as ``{"$bytes": base64}``.

Ops (each returns once its entities exist):

- ``publisher`` (topic, type, qos?): a publisher; ``publish`` (topic, message): one message;
- ``talk`` (topic, rate, type?="std_msgs/msg/String", qos?): a timer publishing ``"hello N"``;
- ``subscribe`` (topic, type, qos?): emit every message as an event;
- ``destroy`` (topic | service | action): remove that entity;
- ``service`` (name, kind): ``setbool`` (success = data; the message says the old and new
  flag), ``trigger`` (counts calls),
  ``slow`` (Trigger answered after ``delay`` s), ``exit`` (Trigger; the process leaves the
  graph cleanly instead of answering);
- ``action`` (name, period?): test_msgs/action/Fibonacci: one feedback per ``period`` s
  with the sequence so far; order < 0 is rejected, order > 46 aborted; ``exit_at``/``kill_at``
  (k): after k feedbacks the process leaves cleanly / SIGKILLs itself;
- ``declare`` (params: {name: value}), ``param`` (name): the node's own parameters;
- ``nodes``: the full names this peer sees in the graph;
- ``exit``: leave the graph cleanly and exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository

from pyros_ros.environment import setup_ros2  # noqa: E402
from tests.json_lines import dumps, loads  # noqa: E402

setup_ros2()

import rclpy  # noqa: E402
from rclpy.action import ActionServer, CancelResponse, GoalResponse  # noqa: E402
from rclpy.callback_groups import ReentrantCallbackGroup  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

_output = threading.Lock()


class Leaving(Exception):
    """Raised by a callback after :meth:`Peer.leave_from_callback`."""


def emit(value: Any) -> None:
    line = dumps(value)
    with _output:
        print(line, flush=True)


def plain(value: Any) -> Any:
    """An rclpy message or field value as plain data, independently of pyros: arrays and
    sequences become lists (``uint8``/``byte`` ones too: lists of ints)."""
    if hasattr(value, "get_fields_and_field_types"):
        return {name: plain(getattr(value, name)) for name in value.get_fields_and_field_types()}
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, bytes) and len(value) == 1:
        return value[0]
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def build(cls: Any, data: dict[str, Any]) -> Any:
    """An rclpy message from nested dicts, through rclpy's own setters."""
    msg = cls()
    for name, value in data.items():
        if isinstance(value, dict):
            setattr(msg, name, build(type(getattr(msg, name)), value))
        else:
            setattr(msg, name, value)
    return msg


def message_class(type_name: str) -> Any:
    import importlib

    parts = type_name.split("/")
    package, kind, name = (parts[0], "msg", parts[1]) if len(parts) == 2 else parts
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def profile(qos: dict[str, Any] | None) -> QoSProfile:
    qos = qos or {}
    return QoSProfile(
        depth=qos.get("depth", 10),
        reliability=ReliabilityPolicy.BEST_EFFORT
        if qos.get("reliability") == "best_effort"
        else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL
        if qos.get("durability") == "transient_local"
        else DurabilityPolicy.VOLATILE,
    )


class Peer:
    def __init__(self, node: Any, executor: Any, spinner: threading.Thread) -> None:
        self.node = node
        self.executor = executor
        self.spinner = spinner
        self.group = ReentrantCallbackGroup()
        self.entities: dict[str, Any] = {}
        self.publishers: dict[str, Any] = {}
        self.calls = 0

    def leave(self, code: int = 0) -> None:
        """Leave the graph cleanly (the DDS participant says goodbye) and exit ``code``."""
        with _output:
            sys.stdout.flush()
        self.executor.shutdown(timeout_sec=1.0)
        # Join the spinning thread first: while it waits on the node, rclpy only defers the
        # node's destruction, and exiting then would not announce that the node left.
        if self.spinner is not threading.current_thread():
            self.spinner.join(2.0)
        self.node.destroy_node()
        rclpy.try_shutdown()
        os._exit(code)

    def leave_from_callback(self) -> None:
        """Leave from inside a callback, which must then raise :class:`Leaving`: the node
        can be destroyed only once no callback runs, and raising sends no response."""

        def later() -> None:
            time.sleep(0.2)
            self.leave(0)

        threading.Thread(target=later).start()
        raise Leaving()

    def op_publisher(self, topic: str, type: str, qos: dict[str, Any] | None = None) -> None:
        publisher = self.node.create_publisher(message_class(type), topic, profile(qos))
        self.publishers[topic] = publisher
        self.entities[topic] = publisher

    def op_publish(self, topic: str, message: dict[str, Any]) -> None:
        publisher = self.publishers[topic]
        publisher.publish(build(publisher.msg_type, message))

    def op_talk(
        self,
        topic: str,
        rate: float,
        type: str = "std_msgs/msg/String",
        qos: dict[str, Any] | None = None,
    ) -> None:
        cls = message_class(type)
        publisher = self.node.create_publisher(cls, topic, profile(qos))
        count = [0]

        def tick() -> None:
            publisher.publish(cls(data=f"hello {count[0]}"))
            count[0] += 1

        timer = self.node.create_timer(1.0 / rate, tick, callback_group=self.group)
        self.entities[topic] = (publisher, timer)

    def op_subscribe(self, topic: str, type: str, qos: dict[str, Any] | None = None) -> None:
        def on_message(msg: Any) -> None:
            emit({"event": "message", "topic": topic, "message": plain(msg)})

        self.entities[topic] = self.node.create_subscription(
            message_class(type), topic, on_message, profile(qos), callback_group=self.group
        )

    def op_destroy(self, name: str) -> None:
        entity = self.entities.pop(name)
        for item in entity if isinstance(entity, tuple) else (entity,):
            if hasattr(item, "cancel"):  # a timer
                self.node.destroy_timer(item)
            elif isinstance(item, ActionServer):
                item.destroy()
            elif hasattr(item, "publish"):
                self.node.destroy_publisher(item)
            elif hasattr(item, "srv_type"):
                self.node.destroy_service(item)
            else:
                self.node.destroy_subscription(item)

    def op_service(self, name: str, kind: str, delay: float = 0.0) -> None:
        from std_srvs.srv import SetBool, Trigger

        flag = [False]

        def setbool(request: Any, response: Any) -> Any:
            emit({"event": "call", "service": name, "request": plain(request)})
            response.success = request.data
            response.message = f"flag was {flag[0]}, is {request.data}"
            flag[0] = request.data
            return response

        def trigger(request: Any, response: Any) -> Any:
            self.calls += 1
            emit({"event": "call", "service": name, "request": {}})
            if kind == "slow":
                time.sleep(delay)
            if kind == "exit":
                self.leave_from_callback()
            response.success = True
            response.message = f"call {self.calls}"
            return response

        srv_type, handler = (SetBool, setbool) if kind == "setbool" else (Trigger, trigger)
        self.entities[name] = self.node.create_service(
            srv_type, name, handler, callback_group=self.group
        )

    def op_action(
        self,
        name: str,
        period: float = 0.02,
        exit_at: int | None = None,
        kill_at: int | None = None,
    ) -> None:
        from test_msgs.action import Fibonacci

        def on_goal(goal: Any) -> GoalResponse:
            emit({"event": "goal", "action": name, "goal": plain(goal)})
            return GoalResponse.REJECT if goal.order < 0 else GoalResponse.ACCEPT

        def on_cancel(handle: Any) -> CancelResponse:
            emit({"event": "cancel", "action": name})
            return CancelResponse.ACCEPT

        def execute(handle: Any) -> Any:
            order = handle.request.order
            sequence = [0, 1]
            if order > 46:  # the sequence would overflow int32
                handle.abort()
                return Fibonacci.Result(sequence=[-1])
            feedback = Fibonacci.Feedback()
            for step in range(1, max(order, 1)):
                if handle.is_cancel_requested:
                    handle.canceled()
                    return Fibonacci.Result(sequence=sequence)
                if exit_at is not None and step > exit_at:
                    self.leave_from_callback()
                if kill_at is not None and step > kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                sequence.append(sequence[-1] + sequence[-2])
                feedback.sequence = sequence
                handle.publish_feedback(feedback)
                time.sleep(period)
            handle.succeed()
            return Fibonacci.Result(sequence=sequence)

        self.entities[name] = ActionServer(
            self.node,
            Fibonacci,
            name,
            execute,
            goal_callback=on_goal,
            cancel_callback=on_cancel,
            callback_group=self.group,
        )

    def op_declare(self, params: dict[str, Any]) -> None:
        for key, value in params.items():
            self.node.declare_parameter(key, value)

    def op_param(self, name: str) -> Any:
        value = self.node.get_parameter(name).value
        return list(value) if hasattr(value, "__len__") and not isinstance(value, str) else value

    def op_nodes(self) -> list[str]:
        return sorted(
            f"{ns.rstrip('/')}/{name}" for name, ns in self.node.get_node_names_and_namespaces()
        )

    def op_exit(self) -> None:
        emit({"event": "exiting"})
        self.leave(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--namespace", default="/")
    parser.add_argument("--allow-undeclared", action="store_true")
    parser.add_argument("--params", default="{}", help="JSON: parameters to declare at start")
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node(
        args.node_name,
        namespace=args.namespace,
        allow_undeclared_parameters=args.allow_undeclared,
        parameter_overrides=[Parameter(k, value=v) for k, v in json.loads(args.params).items()],
        automatically_declare_parameters_from_overrides=True,
    )
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    peer = Peer(node, executor, spinner)
    spinner.start()
    with _output:
        print("READY", flush=True)
    for line in sys.stdin:
        request = loads(line)
        ident = request.pop("id")
        op = request.pop("op")
        try:
            result = getattr(peer, f"op_{op}")(**request)
            emit({"id": ident, "result": result})
        except Exception as exc:
            emit({"id": ident, "error": f"{type(exc).__name__}: {exc}"})
    peer.leave(0)  # stdin closed: the test is done with this peer


if __name__ == "__main__":
    main()
