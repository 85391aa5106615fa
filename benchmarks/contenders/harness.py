"""What every contender process shares: the line protocol with ``benchmarks/run.py``, clocks,
RSS, and the payloads.

A contender is a script run by the orchestrator in a fresh interpreter (each in the Python
that can import it: the project's ``.venv``, the scratch venv of original Pyros 0.4.3, or the
ROS 2 wheels venv). This module imports only the standard library, so every one of them can
import it; the scripts import it as a top-level module (their own directory is ``sys.path[0]``),
never the repository root, which would shadow original Pyros's ``pyros`` package.

Protocol (stdin/stdout, one JSON document per line; stdout lines without the :data:`MARK`
prefix are library chatter, which the orchestrator logs and ignores):

* orchestrator -> contender: ``{"op": NAME, "args": {...}}``; ``{"op": "exit"}`` ends.
* contender -> orchestrator: ``MARK {"result": ...}`` or ``MARK {"error": "..."}`` per op.
* while an op runs, the contender may ask the orchestrator to act on the world (start a peer,
  stop it): ``MARK {"request": NAME, "args": {...}}``, answered by one stdin line
  ``{"reply": ...}``.

Clocks: every timestamp is ``time.monotonic()`` (CLOCK_MONOTONIC, one clock for the whole
machine on Linux), so a time taken in a peer and one taken in a contender can be subtracted.
Intervals inside one process use ``time.perf_counter()`` (the same clock on Linux, finer API).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

MARK = "@@bench "
"""Prefix of protocol lines on a contender's stdout."""

SMALL_TEXT_BYTES = 16
"""Payload of the small round trip: a std_msgs/String of 16 characters."""

LARGE_BYTES = 1_000_000
"""The large round trip: a std_msgs/UInt8MultiArray carrying 1 MB of ``uint8[]`` data.

(Not a sensor_msgs/Image: original Pyros 0.4.3 cannot publish any message with a
std_msgs/Header, its conversion calls a ``get_rostime`` its own rospy wrapper lacks.)"""

LARGE_TYPE = "std_msgs/UInt8MultiArray"

_out = sys.stdout

_OFFSET = 1000
"""Added to a large message's index to make ``layout.data_offset`` (a uint32) of it."""


def small_text(index: int) -> str:
    """The 16-byte ``data`` of small message ``index`` (its index, zero-padded)."""
    return f"{index:0{SMALL_TEXT_BYTES}d}"


