"""What the dashboard knows about the fleet, and how messages are shown: no I/O, no UI library.

* :func:`parse_devices` reads the relay's ``GET /api/devices`` answer into :class:`Device`
  records (with :class:`Stats`; when a relay does not report ``stats`` yet, messages per
  second are derived from its ``received`` counter between two answers).
* :class:`TopicStream` keeps one topic's latest message, its receive rate and a bounded history
  for plots.
* :func:`numeric_fields`, :func:`tree_nodes`, :func:`extract_pose` and :func:`image_source`
  turn message dicts (rosbridge v2 JSON: ``uint8[]`` as base64 text) into what the pages draw.

Time is passed in (seconds; wall-clock ``time.time()`` values for anything compared with the
relay's ``last_seen``), never read here.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from pyros.exceptions import MessageError
from pyros.message_types import canonical_type

__all__ = [
    "Stats",
    "Device",
    "DevicesFormatError",
    "parse_devices",
    "fleet_rows",
    "TopicStream",
    "numeric_fields",
    "tree_nodes",
    "tree_node_ids",
    "POSE_TYPES",
    "IMAGE_TYPES",
    "extract_pose",
    "image_source",
    "ImageError",
    "format_age",
]

HISTORY_SECONDS = 300.0
"""The longest plot window, in seconds: older samples are forgotten."""

HISTORY_SAMPLES = 20_000
"""Samples kept per topic at most (a fast topic keeps less than :data:`HISTORY_SECONDS`)."""

_RATE_WINDOW = 5.0  # seconds over which a topic's receive rate is measured
_ARRAY_FIELDS = 16  # elements of a numeric array offered to plots
_TREE_ITEMS = 50  # elements of an array shown in a tree
_TREE_TEXT = 48  # characters of a string shown in a tree


class DevicesFormatError(ValueError):
    """The relay's ``GET /api/devices`` answer is not the documented list of devices."""


@dataclass
class Stats:
    """A device's connection quality, as its connector and the relay report it.

    Every figure is None when the relay does not report it.

    Attributes:
        messages_per_s: messages per second arriving from the device.
        bytes_per_s: bytes per second arriving from the device.
        latency_ms: round-trip time between the relay and the connector, milliseconds.
        dropped: messages the connector dropped (offline buffer overflow, oversize), exact.
        buffered: messages waiting in the connector's buffer.
    """

    messages_per_s: float | None = None
    bytes_per_s: float | None = None
    latency_ms: float | None = None
    dropped: int | None = None
    buffered: int | None = None


@dataclass
class Device:
    """One device as ``GET /api/devices`` lists it.

    Attributes:
        id: the device id (its names at the relay start with ``/<id>/``).
        online: whether its connector is connected.
        last_seen: wall-clock seconds of the last frame the relay got from it.
        topics: forwarded topics, device-local name -> type.
        services: services operators may call, name -> type.
        commands: command topics with known types, name -> type.
        command_globs: globs of topics operators may publish to (types unknown).
        actions: action servers, name -> type.
        may_command: whether the signed-in token may command it.
        stats: connection quality.
        dropped_by_topic: messages dropped from the offline buffer per topic (the connector's
            hellos, summed).
        received: messages the relay accepted from it.
    """

    id: str
    online: bool = False
    last_seen: float = 0.0
    topics: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    command_globs: list[str] = field(default_factory=list)
    actions: dict[str, str] = field(default_factory=dict)
    may_command: bool = False
    stats: Stats = field(default_factory=Stats)
    dropped_by_topic: dict[str, int] = field(default_factory=dict)
    received: int = 0

    def command_topic_type(self, topic: str) -> str | None:
        """Return the type of command topic ``topic`` if known (listed, or also forwarded)."""
        return self.commands.get(topic) or self.topics.get(topic)

    def is_command_topic(self, topic: str) -> bool:
        """Return whether operators may publish to ``topic`` (device-local name)."""
        return topic in self.commands or any(fnmatchcase(topic, g) for g in self.command_globs)


def _names(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, list):  # older relays: a list of names without types
        return {str(name): "" for name in raw}
    if not isinstance(raw, dict):
        raise DevicesFormatError(f"{where} must map names to types")
    return {str(name): str(kind or "") for name, kind in raw.items()}


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        return None
    return float(raw)


