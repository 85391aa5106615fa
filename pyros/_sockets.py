"""What both clients do with ZeroMQ alike: reading a stream socket without blocking.

The sync client (:mod:`pyros.client`) and the asyncio one (:mod:`pyros.asyncio`, through a
synchronous shadow of its socket) call this where a thread or task has found the socket
readable; the I/O-free core (:mod:`pyros._core`) then takes the items.
"""

from __future__ import annotations

import zmq

from pyros._protocol import StreamItem, parse_stream

__all__ = ["read_stream_items"]


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