def large_data() -> bytes:
    """The 1 MB ``data`` of every large message (a fixed pattern, not all zeros)."""
    return (bytes(range(256)) * (LARGE_BYTES // 256 + 1))[:LARGE_BYTES]


def large_layout(index: int) -> dict[str, Any]:
    """The ``layout`` of large message ``index``: ``data_offset`` carries the index."""
    return {"dim": [], "data_offset": index + _OFFSET}


def large_index(data_offset: int) -> int:
    """The index carried by a large message's ``layout.data_offset``."""
    return data_offset - _OFFSET


def round_trip_topics(large: bool) -> tuple[str, str]:
    """The round trip's ``(in, out)`` topics: ``/bench/in``, ``/bench/out`` or, for the large
    messages, ``/bench/in_large``, ``/bench/out_large`` (the echo peers' topics)."""
    return ("/bench/in_large", "/bench/out_large") if large else ("/bench/in", "/bench/out")


def round_trip_fields(large: bool, index: int, data: Any) -> tuple[dict[str, Any], Any]:
    """Round-trip message ``index``'s fields, and what tells its echo: ``layout.data_offset``
    read with :func:`large_index` (large) or ``data`` (small).

    Args:
        large: a std_msgs/UInt8MultiArray of ``data`` (1 MB in the form the library takes it:
            bytes, base64 text), else a std_msgs/String of :func:`small_text`.
        index: the message's number; below 0 for warm-up messages.
        data: the large payload.
    """
    if large:
        return {"layout": large_layout(index), "data": data}, index
    text = small_text(index)
    return {"data": text}, text


def talker_index(text: str) -> int:
    """The N of the ``talker`` peer's ``"hello N"`` messages."""
    return int(text.rsplit(" ", 1)[-1])


class FirstArrival:
    """Times discovery: from a talker's topic appearing to the first message a callback sees.

    Pass :meth:`on_message` as the subscription's callback (it takes any arguments), then call
    :meth:`after_talker_starts`. Times are ``time.monotonic()`` (CLOCK_MONOTONIC, comparable
    with the orchestrator's ``appeared`` stamp across processes on Linux).
    """

    def __init__(self) -> None:
        self.at: float | None = None
        self._arrived = threading.Event()

    def on_message(self, *_: Any) -> None:
        """Note the time of the first message; later ones change nothing."""
        if self.at is None:
            self.at = time.monotonic()
            self._arrived.set()

    def after_talker_starts(self, topic: str, timeout: float) -> float:
        """Start a 1 kHz talker on ``topic``, wait for the first message, stop the talker.

        Returns:
            Seconds from the orchestrator seeing the topic appear to the first message.

        Raises:
            TimeoutError: no message within ``timeout`` seconds.
        """
        peer = ask("start_peer", kind="talker", topic=topic, rate=1000.0)
        try:
            if not self._arrived.wait(timeout):
                raise TimeoutError(f"no message on {topic} within {timeout:g} s")
        finally:
            ask("stop_peer", id=peer["id"])
        assert self.at is not None
        return self.at - float(peer["appeared"])


class StreamCounter:
    """Counts, in a subscriber callback, the talker messages of one measurement window.

    The callback calls :meth:`on_text` with each message's ``data``; :meth:`measure` waits for
    the first message, counts for ``window`` seconds (``time.perf_counter``) and summarises
    with :func:`stream_summary`.
    """

    def __init__(self) -> None:
        self.indices: list[int] = []
        self._counting = threading.Event()
        self._first = threading.Event()

    def on_text(self, text: str) -> None:
        """Note one received message (``data`` as the talker wrote it)."""
        self._first.set()
        if self._counting.is_set():
            self.indices.append(talker_index(text))

    def measure(self, window: float, first_timeout: float) -> dict[str, Any]:
        """Wait up to ``first_timeout`` s for a first message, then count for ``window`` s.

        Raises:
            TimeoutError: no message arrived within ``first_timeout``.
        """
        if not self._first.wait(first_timeout):
            raise TimeoutError(f"no message on /bench/stream within {first_timeout:g} s")
        self._counting.set()
        started = time.perf_counter()
        time.sleep(window)
        self._counting.clear()
        return stream_summary(list(self.indices), time.perf_counter() - started)


def stream_summary(indices: list[int], seconds: float) -> dict[str, Any]:
    """Summarise the talker indices a client received in a ``seconds``-long window.

    ``loss`` counts the indices missing between the first and the last one received, as the
    talker numbers its messages 0, 1, 2...; ``sent_per_s`` is what the talker published over
    the same span.
    """
    if not indices:
        return {"received": 0, "msgs_per_s": 0.0, "lost": None, "loss_ratio": None}
    span = max(indices) - min(indices) + 1
    unique = len(set(indices))
    return {
        "received": len(indices),
        "msgs_per_s": len(indices) / seconds,
        "sent_per_s": span / seconds,
        "lost": span - unique,
        "loss_ratio": (span - unique) / span,
        "window_s": seconds,
    }


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from ``/proc/PID/status``."""
    path = f"/proc/{pid or 'self'}/status"
    with open(path, encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in {path}")


def send(document: dict[str, Any]) -> None:
    """Write one protocol line."""
    _out.write(MARK + json.dumps(document) + "\n")
    _out.flush()


def ask(request: str, **args: Any) -> Any:
    """Ask the orchestrator to do ``request`` (``start_peer``, ``stop_peer``...) and wait."""
    send({"request": request, "args": args})
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("orchestrator went away")
    reply = json.loads(line)
    if "error" in reply:
        raise RuntimeError(f"orchestrator could not {request}: {reply['error']}")
    return reply["reply"]


def deadline_loop(seconds: float) -> Callable[[], bool]:
    """Return a function that is True until ``seconds`` have passed (for bounded loops)."""
    end = time.monotonic() + seconds
    return lambda: time.monotonic() < end


OPS = ("footprint", "spawn_to_ready", "round_trip", "stream", "service", "discovery", "action")
"""The ops the orchestrator runs, each a function of the same name in the contender scripts
(``action`` only in those of the ROS 2 world that run it)."""


def serve_ops(namespace: dict[str, Any], at_exit: Callable[[], None] | None = None) -> None:
    """:func:`serve` the :data:`OPS` a contender script defines: ``serve_ops(globals())``."""
    serve({op: namespace[op] for op in OPS if op in namespace}, at_exit)


def serve(ops: dict[str, Callable[..., Any]], at_exit: Callable[[], None] | None = None) -> None:
    """Answer the orchestrator's ops until ``exit`` or end of input, then run ``at_exit``."""
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "exit":
            break
        try:
            result = ops[op](**command.get("args", {}))
        except Exception as exc:  # reported, never fatal: the orchestrator records it
            traceback.print_exc()
            send({"error": f"{type(exc).__name__}: {exc}"})
        else:
            send({"result": result})
    if at_exit is not None:
        at_exit()
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown: rospy and pyzmq threads may hang it
