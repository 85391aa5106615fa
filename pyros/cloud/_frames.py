"""Reading one websocket text frame as JSON, for both protocols the relay speaks: the device
protocol (:mod:`pyros.cloud.device_protocol`) and rosbridge v2 for operators
(:mod:`pyros.cloud.rosbridge`). Each checks the decoded value's shape itself."""

from __future__ import annotations

import json
from typing import Any

from pyros.exceptions import ProtocolError

__all__ = ["load_text_frame"]


def load_text_frame(frame: str | bytes, error: type[ProtocolError]) -> Any:
    """Decode a text frame's JSON.

    Args:
        frame: the received websocket frame.
        error: the protocol's exception class, raised with the reason.

    Returns:
        The decoded JSON value (any type: the caller checks it).

    Raises:
        ProtocolError: ``error``, for a binary frame or bad JSON (``RecursionError`` of a too
            deeply nested document included).
    """
    if isinstance(frame, (bytes, bytearray, memoryview)):
        raise error("binary frames are not accepted: send JSON in a text frame")
    try:
        return json.loads(frame)
    except (ValueError, RecursionError) as exc:
        raise error(f"bad JSON: {exc}") from exc
