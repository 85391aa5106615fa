"""A small client of the ROS 1 master's XML-RPC API, with timeouts and one connection per thread.

The calls and their ``[code, statusMessage, value]`` replies are those of the ROS Master API
(http://wiki.ros.org/ROS/Master_API) and Parameter Server API
(http://wiki.ros.org/ROS/Parameter%20Server%20API). ``rosgraph.Master`` does the same job but
has no timeout (a master that accepts and never answers would hang the node) and one shared
``ServerProxy`` (not safe across the node's worker threads); this one has both, and imports no
ROS library.
"""

from __future__ import annotations

import http.client
import threading
import xmlrpc.client
from typing import Any

from pyros.exceptions import PyrosError

__all__ = ["MasterClient", "MasterError", "MasterUnreachableError"]


class MasterError(PyrosError):
    """The master answered a call with a failure code (e.g. ``lookupService`` of a service
    nobody provides, ``getParam`` of an unset parameter).

    Attributes:
        code: the API's status code: ``-1`` (ERROR) or ``0`` (FAILURE).
    """

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class MasterUnreachableError(PyrosError):
    """The master did not answer: refused, reset, timed out, or not an XML-RPC server."""


class _TimeoutTransport(xmlrpc.client.Transport):
    """An XML-RPC transport whose socket timeout can change between requests."""

    def __init__(self, timeout: float) -> None:
        super().__init__(use_builtin_types=True)
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        if conn.sock is not None:
            conn.sock.settimeout(self.timeout)
        return conn


class MasterClient:
    """Calls the ROS 1 master on behalf of one node.

    Args:
        uri: the master's XML-RPC URI, ``http://127.0.0.1:11311/``.
        caller_id: the calling node's name, ``/pyros_abc123``; the API's first argument.
        timeout: default seconds to wait for each answer.
    """

    def __init__(self, uri: str, caller_id: str, timeout: float = 2.0) -> None:
        self.uri = uri
        self.caller_id = caller_id
        self.timeout = timeout
        self._local = threading.local()

    def _proxy(self, timeout: float | None) -> xmlrpc.client.ServerProxy:
        local = self._local
        proxy = getattr(local, "proxy", None)
        if proxy is None:
            local.transport = _TimeoutTransport(self.timeout)
            proxy = local.proxy = xmlrpc.client.ServerProxy(
                self.uri, transport=local.transport, use_builtin_types=True
            )
        local.transport.timeout = self.timeout if timeout is None else max(timeout, 0.001)
        return proxy

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Call one Master API method and return the ``value`` of its reply.

        Args:
            method: the API method name, ``"getSystemState"``.
            *args: its arguments after ``caller_id``.
            timeout: seconds to wait for the answer; None uses the client's default.

        Returns:
            The reply's value (lists, dicts, str, int... as XML-RPC decodes them; base64 as
            ``bytes``).

        Raises:
            MasterError: the master answered with a failure code.
            MasterUnreachableError: no answer (refused, timed out, malformed).
        """
        try:
            code, status, value = getattr(self._proxy(timeout), method)(self.caller_id, *args)
        except (OSError, http.client.HTTPException, xmlrpc.client.Error, ValueError) as exc:
            self._local.proxy = None  # the connection may be half-used: start a fresh one
            raise MasterUnreachableError(
                f"ROS master at {self.uri} did not answer {method}: {exc}"
            ) from exc
        if code != 1:
            raise MasterError(f"ROS master {method}: {status}", code)
        return value

    def multicall(self, method: str, args: list[tuple[Any, ...]]) -> list[Any]:
        """Call ``method`` once per argument tuple in one round trip (XML-RPC multicall).

        Returns:
            One entry per call: its value, or a :class:`MasterError` instance (not raised)
            for a call that failed.

        Raises:
            MasterUnreachableError: no answer.
        """
        multi = xmlrpc.client.MultiCall(self._proxy(None))
        for one in args:
            getattr(multi, method)(self.caller_id, *one)
        try:
            results = multi()
            replies: list[Any] = [results[index] for index in range(len(args))]
        except (OSError, http.client.HTTPException, xmlrpc.client.Error, ValueError) as exc:
            self._local.proxy = None
            raise MasterUnreachableError(
                f"ROS master at {self.uri} did not answer {method}: {exc}"
            ) from exc
        return [
            value if code == 1 else MasterError(f"ROS master {method}: {status}", code)
            for code, status, value in replies
        ]
