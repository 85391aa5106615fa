"""Checks of messages, service requests and goals against the server's own type definitions.

A rosbridge server that runs rosapi describes any type it knows (rosapi's
``message_details``, ``service_request_details`` and ``action_goal_details``, each a list of
``rosapi_msgs/TypeDef``: ``type``, ``fieldnames``, ``fieldtypes``, ``fieldarraylen`` (-1: not an
array, 0: unbounded, n: fixed length)). :class:`Typedefs` turns those into ``.msg`` text for
pyros's own :class:`pyros.message_types.TypeRegistry`, so a dict that does not fit its type is
refused before it is sent, with the dotted path of the field (``linear.x``), as on every other
backend. rosbridge servers name only the top-level field (``field geometry_msgs/msg/Twist.linear``).

The message sent is the user's dict, not the checked copy: the server fills defaults itself and
reads ``time`` fields in both spellings (``secs``/``nsecs`` and ``sec``/``nanosec``), which the
checks accept too (``builtin_interfaces/Time`` and ``Duration`` are checked as ``time`` and
``duration``). Without rosapi nothing is checked here and the server's own errors are what the
user gets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pyros.exceptions import MessageError, PyrosError, TimeoutError
from pyros.message_types import TypeRegistry

__all__ = ["Typedefs", "QUERIES"]

QUERIES = {
    "msg": "message_details",
    "request": "service_request_details",
    "goal": "action_goal_details",
}
"""What is checked -> the rosapi service that describes it."""

_SUFFIX = {"msg": "", "request": "_Request", "goal": "_Goal"}
_KIND = {"msg": "msg", "request": "srv", "goal": "action"}
_TIME_TYPES = {"builtin_interfaces/Time": "time", "builtin_interfaces/Duration": "duration"}

Fetch = Callable[[str, dict[str, Any]], dict[str, Any]]
"""Calls a rosapi service (``"message_details"``, args) and returns its response values;
raises :class:`PyrosError` when the server has no rosapi (``TimeoutError`` when it is slow)."""


class Typedefs:
    """Type checks built from rosapi on first use of each type, then cached.

    Args:
        fetch: how to call rosapi (see :data:`Fetch`).
    """

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._registry = TypeRegistry()
        self._checkable: dict[tuple[str, str], str | None] = {}
        self._fast: dict[tuple[str, str], str] = {}  # (kind, type as the caller spells it)
        self._lock = threading.Lock()
        self.available = True
        """False once the server turned out to have no rosapi: nothing is checked then."""

    def check(self, kind: str, type_name: str, data: Any, field_prefix: str = "") -> None:
        """Check ``data`` against ``type_name`` (``kind``: ``"msg"``, ``"request"``, ``"goal"``).

        Raises:
            MessageError: ``data`` does not fit (``field`` is the dotted path), or the server
                does not know the type at all.
        """
        name = self._fast.get((kind, type_name))
        if name is None:
            name = self._load(kind, type_name)
            if name is None:
                return
            self._fast[(kind, type_name)] = name
        self._registry.check_message(name, data, field_prefix)

    def _load(self, kind: str, type_name: str) -> str | None:
        parts = type_name.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise MessageError(f"{type_name!r} is not a type name (pkg/Type or pkg/{kind}/Type)")
        key = (kind, f"{parts[0]}/{parts[-1]}")
        with self._lock:
            if key in self._checkable:
                return self._checkable[key]
        if not self.available:
            return None
        full = f"{parts[0]}/{_KIND[kind]}/{parts[-1]}"
        try:
            typedefs = self._fetch(QUERIES[kind], {"type": full}).get("typedefs") or []
        except TimeoutError:
            return None  # a slow server: no check this time, ask again next time
        except PyrosError:
            self.available = False
            return None
        if not typedefs:
            raise MessageError(f"the rosbridge server does not know type {type_name!r}")
        name: str | None = f"{parts[0]}/{parts[-1]}{_SUFFIX[kind]}"
        try:
            for typedef in typedefs:
                self._registry.register_message(str(typedef["type"]), _msg_text(typedef))
        except (KeyError, TypeError, ValueError):
            name = None  # a definition pyros cannot read: leave the checks to the server
        with self._lock:
            self._checkable[key] = name
        return name


def _msg_text(typedef: dict[str, Any]) -> str:
    """Return the ``.msg`` text of one rosapi ``TypeDef``."""
    lines = []
    for field_type, name, length in zip(
        typedef["fieldtypes"], typedef["fieldnames"], typedef["fieldarraylen"], strict=True
    ):
        field_type = _TIME_TYPES.get(field_type, field_type)
        suffix = "" if length == -1 else ("[]" if length == 0 else f"[{length}]")
        lines.append(f"{field_type}{suffix} {name}")
    return "\n".join(lines) + "\n"
