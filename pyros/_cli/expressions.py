"""Message field paths and the ``--filter`` expression language of ``pyros echo``.

Field paths
    ``pose.position.x``, ``pose/position/x`` (rostopic's form) and ``ranges[3]`` (an array
    element) all name a field inside a message dict. :func:`parse_path` reads one,
    :func:`get_field` applies it, :func:`split_topic` separates ``/turtle1/pose/x`` into the
    topic ``/turtle1/pose`` and the path ``x`` by looking at which topics exist, as
    ``rostopic echo /topic/field`` does.

The filter language
    ``--filter`` takes one expression in Python's expression syntax, restricted to what a
    message test needs, and evaluated here by walking its syntax tree: user input is never
    given to ``eval()`` and no Python object but the message's plain data is ever reached.

    * ``m`` (or ``msg``) is the message; any other name is one of its top-level fields, so
      ``x > 5`` and ``m.x > 5`` mean the same. ``a.b`` is field ``b`` of ``a``; ``a[0]`` an
      array element; ``a['key']`` a field named by a string.
    * Literals: numbers, strings, ``True``, ``False``, ``None``, lists and tuples of them.
    * Operators: ``and``, ``or``, ``not``; ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``
      (chained too: ``0 < x < 5``), ``in``, ``not in``; on numbers ``+ - * / // %`` and
      unary ``-``/``+``.
    * Functions: ``len``, ``abs``, ``min``, ``max``, ``round``.

    Everything else (calls of other names, methods, lambdas, comprehensions, ``**``, names
    starting with ``_``...) is refused when the expression is compiled, before any node is
    started. Expressions are at most :data:`MAX_EXPRESSION_LENGTH` characters and
    :data:`MAX_DEPTH` levels deep. rostopic's ``--filter`` evaluates any Python expression with
    ``m`` bound to the message; the expressions above read the same here.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "FilterError",
    "FieldError",
    "Filter",
    "parse_path",
    "format_path",
    "get_field",
    "split_topic",
    "MAX_EXPRESSION_LENGTH",
    "MAX_DEPTH",
]

MAX_EXPRESSION_LENGTH = 1000
"""Characters a ``--filter`` expression may have."""

MAX_DEPTH = 40
"""Nesting levels a ``--filter`` expression may have (its syntax tree's depth)."""

Path = tuple[str | int, ...]


class FieldError(LookupError):
    """A field path names nothing in the message (the message says what the message has)."""


class FilterError(ValueError):
    """A ``--filter`` expression is not in the language, or failed on a message."""


_STEP = re.compile(r"([^./\[\]]+)|\[(-?\d+)\]")


def parse_path(text: str) -> Path:
    """Parse a field path: ``a.b``, ``a/b``, ``a[0].b`` or ``a.0`` (an index as a step).

    Args:
        text: the path; a leading ``/`` or ``.`` is ignored; empty means the whole message.

    Returns:
        The steps: strings for fields, ints for array indices.

    Raises:
        FieldError: the text is not a path (``a..b``, ``a[x]``, ``a[``).
    """
    text = text.strip().lstrip("/.")
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        if steps and text[position] in "./" and not text.startswith("[", position + 1):
            position += 1
        match = _STEP.match(text, position)
        if match is None:
            raise FieldError(f"{text!r} is not a field path (e.g. pose.position.x, ranges[0])")
        name, index = match.groups()
        if index is not None:
            steps.append(int(index))
        elif name.isdigit() or (name.startswith("-") and name[1:].isdigit()):
            steps.append(int(name))
        else:
            steps.append(name)
        position = match.end()
    return tuple(steps)


def format_path(path: Path) -> str:
    """Write a path as ``a.b[0].c``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def get_field(message: Any, path: Path) -> Any:
    """Return the value at ``path`` inside ``message``.

    Raises:
        FieldError: a step names no field of a dict, indexes past an array's end, or steps
            into a value that has no fields; the message names the fields that do exist.
    """
    value = message
    for depth, step in enumerate(path):
        where = format_path(path[:depth]) or "the message"
        if isinstance(step, int):
            if not isinstance(value, (list, tuple, bytes, bytearray, str)):
                raise FieldError(f"{where} is not an array, so [{step}] names nothing")
            if not -len(value) <= step < len(value):
                raise FieldError(f"{where} has {len(value)} elements, so [{step}] names nothing")
            value = value[step]
            continue
        if not isinstance(value, Mapping):
            raise FieldError(f"{where} has no fields, so {step!r} names nothing")
        if step not in value:
            raise FieldError(_no_field(where, step, value))
        value = value[step]
    return value


def _no_field(where: str, step: str, value: Mapping[str, Any]) -> str:
    fields = [str(key) for key in value]
    close = difflib.get_close_matches(step, fields, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{where} has no field {step!r} (it has: {', '.join(fields) or 'no fields'}){hint}"


def split_topic(name: str, topics: Sequence[str]) -> tuple[str, Path]:
    """Split ``/topic/field/sub`` into a topic that exists and a field path, as rostopic.

    The longest prefix of ``name`` (at a ``/``) that is in ``topics`` is the topic; the rest is
    the path. When no prefix is a known topic (it may appear later), all of ``name`` is the
    topic. A ``[i]`` suffix or ``.field`` after the topic is part of the path.

    Args:
        name: what the user typed, e.g. ``"/turtle1/pose/x"`` or ``"/scan/ranges[0]"``.
        topics: the names of the topics that exist now.

    Returns:
        ``(topic, path)``; ``path`` is empty when ``name`` is itself a topic.
    """
    known = set(topics)
    base, bracket, rest = name.partition("[")
    if base in known:
        return base, parse_path(bracket + rest) if bracket else ()
    parts = base.split("/")
    for cut in range(len(parts) - 1, 1, -1):
        candidate = "/".join(parts[:cut])
        if candidate in known:
            remainder = "/".join(parts[cut:]) + (bracket + rest if bracket else "")
            return candidate, parse_path(remainder)
    return name, ()


# --- the filter language ---------------------------------------------------------------------

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}

_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
}

_MESSAGE_NAMES = ("m", "msg")


class Filter:
    """A compiled ``--filter`` expression; call it with a message to test the message.

    Args:
        text: the expression (see the module docstring for the language).

    Raises:
        FilterError: the text is too long, not an expression, or uses what the language
            lacks; the message says what and where.

    Example:
        >>> Filter("x > 5 and m.theta < 1")({"x": 6.0, "theta": 0.5})
        True
    """

    def __init__(self, text: str) -> None:
        if len(text) > MAX_EXPRESSION_LENGTH:
            raise FilterError(f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise FilterError(f"{text!r} is not an expression: {_syntax_message(exc)}") from exc
        self.text = text
        self._tree = tree.body
        self._check(self._tree, 1)

    def __call__(self, message: Mapping[str, Any]) -> bool:
        """Return whether ``message`` passes.

        Raises:
            FilterError: the expression failed on this message (a missing field, a comparison
                of a string with a number, a division by zero...).
        """
        try:
            return bool(self._eval(self._tree, message))
        except FieldError as exc:
            raise FilterError(str(exc)) from exc
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, RecursionError) as exc:
            raise FilterError(f"{self.text!r} failed on a message: {exc}") from exc

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"

    # Checked once, so evaluation meets only nodes it knows.
    def _check(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise FilterError(f"the expression is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, bool, type(None))):
                raise FilterError(f"{self._source(node)} is not a number, string or bool")
            return
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise FilterError(f"names may not start with '_': {node.id}")
            return
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise FilterError(f"field names may not start with '_' here: {node.attr}")
            self._check(node.value, depth + 1)
            return
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice):
                raise FilterError(f"slices are not supported: {self._source(node)}")
            self._check(node.value, depth + 1)
            self._check(node.slice, depth + 1)
            return
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self._check(value, depth + 1)
            return
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
                raise FilterError(f"operator not supported: {self._source(node)}")
            self._check(node.operand, depth + 1)
            return
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _ARITHMETIC:
                raise FilterError(
                    f"operator not supported: {self._source(node)} (use + - * / // %)"
                )
            self._check(node.left, depth + 1)
            self._check(node.right, depth + 1)
            return
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _COMPARE:
                    raise FilterError(f"comparison not supported: {self._source(node)}")
            for part in (node.left, *node.comparators):
                self._check(part, depth + 1)
            return
        if isinstance(node, (ast.List, ast.Tuple)):
            for element in node.elts:
                self._check(element, depth + 1)
            return
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
                raise FilterError(
                    f"only {', '.join(_FUNCTIONS)} may be called: {self._source(node)}"
                )
            if node.keywords:
                raise FilterError(f"keyword arguments are not supported: {self._source(node)}")
            for argument in node.args:
                if isinstance(argument, ast.Starred):
                    raise FilterError(f"*arguments are not supported: {self._source(node)}")
                self._check(argument, depth + 1)
            return
        raise FilterError(f"not supported in a filter: {self._source(node)}")

    def _source(self, node: ast.AST) -> str:
        return repr(ast.get_source_segment(self.text.strip(), node) or type(node).__name__)

    def _eval(self, node: ast.AST, message: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in _MESSAGE_NAMES:
                return message
            return get_field(message, (node.id,))
        if isinstance(node, ast.Attribute):
            value = self._eval(node.value, message)
            return _step(value, node.attr, self._source(node.value))
        if isinstance(node, ast.Subscript):
            value = self._eval(node.value, message)
            key = self._eval(node.slice, message)
            if isinstance(key, bool) or not isinstance(key, (int, str)):
                raise FilterError(f"an index must be an int or a string: {self._source(node)}")
            return _step(value, key, self._source(node.value))
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                result: Any = True
                for value_node in node.values:
                    result = self._eval(value_node, message)
                    if not result:
                        return result
                return result
            result = False
            for value_node in node.values:
                result = self._eval(value_node, message)
                if result:
                    return result
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, message)
            if isinstance(node.op, ast.Not):
                return not operand
            _number(operand, self._source(node))
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            left = _number(self._eval(node.left, message), self._source(node.left))
            right = _number(self._eval(node.right, message), self._source(node.right))
            return _ARITHMETIC[type(node.op)](left, right)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, message)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self._eval(right_node, message)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._eval(element, message) for element in node.elts]
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            arguments = [self._eval(argument, message) for argument in node.args]
            return _FUNCTIONS[node.func.id](*arguments)
        raise FilterError(f"not supported in a filter: {self._source(node)}")  # pragma: no cover


def _step(value: Any, key: str | int, where: str) -> Any:
    if isinstance(key, int):
        if not isinstance(value, (list, tuple, str, bytes, bytearray)):
            raise FieldError(f"{where} is not an array, so [{key}] names nothing")
        if not -len(value) <= key < len(value):
            raise FieldError(f"{where} has {len(value)} elements, so [{key}] names nothing")
        return value[key]
    if not isinstance(value, Mapping):
        raise FieldError(f"{where} has no fields, so {key!r} names nothing")
    if key not in value:
        raise FieldError(_no_field(where, key, value))
    return value[key]


def _number(value: Any, where: str) -> int | float:
    if isinstance(value, (int, float)):
        return value
    raise FilterError(f"{where} is {type(value).__name__}, not a number")


def _syntax_message(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return exc.msg
    return type(exc).__name__
