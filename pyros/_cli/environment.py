"""Which backend a ``pyros`` command uses when ``--backend`` is not given.

In order:

1. a backend option on the command line names its backend: ``--master-uri`` ros1,
   ``--domain-id`` ros2, ``--url`` rosbridge;
2. ``PYROS_BACKEND``;
3. the ROS environment a user has sourced: ``ROS_VERSION=2`` (set by every ROS 2
   ``setup.bash``) -> ros2; ``ROS_MASTER_URI`` (ROS 1) -> ros1; a ROS 2 ``ROS_DISTRO`` or an
   ``AMENT_PREFIX_PATH`` (a sourced ROS 2 or colcon workspace) -> ros2;
4. otherwise ``mock``.

The command says on stderr which one it chose, and why, whenever it was not given.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ROS2_DISTROS", "default_backend"]

ROS2_DISTROS = frozenset(
    {
        "ardent",
        "bouncy",
        "crystal",
        "dashing",
        "eloquent",
        "foxy",
        "galactic",
        "humble",
        "iron",
        "jazzy",
        "kilted",
        "rolling",
    }
)
"""ROS 2 distributions by the name ``ROS_DISTRO`` holds (REP 2000)."""


def default_backend(
    environ: Mapping[str, str],
    *,
    master_uri: bool = False,
    domain_id: bool = False,
    url: bool = False,
) -> tuple[str, str]:
    """Choose the backend for a command that was given no ``--backend``.

    Args:
        environ: the environment (``os.environ``).
        master_uri: ``--master-uri`` was given.
        domain_id: ``--domain-id`` was given.
        url: ``--url`` was given.

    Returns:
        ``(backend, why)``, e.g. ``("ros1", "ROS_MASTER_URI is set")``.
    """
    if master_uri:
        return "ros1", "--master-uri was given"
    if domain_id:
        return "ros2", "--domain-id was given"
    if url:
        return "rosbridge", "--url was given"
    chosen = environ.get("PYROS_BACKEND", "").strip()
    if chosen:
        return chosen, "PYROS_BACKEND is set"
    if environ.get("ROS_VERSION", "").strip() == "2":
        return "ros2", "ROS_VERSION=2 (a sourced ROS 2)"
    if environ.get("ROS_MASTER_URI", "").strip():
        return "ros1", "ROS_MASTER_URI is set"
    distro = environ.get("ROS_DISTRO", "").strip().lower()
    if distro in ROS2_DISTROS:
        return "ros2", f"ROS_DISTRO={distro} (a sourced ROS 2)"
    if environ.get("AMENT_PREFIX_PATH", "").strip():
        return "ros2", "AMENT_PREFIX_PATH is set (a sourced ROS 2)"
    return "mock", "no ROS environment found"
