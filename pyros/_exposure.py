"""Which names a node exposes: glob patterns matched against absolute ROS names.

Patterns use :mod:`fnmatch` syntax, case-sensitive: ``*`` matches any run of characters
including ``/`` (so ``/turtle1/*`` matches ``/turtle1/pose`` and ``/turtle1/a/b``), ``?`` one
character, ``[ab]`` a set. A pattern without a leading ``/`` (other than ``*``) is taken as
absolute: ``chatter`` means ``/chatter``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import TypeVar

from pyros._names import resolve
from pyros.exceptions import NotExposedError

__all__ = ["Exposure"]

V = TypeVar("V")


class Exposure:
    """A set of glob patterns for one kind of name (topics, services or parameters).

    Args:
        patterns: glob patterns; an empty sequence exposes nothing.
        kind: ``"topic"``, ``"service"`` or ``"parameter"``, for error messages.
    """

    def __init__(self, patterns: Iterable[str], kind: str) -> None:
        self.kind = kind
        self.patterns = tuple(
            p if p.startswith(("/", "*", "?", "[")) else "/" + p for p in patterns
        )

    def matches(self, name: str) -> bool:
        """Return True if the absolute ``name`` matches any pattern."""
        return any(fnmatchcase(name, pattern) for pattern in self.patterns)

    def check(self, name: object) -> str:
        """Resolve ``name`` and return it if exposed.

        Raises:
            NotExposedError: invalid name, or it matches no pattern (the message lists them).
        """
        absolute = resolve(name, self.kind)
        if not self.matches(absolute):
            shown = ", ".join(self.patterns) if self.patterns else "none"
            raise NotExposedError(
                f"{self.kind} {absolute!r} is not exposed by this node (patterns: {shown})"
            )
        return absolute

    def filter(self, names: Mapping[str, V]) -> dict[str, V]:
        """Return the entries of ``names`` whose key is exposed."""
        return {name: value for name, value in names.items() if self.matches(name)}

    def filter_list(self, names: Iterable[str]) -> list[str]:
        """Return the exposed names of ``names``, sorted."""
        return sorted(name for name in names if self.matches(name))
