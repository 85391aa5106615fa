"""ROS 1 service calls over TCPROS with real timeouts and a pool of persistent connections.

The wire format is the TCPROS service protocol (http://wiki.ros.org/ROS/TCPROS): a connection
header (``callerid``, ``service``, ``md5sum``, ``persistent``) answered by the server's header;
then per call the serialized request with a 4-byte little-endian length, answered by one ``ok``
byte and a 4-byte length followed by the serialized response (``ok`` = 1) or an error string
(``ok`` = 0, the server's handler raised).

Why not ``rospy.ServiceProxy``: it has no timeout (its sockets are switched back to blocking
mode, so a hung server hangs the caller), it asks the master for the server's address on every
call, and a persistent proxy cannot be shared between threads. Here every socket operation is
bounded by the call's deadline, and each ``(service, type)`` keeps a few idle persistent
connections that the node's worker threads take in turn. An idle connection is checked before
reuse (a closed one is readable with no data), so a restarted server costs one new connection
and a request is never sent twice.
"""

from __future__ import annotations

import io
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from rosgraph.network import (
    ROSHandshakeException,
    decode_ros_handshake_header,
    encode_ros_handshake_header,
)

from pyros.exceptions import MessageError, ServiceError, TimeoutError

__all__ = ["ServiceClient", "parse_rosrpc_uri", "probe_service_type"]

_HEADER_LIMIT = 1 << 20
"""Largest connection header accepted from a server, in bytes."""

_RESPONSE_LIMIT = 1 << 30
"""Largest response accepted, in bytes (1 GiB): a larger length prefix means a broken stream."""

_LENGTH = struct.Struct("<I")


def parse_rosrpc_uri(uri: str) -> tuple[str, int]:
    """Split ``rosrpc://host:port`` (a service address from the master) into host and port.

    Raises:
        ServiceError: the URI is not a ROSRPC URI.
    """
    prefix = "rosrpc://"
    if not uri.startswith(prefix):
        raise ServiceError(f"master returned an invalid service URI {uri!r}")
    host, _, port = uri[len(prefix) :].split("/", 1)[0].rpartition(":")
    try:
        return host, int(port)
    except ValueError as exc:
        raise ServiceError(f"master returned an invalid service URI {uri!r}") from exc


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("deadline passed")
    return left


