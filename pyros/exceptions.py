"""Every error pyros raises, in one tree.

.. code-block:: text

    PyrosError
    ├── NotExposedError      a name matches none of the node's patterns, or is not a valid ROS name
    ├── MessageError         a message dict does not fit its type; ``field`` names the bad field
    ├── ServiceError         the service ran and failed, or could not be reached
    ├── ActionError          the goal was rejected, aborted or cancelled; ``status`` says which
    ├── ParamNotSetError     get_param on an unset parameter (also a builtin KeyError)
    ├── NodeDiedError        the node process is gone; every pending call fails with this
    ├── TimeoutError         a call, a get or a start-up took too long (also a builtin TimeoutError)
    ├── SpawnError           the node process could not start (no ROS master, unknown backend...)
    ├── ConnectionLostError  the backend lost its connection mid-call (rosbridge server gone)
    ├── ProtocolError        a frame could not be decoded, or speaks another protocol version
    │   ├── pyros.cloud.device_protocol.DeviceProtocolError   connector <-> relay frame
    │   └── pyros.cloud.rosbridge.OperatorProtocolError       rosbridge v2 operator frame
    ├── ForkError            a Client made before os.fork() was used in the child
    ├── pyros.cloud.auth.AuthError              a token was refused (carries the HTTP status)
    ├── pyros.cloud.auth.TokensFileError        the relay's tokens file is malformed
    ├── pyros.cloud.connector.ConnectorError    a connector failure retrying cannot fix
    ├── pyros.dashboard.link.SignInError        the relay refused the dashboard's operator token
    ├── pyros.dashboard.link.RelayUnreachableError   the dashboard cannot reach the relay
    ├── pyros_ros.ros1.master.MasterError       the ROS master answered with a failure
    └── pyros_ros.ros1.master.MasterUnreachableError   no ROS master at that URI

The classes named with a module path live beside the code that raises them, so that
``import pyros`` imports no websockets and no ROS code; they are part of the same tree.

Errors cross the wire by name: the node sends ``{"type": "MessageError", "message": ...,
"field": ...}`` and the client raises the class of that name (see :func:`from_wire`).
Lower-layer errors are translated with ``raise X(...) from exc``.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "PyrosError",
    "NotExposedError",
    "MessageError",
    "ServiceError",
    "ActionError",
    "ConnectionLostError",
    "ParamNotSetError",
    "NodeDiedError",
    "TimeoutError",
    "SpawnError",
    "ProtocolError",
    "ForkError",
    "from_wire",
]


class PyrosError(Exception):
    """Base class of every error pyros raises on purpose."""

    def to_wire(self) -> dict[str, Any]:
        """Return this error as plain data for a reply frame: ``{"type", "message"}``."""
        return {"type": type(self).__name__, "message": str(self)}


class NotExposedError(PyrosError):
    """The topic, service or parameter name matches none of the node's patterns.

    Also raised for names that are not valid ROS graph names (``/a b``, ``/1x``), and for
    services that match a pattern but do not exist in the graph.
    """


class MessageError(PyrosError):
    """A message or request dict does not fit its ROS type.

    Attributes:
        field: dotted path of the offending field (``"linear.x"``, ``"data[3]"``), or
            ``None`` when the message as a whole is wrong (not a dict, unknown type).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep ``field`` through pickling (Celery, multiprocessing send exceptions that way).
        return (type(self), (str(self), self.field))

    def to_wire(self) -> dict[str, Any]:
        """Return this error as plain data, including ``field``."""
        wire = super().to_wire()
        wire["field"] = self.field
        return wire


class ServiceError(PyrosError):
    """The service was called and failed (its handler raised, or the server went away)."""


class ActionError(PyrosError):
    """A goal did not succeed: the server rejected it, aborted it, or it was cancelled.

    Attributes:
        status: ``"rejected"``, ``"aborted"`` or ``"canceled"`` (``action_msgs/GoalStatus``
            names, see :data:`pyros.backends.base.GOAL_STATUSES`), or None when unknown.
        result: the result message the server sent with an abort or cancel, if any.
    """

    def __init__(
        self, message: str, status: str | None = None, result: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.status, self.result))

    def to_wire(self) -> dict[str, Any]:
        """Return this error as plain data, including ``status`` and ``result``."""
        wire = super().to_wire()
        wire["status"] = self.status
        wire["result"] = self.result
        return wire


class ConnectionLostError(PyrosError):
    """The backend lost its connection to the ROS side while a call was in flight.

    The rosbridge backend raises it when the server or relay goes away mid-call; the node
    reconnects by itself, and later calls work again once it has.
    """


class ParamNotSetError(PyrosError, KeyError):
    """The parameter is not set. Catch it as ``KeyError`` as the contract says."""

    def __str__(self) -> str:
        # KeyError.__str__ quotes its argument; keep the plain sentence.
        return str(self.args[0]) if self.args else ""


class NodeDiedError(PyrosError):
    """The node process is gone (noticed within 0.1 s) or stuck (no heartbeat for 3 s)."""


class TimeoutError(PyrosError, builtins.TimeoutError):
    """An operation did not finish in time. Also a builtin ``TimeoutError``."""


class SpawnError(PyrosError):
    """The node process could not start or did not become ready."""


class ProtocolError(PyrosError):
    """A frame was malformed, or the peer speaks another protocol version."""


class ForkError(PyrosError):
    """A Client created before ``os.fork()`` was used in the child process.

    Create a new Client in the child (after the fork), e.g. in gunicorn's ``post_fork`` hook
    or Celery's ``worker_process_init`` signal, or use ``pyros.connect(name)`` there.
    """


_BY_NAME: dict[str, type[PyrosError]] = {
    cls.__name__: cls
    for cls in (
        PyrosError,
        NotExposedError,
        MessageError,
        ServiceError,
        ActionError,
        ConnectionLostError,
        ParamNotSetError,
        NodeDiedError,
        TimeoutError,
        SpawnError,
        ProtocolError,
        ForkError,
    )
}


def from_wire(error: Any) -> PyrosError:
    """Rebuild an exception from the ``{"type", "message", "field"?}`` map of a reply.

    Unknown or malformed error maps become a plain :class:`PyrosError` carrying what was sent.
    """
    if not isinstance(error, dict):
        return ProtocolError(f"malformed error in reply: {error!r}")
    message = str(error.get("message", ""))
    cls = _BY_NAME.get(str(error.get("type")), PyrosError)
    if cls is MessageError:
        field = error.get("field")
        return MessageError(message, field=field if isinstance(field, str) else None)
    if cls is ActionError:
        status = error.get("status")
        result = error.get("result")
        return ActionError(
            message,
            status=status if isinstance(status, str) else None,
            result=result if isinstance(result, dict) else None,
        )
    return cls(message)
