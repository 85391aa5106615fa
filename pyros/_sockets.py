"""What both clients do with ZeroMQ alike: opening their SUB sockets, reading one without
blocking.

The sync client (:mod:`pyros.client`) and the asyncio one (:mod:`pyros.asyncio`, whose
context makes asyncio sockets, read through a synchronous shadow) call these; the I/O-free
core (:mod:`pyros._core`) says what to subscribe to and takes the items read.
"""

from __future__ import annotations

from typing import Any

import zmq

from pyros._core import STREAM_RCVHWM, ClientCore
from pyros._protocol import StreamItem, parse_stream

__all__ = ["read_stream_items", "stream_socket", "monitor_socket"]


def stream_socket(context: zmq.Context[Any], core: ClientCore, token: bytes) -> Any:
    """Open the SUB socket of one subscription or goal, connected to the node's stream.

    Returns:
        A socket of ``context``'s kind (an asyncio socket for a ``zmq.asyncio`` context).
    """
    socket = context.socket(zmq.SUB)
    socket.linger = 0
    socket.rcvhwm = STREAM_RCVHWM
    socket.setsockopt(zmq.SUBSCRIBE, core.stream_prefix(token))
    socket.connect(core.endpoints["stream"])
    return socket


def monitor_socket(context: zmq.Context[Any], core: ClientCore) -> Any:
    """Open a client's monitor socket: heartbeats, node events and its presence."""
    socket = context.socket(zmq.SUB)
    socket.linger = 0
    for prefix in core.monitor_prefixes():
        socket.setsockopt(zmq.SUBSCRIBE, prefix)
    socket.connect(core.endpoints["stream"])
    if "heartbeat" in core.endpoints:
        socket.connect(core.endpoints["heartbeat"])
    return socket


def read_stream_items(socket: zmq.Socket[bytes], limit: int = 100_000) -> list[StreamItem]:
    """Return the subscription or goal items waiting on a SUB socket, without blocking.

    Args:
        socket: a SUB socket subscribed to one token (used from one thread at a time).
        limit: the most messages read in one go, so one busy stream cannot starve the rest.

    Returns:
        The items in arrival order; frames that are not ours are skipped.
    """
    items = []
    for _ in range(limit):
        try:
            frames = socket.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            break
        item = parse_stream(frames)
        if isinstance(item, StreamItem):
            items.append(item)
    return items
