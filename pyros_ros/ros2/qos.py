"""QoS profiles: pyros's plain dicts <-> rclpy's ``QoSProfile``, and adapting to publishers.

pyros describes a profile as ``{"reliability", "durability", "history", "depth"}`` (see
:data:`pyros.backends.base.QoS`; the policy names are those of ``rclpy.qos``, after the ROS 2
QoS design, https://docs.ros.org/en/rolling/Concepts/Intermediate/About-Quality-of-Service-Settings.html).

A subscription without a profile *adapts* to the topic's publishers, as ``ros2 topic echo``
and rosbag2 do: it is reliable only if every publisher is (a reliable reader never matches a
best-effort writer), and transient-local only if every publisher is (a transient-local reader
never matches a volatile writer; with transient-local writers it gets their last messages).
Keys given in a subscription's dict override the adapted values.

This module imports rclpy; import it only after :func:`pyros_ros.environment.setup_ros2`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSCompatibility,
    QoSProfile,
    ReliabilityPolicy,
    qos_check_compatible,
)

from pyros.exceptions import MessageError

__all__ = [
    "PUBLISHER_DEPTH",
    "SUBSCRIPTION_DEPTH",
    "publisher_profile",
    "subscription_profile",
    "adapts",
    "same_policies",
    "to_dict",
    "compatible",
]

PUBLISHER_DEPTH = 10
"""Depth of a publisher's keep-last history when the profile gives none (rclpy's default)."""

SUBSCRIPTION_DEPTH = 1000
"""Depth of a subscription's keep-last queue when the profile gives none: room for the
messages that arrive while the node is held up (a 1 kHz stream loses nothing over a 1 s
stall of a busy machine). Memory grows with it only while the node is behind; pass a
``depth`` for topics of large messages to bound it lower."""

_RELIABILITY = {
    "reliable": ReliabilityPolicy.RELIABLE,
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
}
_DURABILITY = {
    "volatile": DurabilityPolicy.VOLATILE,
    "transient_local": DurabilityPolicy.TRANSIENT_LOCAL,
}
_HISTORY = {"keep_last": HistoryPolicy.KEEP_LAST, "keep_all": HistoryPolicy.KEEP_ALL}
_NAMES = {
    # One table per policy: the policies are IntEnums whose values overlap.
    "reliability": {int(policy): name for name, policy in _RELIABILITY.items()},
    "durability": {int(policy): name for name, policy in _DURABILITY.items()},
    "history": {int(policy): name for name, policy in _HISTORY.items()},
}


def _policy(table: Mapping[str, Any], key: str, value: Any) -> Any:
    if value not in table:
        raise MessageError(
            f"qos {key} must be one of {', '.join(map(repr, table))}, not {value!r}",
            field=f"qos.{key}",
        )
    return table[value]


def _profile(qos: Mapping[str, Any], reliability: Any, durability: Any, depth: int) -> QoSProfile:
    unknown = set(qos) - {"reliability", "durability", "history", "depth"}
    if unknown:
        raise MessageError(f"unknown qos keys: {', '.join(sorted(map(str, unknown)))}")
    if "reliability" in qos:
        reliability = _policy(_RELIABILITY, "reliability", qos["reliability"])
    if "durability" in qos:
        durability = _policy(_DURABILITY, "durability", qos["durability"])
    history = _policy(_HISTORY, "history", qos.get("history", "keep_last"))
    depth = qos.get("depth", depth)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise MessageError(f"qos depth must be an int >= 1, not {depth!r}", field="qos.depth")
    return QoSProfile(history=history, depth=depth, reliability=reliability, durability=durability)


def publisher_profile(qos: Mapping[str, Any] | None) -> QoSProfile:
    """Return a publisher's profile: ``qos`` over reliable, volatile, keep-last 10.

    Raises:
        MessageError: an unknown key or policy name, or a depth below 1.
    """
    return _profile(
        qos or {}, ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, PUBLISHER_DEPTH
    )


def subscription_profile(
    qos: Mapping[str, Any] | None, publishers: Iterable[QoSProfile]
) -> QoSProfile:
    """Return a subscription's profile: ``qos`` over what the publishers offer.

    Args:
        qos: the requested policies, or None to adapt every policy.
        publishers: the QoS profiles of the topic's publishers now (from
            ``Node.get_publishers_info_by_topic``); none gives reliable and volatile.

    Raises:
        MessageError: as :func:`publisher_profile`.
    """
    offered = list(publishers)
    reliable = all(p.reliability == ReliabilityPolicy.RELIABLE for p in offered)
    transient = bool(offered) and all(
        p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered
    )
    return _profile(
        qos or {},
        ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE,
        SUBSCRIPTION_DEPTH,
    )


def adapts(qos: Mapping[str, Any] | None) -> bool:
    """True if a subscription with this request adapts a policy to the publishers."""
    return qos is None or "reliability" not in qos or "durability" not in qos


def same_policies(a: QoSProfile, b: QoSProfile) -> bool:
    """True if two profiles agree on reliability, durability, history and depth."""
    return (a.reliability, a.durability, a.history, a.depth) == (
        b.reliability,
        b.durability,
        b.history,
        b.depth,
    )


def compatible(publisher: QoSProfile, subscription: QoSProfile) -> bool:
    """True unless the two profiles can never match (rclpy's ``qos_check_compatible``)."""
    compatibility, _ = qos_check_compatible(publisher, subscription)
    return bool(compatibility != QoSCompatibility.ERROR)


def to_dict(profile: QoSProfile) -> dict[str, Any]:
    """Describe a profile as pyros's dict; policies the graph does not report are omitted.

    ``get_publishers_info_by_topic`` reports reliability and durability but not the history
    depth (``UNKNOWN``), so a remote endpoint's dict usually has only those two keys.
    """
    out: dict[str, Any] = {}
    for key, value in (
        ("reliability", profile.reliability),
        ("durability", profile.durability),
        ("history", profile.history),
    ):
        if int(value) in _NAMES[key]:
            out[key] = _NAMES[key][int(value)]
    if out.get("history") == "keep_last" and profile.depth > 0:
        out["depth"] = profile.depth
    return out
