"""Subscribe --topic with --type; print each message as one JSON line.

Each line is ``{"msg": {...}, "time": time.time(), "monotonic": time.monotonic()}``, taken on
receipt (``monotonic`` is CLOCK_MONOTONIC, comparable between processes on Linux). The message
is plain data with ``bytes`` as ``{"$bytes": base64}`` and time as ``{"secs", "nsecs"}``;
``ros1_support.Peer.read_json`` decodes it back (``bytes`` included).
"""

from __future__ import annotations

import time

import _peer


def main() -> None:
    parser = _peer.parser(__doc__)
    parser.add_argument("--topic", default="/chatter")
    parser.add_argument("--type", default="std_msgs/String")
    args = parser.parse_args()
    rospy = _peer.start_node("listener", args.node_name)
    cls = _peer.message_class("msg", args.type)

    def on_message(msg: object) -> None:
        received, monotonic = time.time(), time.monotonic()
        _peer.emit({"msg": _peer.plain(msg), "time": received, "monotonic": monotonic})

    rospy.Subscriber(args.topic, cls, on_message, tcp_nodelay=True)
    _peer.ready()
    rospy.spin()


if __name__ == "__main__":
    main()