def _recv_exact(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks = []
    while size:
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionResetError("connection closed by the service")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _handshake(
    host: str, port: int, header: dict[str, str], deadline: float | None
) -> tuple[socket.socket, dict[str, str]]:
    sock = socket.create_connection((host, port), timeout=_remaining(deadline))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(_remaining(deadline))
        sock.sendall(encode_ros_handshake_header(header))
        head = _recv_exact(sock, 4, deadline)
        (size,) = _LENGTH.unpack(head)
        if size > _HEADER_LIMIT:
            raise ROSHandshakeException(f"connection header of {size} bytes is too large")
        reply = decode_ros_handshake_header(head + _recv_exact(sock, size, deadline))
    except BaseException:
        sock.close()
        raise
    return sock, reply


def probe_service_type(service: str, uri: str, caller_id: str, timeout: float) -> str:
    """Ask a service server for its type, as ``rosservice type`` does (a ``probe`` header).

    Args:
        service: absolute service name.
        uri: the server's ``rosrpc://host:port`` from the master's ``lookupService``.
        caller_id: the asking node's name.
        timeout: seconds for the whole exchange.

    Returns:
        The service type, ``"std_srvs/SetBool"``.

    Raises:
        ServiceError: the URI is invalid, the server cannot be reached or did not answer in
            time, or its header is malformed or has no type.
    """
    host, port = parse_rosrpc_uri(uri)
    header = {"probe": "1", "md5sum": "*", "callerid": caller_id, "service": service}
    try:
        sock, reply = _handshake(host, port, header, time.monotonic() + timeout)
    except (OSError, ROSHandshakeException) as exc:
        raise ServiceError(f"service {service} at {uri} did not answer a probe: {exc}") from exc
    sock.close()
    if "type" not in reply:
        raise ServiceError(f"service {service} at {uri} answered a probe with no type: {reply}")
    return reply["type"]


class _Connection:
    """One persistent TCPROS connection to one service server."""

    def __init__(
        self, service: str, srv_cls: Any, uri: str, caller_id: str, deadline: float | None
    ) -> None:
        self.service = service
        self.srv_cls = srv_cls
        host, port = parse_rosrpc_uri(uri)
        header = {
            "callerid": caller_id,
            "service": service,
            "md5sum": srv_cls._md5sum,
            "type": srv_cls._type,
            "persistent": "1",
        }
        try:
            self.sock, reply = _handshake(host, port, header, deadline)
        except socket.timeout:
            raise
        except (OSError, ROSHandshakeException) as exc:
            raise ServiceError(
                f"service {service} is registered at {uri} but cannot be reached: {exc}"
            ) from exc
        if "error" in reply:
            self.sock.close()
            raise MessageError(f"service {service} refused type {srv_cls._type}: {reply['error']}")

    def alive(self) -> bool:
        """Return False if the server closed this idle connection (or sent stray data)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            return not readable
        except (OSError, ValueError):
            return False

    def request(self, request: Any, deadline: float | None) -> Any:
        buffer = io.BytesIO()
        buffer.write(b"\0\0\0\0")
        try:
            request.serialize(buffer)
        except Exception as exc:  # genpy raises struct.error, SerializationError, TypeError...
            raise MessageError(f"request for {self.service} cannot be serialized: {exc}") from exc
        data = buffer.getbuffer()
        _LENGTH.pack_into(data, 0, len(data) - 4)
        sock = self.sock
        sock.settimeout(_remaining(deadline))
        sock.sendall(data)
        head = _recv_exact(sock, 5, deadline)
        ok = head[0]
        (size,) = _LENGTH.unpack_from(head, 1)
        if size > _RESPONSE_LIMIT:
            raise ConnectionResetError(f"response length {size} is not plausible")
        payload = _recv_exact(sock, size, deadline)
        if not ok:
            raise ServiceError(
                f"service {self.service} failed: {payload.decode('utf-8', 'replace')}"
            )
        response = self.srv_cls._response_class()
        try:
            response.deserialize(payload)
        except Exception as exc:  # genpy raises DeserializationError, struct.error...
            raise ServiceError(
                f"service {self.service} sent a response that is not a "
                f"{self.srv_cls._type} response: {exc}"
            ) from exc
        return response

    def close(self) -> None:
        self.sock.close()


class ServiceClient:
    """Calls ROS 1 services for one node, keeping idle persistent connections for reuse.

    Safe to use from many threads at once: each call has a connection to itself.

    Args:
        caller_id: the calling node's name, ``/pyros_abc123``.
        lookup: ``lookup(service, timeout) -> "rosrpc://host:port"``; raises
            :class:`~pyros.exceptions.NotExposedError` when no server provides the service.
        max_idle: idle connections kept per service and type.
    """

    def __init__(
        self, caller_id: str, lookup: Callable[[str, float | None], str], max_idle: int = 4
    ) -> None:
        self.caller_id = caller_id
        self._lookup = lookup
        self._max_idle = max_idle
        self._idle: dict[tuple[str, str], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def call(self, service: str, srv_cls: Any, request: Any, timeout: float | None) -> Any:
        """Call ``service`` with a genpy request and return the genpy response.

        Args:
            service: absolute service name.
            srv_cls: the genpy service class (``std_srvs.srv.SetBool``).
            request: an instance of ``srv_cls._request_class``.
            timeout: seconds for the whole call (lookup, connect, answer); None waits forever.

        Raises:
            NotExposedError: no server provides the service (from ``lookup``).
            MessageError: the server has another type, or the request cannot be serialized.
            ServiceError: the server's handler failed, or the server went away while answering.
            TimeoutError: no answer within ``timeout``; the connection is dropped.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        key = (service, srv_cls._type)
        connection = self._take_idle(key)
        try:
            if connection is None:
                uri = self._lookup(service, _remaining(deadline))
                connection = _Connection(service, srv_cls, uri, self.caller_id, deadline)
            response = connection.request(request, deadline)
        except socket.timeout as exc:
            if connection is not None:
                connection.close()
            raise TimeoutError(f"service {service} did not answer within {timeout} s") from exc
        except OSError as exc:
            if connection is not None:
                connection.close()
            raise ServiceError(f"service {service} went away while answering: {exc}") from exc
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        self._put_idle(key, connection)
        return response

    def _take_idle(self, key: tuple[str, str]) -> _Connection | None:
        while True:
            with self._lock:
                pool = self._idle.get(key)
                if not pool:
                    return None
                connection = pool.pop()
            if connection.alive():
                return connection
            connection.close()

    def _put_idle(self, key: tuple[str, str], connection: _Connection) -> None:
        with self._lock:
            pool = self._idle.setdefault(key, [])
            if not self._closed and len(pool) < self._max_idle:
                pool.append(connection)
                return
        connection.close()

    def close(self) -> None:
        """Close every idle connection; later calls still work but are not pooled."""
        with self._lock:
            self._closed = True
            pools, self._idle = self._idle, {}
        for pool in pools.values():
            for connection in pool:
                connection.close()
