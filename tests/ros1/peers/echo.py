"""Republish every message of --in on --out, same --type (for round-trip benchmarks)."""

from __future__ import annotations

import _peer


def main() -> None:
    parser = _peer.parser(__doc__)
    parser.add_argument("--in", dest="topic_in", default="/ping")
    parser.add_argument("--out", dest="topic_out", default="/pong")
    parser.add_argument("--type", default="std_msgs/String")
    args = parser.parse_args()
    rospy = _peer.start_node("echo", args.node_name)
    cls = _peer.message_class("msg", args.type)
    publisher = rospy.Publisher(args.topic_out, cls, queue_size=1000, tcp_nodelay=True)
    rospy.Subscriber(args.topic_in, cls, publisher.publish, tcp_nodelay=True)
    _peer.ready()
    rospy.spin()


if __name__ == "__main__":
    main()
