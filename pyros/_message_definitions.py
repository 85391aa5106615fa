"""Built-in ROS message and service definitions, as ``.msg`` / ``.srv`` text.

These are the ROS 1 definitions of the types pyros knows without any ROS installed, written in
the ROS message description language (http://wiki.ros.org/msg, http://wiki.ros.org/srv): one
``type name`` field or ``type NAME=value`` constant per line, ``#`` comments, ``Header`` for
``std_msgs/Header``, short names for types of the same package, and ``---`` between a service's
request and response. :mod:`pyros.message_types` parses them into its registry; this module holds
only text so that it stays cheap to import and easy to read.

The field lists follow the ROS packages of the same names (std_msgs, geometry_msgs,
sensor_msgs, std_srvs, turtlesim, test_msgs); comments are pyros's own.
"""

from __future__ import annotations

__all__ = ["MESSAGE_DEFINITIONS", "SERVICE_DEFINITIONS", "ACTION_DEFINITIONS"]


def _ints() -> dict[str, str]:
    """The std_msgs integer wrappers: ``std_msgs/Int8`` ... ``std_msgs/UInt64``."""
    found = {}
    for bits in (8, 16, 32, 64):
        found[f"std_msgs/Int{bits}"] = f"int{bits} data\n"
        found[f"std_msgs/UInt{bits}"] = f"uint{bits} data\n"
    return found


def _multi_arrays() -> dict[str, str]:
    """The std_msgs arrays with a layout: ``std_msgs/Float64MultiArray`` and the rest."""
    elements = {
        "Byte": "byte",
        "Float32": "float32",
        "Float64": "float64",
        **{f"Int{bits}": f"int{bits}" for bits in (8, 16, 32, 64)},
        **{f"UInt{bits}": f"uint{bits}" for bits in (8, 16, 32, 64)},
    }
    found = {
        f"std_msgs/{name}MultiArray": f"MultiArrayLayout layout\n{element}[] data\n"
        for name, element in elements.items()
    }
    found["std_msgs/MultiArrayLayout"] = "MultiArrayDimension[] dim\nuint32 data_offset\n"
    found["std_msgs/MultiArrayDimension"] = "string label\nuint32 size\nuint32 stride\n"
    return found


MESSAGE_DEFINITIONS: dict[str, str] = {
    # std_msgs: one-field wrappers around the primitive types.
    "std_msgs/Bool": "bool data\n",
    "std_msgs/Byte": "byte data\n",
    "std_msgs/Char": "char data\n",
    "std_msgs/String": "string data\n",
    "std_msgs/Float32": "float32 data\n",
    "std_msgs/Float64": "float64 data\n",
    "std_msgs/Time": "time data\n",
    "std_msgs/Duration": "duration data\n",
    "std_msgs/Empty": "# no fields\n",
    **_ints(),
    **_multi_arrays(),
    "std_msgs/ColorRGBA": """\
# a colour, each component in 0..1
float32 r
float32 g
float32 b
float32 a
""",
    "std_msgs/Header": """\
# stamped data: sequence number, time of the data, and the frame it is expressed in
uint32 seq
time stamp
string frame_id
""",
    # geometry_msgs
    "geometry_msgs/Vector3": """\
# a free vector (a direction, a velocity...), not a position
float64 x
float64 y
float64 z
""",
    "geometry_msgs/Point": """\
# a position in space
float64 x
float64 y
float64 z
""",
    "geometry_msgs/Point32": """\
# a position with single-precision coordinates (point clouds, polygons)
float32 x
float32 y
float32 z
""",
    "geometry_msgs/Quaternion": """\
# an orientation as a quaternion (x, y, z, w)
float64 x
float64 y
float64 z
float64 w
""",
    "geometry_msgs/Pose": """\
Point position
Quaternion orientation
""",
    "geometry_msgs/PoseStamped": """\
Header header
Pose pose
""",
    "geometry_msgs/Pose2D": """\
# a position and heading in a plane; theta in radians
float64 x
float64 y
float64 theta
""",
    "geometry_msgs/Twist": """\
# velocity: linear in m/s, angular in rad/s
Vector3 linear
Vector3 angular
""",
    "geometry_msgs/TwistStamped": """\
Header header
Twist twist
""",
    # sensor_msgs
    "sensor_msgs/CompressedImage": """\
# a compressed picture: format is "jpeg" or "png" (image_transport's compressed plugin may add
# the source encoding, e.g. "rgb8; jpeg compressed bgr8"); data holds the encoded file
Header header
string format
uint8[] data
""",
    "sensor_msgs/Image": """\
# an uncompressed image; data holds height rows of step bytes each
Header header
uint32 height  # rows
uint32 width   # columns
string encoding  # pixel layout, e.g. rgb8, mono8, 16UC1
uint8 is_bigendian
uint32 step    # bytes per row
uint8[] data
""",
    "sensor_msgs/LaserScan": """\
# one sweep of a planar range finder; angles in radians, ranges in metres
Header header
float32 angle_min
float32 angle_max
float32 angle_increment
float32 time_increment
float32 scan_time
float32 range_min
float32 range_max
float32[] ranges
float32[] intensities
""",
    "sensor_msgs/JointState": """\
# joint positions (rad or m), velocities and efforts, by joint name
Header header
string[] name
float64[] position
float64[] velocity
float64[] effort
""",
    # turtlesim
    "turtlesim/Pose": """\
# where the turtle is: x, y in metres (0..11.09), theta in radians; velocities in m/s, rad/s
float32 x
float32 y
float32 theta
float32 linear_velocity
float32 angular_velocity
""",
    "turtlesim/Color": """\
uint8 r
uint8 g
uint8 b
""",
}
"""Message type ``pkg/Type`` -> ``.msg`` text."""

SERVICE_DEFINITIONS: dict[str, str] = {
    "std_srvs/Empty": "---\n",
    "std_srvs/SetBool": """\
bool data  # the new value
---
bool success
string message  # what happened, for people
""",
    "std_srvs/Trigger": """\
---
bool success
string message
""",
    "turtlesim/TeleportAbsolute": """\
# move the turtle to a pose without drawing; metres and radians
float32 x
float32 y
float32 theta
---
""",
}
"""Service type ``pkg/Type`` -> ``.srv`` text (request, ``---``, response)."""

ACTION_DEFINITIONS: dict[str, str] = {
    "turtlesim/RotateAbsolute": """\
# the heading to turn to, radians
float32 theta
---
# the angle turned, radians
float32 delta
---
# what is left to turn, radians
float32 remaining
""",
    "test_msgs/Fibonacci": """\
int32 order
---
int32[] sequence
---
int32[] sequence
""",
}
"""Action type ``pkg/Type`` -> ``.action`` text (goal, ``---``, result, ``---``, feedback)."""
