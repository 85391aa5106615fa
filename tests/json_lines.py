"""JSON lines with bytes: how the tests talk to their peer processes (rospy and rclpy peers).

``bytes`` travel as ``{"$bytes": "<base64>"}``. Standard library only, no side effects: the
peers import it with the repository on ``sys.path``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["encode", "decode", "dumps", "loads"]


def encode(value: Any) -> Any:
    """Return plain JSON data: ``bytes`` (and bytearray, memoryview) as ``{"$bytes": base64}``,
    tuples as lists, keys as strings."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    return value


def decode(value: Any) -> Any:
    """Undo :func:`encode`: ``{"$bytes": base64}`` becomes ``bytes``."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """Encode plain data as one JSON line (:func:`encode`)."""
    return json.dumps(encode(value), separators=(",", ":"))


def loads(line: str) -> Any:
    """Decode what :func:`dumps` made, ``bytes`` included."""
    return decode(json.loads(line))
