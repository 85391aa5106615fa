"""The relay's operations surface: Prometheus metrics and structured (JSON) log lines.

:class:`RelayMetrics` holds the relay's counters in a private ``prometheus_client`` registry
(one per relay, so several relays in one process never mix) and renders the text exposition
format for ``GET /metrics``. Metric names follow Prometheus conventions (``_total`` counters,
base units: bytes):

* ``pyros_relay_connections{kind="device"|"operator"}``: open connections (gauge);
* ``pyros_relay_devices_online``: devices with a connector now (gauge);
* ``pyros_relay_messages_total{device, direction="in"|"out"}``: messages from a device, and
  messages of a device's topics sent to operators;
* ``pyros_relay_bytes_total{device, direction}``: the same in bytes of frames;
* ``pyros_relay_dropped_total{reason="send_queue"|"rate_limit"|"connector"}``: messages lost,
  by where (a slow operator's queue, a peer over its rate, a connector's buffer);
* ``pyros_relay_auth_failures_total``: refused sign-ins;
* ``pyros_relay_send_queue_frames``: frames waiting in all send queues (gauge, at scrape time);
* ``pyros_relay_send_queue_max_frames``: the fullest send queue (gauge, at scrape time).

:class:`JsonFormatter` writes one JSON object per log record (``ts``, ``level``, ``logger``,
``msg`` and the record's ``extra`` fields) for ``pyros relay --log-format json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

__all__ = ["RelayMetrics", "JsonFormatter", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format's content type."""


class RelayMetrics:
    """Counters and gauges of one relay (names in the module docstring).

    Args:
        queue_depths: called at scrape time; returns the frames waiting in each send queue.
    """

    def __init__(self, queue_depths: Callable[[], Iterable[int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.connections = Gauge(
            "pyros_relay_connections", "Open connections.", ["kind"], registry=self.registry
        )
        self.devices_online = Gauge(
            "pyros_relay_devices_online", "Devices with a connector now.", registry=self.registry
        )
        self.messages = Counter(
            "pyros_relay_messages",
            "Messages from devices (in) and of devices' topics to operators (out).",
            ["device", "direction"],
            registry=self.registry,
        )
        self.bytes = Counter(
            "pyros_relay_bytes",
            "Bytes of the frames counted in pyros_relay_messages_total.",
            ["device", "direction"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "pyros_relay_dropped",
            "Messages lost: send_queue (slow operator), rate_limit, connector (its buffer).",
            ["reason"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "pyros_relay_auth_failures", "Refused sign-ins.", registry=self.registry
        )
        self._depths = queue_depths
        queued = Gauge(
            "pyros_relay_send_queue_frames", "Frames in all send queues.", registry=self.registry
        )
        queued.set_function(lambda: float(sum(self._depths())))
        fullest = Gauge(
            "pyros_relay_send_queue_max_frames", "The fullest send queue.", registry=self.registry
        )
        fullest.set_function(lambda: float(max(self._depths(), default=0)))
        for kind in ("device", "operator"):
            self.connections.labels(kind)
        for reason in ("send_queue", "rate_limit", "connector"):
            self.dropped.labels(reason)

    def render(self) -> bytes:
        """Return every metric in the Prometheus text exposition format."""
        return bytes(generate_latest(self.registry))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (epoch seconds), ``level``, ``logger``, ``msg``, the
    record's extra fields, and ``exc`` (the traceback text) when there is one."""

    _STANDARD = frozenset([*vars(logging.makeLogRecord({})), "message", "asctime"])

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as one line of JSON."""
        line: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)
