"""What ``pyros hz``, ``pyros bw`` and ``pyros delay`` measure, without I/O.

Each meter is fed ``(arrival time, value)`` pairs and answers two questions: the live figures
over its last ``window`` messages (what rostopic prints every second) and a summary over every
message since the start (printed when the command ends). Times are seconds, from any clock
that only goes forward (``time.monotonic()``); sizes are bytes.

The figures are those of ``rostopic hz``/``bw``/``delay`` (ros_comm ``rostopic/__init__.py``):
the rate is one over the mean gap between arrivals; ``bw`` divides the bytes in the window by
the time the window spans; ``delay`` is the arrival wall-clock time minus the message's
``header.stamp``.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Spread", "RateMeter", "BandwidthMeter", "DelayMeter", "stamp_seconds"]

DEFAULT_WINDOW = 10_000
"""Messages the live figures look back over by default (rostopic's ``-w``)."""


@dataclass
class Spread:
    """Running count, mean, minimum, maximum and standard deviation (Welford's method)."""

    count: int = 0
    mean: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    _m2: float = 0.0

    def add(self, value: float) -> None:
        """Take one value into account."""
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (value - self.mean)
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    @property
    def std_dev(self) -> float:
        """Population standard deviation (0 for fewer than two values)."""
        return math.sqrt(self._m2 / self.count) if self.count > 1 else 0.0


def _window_spread(values: collections.deque[float]) -> Spread:
    spread = Spread()
    for value in values:
        spread.add(value)
    return spread


class RateMeter:
    """Message rate from arrival times (``pyros hz``).

    Args:
        window: arrivals the live figures cover (rostopic ``hz -w``).
    """

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self._gaps: collections.deque[float] = collections.deque(maxlen=max(1, window))
        self._last: float | None = None
        self._first: float | None = None
        self.total = Spread()
        """Every gap between arrivals since the start, seconds."""
        self.count = 0
        """Messages received since the start."""

    def add(self, arrival: float) -> None:
        """Record one message that arrived at ``arrival`` seconds."""
        self.count += 1
        if self._last is not None:
            gap = arrival - self._last
            self._gaps.append(gap)
            self.total.add(gap)
        else:
            self._first = arrival
        self._last = arrival

    def live(self) -> dict[str, Any] | None:
        """Figures over the window: ``rate_hz``, ``min_s``, ``max_s``, ``std_dev_s``,
        ``window``; None before two messages arrived."""
        return _rate_figures(_window_spread(self._gaps))

    def summary(self) -> dict[str, Any]:
        """Figures over everything: ``messages``, ``seconds`` (first to last arrival), and
        those of :meth:`live` (None values before two messages)."""
        span = (
            self._last - self._first if self._first is not None and self._last is not None else 0.0
        )
        figures = _rate_figures(self.total) or dict.fromkeys(
            ("rate_hz", "min_s", "max_s", "std_dev_s", "window")
        )
        figures.pop("window", None)
        return {"messages": self.count, "seconds": span, **figures}


def _rate_figures(gaps: Spread) -> dict[str, Any] | None:
    if gaps.count == 0:
        return None
    return {
        "rate_hz": 1.0 / gaps.mean if gaps.mean > 0 else math.inf,
        "min_s": gaps.minimum,
        "max_s": gaps.maximum,
        "std_dev_s": gaps.std_dev,
        "window": gaps.count + 1,
    }


class BandwidthMeter:
    """Bytes per second from arrival times and message sizes (``pyros bw``).

    Args:
        window: messages the live figures cover (rostopic ``bw -w``).
    """

    def __init__(self, window: int = 100) -> None:
        self._recent: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=max(2, window)
        )
        self.sizes = Spread()
        """Every message's size since the start, bytes."""
        self._first: float | None = None
        self._first_size = 0
        self._last: float | None = None

    def add(self, arrival: float, size: int) -> None:
        """Record one message of ``size`` bytes that arrived at ``arrival`` seconds."""
        self._recent.append((arrival, size))
        self.sizes.add(float(size))
        if self._first is None:
            self._first = arrival
            self._first_size = size
        self._last = arrival

    def live(self) -> dict[str, Any] | None:
        """``bytes_per_s``, ``mean_bytes``, ``min_bytes``, ``max_bytes``, ``window`` over the
        window; None before two messages arrived (a rate needs a time span)."""
        if len(self._recent) < 2:
            return None
        span = self._recent[-1][0] - self._recent[0][0]
        sizes = [size for _, size in self._recent]
        # The first message of the window opens the span: its bytes do not count against it.
        per_second = sum(sizes[1:]) / span if span > 0 else math.inf
        return {
            "bytes_per_s": per_second,
            "mean_bytes": sum(sizes) / len(sizes),
            "min_bytes": min(sizes),
            "max_bytes": max(sizes),
            "window": len(sizes),
        }

    def summary(self) -> dict[str, Any]:
        """``messages``, ``seconds``, ``bytes``, ``bytes_per_s`` (None before two messages),
        ``mean_bytes``, ``min_bytes``, ``max_bytes`` over everything."""
        count = self.sizes.count
        span = (
            self._last - self._first if self._first is not None and self._last is not None else 0.0
        )
        total = self.sizes.mean * count
        counted = total - self._first_size  # the first message opens the span
        return {
            "messages": count,
            "seconds": span,
            "bytes": round(total),
            "bytes_per_s": counted / span if count > 1 and span > 0 else None,
            "mean_bytes": self.sizes.mean if count else None,
            "min_bytes": int(self.sizes.minimum) if count else None,
            "max_bytes": int(self.sizes.maximum) if count else None,
        }


