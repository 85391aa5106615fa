"""ROS graph names: resolving what users type into absolute names, and checking them.

Rules from http://wiki.ros.org/Names and the ROS 2 topic and service name design
(https://design.ros2.org/articles/topic_and_service_names.html): a name is ``/``-separated
tokens, each starting with a letter and holding letters, digits and underscores. pyros nodes
live in the root namespace, so a relative name ``chatter`` resolves to ``/chatter``. Private
names (``~x``) mean nothing outside a ROS node and are refused.
"""

from __future__ import annotations

import re

from pyros.exceptions import NotExposedError

__all__ = ["resolve", "is_valid"]

_TOKEN = r"[A-Za-z][A-Za-z0-9_]*"
_NAME = re.compile(rf"/(?:{_TOKEN}(?:/{_TOKEN})*)?")


def is_valid(name: str) -> bool:
    """Return True if ``name`` is an absolute, well-formed ROS graph name."""
    return bool(_NAME.fullmatch(name)) and "__" not in name


def resolve(name: object, kind: str = "name") -> str:
    """Return the absolute form of a topic, service or parameter name.

    Args:
        name: ``"/turtle1/pose"``, or relative ``"turtle1/pose"`` (resolved against ``/``).
        kind: what the name is (``"topic"``, ``"service"``, ``"parameter"``), for the message.

    Raises:
        NotExposedError: ``name`` is not a string or not a valid ROS name.
    """
    if not isinstance(name, str):
        raise NotExposedError(f"{kind} name must be a string, got {type(name).__name__}")
    absolute = name if name.startswith("/") else "/" + name
    if len(absolute) > 1 and absolute.endswith("/"):
        absolute = absolute[:-1]
    if not is_valid(absolute) or absolute == "/":
        raise NotExposedError(
            f"{name!r} is not a valid ROS {kind} name "
            "(tokens of letters, digits and '_', starting with a letter, separated by '/')"
        )
    return absolute