def parse_devices(
    data: Any, now: float, previous: Mapping[str, Device] | None = None, elapsed: float = 0.0
) -> dict[str, Device]:
    """Read a ``GET /api/devices`` answer.

    Args:
        data: the parsed JSON: a list of device objects (see the relay's documentation).
        now: wall-clock seconds of the answer (unused today; kept so callers pass time in).
        previous: the devices of the previous answer, to derive messages per second from
            ``received`` when the relay reports no ``stats``.
        elapsed: seconds since the previous answer.

    Returns:
        Device id -> :class:`Device`, in the relay's order.

    Raises:
        DevicesFormatError: not a list of objects with a string ``id``.
    """
    del now
    if not isinstance(data, list):
        raise DevicesFormatError("GET /api/devices must answer a JSON list")
    devices: dict[str, Device] = {}
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise DevicesFormatError("each device must be an object with a string 'id'")
        ident = entry["id"]
        commands = entry.get("commands")
        globs = entry.get("command_globs")
        device = Device(
            id=ident,
            online=bool(entry.get("online")),
            last_seen=_number(entry.get("last_seen")) or 0.0,
            topics=_names(entry.get("topics"), f"{ident}.topics"),
            services=_names(entry.get("services"), f"{ident}.services"),
            actions=_names(entry.get("actions"), f"{ident}.actions"),
            may_command=bool(entry.get("may_command")),
            received=int(_number(entry.get("received")) or 0),
        )
        if isinstance(commands, list):  # relays before command types: globs only
            device.command_globs = [str(glob) for glob in commands]
        else:
            device.commands = _names(commands, f"{ident}.commands")
            if isinstance(globs, list):
                device.command_globs = [str(glob) for glob in globs]
        dropped = entry.get("dropped")
        if isinstance(dropped, dict):
            device.dropped_by_topic = {
                str(topic): int(count)
                for topic, count in dropped.items()
                if isinstance(count, int) and not isinstance(count, bool)
            }
        stats = entry.get("stats")
        if isinstance(stats, dict):
            device.stats = Stats(
                messages_per_s=_number(stats.get("messages_per_s")),
                bytes_per_s=_number(stats.get("bytes_per_s")),
                latency_ms=_number(stats.get("latency_ms")),
                dropped=_int_or_none(stats.get("dropped")),
                buffered=_int_or_none(stats.get("buffered")),
            )
        else:
            old = (previous or {}).get(ident)
            rate = None
            if old is not None and elapsed > 0 and device.online:
                rate = max(0, device.received - old.received) / elapsed
            device.stats = Stats(
                messages_per_s=rate if device.online else 0.0,
                dropped=sum(device.dropped_by_topic.values()),
            )
        devices[ident] = device
    return devices


def _int_or_none(raw: Any) -> int | None:
    number = _number(raw)
    return None if number is None else int(number)


