"""The connector's outgoing buffer: sequence numbers, acks, resends and exact drop counts.

No I/O, no clock, no asyncio: the connector (:mod:`pyros.cloud.connector`) tells a
:class:`SendBuffer` what happened (a message to forward, a frame handed to the websocket, an
``ack`` or ``welcome`` from the relay, a lost connection) and asks it what to send next. It is
tested in memory (``tests/cloud/test_connector_buffer.py``).

The rules come from the device protocol (:mod:`pyros.cloud.device_protocol`):

* every forwarded message gets the next ``seq`` of the session (1, 2, 3...), kept across
  reconnects;
* a message stays buffered until the relay acknowledges it (cumulative ``ack``, or the
  ``resume_after`` of a ``welcome``), so what was in flight when a connection died is sent
  again on the next one, in order;
* the buffer is bounded, in messages and in size: when full, the oldest message is dropped and
  counted per topic, and the counts go to the relay in the next ``hello`` (``dropped``).

Counts are exact. A dropped message that was never sent is certainly lost. One that was sent but
not yet acknowledged may have reached the relay: it is held as *uncertain* until the relay says
how far it got (an ``ack``, or the ``resume_after`` of the next ``welcome``), then counted only
if the relay did not accept it. A relay that restarted and forgot the session answers
``resume_after: 0``, so such messages count as dropped: that relay never saw them.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyros.cloud import device_protocol

__all__ = ["SendBuffer", "BufferedMessage"]


@dataclass(frozen=True)
class BufferedMessage:
    """One forwarded message waiting for the relay's acknowledgement.

    Attributes:
        seq: its session sequence number (from 1).
        topic: the device-local topic name.
        frame: the encoded ``publish`` text frame (:func:`device_protocol.publish`).
    """

    seq: int
    topic: str
    frame: str


class SendBuffer:
    """Sequence-numbered, bounded FIFO of forwarded messages (see the module docstring).

    Args:
        capacity: the most messages held (sent-but-unacknowledged plus unsent); at least 1.
        max_bytes: the most encoded frame text held, in characters (bytes for ASCII JSON);
            None for no size bound. The newest message is always kept, however large.
        max_message: the largest encoded frame accepted, in UTF-8 bytes (keep it at or below
            the relay's ``--max-message-bytes``); None for no limit.
        max_uncertain: the most dropped-while-unacknowledged messages remembered until the relay
            resolves them; beyond it the oldest is counted as dropped (only a relay that stops
            acknowledging gets there). Default: ``capacity``.

    Raises:
        ValueError: ``capacity`` or ``max_bytes`` is below 1.
    """

    def __init__(
        self,
        capacity: int,
        *,
        max_bytes: int | None = None,
        max_message: int | None = None,
        max_uncertain: int | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"the buffer capacity must be at least 1 message, got {capacity}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"the buffer size bound must be at least 1 byte, got {max_bytes}")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.max_message = max_message
        self.bytes = 0
        """Characters of encoded frames held now."""
        self.max_uncertain = capacity if max_uncertain is None else max_uncertain
        self.last_seq = 0
        """The seq of the newest message added (0 before the first)."""
        self.acked = 0
        """The highest seq the relay acknowledged (cumulative)."""
        self.dropped_total = 0
        """Messages counted as dropped since the start (reported or not)."""
        self._entries: collections.deque[BufferedMessage] = collections.deque()
        self._cursor = 0  # entries at the left already sent on the current connection
        self._highest_sent = 0  # highest seq ever handed to a connection
        self._welcomed = False  # the current connection got its first welcome
        self._uncertain: collections.deque[tuple[int, str]] = collections.deque()
        self._dropped: collections.Counter[str] = collections.Counter()  # not yet in a hello
        self._reported: collections.Counter[str] = collections.Counter()  # in a hello, no welcome

    # --- what the robot produces ---------------------------------------------------------

    def add(self, topic: str, message: Mapping[str, Any]) -> int:
        """Buffer one message for ``topic`` and return its seq.

        Args:
            topic: the device-local topic name.
            message: plain JSON data (``uint8[]`` already as base64 strings).

        Returns:
            The message's seq. When the buffer was full its oldest message was dropped first.

        Raises:
            DeviceProtocolError: ``message`` cannot be encoded as JSON, or its frame is larger
                than ``max_message`` (nothing is buffered, no seq is used).
        """
        seq = self.last_seq + 1
        frame = device_protocol.encode(device_protocol.publish(topic, message, seq))
        if self.max_message is not None and len(frame) * 4 > self.max_message:
            size = len(frame.encode("utf-8", "surrogatepass"))
            if size > self.max_message:
                raise device_protocol.DeviceProtocolError(
                    f"a message of {topic} is {size} bytes of JSON, above the limit of "
                    f"{self.max_message} bytes"
                )
        self.last_seq = seq
        self._entries.append(BufferedMessage(seq, topic, frame))
        self.bytes += len(frame)
        while len(self._entries) > self.capacity or (
            self.max_bytes is not None and self.bytes > self.max_bytes and len(self._entries) > 1
        ):
            self._drop_oldest()
        return seq

    def count_lost(self, topic: str, count: int) -> None:
        """Count ``count`` messages of ``topic`` lost before reaching the buffer.

        Used for messages a subscription queue dropped; they are reported like buffer drops.
        """
        if count > 0:
            self._dropped[topic] += count
            self.dropped_total += count

    # --- what the connection does --------------------------------------------------------

    def next_to_send(self) -> BufferedMessage | None:
        """Return the next message to send on the current connection, or None.

        Nothing is sent before the connection's first ``welcome`` (see :meth:`welcome`). The
        message counts as sent (in flight, still buffered until acknowledged) from now on.
        """
        if not self._welcomed or self._cursor >= len(self._entries):
            return None
        entry = self._entries[self._cursor]
        self._cursor += 1
        self._highest_sent = max(self._highest_sent, entry.seq)
        return entry

    def take_dropped(self) -> dict[str, int]:
        """Return the drop counts to put in a ``hello`` (per topic, since the last report).

        They stay pending until the next :meth:`welcome` confirms the relay got that hello; a
        connection lost before then puts them back for the next hello.
        """
        counts = dict(self._dropped)
        self._reported.update(self._dropped)
        self._dropped.clear()
        return counts

    def has_unreported_drops(self) -> bool:
        """True if drop counts wait for a ``hello`` (e.g. resolved by the last ``welcome``)."""
        return bool(self._dropped)

    def welcome(self, resume_after: int) -> None:
        """Apply the relay's ``welcome``: it accepted every seq up to ``resume_after``.

        The first welcome of a connection starts sending: everything still buffered after
        ``resume_after`` is sent again, oldest first. A later welcome on the same connection
        (the answer to a re-sent hello) only acknowledges.
        """
        self._reported.clear()
        # Before the first welcome of a connection every uncertain message was sent on an
        # earlier connection: the relay's word is final. Later, messages may still be in flight.
        self._resolve_uncertain(resume_after, final=not self._welcomed)
        self._trim(resume_after)
        self.acked = max(self.acked, min(resume_after, self.last_seq))
        if not self._welcomed:
            self._welcomed = True
            self._cursor = 0

    def ack(self, seq: int) -> None:
        """Apply a cumulative ``ack``: the relay accepted every seq up to ``seq``."""
        self._resolve_uncertain(seq, final=False)
        self._trim(seq)
        self.acked = max(self.acked, min(seq, self.last_seq))

    def connection_lost(self) -> None:
        """Forget what the lost connection sent: it is all sent again after the next welcome."""
        self._welcomed = False
        self._cursor = 0
        self._dropped.update(self._reported)
        self._reported.clear()

    # --- inspection ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def unsent(self) -> int:
        """Messages not yet sent on the current connection."""
        return len(self._entries) - self._cursor

    @property
    def oldest_seq(self) -> int | None:
        """The seq of the oldest buffered message, or None when empty."""
        return self._entries[0].seq if self._entries else None

    @property
    def uncertain(self) -> int:
        """Dropped messages the relay may have accepted; resolved by its next ack or welcome."""
        return len(self._uncertain)

    def seqs(self) -> list[int]:
        """Return the buffered seqs, oldest first (for tests and logs)."""
        return [entry.seq for entry in self._entries]

    # --- internals -----------------------------------------------------------------------

    def _drop_oldest(self) -> None:
        entry = self._entries.popleft()
        self.bytes -= len(entry.frame)
        if self._cursor > 0:
            self._cursor -= 1
        if entry.seq <= self._highest_sent and entry.seq > self.acked:
            self._uncertain.append((entry.seq, entry.topic))
            while len(self._uncertain) > self.max_uncertain:
                _, topic = self._uncertain.popleft()
                self._count(topic)
        else:
            self._count(entry.topic)

    def _count(self, topic: str) -> None:
        self._dropped[topic] += 1
        self.dropped_total += 1

    def _resolve_uncertain(self, accepted: int, *, final: bool) -> None:
        """Settle uncertain drops: accepted up to ``accepted``; with ``final``, the rest lost."""
        while self._uncertain and self._uncertain[0][0] <= accepted:
            self._uncertain.popleft()
        if final:
            while self._uncertain:
                _, topic = self._uncertain.popleft()
                self._count(topic)

    def _trim(self, accepted: int) -> None:
        while self._entries and self._entries[0].seq <= accepted:
            self.bytes -= len(self._entries.popleft().frame)
            if self._cursor > 0:
                self._cursor -= 1
