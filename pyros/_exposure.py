"""Which names a node exposes: glob patterns (:func:`pyros._names.glob_match`) matched
against absolute ROS names.

``*`` matches within one name level (``/turtle1/*`` matches ``/turtle1/pose``, not
``/turtle1/a/b``), ``**`` across levels (``/turtle1/**``), and a pattern of just ``*`` exposes
everything. A pattern without a leading ``/`` is taken as absolute: ``chatter`` means
``/chatter``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from pyros._names import compile_glob, resolve, resolve_param
from pyros.exceptions import NotExposedError

__all__ = ["Exposure"]

V = TypeVar("V")


class Exposure:
    """A set of glob patterns for one kind of name (topics, services, parameters, actions).

    Args:
        patterns: glob patterns; an empty sequence exposes nothing.
        kind: ``"topic"``, ``"service"``, ``"parameter"`` or ``"action"``, for error
            messages; parameters may also be ``<node>:<param>`` (ROS 2).
    """

    def __init__(self, patterns: Iterable[str], kind: str) -> None:
        self.kind = kind
        self.patterns = tuple(patterns)
        self._compiled = [compile_glob(pattern) for pattern in self.patterns]
        self._resolve: Callable[[object], str] = (
            resolve_param if kind == "parameter" else lambda name: resolve(name, kind)
        )
        self._checked: dict[str, str] = {}

    def matches(self, name: str) -> bool:
        """Return True if the absolute ``name`` matches any pattern."""
        return any(regex.fullmatch(name) for regex in self._compiled)

    def check(self, name: object) -> str:
        """Resolve ``name`` and return it if exposed.

        Raises:
            NotExposedError: invalid name, or it matches no pattern (the message lists them).
        """
        if isinstance(name, str):
            known = self._checked.get(name)
            if known is not None:
                return known
        absolute = self._resolve(name)
        if not self.matches(absolute):
            shown = ", ".join(self.patterns) if self.patterns else "none"
            raise NotExposedError(
                f"{self.kind} {absolute!r} is not exposed by this node (patterns: {shown})"
            )
        if isinstance(name, str) and len(self._checked) < 10_000:
            self._checked[name] = absolute
        return absolute

    def filter(self, names: Mapping[str, V]) -> dict[str, V]:
        """Return the entries of ``names`` whose key is exposed."""
        return {name: value for name, value in names.items() if self.matches(name)}

    def filter_list(self, names: Iterable[str]) -> list[str]:
        """Return the exposed names of ``names``, sorted."""
        return sorted(name for name in names if self.matches(name))
