"""An actionlib server with Fibonacci semantics at --name (default ``/fibonacci``).

Debian's ROS 1 has no Fibonacci action type, so this serves ``actionlib/Test`` (goal ``goal``,
result ``result``, feedback ``feedback``, all int32), spelled as follows:

- goal ``goal`` = the order n. The server grows the Fibonacci sequence 0, 1, 1, 2, ... one
  number every --step seconds until it holds n + 1 numbers, sending feedback ``feedback`` =
  the sequence's length after each new number, and succeeds with ``result`` = its final
  length (n + 1): the same steps as the mock's ``/fibonacci``;
- a negative order is rejected;
- an order above 46 is aborted when the next number overflows int32 (fib(47) > 2**31 - 1);
- a cancel ends the goal canceled (``PREEMPTED``) with the length reached.

Goals run on threads of their own, so several may run at once. Prints ``{"goal": n}`` for
each goal received.

With --standby the process starts but joins the graph only when a line arrives on stdin (a hot
spare, ready to replace a killed server at once); it then shuts down when stdin closes.
"""

from __future__ import annotations

import sys
import threading

import _peer

INT32_MAX = 2**31 - 1


def main() -> None:
    parser = _peer.parser(__doc__)
    parser.add_argument("--name", default="/fibonacci")
    parser.add_argument("--step", type=float, default=0.01, help="seconds per number")
    parser.add_argument("--standby", action="store_true", help="start on a line from stdin")
    args = parser.parse_args()
    if args.standby and not sys.stdin.readline():
        return  # stdin closed before the go: never joined the graph
    rospy = _peer.start_node("fibonacci_server", args.node_name)
    if args.standby:

        def shut_down_at_eof() -> None:
            sys.stdin.read()
            rospy.signal_shutdown("stdin closed")

        threading.Thread(target=shut_down_at_eof, daemon=True).start()
    import actionlib
    from actionlib.msg import TestAction, TestFeedback, TestResult

    cancels: dict[str, threading.Event] = {}
    lock = threading.Lock()

    def run(handle: actionlib.ServerGoalHandle, order: int, canceled: threading.Event) -> None:
        sequence = [0, 1][: order + 1]
        for _ in range(order - 1):
            if canceled.wait(args.step):
                handle.set_canceled(TestResult(result=len(sequence)), "canceled on request")
                return
            following = sequence[-1] + sequence[-2]
            if following > INT32_MAX:
                handle.set_aborted(
                    TestResult(result=len(sequence)),
                    f"order {order} overflows int32 (at most 46)",
                )
                return
            sequence.append(following)
            handle.publish_feedback(TestFeedback(feedback=len(sequence)))
        handle.set_succeeded(TestResult(result=len(sequence)), f"{len(sequence)} numbers")

    def on_goal(handle: actionlib.ServerGoalHandle) -> None:
        order = handle.get_goal().goal
        _peer.emit({"goal": order})
        if order < 0:
            handle.set_rejected(TestResult(result=0), f"order must be >= 0, not {order}")
            return
        canceled = threading.Event()
        with lock:
            cancels[handle.get_goal_id().id] = canceled
        handle.set_accepted("running")
        threading.Thread(target=run, args=(handle, order, canceled), daemon=True).start()

    def on_cancel(handle: actionlib.ServerGoalHandle) -> None:
        with lock:
            canceled = cancels.get(handle.get_goal_id().id)
        if canceled is not None:
            canceled.set()

    server = actionlib.ActionServer(args.name, TestAction, on_goal, on_cancel, auto_start=False)
    server.start()
    _peer.ready()
    rospy.spin()


if __name__ == "__main__":
    main()
