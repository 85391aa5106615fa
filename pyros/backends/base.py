"""The interface every backend implements, as the node process sees it.

A backend is the only code that talks to a ROS graph (or, for ``mock``, plays one). It lives in
the node process, never in a client. The node decides what is exposed (glob patterns) and fans
one backend subscription out to many clients; the backend only does what it is told.

Messages cross this interface as plain dicts shaped like the ROS message (ROS message
description spec, http://wiki.ros.org/msg): nested dicts for nested messages, lists for arrays,
``bytes`` for ``uint8[]``/``char[]``, ``{"secs": int, "nsecs": int}`` for ``time`` and
``duration``. Type names are ``pkg/Type``. Names passed in are absolute ROS names (``/chatter``).

Threads: the node calls backend methods from several threads at once (its main loop for
publishes on known topics, a worker thread for other requests, a pool for service calls), so
every method must be thread-safe. Subscription callbacks may run on any thread the backend
likes and must not block for long.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = ["Backend", "MessageCallback"]

MessageCallback = Callable[[dict[str, Any]], None]
"""Called with each message received on a subscribed topic, as a plain dict."""


class Backend(abc.ABC):
    """What a node process needs from a ROS graph.

    Args:
        node_name: the node's name in the graph, e.g. ``"pyros_kitchen"`` (registered as
            ``/pyros_kitchen``).
        **options: backend options from ``pyros.spawn(..., **options)`` or the CLI
            (``master_uri``, ``domain_id``, ``url``...). Unknown options raise ``TypeError``.
    """

    name: ClassVar[str] = ""

    def __init__(self, node_name: str, **options: Any) -> None:
        self.node_name = node_name

    @abc.abstractmethod
    def start(self) -> None:
        """Join the graph. Called once, before anything else.

        Raises:
            SpawnError: the graph cannot be reached (no ROS master at the URI, ...), with a
                message that says where it looked.
        """

    @abc.abstractmethod
    def stop(self) -> None:
        """Leave the graph: unregister every publisher, subscriber and service. Idempotent."""

    @abc.abstractmethod
    def topics(self) -> dict[str, str]:
        """Return every topic the graph knows now, ``{"/chatter": "std_msgs/String"}``."""

    @abc.abstractmethod
    def services(self) -> dict[str, str]:
        """Return every service the graph knows now, ``{"/set_flag": "std_srvs/SetBool"}``."""

    @abc.abstractmethod
    def params(self) -> list[str]:
        """Return the names of every parameter set now (absolute names)."""

    @abc.abstractmethod
    def publish(self, topic: str, type: str, message: dict[str, Any]) -> None:
        """Publish one message, creating the publisher on first use.

        Args:
            topic: absolute topic name.
            type: message type ``pkg/Type``.
            message: the message as a plain dict; missing fields take their ROS defaults.

        Raises:
            MessageError: the dict does not fit ``type`` (names the field), or ``type`` is
                unknown or differs from the topic's existing type.
        """

    @abc.abstractmethod
    def subscribe(self, topic: str, type: str, callback: MessageCallback) -> None:
        """Start receiving ``topic``; ``callback(dict)`` runs for each message.

        The node subscribes at most once per topic.

        Raises:
            MessageError: ``type`` is unknown.
        """

    @abc.abstractmethod
    def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic`` and unregister the subscriber. Idempotent."""

    @abc.abstractmethod
    def call(
        self, service: str, type: str, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Call a service and return its response as a dict.

        Args:
            service: absolute service name.
            type: service type ``pkg/Type``.
            request: the request as a plain dict.
            timeout: seconds to wait for the server, in total.

        Raises:
            MessageError: the request does not fit the type.
            ServiceError: the server failed or went away while answering.
            NotExposedError: no such service exists in the graph.
            TimeoutError: no answer within ``timeout``.
        """

    @abc.abstractmethod
    def get_param(self, name: str) -> Any:
        """Return a parameter's value (plain data).

        Raises:
            ParamNotSetError: the parameter is not set.
        """

    @abc.abstractmethod
    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter to plain data (None, bool, int, float, str, bytes, list, dict)."""