def format_age(seconds: float) -> str:
    """Return ``seconds`` ago for people: ``"0.4 s"``, ``"12 s"``, ``"5 min"``, ``"3 h"``."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def _figure(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def fleet_rows(devices: Mapping[str, Device], filter_text: str, now: float) -> list[dict[str, Any]]:
    """Return the fleet table's rows: the devices whose id contains ``filter_text``.

    Args:
        devices: from :func:`parse_devices`.
        filter_text: a case-insensitive substring, or a glob when it holds ``*?[``.
        now: wall-clock seconds, for "last seen".

    Returns:
        One dict per device with ``id``, ``online`` (``"online"``/``"offline"``),
        ``last_seen`` (age text), ``messages_per_s``, ``latency_ms``, ``dropped``,
        ``buffered``, ``topics`` (a count) as texts ready to show.
    """
    wanted = filter_text.strip().lower()
    glob = any(char in wanted for char in "*?[")
    rows = []
    for device in devices.values():
        name = device.id.lower()
        if wanted and not (fnmatchcase(name, wanted) if glob else wanted in name):
            continue
        stats = device.stats
        rows.append(
            {
                "id": device.id,
                "online": "online" if device.online else "offline",
                "last_seen": format_age(now - device.last_seen) if device.last_seen else "never",
                "messages_per_s": _figure(stats.messages_per_s),
                "latency_ms": _figure(stats.latency_ms),
                "dropped": _figure(stats.dropped),
                "buffered": _figure(stats.buffered),
                "topics": len(device.topics),
            }
        )
    return rows


class TopicStream:
    """One subscribed topic: its latest message, receive rate and a history for plots.

    Args:
        topic: the full name at the relay (``/robot1/turtle1/pose``).
        type: its message type (may be empty when unknown).

    Attributes:
        latest: the last message, or None.
        stamp: when it arrived (seconds, the caller's clock), or None.
        count: messages received.
        history: ``(stamp, {field path: value})`` of the numeric fields, oldest first, at most
            :data:`HISTORY_SECONDS` and :data:`HISTORY_SAMPLES`.
    """

    def __init__(self, topic: str, type: str = "") -> None:
        self.topic = topic
        self.type = type
        self.latest: dict[str, Any] | None = None
        self.stamp: float | None = None
        self.count = 0
        self.history: deque[tuple[float, dict[str, float]]] = deque(maxlen=HISTORY_SAMPLES)
        self._arrivals: deque[float] = deque()
        self._first: float | None = None

    def add(self, msg: dict[str, Any], now: float, keep_history: bool = True) -> None:
        """Record ``msg`` received at ``now`` (seconds)."""
        self.latest = msg
        self.stamp = now
        self.count += 1
        if self._first is None:
            self._first = now
        self._arrivals.append(now)
        while self._arrivals and self._arrivals[0] < now - _RATE_WINDOW:
            self._arrivals.popleft()
        if keep_history:
            self.history.append((now, numeric_fields(msg)))
            while self.history and self.history[0][0] < now - HISTORY_SECONDS:
                self.history.popleft()

    def rate(self, now: float) -> float:
        """Return messages per second received over the last few seconds (0 when none)."""
        while self._arrivals and self._arrivals[0] < now - _RATE_WINDOW:
            self._arrivals.popleft()
        span = min(_RATE_WINDOW, now - (self._first if self._first is not None else now))
        if not self._arrivals or span <= 0:
            return 0.0
        return len(self._arrivals) / span

    def fields(self) -> list[str]:
        """Return the numeric field paths seen in the latest message, in message order."""
        return list(numeric_fields(self.latest or {}))

    def series(self, path: str, since: float) -> list[tuple[float, float]]:
        """Return ``(stamp, value)`` of field ``path`` for samples at or after ``since``."""
        return [
            (stamp, values[path])
            for stamp, values in self.history
            if stamp >= since and path in values
        ]


def _walk_numbers(value: Any, path: str, out: dict[str, float]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            out[path] = float(value)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _walk_numbers(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value[:_ARRAY_FIELDS]):
            _walk_numbers(item, f"{path}[{index}]", out)


def numeric_fields(msg: Mapping[str, Any]) -> dict[str, float]:
    """Return every number of ``msg`` by dotted path (``linear.x``, ``ranges[3]``).

    Booleans, strings and non-finite numbers are left out; of an array only the first
    :data:`_ARRAY_FIELDS` elements are offered.
    """
    out: dict[str, float] = {}
    _walk_numbers(msg, "", out)
    return out


def _leaf_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if abs(value) >= 1e-4 or value == 0 else f"{value:.6g}"
    if isinstance(value, str):
        if len(value) > _TREE_TEXT:
            return f"{value[:_TREE_TEXT]!r}... ({len(value)} characters)"
        return repr(value)
    if value is None:
        return "null"
    return str(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _nodes(value: Any, path: str, label: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {
            "id": path,
            "label": label,
            "children": [
                _nodes(item, _join(path, str(key)), str(key)) for key, item in value.items()
            ],
        }
    if isinstance(value, list):
        children = [_nodes(item, f"{path}[{i}]", f"[{i}]") for i, item in enumerate(value)]
        if len(children) > _TREE_ITEMS:
            more = len(children) - _TREE_ITEMS
            children = children[:_TREE_ITEMS]
            children.append({"id": f"{path}[...]", "label": f"... {more} more"})
        return {"id": path, "label": f"{label} [{len(value)}]", "children": children}
    return {"id": path, "label": f"{label}: {_leaf_text(value)}"}


def tree_nodes(msg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return ``msg`` as Quasar QTree nodes (``id``, ``label``, ``children``).

    Node ids are the fields' dotted paths as :func:`numeric_fields` names them (``x``,
    ``linear.x``, ``ranges[3]``), so a tree keeps which nodes are expanded when the next
    message replaces the nodes, and a clicked leaf names a plottable field. Long arrays and
    strings are cut for display.
    """
    return [_nodes(value, str(key), str(key)) for key, value in msg.items()]


def tree_node_ids(nodes: list[dict[str, Any]]) -> Iterator[str]:
    """Yield the ids of every node that has children (the expandable ones)."""
    for node in nodes:
        if node.get("children"):
            yield node["id"]
            yield from tree_node_ids(node["children"])


POSE_TYPES = frozenset(
    {
        "turtlesim/Pose",
        "geometry_msgs/Pose",
        "geometry_msgs/PoseStamped",
        "geometry_msgs/PoseWithCovariance",
        "geometry_msgs/PoseWithCovarianceStamped",
        "geometry_msgs/Pose2D",
        "nav_msgs/Odometry",
    }
)
"""Message types drawn in the 2D pose view (``pkg/msg/Type`` spellings are accepted too)."""

IMAGE_TYPES = frozenset({"sensor_msgs/CompressedImage", "sensor_msgs/Image"})
"""Message types shown as pictures."""


def _canonical(type_name: str) -> str:
    try:
        return canonical_type(type_name)
    except MessageError:
        return type_name


def _yaw(quaternion: Mapping[str, Any]) -> float:
    """Return the rotation about z (radians) of a geometry_msgs/Quaternion (REP 103)."""
    x, y, z, w = (float(quaternion.get(k, 0.0)) for k in ("x", "y", "z", "w"))
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def extract_pose(type_name: str, msg: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """Return ``(x, y, heading)`` in metres and radians from a pose-like message.

    Args:
        type_name: one of :data:`POSE_TYPES` (else None is returned).
        msg: the message.

    Returns:
        The position in the message's frame and the heading about z, or None when the type is
        not a pose type or the message lacks the fields.
    """
    kind = _canonical(type_name)
    try:
        if kind in ("turtlesim/Pose", "geometry_msgs/Pose2D"):
            return float(msg["x"]), float(msg["y"]), float(msg["theta"])
        pose: Any = msg
        if kind == "nav_msgs/Odometry":
            pose = msg["pose"]["pose"]
        elif kind == "geometry_msgs/PoseWithCovarianceStamped":
            pose = msg["pose"]["pose"]
        elif kind in ("geometry_msgs/PoseStamped", "geometry_msgs/PoseWithCovariance"):
            pose = msg["pose"]
        elif kind != "geometry_msgs/Pose":
            return None
        position = pose["position"]
        return float(position["x"]), float(position["y"]), _yaw(pose.get("orientation", {}))
    except (KeyError, TypeError, ValueError):
        return None


class ImageError(ValueError):
    """An image message cannot be shown (the message says why)."""


_RAW_MODES = {
    # encoding -> (Pillow raw mode, bytes per pixel, Pillow image mode)
    "rgb8": ("RGB", 3, "RGB"),
    "bgr8": ("BGR", 3, "RGB"),
    "rgba8": ("RGBA", 4, "RGBA"),
    "bgra8": ("BGRA", 4, "RGBA"),
    "mono8": ("L", 1, "L"),
    "8uc1": ("L", 1, "L"),
    "mono16": ("I;16", 2, "I;16"),
    "16uc1": ("I;16", 2, "I;16"),
}


def _decode_data(raw: Any) -> bytes:
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImageError(f"data is not base64: {exc}") from exc
    if isinstance(raw, list):
        try:
            return bytes(raw)
        except (TypeError, ValueError) as exc:
            raise ImageError(f"data is not a list of bytes: {exc}") from exc
    raise ImageError("no image data")


def image_source(type_name: str, msg: Mapping[str, Any]) -> str:
    """Return a ``data:`` URL a browser shows for an image message.

    ``sensor_msgs/CompressedImage`` data (JPEG or PNG, base64 in rosbridge JSON) is passed
    through; ``sensor_msgs/Image`` in the encodings of REP 104's common set (``rgb8``,
    ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``, ``mono16``) is converted to PNG with Pillow.

    Args:
        type_name: one of :data:`IMAGE_TYPES`.
        msg: the message.

    Raises:
        ImageError: another type, an unsupported encoding, or data that does not fit the
            declared size.
    """
    kind = _canonical(type_name)
    data = _decode_data(msg.get("data"))
    if kind == "sensor_msgs/CompressedImage":
        text = str(msg.get("format", "")).lower()
        mime = "image/png" if "png" in text else "image/jpeg"
        return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    if kind != "sensor_msgs/Image":
        raise ImageError(f"{type_name} is not an image type")
    encoding = str(msg.get("encoding", "")).lower()
    if encoding not in _RAW_MODES:
        raise ImageError(f"image encoding {encoding!r} is not shown (use {sorted(_RAW_MODES)})")
    raw_mode, size, mode = _RAW_MODES[encoding]
    try:
        width, height = int(msg["width"]), int(msg["height"])
        step = int(msg.get("step") or width * size)
    except (KeyError, TypeError, ValueError) as exc:
        raise ImageError(f"image without a valid width/height/step: {exc}") from exc
    if width <= 0 or height <= 0 or step < width * size or len(data) < step * height:
        raise ImageError(
            f"{len(data)} bytes do not hold a {width}x{height} {encoding} image (step {step})"
        )
    if size == 2 and msg.get("is_bigendian"):
        raw_mode = "I;16B"
    from PIL import Image  # the dashboard extra; imported only to convert raw images

    image = Image.frombuffer(mode, (width, height), data, "raw", raw_mode, step, 1)
    if mode == "I;16":
        image = image.point(lambda value: value / 256).convert("L")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
