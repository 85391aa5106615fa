"""The relay's memory: the device registry and the latest value of every forwarded topic.

No I/O and no clock: callers pass ``now`` (wall-clock seconds since the epoch, as
:func:`time.time` gives; it is what ``GET /api/devices`` reports as ``last_seen``).

A device appears at its first connection and is never forgotten while the relay runs: when it
goes offline its latest values stay, so a late operator still gets the last pose (marked
offline in ``/api/devices``). Per device and connector session the store remembers the last
accepted ``seq`` (the device protocol's de-duplication: a re-sent message with seq <= that is
dropped, see :mod:`pyros.cloud.device_protocol`).
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Latest", "Meter", "DeviceRecord", "Registry", "split_name", "full_name"]

_SESSIONS_KEPT = 4
"""Sessions per device whose last seq is remembered (a connector restart starts a new one)."""


def full_name(device: str, local: str) -> str:
    """Return the operator-side name of a device-local name: ``/robot1`` + ``/turtle1/pose``."""
    return f"/{device}{local}"


def split_name(name: str) -> tuple[str, str] | None:
    """Split an operator-side name into (device id, device-local name).

    Args:
        name: ``/robot1/turtle1/pose``.

    Returns:
        ``("robot1", "/turtle1/pose")``, or None when the name has no device part or no local
        part (``/robot1``, ``robot1/x``, ``/``).
    """
    if not name.startswith("/"):
        return None
    device, slash, rest = name[1:].partition("/")
    if not device or not slash or not rest:
        return None
    return device, "/" + rest


@dataclass
class Latest:
    """The last accepted message of one topic.

    Attributes:
        msg: the message (plain JSON data), or None until :meth:`message` decodes it.
        frame: the rosbridge ``publish`` frame already encoded for operators, or None when
            nobody needed it yet.
        stamp: wall-clock seconds when it was accepted.
    """

    msg: dict[str, Any] | None
    frame: str | None
    stamp: float

    def message(self) -> dict[str, Any]:
        """Return :attr:`msg`, decoding it from :attr:`frame` the first time (a message another
        relay accepted arrives as its frame only)."""
        if self.msg is None:
            assert self.frame is not None, "a Latest holds a message or its frame"
            self.msg = dict(json.loads(self.frame)["msg"])
        return self.msg


class Meter:
    """Messages and bytes per second over a sliding window of whole seconds.

    Args:
        window: seconds averaged over (the current, incomplete second is left out).
    """

    def __init__(self, window: int = 5) -> None:
        self.window = window
        self._buckets: deque[list[float]] = deque()  # [second, messages, bytes]

    def add(self, now: float, size: int) -> None:
        """Count one message of ``size`` bytes received at ``now`` (seconds)."""
        second = float(int(now))
        if self._buckets and self._buckets[-1][0] == second:
            bucket = self._buckets[-1]
            bucket[1] += 1
            bucket[2] += size
        else:
            self._buckets.append([second, 1, size])
            while len(self._buckets) > self.window + 1:
                self._buckets.popleft()

    def rates(self, now: float) -> tuple[float, float]:
        """Return (messages per second, bytes per second) over the last ``window`` seconds."""
        current = float(int(now))
        first = current - self.window
        messages = sum(b[1] for b in self._buckets if first <= b[0] < current)
        size = sum(b[2] for b in self._buckets if first <= b[0] < current)
        return messages / self.window, size / self.window


@dataclass
class DeviceRecord:
    """What the relay knows about one device.

    Attributes:
        id: the device id.
        online: whether a connector is connected for it now.
        last_seen: wall-clock seconds of the last frame received from it (or of its connection).
        topics: forwarded topics from its last hello, device-local name -> type.
        services: callable services, device-local name -> type.
        commands: globs of its device-local topics operators may publish to.
        command_topics: the existing topics matching ``commands``, name -> type (hello).
        actions: action servers operators may send goals to, name -> type (hello).
        params: parameters operators may read, device-local names (hello).
        latest_topics: forwarded topics whose latest value is replayed to a late subscriber
            (hello's ``latest``: latched, transient-local or ``--latest`` topics).
        definitions: ``pkg/Type`` -> definition text of its types (hello).
        buffered: messages waiting in its connector's buffer (its last ``stats``).
        connector_dropped: messages its connector dropped since it started (its last ``stats``).
        latency: websocket round-trip time to its connector in seconds, None before the first.
        meter: what arrives from it per second.
        dropped: messages its connector dropped while offline, per topic, summed over hellos.
        received: messages accepted from it (duplicates not counted).
        latest: device-local topic -> :class:`Latest`.
        session: the connector session of the last hello.
        relay: with ``--redis``, the id of the relay its connector is on.
        last_status: the last ``status`` it sent that was not about an operator's request.
    """

    id: str
    online: bool = False
    last_seen: float = 0.0
    topics: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    command_topics: dict[str, str] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)
    latest_topics: set[str] = field(default_factory=set)
    definitions: dict[str, str] = field(default_factory=dict)
    buffered: int = 0
    connector_dropped: int = 0
    latency: float | None = None
    meter: Meter = field(default_factory=Meter)
    dropped: dict[str, int] = field(default_factory=dict)
    received: int = 0
    latest: dict[str, Latest] = field(default_factory=dict)
    session: str | None = None
    relay: str = ""
    last_status: dict[str, Any] | None = None
    _seqs: OrderedDict[str, int] = field(default_factory=OrderedDict)

    def last_seq(self, session: str | None = None) -> int:
        """Return the last accepted seq of ``session`` (default: the current one), or 0."""
        key = self.session if session is None else session
        return self._seqs.get(key, 0) if key is not None else 0

    def remember_seq(self, session: str, seq: int, *, force: bool = False) -> None:
        """Set the last accepted seq of ``session``: raise it (a value stored in Redis), or with
        ``force`` set it back (the messages after ``seq`` were not stored: they come again)."""
        self._seqs[session] = seq if force else max(self._seqs.get(session, 0), seq)

    def to_stored(self) -> dict[str, Any]:
        """Return what other relays need to know of this device (plain JSON data)."""
        return {
            "topics": self.topics,
            "services": self.services,
            "commands": self.commands,
            "command_topics": self.command_topics,
            "actions": self.actions,
            "params": self.params,
            "latest_topics": sorted(self.latest_topics),
            "definitions": self.definitions,
            "dropped": self.dropped,
            "received": self.received,
            "buffered": self.buffered,
            "connector_dropped": self.connector_dropped,
            "latency": self.latency,
            "session": self.session,
        }

    def apply_stored(self, data: dict[str, Any]) -> None:
        """Take over what :meth:`to_stored` returned on another relay."""
        self.topics = dict(data.get("topics", {}))
        self.services = dict(data.get("services", {}))
        self.commands = list(data.get("commands", []))
        self.command_topics = dict(data.get("command_topics", {}))
        self.actions = dict(data.get("actions", {}))
        self.params = list(data.get("params", []))
        self.latest_topics = set(data.get("latest_topics", []))
        self.definitions = dict(data.get("definitions", {}))
        self.dropped = dict(data.get("dropped", {}))
        self.received = int(data.get("received", 0))
        self.buffered = int(data.get("buffered", 0))
        self.connector_dropped = int(data.get("connector_dropped", 0))
        latency = data.get("latency")
        self.latency = float(latency) if latency is not None else None
        self.session = data.get("session")

    def describe(self, now: float) -> dict[str, Any]:
        """Return this device as ``GET /api/devices`` lists it (plain JSON data).

        Args:
            now: wall-clock seconds, for the rates in ``stats``.

        Returns:
            ``id``, ``online``, ``last_seen``; ``topics``, ``services``, ``commands`` (command
            topics) and ``actions`` as name -> type; ``command_globs``; ``stats`` with
            ``messages_per_s`` and ``bytes_per_s`` (what the relay received from it over the
            last seconds), ``latency_ms`` (websocket round trip, null before the first
            measurement), ``dropped`` (messages its connector dropped, exact, since it
            started) and ``buffered`` (messages waiting in its connector's buffer); per-topic
            ``dropped`` summed over hellos, ``received``, ``latest`` stamps, ``last_status``.
        """
        messages_per_s, bytes_per_s = self.meter.rates(now) if self.online else (0.0, 0.0)
        return {
            "id": self.id,
            "online": self.online,
            "last_seen": self.last_seen,
            "topics": dict(self.topics),
            "services": dict(self.services),
            "commands": dict(self.command_topics),
            "actions": dict(self.actions),
            "params": list(self.params),
            "latched": sorted(self.latest_topics),
            "command_globs": list(self.commands),
            "stats": {
                "messages_per_s": messages_per_s,
                "latency_ms": None if self.latency is None else self.latency * 1000.0,
                "dropped": self.connector_dropped,
                "buffered": self.buffered,
                "bytes_per_s": bytes_per_s,
            },
            "dropped": dict(self.dropped),
            "received": self.received,
            "latest": {topic: latest.stamp for topic, latest in self.latest.items()},
            "last_status": self.last_status,
        }


class Registry:
    """Every device the relay has seen, by id."""

    def __init__(self) -> None:
        self.devices: dict[str, DeviceRecord] = {}

    def get(self, device: str) -> DeviceRecord | None:
        """Return the record of ``device``, or None if it never connected."""
        return self.devices.get(device)

    def connected(self, device: str, now: float) -> DeviceRecord:
        """Record that a connector for ``device`` connected; return its record."""
        record = self.devices.get(device)
        if record is None:
            record = self.devices[device] = DeviceRecord(device)
        record.online = True
        record.last_seen = now
        return record

    def disconnected(self, device: str, now: float) -> None:
        """Record that the connector of ``device`` is gone (its latest values stay)."""
        record = self.devices.get(device)
        if record is not None:
            record.online = False
            record.last_seen = now

    def hello(self, device: str, message: dict[str, Any], now: float, known_seq: int = 0) -> int:
        """Apply a checked ``hello`` (see :func:`pyros.cloud.device_protocol.decode_from_device`).

        Args:
            device: the device id.
            message: the checked hello.
            now: wall-clock seconds.
            known_seq: the session's last accepted seq as stored elsewhere (Redis), when the
                relay has one; the larger of it and the remembered one counts.

        Returns:
            ``resume_after`` for the welcome: the last seq accepted for the hello's session.
        """
        record = self.connected(device, now)
        record.topics = dict(message["topics"])
        record.services = dict(message["services"])
        record.commands = list(message["commands"])
        record.command_topics = dict(message["command_topics"])
        record.actions = dict(message["actions"])
        record.params = list(message["params"])
        record.latest_topics = set(message["latest"])
        record.definitions = dict(message["definitions"])
        for topic, count in message["dropped"].items():
            record.dropped[topic] = record.dropped.get(topic, 0) + count
        session: str = message["session"]
        record.session = session
        if session not in record._seqs:
            record._seqs[session] = 0
            while len(record._seqs) > _SESSIONS_KEPT:
                record._seqs.popitem(last=False)
        record._seqs.move_to_end(session)
        record._seqs[session] = max(record._seqs[session], known_seq)
        return record._seqs[session]

    def accept(self, record: DeviceRecord, seq: int, now: float) -> bool:
        """Record message ``seq`` of the current session; return False for a duplicate.

        A gap (seq > last + 1) is accepted: the connector dropped messages while offline and
        reports them in its next hello's ``dropped``.
        """
        record.last_seen = now
        session = record.session
        if session is None:
            raise ValueError(f"device {record.id} sent data before hello")
        if seq <= record._seqs.get(session, 0):
            return False
        record._seqs[session] = seq
        record.received += 1
        return True

    def store(
        self,
        record: DeviceRecord,
        topic: str,
        msg: dict[str, Any] | None,
        frame: str | None,
        now: float,
    ) -> None:
        """Keep ``msg`` (and its encoded operator frame) as the latest value of ``topic``."""
        record.latest[topic] = Latest(msg, frame, now)

    def describe(
        self, now: float, may_read: Callable[[str], bool] | None = None
    ) -> list[dict[str, Any]]:
        """Return ``GET /api/devices``'s list, sorted by id.

        Args:
            now: wall-clock seconds (for the rates).
            may_read: a predicate on device ids; only devices it accepts are listed. None lists
                every device.
        """
        return [
            record.describe(now)
            for device, record in sorted(self.devices.items())
            if may_read is None or may_read(device)
        ]