class DelayMeter:
    """Delay between a message's ``header.stamp`` and its arrival (``pyros delay``).

    Args:
        window: messages the live figures cover.
    """

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self._recent: collections.deque[float] = collections.deque(maxlen=max(1, window))
        self.total = Spread()
        """Every delay since the start, seconds."""

    def add(self, delay: float) -> None:
        """Record one message's delay in seconds (arrival wall time minus its stamp)."""
        self._recent.append(delay)
        self.total.add(delay)

    def live(self) -> dict[str, Any] | None:
        """``mean_s``, ``min_s``, ``max_s``, ``std_dev_s``, ``window``; None before the first."""
        if not self._recent:
            return None
        return _delay_figures(_window_spread(self._recent)) | {"window": len(self._recent)}

    def summary(self) -> dict[str, Any]:
        """``messages`` and the figures of :meth:`live` over everything."""
        figures = (
            _delay_figures(self.total)
            if self.total.count
            else dict.fromkeys(("mean_s", "min_s", "max_s", "std_dev_s"))
        )
        return {"messages": self.total.count, **figures}


def _delay_figures(spread: Spread) -> dict[str, Any]:
    return {
        "mean_s": spread.mean,
        "min_s": spread.minimum,
        "max_s": spread.maximum,
        "std_dev_s": spread.std_dev,
    }


def stamp_seconds(message: Any) -> float | None:
    """Return a message's ``header.stamp`` in seconds, or None if it has none.

    Accepts ROS 1's ``{"secs", "nsecs"}`` and ROS 2's ``{"sec", "nanosec"}`` (the forms
    ``builtin_interfaces/Time`` and rospy's ``Time`` take as dicts).
    """
    if not isinstance(message, dict):
        return None
    header = message.get("header")
    if not isinstance(header, dict):
        return None
    stamp = header.get("stamp")
    if not isinstance(stamp, dict):
        return None
    seconds = stamp.get("secs", stamp.get("sec"))
    nanoseconds = stamp.get("nsecs", stamp.get("nanosec", 0))
    if not isinstance(seconds, int) or not isinstance(nanoseconds, int):
        return None
    return seconds + nanoseconds * 1e-9
