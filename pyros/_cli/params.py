"""Parameter trees for ``pyros param dump`` and ``pyros param load``.

The files are those of ``rosparam dump``/``load`` (ROS 1: one YAML mapping, namespaces as
nested mappings) and of ``ros2 param dump``/``load`` (ROS 2: ``<node>: {ros__parameters:
{...}}``, nested mappings joined with ``.`` into parameter names), so a file written by either
tool loads here and the other way round.

pyros names ROS 1 parameters ``/ns/name`` and ROS 2 parameters ``<node>:<param>``
(``/talker:gains.p``), see :meth:`pyros.Client.params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ROS2_KEY", "nest", "flatten", "under"]

ROS2_KEY = "ros__parameters"
"""The key under each node in a ``ros2 param dump`` file."""


def under(name: str, namespace: str) -> bool:
    """Return whether parameter ``name`` lies in ``namespace`` (``/`` holds everything)."""
    namespace = namespace.rstrip("/")
    if not namespace:
        return True
    node, _, _ = name.partition(":")
    if ":" in name and (node == namespace or name == namespace):
        return True
    return name == namespace or name.startswith(namespace + "/") or name.startswith(namespace + ":")


def nest(values: Mapping[str, Any], namespace: str = "/") -> dict[str, Any]:
    """Turn ``{name: value}`` into the tree a dump file holds.

    ROS 1 names under ``namespace`` become nested mappings relative to it (``/gains/p`` under
    ``/`` is ``{"gains": {"p": ...}}``, as ``rosparam dump``); ROS 2 names become
    ``{"/talker": {"ros__parameters": {"gains": {"p": ...}}}}`` as ``ros2 param dump``.
    """
    tree: dict[str, Any] = {}
    prefix = namespace.rstrip("/")
    for name, value in sorted(values.items()):
        if ":" in name:
            node, _, parameter = name.partition(":")
            parameters = tree.setdefault(node, {}).setdefault(ROS2_KEY, {})
            _put(parameters, parameter.split("."), value)
        else:
            relative = name[len(prefix) :] if prefix and name.startswith(prefix) else name
            steps = [step for step in relative.split("/") if step]
            if steps:
                _put(tree, steps, value)
    return tree


def flatten(tree: Any, namespace: str = "/") -> dict[str, Any]:
    """Turn a dump file's tree into ``{name: value}`` to set, under ``namespace``.

    A node entry holding ``ros__parameters`` gives ROS 2 names (``/talker:gains.p``); every
    other mapping is a ROS 1 namespace. A tree that is not a mapping is one value for
    ``namespace`` itself.

    Raises:
        ValueError: a key is not a string, or a ROS 2 entry is malformed.
    """
    prefix = namespace.rstrip("/")
    values: dict[str, Any] = {}
    if not isinstance(tree, Mapping):
        values[prefix or "/"] = tree
        return values
    for key, value in tree.items():
        if not isinstance(key, str):
            raise ValueError(f"parameter names must be strings, not {key!r}")
        if isinstance(value, Mapping) and ROS2_KEY in value:
            node = key if key.startswith("/") else f"{prefix}/{key}"
            parameters = value[ROS2_KEY]
            if not isinstance(parameters, Mapping):
                raise ValueError(f"{key}.{ROS2_KEY} must be a mapping")
            for dotted, leaf in _leaves(parameters, []):
                values[f"{node}:{'.'.join(dotted)}"] = leaf
            continue
        name = f"{prefix}/{key.strip('/')}"
        if isinstance(value, Mapping) and value:
            values.update(flatten(value, name))
        else:
            values[name] = value
    return values


def _put(tree: dict[str, Any], steps: list[str], value: Any) -> None:
    node = tree
    for step in steps[:-1]:
        child = node.get(step)
        if not isinstance(child, dict):
            child = node[step] = {}
        node = child
    node[steps[-1]] = value


def _leaves(tree: Mapping[str, Any], path: list[str]) -> list[tuple[list[str], Any]]:
    found: list[tuple[list[str], Any]] = []
    for key, value in tree.items():
        if not isinstance(key, str):
            raise ValueError(f"parameter names must be strings, not {key!r}")
        if isinstance(value, Mapping) and value:
            found.extend(_leaves(value, [*path, key]))
        else:
            found.append(([*path, key], value))
    return found
