"""How the ``pyros`` command writes data: JSON lines, YAML documents and tables.

Messages and values are plain data (see :mod:`pyros`); ``bytes`` (ROS ``uint8[]``) print as
base64 strings, the form rosbridge uses for ``uint8[]`` (rosbridge v2 protocol, "binary
data"). Floats that JSON cannot hold (NaN, infinities) print as JavaScript-style ``NaN`` and
``Infinity`` as Python's ``json`` module writes them, so nothing is lost silently.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["plain", "to_json", "to_yaml", "table", "parse_data"]


def plain(value: Any) -> Any:
    """Return ``value`` with every ``bytes`` replaced by its base64 text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any, *, indent: int | None = None) -> str:
    """Format plain data as JSON (one line unless ``indent``), ``bytes`` as base64."""
    return json.dumps(value, default=_json_default, indent=indent)


def to_yaml(value: Any) -> str:
    """Format plain data as a YAML document (block style, keys in message order)."""
    import yaml  # the CLI's only YAML user at run time; kept off the import path

    return str(yaml.safe_dump(plain(value), sort_keys=False, default_flow_style=False)).rstrip("\n")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Align ``rows`` in columns under ``headers`` (two spaces apart; the last column ragged)."""
    cells = [[str(header) for header in headers]]
    cells.extend([_cell(value) for value in row] for row in rows)
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = []
    for row in cells:
        padded = [text.ljust(width) for text, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def parse_data(text: str) -> Any:
    """Read a message, request, goal or parameter value given as JSON or YAML.

    JSON is tried first (it is also YAML, but JSON's own parser gives the clearer error);
    then YAML, as ``rostopic pub`` reads its arguments (``'data: true'``,
    ``'{linear: {x: 1.0}}'``).

    Raises:
        ValueError: neither parses; the message says why (for YAML, where).
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    except ValueError as exc:  # e.g. an integer of more than sys.get_int_max_str_digits()
        raise ValueError(f"not valid JSON: {exc}") from exc
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"neither JSON nor YAML: {_one_line(str(exc))}") from exc
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not valid YAML: {_one_line(str(exc))}") from exc


def _one_line(text: str) -> str:
    return " ".join(text.split())
