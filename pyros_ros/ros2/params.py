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

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from rcl_interfaces.msg import Parameter as ParameterMessage
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, ListParameters, SetParameters

from pyros.exceptions import (
    MessageError,
    NotExposedError,
    ParamNotSetError,
    PyrosError,
    TimeoutError,
)

if TYPE_CHECKING:
    from pyros_ros.ros2.session import Session

__all__ = [
    "Parameters",
    "PARAM_LIST_TIMEOUT",
    "PARAM_TIMEOUT",
    "split_name",
    "to_python",
    "to_value",
    "flatten",
    "nest",
]

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


PARAM_LIST_TIMEOUT = 2.0
"""Seconds :meth:`Parameters.names` waits for the nodes' ``list_parameters`` answers in all;
a node that does not answer in time is left out."""

PARAM_TIMEOUT = 5.0
"""Seconds a parameter get, set or delete waits for the node's parameter services."""


class Parameters:
    """Every node's parameters, through their parameter services, from one session's node.

    Args:
        session: the session whose node calls the services.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def names(self) -> list[str]:
        """``<node>:<param>`` for every parameter of every node that answers in time.

        The nodes are found by their ``<node>/list_parameters`` services (which the graph
        shows before it shows node names).
        """
        suffix = "/list_parameters"
        targets = [
            name[: -len(suffix)]
            for name, type_name in self._session.services().items()
            if name.endswith(suffix)
            and type_name == "rcl_interfaces/srv/ListParameters"
            and name[: -len(suffix)] != self._session.name
        ]
        deadline = time.monotonic() + PARAM_LIST_TIMEOUT
        if not targets:
            return []
        found: list[str] = []
        with ThreadPoolExecutor(min(16, len(targets))) as pool:
            answers = pool.map(
                lambda full: self._session.call_internal(
                    f"{full}/list_parameters", ListParameters, ListParameters.Request(), deadline
                ),
                targets,
            )
            for full, answer in zip(targets, answers, strict=True):
                if answer is not None:
                    found.extend(f"{full}:{name}" for name in answer.result.names)
        return sorted(found)

    def _node_service(self, node_name: str, service: str) -> str:
        """The parameter service ``service`` of ``node_name``.

        Raises:
            ParamNotSetError: the node is not in the graph, or serves no parameters.
        """
        name = f"{node_name}/{service}"
        if name in self._session.services():
            return name
        if self._session.find_node(node_name) is None:
            raise ParamNotSetError(f"node {node_name} is not in the ROS graph")
        raise ParamNotSetError(f"node {node_name} serves no parameters ({name})")

    def _get_values(self, node_name: str, names: list[str], deadline: float) -> list[Any]:
        service = self._node_service(node_name, "get_parameters")
        request = GetParameters.Request(names=names)
        answer = self._session.call_internal(service, GetParameters, request, deadline)
        if answer is None:
            raise TimeoutError(f"node {node_name} did not answer {service} in time")
        return list(answer.values)

    def _list_under(self, node_name: str, prefix: str, deadline: float) -> list[str]:
        service = self._node_service(node_name, "list_parameters")
        request = ListParameters.Request(prefixes=[prefix], depth=0)
        answer = self._session.call_internal(service, ListParameters, request, deadline)
        if answer is None:
            return []
        return [name for name in answer.result.names if name.startswith(prefix + ".")]

    def get(self, name: str) -> Any:
        """Read a parameter (or the dict of those under a prefix); see ``Backend.get_param``."""
        node_name, param = split_name(name)
        deadline = time.monotonic() + PARAM_TIMEOUT
        values = self._get_values(node_name, [param], deadline)
        if values:
            try:
                return to_python(values[0])
            except ParamNotSetError:
                pass
        children = self._list_under(node_name, param, deadline)
        if not children:
            raise ParamNotSetError(f"parameter {name} is not set")
        child_values = self._get_values(node_name, children, deadline)
        pairs = []
        for child, value in zip(children, child_values, strict=False):
            try:
                pairs.append((child, to_python(value)))
            except ParamNotSetError:
                continue
        return nest(param, pairs)

    def set(self, name: str, value: Any) -> None:
        """Set a parameter, or those under a prefix from a dict; see ``Backend.set_param``.

        Raises:
            MessageError: the value cannot be a ROS 2 parameter (see
                :func:`pyros_ros.ros2.to_value`).
            NotExposedError: the node is not in the graph.
            PyrosError: the node refused (undeclared or read-only parameter, wrong type...),
                with its reason.
            TimeoutError: the node did not answer in time.
        """
        node_name, param = split_name(name)
        pairs = flatten(param, value)
        for pair_name, pair_value in pairs:
            to_value(pair_value, f"{node_name}:{pair_name}")  # check before any call
        deadline = time.monotonic() + PARAM_TIMEOUT
        try:
            current = self._get_values(node_name, [n for n, _ in pairs], deadline)
        except ParamNotSetError as exc:
            raise NotExposedError(f"cannot set {name}: {exc}") from exc
        kinds = [v.type for v in current] + [0] * (len(pairs) - len(current))
        parameters = [
            ParameterMessage(name=pair_name, value=to_value(pair_value, name, kind))
            for (pair_name, pair_value), kind in zip(pairs, kinds, strict=True)
        ]
        self._set(node_name, parameters, deadline, f"set {name}")

    def _set(self, node_name: str, parameters: list[Any], deadline: float, what: str) -> None:
        service = self._node_service(node_name, "set_parameters")
        request = SetParameters.Request(parameters=parameters)
        answer = self._session.call_internal(service, SetParameters, request, deadline)
        if answer is None:
            raise TimeoutError(f"node {node_name} did not answer {service} ({what})")
        refused = [
            f"{parameter.name}: {result.reason or 'refused'}"
            for parameter, result in zip(parameters, answer.results, strict=False)
            if not result.successful
        ]
        if refused:
            raise PyrosError(f"node {node_name} refused to {what}: {'; '.join(refused)}")

    def delete(self, name: str) -> None:
        """Undeclare a parameter (or all under a prefix); see ``Backend.delete_param``.

        ROS 2 nodes let a client undeclare only parameters they allow to be undeclared
        (``allow_undeclared_parameters``); others refuse with a reason, raised as PyrosError.
        """
        node_name, param = split_name(name)
        deadline = time.monotonic() + PARAM_TIMEOUT
        names = []
        values = self._get_values(node_name, [param], deadline)
        if values and values[0].type != 0:
            names.append(param)
        names += self._list_under(node_name, param, deadline)
        if not names:
            raise ParamNotSetError(f"parameter {name} is not set")
        parameters = [ParameterMessage(name=n) for n in names]  # type NOT_SET: undeclare
        self._set(node_name, parameters, deadline, f"delete {name}")
