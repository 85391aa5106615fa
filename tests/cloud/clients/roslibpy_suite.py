"""The roslibpy client suite: the checks of ``suite.mjs`` with roslibpy, in its own process.

``python roslibpy_suite.py '<cfg JSON>'`` prints ``{check: {"ok", "detail"}}`` as JSON (roslibpy's
twisted reactor starts once per process, so each run is one process). cfg: ``host``, ``port``,
``token`` (None for no Authorization header) and the names of ``suite.mjs``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import roslibpy


def run(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    headers = {"Authorization": f"Bearer {cfg['token']}"} if cfg.get("token") else None
    ros = roslibpy.Ros(cfg["host"], cfg["port"], headers=headers)
    other = roslibpy.Ros(cfg["host"], cfg["port"], headers=headers)

    def check(name: str, seconds: float, body: Callable[[], str]) -> None:
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["ok"] = {"ok": True, "detail": body()}
            except Exception as exc:  # a failed check is a result, not a crash
                outcome["ok"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(seconds)
        results[name] = outcome.get("ok", {"ok": False, "detail": "timeout"})

    def connect() -> str:
        ros.run(timeout=10)
        other.run(timeout=10)
        return "connected"

    check("connect", 15, connect)
    if not results["connect"]["ok"]:
        return results
    if cfg.get("provide"):  # a reference server has no robot: serve the service here
        server = roslibpy.Service(other, cfg["service"], "std_srvs/srv/SetBool")

        def set_flag(request: dict[str, Any], response: dict[str, Any]) -> bool:
            response["success"] = request["data"] is True
            response["message"] = "flag set"
            return True

        server.advertise(set_flag)
        time.sleep(0.5)

    def wait(event: threading.Event, seconds: float, what: str) -> None:
        if not event.wait(seconds):
            raise TimeoutError(what)

    def rosapi_topics() -> str:
        topics = ros.get_topics()
        if cfg["state"] not in topics:
            raise AssertionError(f"{cfg['state']} not in {topics}")
        return f"{len(topics)} topics"

    check("rosapi_topics", 6, rosapi_topics)

    def before_first_publish() -> str:
        got: list[str] = []
        listener = roslibpy.Topic(ros, cfg["chatter"], "std_msgs/msg/String")
        listener.subscribe(lambda m: got.append(m["data"]))
        time.sleep(0.5)
        talker = roslibpy.Topic(other, cfg["chatter"], "std_msgs/msg/String")
        talker.advertise()
        time.sleep(0.3)
        for n in range(15):
            talker.publish(roslibpy.Message({"data": f"m{n}"}))
            time.sleep(0.02)
        deadline = time.monotonic() + 5
        while len(got) < 15 and time.monotonic() < deadline:
            time.sleep(0.1)
        listener.unsubscribe()
        if got != [f"m{n}" for n in range(15)]:
            raise AssertionError(f"got {got}")
        return "15 of 15, in order"

    check("subscribe_before_first_publish", 15, before_first_publish)

    def throttle() -> str:
        got: list[str] = []
        listener = roslibpy.Topic(ros, cfg["chatter"], "std_msgs/msg/String", throttle_rate=300)
        listener.subscribe(lambda m: got.append(m["data"]))
        time.sleep(0.5)
        talker = roslibpy.Topic(other, cfg["chatter"], "std_msgs/msg/String")
        for n in range(20):
            talker.publish(roslibpy.Message({"data": f"t{n}"}))
            time.sleep(0.05)
        time.sleep(0.8)
        listener.unsubscribe()
        if not 2 <= len(got) <= 8:
            raise AssertionError(f"{len(got)} of 20 in 1 s at 300 ms")
        return f"{len(got)} of 20"

    check("throttle_rate", 10, throttle)

    def unsubscribe() -> str:
        got: list[str] = []
        listener = roslibpy.Topic(ros, cfg["chatter"], "std_msgs/msg/String")
        listener.subscribe(lambda m: got.append(m["data"]))
        time.sleep(0.3)
        listener.unsubscribe()
        time.sleep(0.3)
        roslibpy.Topic(other, cfg["chatter"], "std_msgs/msg/String").publish(
            roslibpy.Message({"data": "after"})
        )
        time.sleep(0.7)
        if "after" in got:
            raise AssertionError("a message arrived after unsubscribe")
        return "none after unsubscribe"

    check("unsubscribe", 8, unsubscribe)

    def latest() -> str:
        arrived = threading.Event()
        late = roslibpy.Topic(ros, cfg["state"], "std_msgs/msg/String")
        late.subscribe(lambda m: arrived.set())
        wait(arrived, 6, "no latest value")
        late.unsubscribe()
        return "got the latest value"

    check("latest_value_of_state_topic", 8, latest)

    def big() -> str:
        size = 2 << 20
        arrived = threading.Event()
        listener = roslibpy.Topic(ros, cfg["chatter"], "std_msgs/msg/String")
        listener.subscribe(lambda m: len(m["data"]) == size and arrived.set())
        time.sleep(0.5)
        roslibpy.Topic(other, cfg["chatter"], "std_msgs/msg/String").publish(
            roslibpy.Message({"data": "x" * size})
        )
        wait(arrived, 15, "the 2 MiB message did not arrive")
        listener.unsubscribe()
        return "2 MiB through"

    check("big_message_2MB", 20, big)

    def call() -> str:
        service = roslibpy.Service(ros, cfg["service"], "std_srvs/srv/SetBool")
        response = service.call(roslibpy.ServiceRequest({"data": True}), timeout=6)
        if response["success"] is not True:
            raise AssertionError(str(response))
        return json.dumps(dict(response))

    check("call_service", 8, call)

    def refused() -> str:
        service = roslibpy.Service(ros, cfg["missingService"], "std_srvs/srv/SetBool")
        try:
            service.call(roslibpy.ServiceRequest({"data": True}), timeout=6)
        except Exception as exc:  # roslibpy raises on a failed call: that is the answer
            return f"raised {type(exc).__name__}: {str(exc)[:60]}"
        raise AssertionError("answered as a success")

    check("refused_call_is_answered", 8, refused)

    def action() -> str:
        done = threading.Event()
        outcome: dict[str, Any] = {}
        client = roslibpy.ActionClient(ros, cfg["action"], "test_msgs/action/Fibonacci")
        client.send_goal(
            roslibpy.Goal({"order": 2}),
            lambda result: (outcome.update(result=result), done.set()),
            lambda feedback: outcome.update(feedback=feedback),
            lambda error: (outcome.update(error=error), done.set()),
        )
        wait(done, 12, "no action result")
        if "error" in outcome:
            raise AssertionError(f"failed: {outcome['error']}")
        return f"result {outcome['result']}"

    check("action_goal", 15, action)

    def param() -> str:
        value = roslibpy.Param(ros, cfg["param"])
        value.set(7, timeout=5)
        read = value.get(timeout=5)
        if read != 7:
            raise AssertionError(f"read {read}")
        return "set 7, read 7"

    check("param_get_set", 12, param)
    for connection in (ros, other):
        try:
            connection.close(timeout=2)
        except Exception:  # closing a half-dead connection: nothing left to check
            pass
    return results


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)
    os._exit(0)  # roslibpy's reactor thread does not stop by itself
