"""Serve std_srvs/Trigger at --name with a handler that always raises ``RuntimeError``.

rospy answers such a call with ok=0 and the error text, which contains --error.
"""

from __future__ import annotations

import _peer


def main() -> None:
    parser = _peer.parser(__doc__)
    parser.add_argument("--name", default="/fail")
    parser.add_argument("--error", default="handler exploded on purpose")
    args = parser.parse_args()
    rospy = _peer.start_node("failing_server", args.node_name)
    from std_srvs.srv import Trigger

    def handle(request: object) -> None:
        raise RuntimeError(args.error)

    rospy.Service(args.name, Trigger, handle)
    _peer.ready()
    rospy.spin()


if __name__ == "__main__":
    main()
