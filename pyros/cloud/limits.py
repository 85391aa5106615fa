"""The relay's limits and the two mechanisms that enforce them, with no I/O and no clock.

:class:`Limits` holds every figure (defaults are the relay's command-line defaults);
:class:`TokenBucket` limits a connection's incoming message rate; :class:`SendQueue` is the
bounded per-connection outgoing queue that drops its oldest frames when a peer reads too slowly,
so one slow peer never slows the devices or the other peers.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["Limits", "TokenBucket", "SendQueue"]


@dataclass(frozen=True)
class Limits:
    """Every limit of one relay.

    Attributes:
        max_message_bytes: largest accepted frame of an authenticated peer, in bytes (UTF-8);
            a larger frame gets a ``status`` error and is dropped, the connection stays. The
            default, 16 MiB, is rosbridge's and fits camera images.
        max_frame_bytes: hard cap on an authenticated peer's frames (websockets' ``max_size``),
            in bytes; a larger frame closes the connection with code 1009 before the relay sees
            it (after decompression, so a deflate bomb stops there too).
        preauth_frame_bytes: hard cap on the frames of a peer that has not authenticated yet (an
            operator that must send ``{"op": "auth"}``), in bytes; such a peer also gets no
            permessage-deflate and only ``auth_timeout`` seconds.
        auth_failures: failed sign-ins allowed per client address per minute (token bucket of
            that size refilled over a minute); beyond it the handshake is answered HTTP 429
            without looking at the token.
        send_queue: most frames waiting to be sent to one peer; beyond it the oldest are dropped.
        send_queue_bytes: most bytes waiting to be sent to one peer (same drop policy).
        rate: sustained incoming messages per second per connection (token bucket refill).
        burst: token bucket capacity: messages a connection may send at once after a pause.
        service_timeout: seconds before a forwarded ``call_service`` fails with
            ``result: false`` (an operator's own ``timeout`` field, when smaller, wins).
        auth_timeout: seconds an operator connection without credentials has to send its
            ``{"op": "auth"}`` message (short: such a peer is a stranger).
        ping_interval: seconds between websocket keepalive pings (a dead peer is dropped after
            one more interval without a pong); None disables them.
        warning_interval: seconds between two ``status`` warnings of the same kind (queue drops,
            rate limiting) to one peer.
    """

    max_message_bytes: int = 16 << 20
    max_frame_bytes: int = 16 << 20
    preauth_frame_bytes: int = 4096
    send_queue: int = 4096
    send_queue_bytes: int = 64 << 20
    rate: float = 1000.0
    burst: float = 10000.0
    service_timeout: float = 10.0
    auth_timeout: float = 5.0
    auth_failures: float = 30.0
    ping_interval: float | None = 20.0
    warning_interval: float = 1.0

    def __post_init__(self) -> None:
        for name in ("rate", "burst", "service_timeout", "auth_timeout", "auth_failures"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value!r}")
        if self.ping_interval is not None and not (
            math.isfinite(self.ping_interval) and self.ping_interval > 0
        ):
            raise ValueError("ping_interval must be a positive finite number of seconds or None")
        if self.warning_interval < 0 or not math.isfinite(self.warning_interval):
            raise ValueError("warning_interval must be a finite number of seconds >= 0")
        if not 64 <= self.preauth_frame_bytes <= self.max_frame_bytes:
            raise ValueError("need 64 <= preauth_frame_bytes <= max_frame_bytes")
        if self.auth_failures < 1:
            raise ValueError("auth_failures must be at least 1 per minute")
        if self.max_message_bytes <= 0 or self.max_frame_bytes < self.max_message_bytes:
            raise ValueError("need 0 < max_message_bytes <= max_frame_bytes")
        if self.send_queue < 1 or self.send_queue_bytes < 1:
            raise ValueError("send queue limits must be positive")
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        if self.service_timeout <= 0 or self.auth_timeout <= 0:
            raise ValueError("timeouts must be positive")


class TokenBucket:
    """A token bucket: ``rate`` tokens per second up to ``burst``; each message takes one.

    Args:
        rate: refill, tokens per second.
        burst: capacity; the bucket starts full.
        now: the current time in seconds (any monotonic origin).
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = now

    def peek(self, now: float) -> float:
        """Return the tokens available at time ``now`` (seconds) without taking one."""
        return min(self.burst, self._tokens + max(0.0, now - self._stamp) * self.rate)

    def take(self, now: float) -> bool:
        """Take one token at time ``now`` (seconds); return False when the bucket is empty."""
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class SendQueue:
    """Frames waiting to be sent to one peer, bounded in count and bytes; drops the oldest.

    Args:
        max_frames: most frames held.
        max_bytes: most characters (text frames) or bytes (binary frames) held.

    Attributes:
        dropped: frames dropped since :meth:`take_dropped` was last called.
        total_dropped: frames dropped over the queue's life.
    """

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: deque[str | bytes] = deque()
        self._bytes = 0
        self.dropped = 0
        self.total_dropped = 0

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, frame: str | bytes) -> int:
        """Append ``frame``; return how many old frames were dropped to make room."""
        self._frames.append(frame)
        self._bytes += len(frame)
        dropped = 0
        while len(self._frames) > 1 and (
            len(self._frames) > self.max_frames or self._bytes > self.max_bytes
        ):
            self._bytes -= len(self._frames.popleft())
            dropped += 1
        self.dropped += dropped
        self.total_dropped += dropped
        return dropped

    def pop(self) -> str | bytes:
        """Remove and return the oldest frame.

        Raises:
            IndexError: the queue is empty.
        """
        frame = self._frames.popleft()
        self._bytes -= len(frame)
        return frame

    def take_dropped(self) -> int:
        """Return :attr:`dropped` and reset it to 0."""
        dropped, self.dropped = self.dropped, 0
        return dropped
