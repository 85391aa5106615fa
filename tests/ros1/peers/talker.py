"""Publish std_msgs/String ``"hello N"`` (N = 0, 1, ...) on --topic at --rate Hz, forever."""

from __future__ import annotations

import _peer


def main() -> None:
    parser = _peer.parser(__doc__)
    parser.add_argument("--topic", default="/chatter")
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    args = parser.parse_args()
    rospy = _peer.start_node("talker", args.node_name)
    from std_msgs.msg import String

    publisher = rospy.Publisher(args.topic, String, queue_size=100)
    _peer.ready()
    rate = rospy.Rate(args.rate)
    count = 0
    while not rospy.is_shutdown():
        publisher.publish(String(data=f"hello {count}"))
        count += 1
        try:
            rate.sleep()
        except rospy.ROSInterruptException:
            break


if __name__ == "__main__":
    main()
