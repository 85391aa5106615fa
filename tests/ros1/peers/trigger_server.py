"""Serve std_srvs/Trigger at --name, counting calls.

Answers ``success=True, message=f"call {n}"`` (n = 1, 2, ...) after --delay seconds and prints
``{"calls": n}`` for each call as it arrives.
"""

from __future__ import annotations

import threading
import time

import _peer


def main() -> None:
    parser = _peer.parser(__doc__)
    parser.add_argument("--name", default="/trigger")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering")
    args = parser.parse_args()
    rospy = _peer.start_node("trigger_server", args.node_name)
    from std_srvs.srv import Trigger, TriggerResponse

    lock = threading.Lock()
    calls = 0

    def handle(request: Trigger._request_class) -> TriggerResponse:
        nonlocal calls
        with lock:
            calls += 1
            count = calls
        _peer.emit({"calls": count})
        time.sleep(args.delay)
        return TriggerResponse(success=True, message=f"call {count}")

    rospy.Service(args.name, Trigger, handle)
    _peer.ready()
    rospy.spin()


if __name__ == "__main__":
    main()
