"""Message details for rosapi: ``.msg``/``.srv``/``.action`` text in, ``rosapi/TypeDef`` out.

No I/O. The connector gathers the definitions of the types a robot exposes
(:func:`needed_types` tells which nested types to fetch next) and sends them in its ``hello``;
the relay answers ``/rosapi/message_details``, ``/rosapi/service_request_details`` and
``/rosapi/service_response_details`` from them with :func:`typedefs`.

A ``TypeDef`` (rosapi_msgs/msg/TypeDef) is ``{"type", "fieldnames", "fieldtypes",
"fieldarraylen", "examples", "constnames", "constvalues"}``, type names spelled as rosapi on
ROS 2 spells them (``geometry_msgs/msg/Vector3``; a service's parts
``std_srvs/srv/SetBool_Request`` and ``_Response``): ``fieldarraylen`` is -1 for a
single value, 0 for a variable-length array and N for ``T[N]``; the list holds the asked type
first, then every message type nested in it, once each (what roslibjs's ``decodeTypeDefs``
reads). Definitions are parsed by :mod:`pyros.message_types` (ROS message description
language, http://wiki.ros.org/msg).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyros.exceptions import MessageError
from pyros.message_types import (
    MessageSpec,
    canonical_type,
    parse_action,
    parse_message,
    parse_service,
)

__all__ = ["typedefs", "needed_types", "kind_of"]

_EXAMPLES = {"bool": "False", "string": "''", "time": "{}", "duration": "{}"}


def kind_of(text: str) -> str:
    """Return ``"msg"``, ``"srv"`` or ``"action"`` for a definition text (by its ``---`` lines)."""
    separators = sum(1 for line in text.splitlines() if line.strip() == "---")
    return {0: "msg", 1: "srv"}.get(separators, "action")


def _parts(type_name: str, text: str) -> list[MessageSpec]:
    kind = kind_of(text)
    if kind == "msg":
        return [parse_message(type_name, text)]
    if kind == "srv":
        service = parse_service(type_name, text)
        return [service.request, service.response]
    action = parse_action(type_name, text)
    return [action.goal, action.result, action.feedback]


def needed_types(type_name: str, text: str) -> list[str]:
    """Return the message types (``pkg/Type``) that a definition's fields refer to.

    Raises:
        MessageError: the text is not a definition pyros can parse.
    """
    found: list[str] = []
    for spec in _parts(canonical_type(type_name), text):
        for field in spec.fields:
            if not field.is_primitive and field.base_type not in found:
                found.append(field.base_type)
    return found


def _ros2(type_name: str) -> str:
    """``pkg/Type`` -> ``pkg/msg/Type`` (rosapi's ROS 2 spelling); primitives unchanged."""
    package, slash, name = type_name.partition("/")
    return f"{package}/msg/{name}" if slash and "/" not in name else type_name


def _typedef(spec: MessageSpec, type_name: str) -> dict[str, Any]:
    return {
        "type": type_name,
        "fieldnames": [field.name for field in spec.fields],
        "fieldtypes": [
            field.base_type if field.is_primitive else _ros2(field.base_type)
            for field in spec.fields
        ],
        "fieldarraylen": [
            -1 if not field.is_array else (field.length or 0) for field in spec.fields
        ],
        "examples": [
            "[]"
            if field.is_array
            else "{}"
            if not field.is_primitive
            else _EXAMPLES.get(field.base_type, "0")
            for field in spec.fields
        ],
        "constnames": [constant.name for constant in spec.constants],
        "constvalues": [str(constant.value) for constant in spec.constants],
    }


def typedefs(
    type_name: str, definitions: Mapping[str, str], part: str | None = None
) -> list[dict[str, Any]]:
    """Return the rosapi ``typedefs`` of a type and of every message type nested in it.

    Args:
        type_name: ``pkg/Type`` or ``pkg/msg/Type`` (``pkg/srv/Type`` with ``part``).
        definitions: ``pkg/Type`` -> definition text, as connectors send them.
        part: for a service, ``"request"`` or ``"response"``; None for a message.

    Returns:
        The typedefs, the asked type first; empty when its definition is not known.
    """
    try:
        root = canonical_type(type_name)
    except MessageError:
        return []
    text = definitions.get(root)
    if text is None:
        return []
    try:
        if part is None:
            first = parse_message(root, text)
        else:
            service = parse_service(root, text)
            first = service.request if part == "request" else service.response
    except MessageError:
        return []
    package, _, name = root.partition("/")
    top = _ros2(root) if part is None else f"{package}/srv/{name}_{part.capitalize()}"
    out = [_typedef(first, top)]
    seen = {root}
    pending = [f.base_type for f in first.fields if not f.is_primitive]
    while pending:
        nested = pending.pop(0)
        if nested in seen or nested not in definitions:
            continue
        seen.add(nested)
        try:
            spec = parse_message(nested, definitions[nested])
        except MessageError:
            continue
        out.append(_typedef(spec, _ros2(nested)))
        pending.extend(f.base_type for f in spec.fields if not f.is_primitive)
    return out
