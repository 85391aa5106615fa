"""ROS graph names: resolving what users type into absolute names, and checking them.

Rules from http://wiki.ros.org/Names and the ROS 2 topic and service name design
(https://design.ros2.org/articles/topic_and_service_names.html): a name is ``/``-separated
tokens, each starting with a letter and holding letters, digits and underscores. pyros nodes
live in the root namespace, so a relative name ``chatter`` resolves to ``/chatter``. Private
names (``~x``) mean nothing outside a ROS node and are refused.

Globs (:func:`glob_match`), the one rule of pyros for topic, service, parameter and command
patterns: ``*`` matches within one name level (never a ``/``), ``**`` across levels, ``?`` one
character other than ``/``, ``[abc]``/``[!abc]`` one character of a set; a pattern that is
only ``*`` or ``**`` matches every name. So ``/turtle1/*`` matches ``/turtle1/pose`` but not
``/turtle1/a/b`` (``/turtle1/**`` does), and never ``/robotB/turtle1/../../secret``, which is
not a ROS name at all (:func:`is_valid`).
"""

from __future__ import annotations

import functools
import re

from pyros.exceptions import NotExposedError

__all__ = ["resolve", "is_valid", "glob_match", "glob_regex"]

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


@functools.lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Return the compiled regular expression of a pyros glob (rules in the module docstring).

    Args:
        pattern: the glob, e.g. ``/turtle1/*``, ``/**/image_raw``, ``/robot[12]/pose``.

    Returns:
        A pattern to use with ``fullmatch``.
    """
    if pattern in ("*", "**"):
        return re.compile(r".*", re.DOTALL)
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern.startswith(("[!", "[]"), i) else i + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("!")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\").replace("^", "\\^")
                out.append(f"[{'^/' if negate else ''}{body}]" if body else "(?!)")
                i = end + 1
                continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def glob_match(name: str, pattern: str) -> bool:
    """Return True if ``name`` matches the pyros glob ``pattern`` (rules in the module docstring).

    Args:
        name: an absolute name (``/turtle1/pose``) or a device id.
        pattern: a glob; case-sensitive.
    """
    return glob_regex(pattern).fullmatch(name) is not None
