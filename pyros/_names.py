"""ROS graph names: resolving what users type into absolute names, checking them, and globs.

Rules from http://wiki.ros.org/Names and the ROS 2 topic and service name design
(https://design.ros2.org/articles/topic_and_service_names.html): a name is ``/``-separated
tokens, each starting with a letter and holding letters, digits and underscores. pyros nodes
live in the root namespace, so a relative name ``chatter`` resolves to ``/chatter``. Private
names (``~x``) mean nothing outside a ROS node and are refused; so are ``.`` and ``..``.

ROS 2 parameters belong to nodes: pyros names them ``<node>:<param>`` (``/talker:gains.p``),
the node an absolute name and the parameter dot-separated tokens (rclpy's parameter names).

Glob patterns, one rule everywhere in pyros (node patterns, connector and relay globs):
``*`` matches any run of characters within one name level (no ``/``), ``**`` any run across
levels, ``?`` one character other than ``/``, ``[abc]`` one of a set; a pattern that is only
``*`` or ``**`` matches every name. Matching is case-sensitive and applies to the whole name.
"""

from __future__ import annotations

import functools
import re

from pyros.exceptions import NotExposedError

__all__ = ["resolve", "resolve_param", "is_valid", "glob_match", "compile_glob"]

_TOKEN = r"[A-Za-z][A-Za-z0-9_]*"
_NAME = re.compile(rf"/(?:{_TOKEN}(?:/{_TOKEN})*)?")
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")


def is_valid(name: str) -> bool:
    """Return True if ``name`` is an absolute, well-formed ROS graph name."""
    return bool(_NAME.fullmatch(name)) and "__" not in name


def resolve(name: object, kind: str = "name") -> str:
    """Return the absolute form of a topic, service, action or parameter name.

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
        shown = repr(name) if len(name) <= 80 else repr(name[:80]) + "..."
        raise NotExposedError(
            f"{shown} is not a valid ROS {kind} name "
            "(tokens of letters, digits and '_', starting with a letter, separated by '/')"
        )
    return absolute


def resolve_param(name: object) -> str:
    """Return the absolute form of a parameter name: ``/a/b`` or ``<node>:<param>``.

    Raises:
        NotExposedError: not a valid ROS 1 parameter name nor a valid ``node:param`` pair.
    """
    if isinstance(name, str) and ":" in name:
        node, _, param = name.partition(":")
        absolute = resolve(node, "node")
        if not _PARAM.fullmatch(param):
            shown = repr(param) if len(param) <= 80 else repr(param[:80]) + "..."
            raise NotExposedError(
                f"{shown} is not a valid ROS 2 parameter name (dot-separated tokens of "
                "letters, digits and '_')"
            )
        return f"{absolute}:{param}"
    return resolve(name, "parameter")


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a glob pattern (see the module docstring) into a regular expression.

    A pattern without a leading ``/`` (and other than ``*``/``**``) is taken as absolute:
    ``chatter`` means ``/chatter``.
    """
    if pattern in ("*", "**"):
        return re.compile(r".*", re.DOTALL)
    if not pattern.startswith(("/", "*", "?", "[")):
        pattern = "/" + pattern
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            parts.append(".*")
            i += 2
            continue
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern.startswith(("[!", "[]"), i) else i + 1)
            if end < 0:
                parts.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                parts.append("[" + body.replace("\\", "\\\\").replace("/", "") + "]")
                i = end + 1
                continue
        else:
            parts.append(re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def glob_match(pattern: str, name: str) -> bool:
    """Return True if the whole ``name`` matches ``pattern`` (see the module docstring)."""
    return compile_glob(pattern).fullmatch(name) is not None
