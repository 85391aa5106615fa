"""Run one ``Ros1Backend`` in this process and drive it with JSON lines on stdin.

rospy allows one node per process, so tests drive each backend under test through one of
these (``ros1_support.BackendDriver``, fixture ``ros1_backend``).

Usage: ``backend_driver.py NODE_NAME [OPTIONS_JSON]``, e.g. ``'{"master_uri": "http://..."}'``.

Output (stdout, JSON lines, ``bytes`` as ``{"$bytes": base64}``):

- first ``{"started": {"node": "/pyros_x", "start_seconds": s}}``, or
  ``{"error": {...}}`` and exit status 3 if ``start()`` raised;
- for each request ``{"id": n, "op": "publish", "args": [...]}`` on stdin, one reply
  ``{"id": n, "result": ...}`` or ``{"id": n, "error": {"type", "message", "field"?,
  "pyros": bool, "traceback"}}``;
- for each message of a subscribed topic ``{"event": "message", "topic", "message",
  "monotonic"}``;
- for each feedback of a goal ``{"event": "feedback", "goal": ref, "feedback": dict}`` and when
  it ends ``{"event": "done", "goal": ref, "outcome": {"status", "result", "message"}}``.

Ops are the Backend methods (``subscribe`` takes topic and type; the callback is the event
above; ``send_goal`` takes action, type, goal and timeout, returns ``{"ref": n, "id": goal
id}`` and sends the goal events above; ``cancel_goal`` takes the ref) plus ``timeit(op, args,
n)``: run an op n times here and return the mean seconds, and ``concurrently(threads, op,
args, n)``: run an op n times in each of ``threads`` threads at once and return every result
(a failure raises the first error).
The driver calls ``stop()`` when stdin closes, then exits 0.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from typing import Any

import _peer  # noqa: F401  (puts the repository and tests/ros1 on sys.path)

from pyros.backends.base import BackendGoal, GoalOutcome
from pyros.exceptions import PyrosError
from pyros_ros.ros1 import Ros1Backend
from tests.json_lines import loads


def error_of(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, PyrosError):
        error = exc.to_wire()
        error["pyros"] = True
    else:
        error = {"type": type(exc).__name__, "message": str(exc), "pyros": False}
    error["traceback"] = "".join(traceback.format_exception(exc))
    return error


def main() -> int:
    node_name = sys.argv[1]
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    try:
        backend = Ros1Backend(node_name, **options)
        began = time.monotonic()
        backend.start()
        took = time.monotonic() - began
    except Exception as exc:
        _peer.emit({"error": error_of(exc)})
        return 3
    import rospy

    _peer.emit({"started": {"node": rospy.get_name(), "start_seconds": took}})

    def on_message(topic: str) -> Any:
        def deliver(message: dict[str, Any]) -> None:
            _peer.emit(
                {
                    "event": "message",
                    "topic": topic,
                    "message": message,
                    "monotonic": time.monotonic(),
                }
            )

        return deliver

    goals: dict[int, BackendGoal] = {}
    refs = iter(range(1, 1 << 62))

    def send_goal(action: str, type_name: str, goal: dict[str, Any], timeout: float) -> Any:
        ref = next(refs)

        def feedback(message: dict[str, Any]) -> None:
            _peer.emit({"event": "feedback", "goal": ref, "feedback": message})

        def done(outcome: GoalOutcome) -> None:
            body = {"status": outcome.status, "result": outcome.result, "message": outcome.message}
            _peer.emit({"event": "done", "goal": ref, "outcome": body})

        handle = goals[ref] = backend.send_goal(action, type_name, goal, feedback, done, timeout)
        return {"ref": ref, "id": handle.id}

    def run(op: str, args: list[Any]) -> Any:
        if op == "subscribe":
            topic, type_name = args
            return backend.subscribe(topic, type_name, on_message(topic))
        if op == "send_goal":
            return send_goal(*args)
        if op == "cancel_goal":
            return goals[args[0]].cancel()
        if op == "timeit":
            inner, inner_args, count = args
            began = time.perf_counter()
            for _ in range(count):
                run(inner, inner_args)
            return (time.perf_counter() - began) / count
        if op == "concurrently":
            threads, inner, inner_args, count = args
            results: list[Any] = []
            errors: list[BaseException] = []
            start = threading.Barrier(threads)

            def work() -> None:
                start.wait()
                for _ in range(count):
                    try:
                        results.append(run(inner, inner_args))
                    except Exception as exc:
                        errors.append(exc)

            workers = [threading.Thread(target=work) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            if errors:
                raise errors[0]
            return results
        if op.startswith("_") or not hasattr(backend, op):
            raise ValueError(f"no such op {op!r}")
        return getattr(backend, op)(*args)

    for line in sys.stdin:
        request = loads(line)
        try:
            reply = {"id": request["id"], "result": run(request["op"], request["args"])}
        except Exception as exc:
            reply = {"id": request["id"], "error": error_of(exc)}
        _peer.emit(reply)
    backend.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
