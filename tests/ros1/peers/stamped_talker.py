"""Publish geometry_msgs/PoseStamped on --topic at --rate Hz, stamped --age seconds in the past.

The stamp is ``rospy.Time.now() - age`` when the message is published, so a subscriber's
``now - header.stamp`` is ``age`` plus the transport delay (``pyros delay`` measures it).
"""

from __future__ import annotations

import _peer


def main() -> None:
    parser = _peer.parser(__doc__)
    parser.add_argument("--topic", default="/stamped")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--age", type=float, default=0.0, help="seconds subtracted from now")
    args = parser.parse_args()
    rospy = _peer.start_node("stamped_talker", args.node_name)
    from geometry_msgs.msg import PoseStamped

    publisher = rospy.Publisher(args.topic, PoseStamped, queue_size=100)
    _peer.ready()
    rate = rospy.Rate(args.rate)
    sequence = 0
    while not rospy.is_shutdown():
        message = PoseStamped()
        message.header.seq = sequence
        message.header.stamp = rospy.Time.now() - rospy.Duration.from_sec(args.age)
        message.header.frame_id = "map"
        message.pose.position.x = float(sequence)
        publisher.publish(message)
        sequence += 1
        try:
            rate.sleep()
        except rospy.ROSInterruptException:
            break


if __name__ == "__main__":
    main()
