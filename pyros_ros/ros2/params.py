"""ROS 2 parameter values <-> plain data, and pyros's ``<node>:<param>`` names.

ROS 2 parameters belong to nodes and are read and written through each node's parameter
services (``rcl_interfaces``: ``list_parameters``, ``get_parameters``, ``set_parameters``;
ROS 2 parameter design, https://design.ros2.org/articles/ros_parameters.html). A value is an
``rcl_interfaces/msg/ParameterValue``: one of bool, int64, float64, string, byte array, and
arrays of bool, int64, float64 and string.

pyros names a parameter ``<node>:<param>`` (``/talker:gains.p``). A dict stands for the
parameters under a dotted prefix, as in ROS 2 parameter YAML files: setting
``/talker:gains`` to ``{"p": 1.0, "i": 0.1}`` sets ``gains.p`` and ``gains.i``; getting
``/talker:gains`` when only ``gains.*`` are set returns that dict.

This module imports rcl_interfaces; import it only after
:func:`pyros_ros.environment.setup_ros2`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rcl_interfaces.msg import ParameterType, ParameterValue

from pyros.exceptions import MessageError, ParamNotSetError

__all__ = ["split_name", "to_python", "to_value", "flatten", "nest"]

_INT64 = (-(2**63), 2**63 - 1)


def split_name(name: str) -> tuple[str, str]:
    """Split ``"/talker:gains.p"`` into ``("/talker", "gains.p")``.

    Raises:
        ParamNotSetError: the name has no ``<node>:`` part (a ROS 1 style name names no
            ROS 2 parameter).
    """
    node, colon, param = name.partition(":")
    if not colon or not node.startswith("/") or not param:
        raise ParamNotSetError(
            f"{name!r} names no ROS 2 parameter: ROS 2 parameters belong to nodes and are "
            "named '<node>:<param>', e.g. '/talker:gains.p'"
        )
    return node, param


def to_python(value: ParameterValue) -> Any:
    """Return a ``ParameterValue`` as plain data (bytes for a byte array, lists for arrays).

    Raises:
        ParamNotSetError: the value's type is ``PARAMETER_NOT_SET``.
    """
    kind = value.type
    if kind == ParameterType.PARAMETER_BOOL:
        return bool(value.bool_value)
    if kind == ParameterType.PARAMETER_INTEGER:
        return int(value.integer_value)
    if kind == ParameterType.PARAMETER_DOUBLE:
        return float(value.double_value)
    if kind == ParameterType.PARAMETER_STRING:
        return str(value.string_value)
    if kind == ParameterType.PARAMETER_BYTE_ARRAY:
        return b"".join(value.byte_array_value)
    if kind == ParameterType.PARAMETER_BOOL_ARRAY:
        return [bool(item) for item in value.bool_array_value]
    if kind == ParameterType.PARAMETER_INTEGER_ARRAY:
        return [int(item) for item in value.integer_array_value]
    if kind == ParameterType.PARAMETER_DOUBLE_ARRAY:
        return [float(item) for item in value.double_array_value]
    if kind == ParameterType.PARAMETER_STRING_ARRAY:
        return [str(item) for item in value.string_array_value]
    raise ParamNotSetError("the parameter is not set")


def _check_int(value: int, name: str) -> int:
    if not _INT64[0] <= value <= _INT64[1]:
        raise MessageError(f"parameter {name}: {value} does not fit a ROS 2 int64 parameter")
    return value


def to_value(value: Any, name: str, current: int = ParameterType.PARAMETER_NOT_SET) -> Any:
    """Return plain data as a ``ParameterValue``, in the type the parameter already has.

    An int given for a double parameter becomes a double (and a list of ints for a double
    array, a list of 0..255 for a byte array), so that ``2`` sets a ``gains.p`` declared as
    ``1.5``; an empty list takes the current array type (else a string array).

    Args:
        value: bool, int, float, str, bytes, or a list of one of bool, int, float, str.
        name: the parameter's pyros name, for error messages.
        current: the parameter's current ``ParameterType``, if known.

    Raises:
        MessageError: None, a dict (see :func:`flatten`), a mixed list, an int beyond int64,
            or any other value a ROS 2 parameter cannot hold.
    """
    out = ParameterValue()
    if isinstance(value, bool):
        out.type, out.bool_value = ParameterType.PARAMETER_BOOL, value
    elif isinstance(value, int):
        if current == ParameterType.PARAMETER_DOUBLE:
            out.type, out.double_value = ParameterType.PARAMETER_DOUBLE, float(value)
        else:
            out.type = ParameterType.PARAMETER_INTEGER
            out.integer_value = _check_int(value, name)
    elif isinstance(value, float):
        out.type, out.double_value = ParameterType.PARAMETER_DOUBLE, value
    elif isinstance(value, str):
        out.type, out.string_value = ParameterType.PARAMETER_STRING, value
    elif isinstance(value, (bytes, bytearray)):
        out.type = ParameterType.PARAMETER_BYTE_ARRAY
        out.byte_array_value = [bytes((byte,)) for byte in value]
    elif isinstance(value, (list, tuple)):
        _array_value(out, list(value), name, current)
    else:
        what = "None" if value is None else type(value).__name__
        raise MessageError(
            f"parameter {name}: a ROS 2 parameter cannot hold {what} (bool, int, float, str, "
            "bytes, or a list of one of bool, int, float, str)"
        )
    return out


def _array_value(out: Any, items: list[Any], name: str, current: int) -> None:
    if not items:
        arrays = {
            ParameterType.PARAMETER_BYTE_ARRAY: "byte_array_value",
            ParameterType.PARAMETER_BOOL_ARRAY: "bool_array_value",
            ParameterType.PARAMETER_INTEGER_ARRAY: "integer_array_value",
            ParameterType.PARAMETER_DOUBLE_ARRAY: "double_array_value",
        }
        out.type = current if current in arrays else ParameterType.PARAMETER_STRING_ARRAY
        return
    if all(isinstance(item, bool) for item in items):
        out.type, out.bool_array_value = ParameterType.PARAMETER_BOOL_ARRAY, items
    elif all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        if current == ParameterType.PARAMETER_DOUBLE_ARRAY:
            out.type = ParameterType.PARAMETER_DOUBLE_ARRAY
            out.double_array_value = [float(item) for item in items]
        elif current == ParameterType.PARAMETER_BYTE_ARRAY and all(0 <= i < 256 for i in items):
            out.type = ParameterType.PARAMETER_BYTE_ARRAY
            out.byte_array_value = [bytes((item,)) for item in items]
        else:
            out.type = ParameterType.PARAMETER_INTEGER_ARRAY
            out.integer_array_value = [_check_int(item, name) for item in items]
    elif all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items):
        out.type = ParameterType.PARAMETER_DOUBLE_ARRAY
        out.double_array_value = [float(item) for item in items]
    elif all(isinstance(item, str) for item in items):
        out.type, out.string_array_value = ParameterType.PARAMETER_STRING_ARRAY, items
    else:
        raise MessageError(
            f"parameter {name}: a ROS 2 parameter array holds one type (bool, int, float or "
            f"str), not {sorted({type(item).__name__ for item in items})}"
        )


def flatten(param: str, value: Any) -> list[tuple[str, Any]]:
    """Turn ``("gains", {"p": 1, "i": {"x": 2}})`` into ``[("gains.p", 1), ("gains.i.x", 2)]``.

    A value that is not a dict gives ``[(param, value)]``.

    Raises:
        MessageError: a dict key is not a non-empty str without dots, or a dict is empty.
    """
    if not isinstance(value, Mapping):
        return [(param, value)]
    if not value:
        raise MessageError(f"parameter {param}: an empty dict sets nothing")
    found: list[tuple[str, Any]] = []
    for key, item in value.items():
        if not isinstance(key, str) or not key or "." in key:
            raise MessageError(
                f"parameter {param}: dict keys must be non-empty str without '.', not {key!r}"
            )
        found.extend(flatten(f"{param}.{key}", item))
    return found


def nest(prefix: str, values: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Turn ``[("gains.p", 1), ("gains.i.x", 2)]`` under ``"gains"`` into a nested dict."""
    out: dict[str, Any] = {}
    for name, value in values:
        parts = name[len(prefix) + 1 :].split(".")
        place = out
        for part in parts[:-1]:
            place = place.setdefault(part, {})
        place[parts[-1]] = value
    return out
