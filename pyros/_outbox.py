"""Handing items from any thread to a thread that owns ZeroMQ sockets.

ZeroMQ sockets must be used from one thread. Threads that need something sent (a backend
callback with a message, a worker with a reply) append to an :class:`Outbox`; the owning
thread polls :attr:`Outbox.fd` beside its sockets and drains the outbox when it is readable.
The file descriptor is a Linux eventfd, so the hand-off costs one write and one read syscall.
"""

from __future__ import annotations

import collections
import os
from typing import Generic, TypeVar

__all__ = ["Outbox"]

T = TypeVar("T")


class Outbox(Generic[T]):
    """A thread-safe FIFO whose :attr:`fd` is readable while items wait.

    ``put`` may be called from any thread; ``drain`` only from the owner.
    """

    def __init__(self) -> None:
        self._items: collections.deque[T] = collections.deque()
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def put(self, item: T) -> None:
        """Queue ``item`` and wake the owner."""
        self._items.append(item)  # deque.append is atomic
        try:
            os.eventfd_write(self.fd, 1)
        except OSError:  # closed during shutdown: the owner is gone, nothing to wake
            pass

    def drain(self) -> list[T]:
        """Return every queued item, oldest first, and reset the wake-up."""
        try:
            os.eventfd_read(self.fd)
        except BlockingIOError:
            pass
        items = []
        while self._items:
            items.append(self._items.popleft())
        return items

    def close(self) -> None:
        """Release the file descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
