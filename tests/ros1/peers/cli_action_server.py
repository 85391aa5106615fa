"""An actionlib server of ``actionlib/Test`` on --name (default /cli_test_action).

For a goal ``{"goal": n}`` it sends feedback ``{"feedback": 1}`` ... ``{"feedback": n}`` (20 ms
apart) and succeeds with ``{"result": 2 * n}``; a negative goal is aborted. Prints ``{"goal":
n}`` for each goal it receives.
"""

from __future__ import annotations

import _peer


def main() -> None:
    parser = _peer.parser(__doc__)
    parser.add_argument("--name", default="/cli_test_action")
    args = parser.parse_args()
    rospy = _peer.start_node("cli_action_server", args.node_name)
    import actionlib
    from actionlib.msg import TestAction, TestFeedback, TestResult

    server: actionlib.SimpleActionServer

    def execute(goal: object) -> None:
        n = int(goal.goal)  # type: ignore[attr-defined]
        _peer.emit({"goal": n})
        if n < 0:
            server.set_aborted(TestResult(result=0), "negative goals are refused")
            return
        for step in range(1, n + 1):
            if server.is_preempt_requested():
                server.set_preempted()
                return
            server.publish_feedback(TestFeedback(feedback=step))
            rospy.sleep(0.02)
        server.set_succeeded(TestResult(result=2 * n))

    server = actionlib.SimpleActionServer(args.name, TestAction, execute, auto_start=False)
    server.start()
    _peer.ready()
    rospy.spin()


if __name__ == "__main__":
    main()
