"""A real roslibpy operator, driven by JSON lines on stdin, answering JSON lines on stdout.

roslibpy runs a twisted reactor that can start once per process, so each test operator is one
run of this script (see ``RoslibpyOperator`` in ``relay_support.py``). Requests carry an ``n``;
the answer to each is ``{"reply": n, "ok": bool, ...}``. Topic messages arrive as events
``{"event": "msg", "topic": ..., "msg": ...}`` unless the subscription says ``"count": true``,
in which case only per-topic counts and seq checks are kept (for the load test) and reported by
``{"cmd": "stats"}``.

Commands: connect {host, port, token?, secure?, connect_timeout?}, subscribe {topic, type,
throttle_rate?, queue_length?, count?}, unsubscribe {topic}, publish {topic, type, msg}, call
{service, type, args, timeout}, rosapi {what: topics|services|nodes|topic_type, arg?}, stats,
close.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import roslibpy

out_lock = threading.Lock()


def emit(payload: dict[str, Any]) -> None:
    with out_lock:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()


class Counter:
    """Per-topic message count and seq continuity (each message carries ``seq``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.gaps = 0
        self.disorder = 0
        self.first = 0.0
        self.latest = 0.0

    def callback(self, topic: str) -> Any:
        def on_message(message: dict[str, Any]) -> None:
            now = time.monotonic()
            seq = int(message["seq"])
            with self.lock:
                if not self.first:
                    self.first = now
                self.latest = now
                self.counts[topic] = self.counts.get(topic, 0) + 1
                previous = self.last.get(topic, 0)
                if seq > previous + 1:
                    self.gaps += seq - previous - 1
                elif seq <= previous:
                    self.disorder += 1
                self.last[topic] = max(previous, seq)

        return on_message

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": sum(self.counts.values()),
                "topics": len(self.counts),
                "gaps": self.gaps,
                "disorder": self.disorder,
                "last": dict(self.last),
                "span": self.latest - self.first if self.first else 0.0,
            }


def main() -> None:
    ros: roslibpy.Ros | None = None
    topics: dict[str, roslibpy.Topic] = {}
    counter = Counter()
    for line in sys.stdin:
        request = json.loads(line)
        number = request.get("n")
        cmd = request["cmd"]
        try:
            if cmd == "connect":
                headers = {}
                if request.get("token"):
                    headers["Authorization"] = f"Bearer {request['token']}"
                ros = roslibpy.Ros(
                    request["host"],
                    request["port"],
                    is_secure=request.get("secure", False),
                    headers=headers,
                )
                try:
                    ros.run(timeout=request.get("connect_timeout", 5))
                except Exception as exc:  # roslibpy raises a bare Exception on failure
                    emit({"reply": number, "ok": False, "error": str(exc)})
                    continue
                emit({"reply": number, "ok": True})
            elif cmd == "subscribe":
                assert ros is not None
                topic = roslibpy.Topic(
                    ros,
                    request["topic"],
                    request["type"],
                    throttle_rate=request.get("throttle_rate", 0),
                    queue_length=request.get("queue_length", 0),
                )
                if request.get("count"):
                    topic.subscribe(counter.callback(request["topic"]))
                else:
                    name = request["topic"]
                    topic.subscribe(
                        lambda msg, name=name: emit({"event": "msg", "topic": name, "msg": msg})
                    )
                topics[request["topic"]] = topic
                emit({"reply": number, "ok": True})
            elif cmd == "unsubscribe":
                topics.pop(request["topic"]).unsubscribe()
                emit({"reply": number, "ok": True})
            elif cmd == "publish":
                assert ros is not None
                topic = topics.get(request["topic"]) or roslibpy.Topic(
                    ros, request["topic"], request["type"]
                )
                topics[request["topic"]] = topic
                topic.publish(roslibpy.Message(request["msg"]))
                emit({"reply": number, "ok": True})
            elif cmd == "call":
                assert ros is not None
                service = roslibpy.Service(ros, request["service"], request["type"])
                try:
                    values = service.call(
                        roslibpy.ServiceRequest(request.get("args", {})),
                        timeout=request.get("timeout", 10),
                    )
                except roslibpy.core.ServiceException as exc:
                    emit({"reply": number, "ok": False, "error": str(exc)})
                    continue
                emit({"reply": number, "ok": True, "values": dict(values)})
            elif cmd == "rosapi":
                assert ros is not None
                what = request["what"]
                if what == "topics":
                    values = ros.get_topics()
                elif what == "services":
                    values = ros.get_services()
                elif what == "nodes":
                    values = ros.get_nodes()
                else:
                    values = ros.get_topic_type(request["arg"])
                emit({"reply": number, "ok": True, "values": values})
            elif cmd == "stats":
                emit({"reply": number, "ok": True, **counter.stats()})
            elif cmd == "close":
                if ros is not None:
                    ros.terminate()
                emit({"reply": number, "ok": True})
                return
            else:
                emit({"reply": number, "ok": False, "error": f"unknown cmd {cmd}"})
        except Exception as exc:
            emit({"reply": number, "ok": False, "error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    main()
