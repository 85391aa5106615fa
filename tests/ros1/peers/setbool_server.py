"""Serve std_srvs/SetBool at --name: ``success = data``, ``message = f"flag is {data}"``."""

from __future__ import annotations

import _peer


def main() -> None:
    parser = _peer.parser(__doc__)
    parser.add_argument("--name", default="/set_flag")
    args = parser.parse_args()
    rospy = _peer.start_node("setbool_server", args.node_name)
    from std_srvs.srv import SetBool, SetBoolResponse

    def handle(request: SetBool._request_class) -> SetBoolResponse:
        return SetBoolResponse(success=request.data, message=f"flag is {request.data}")

    rospy.Service(args.name, SetBool, handle)
    _peer.ready()
    rospy.spin()


if __name__ == "__main__":
    main()
