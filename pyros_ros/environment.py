"""Find an installed ROS and put its Python packages on ``sys.path`` (the pyros-setup idea).

ROS installs its Python packages outside any virtualenv: ROS 1 Noetic from the ROS apt
repository lives in ``/opt/ros/noetic/lib/python3/dist-packages``; Debian's own ROS 1 packages
(``python3-rospy`` and friends) live in ``/usr/lib/python3/dist-packages``. Users normally
``source /opt/ros/<distro>/setup.bash`` before starting Python; a pyros node process cannot rely
on that (it is spawned from a web worker or a task queue), so it finds ROS itself.

Only the node process (and test peers) call :func:`setup_ros1`. Importing this module, or
:mod:`pyros_ros`, never changes ``sys.path`` and never imports a ROS library.

Directories are *appended* to ``sys.path``, so packages installed in the virtualenv (PyYAML,
rospkg, ...) win over the system copies. The system directory is meant for the system Python's
version (Debian 12: 3.11); its pure-Python packages work from any Python 3, its C extensions
only from the same minor version.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Mapping

from pyros.exceptions import SpawnError

__all__ = ["OPT_ROS", "SYSTEM_DIST_PACKAGES", "find_ros1", "setup_ros1"]

OPT_ROS = "/opt/ros"
"""Where the ROS apt repository installs each distribution (``/opt/ros/<distro>``)."""

SYSTEM_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
"""Where Debian and Ubuntu install Python packages from apt, ROS 1's ``python3-rospy`` included."""

_PREFIX_PYTHON_DIRS = (
    "lib/python3/dist-packages",
    f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages",
    f"lib/python{sys.version_info.major}.{sys.version_info.minor}/dist-packages",
)
"""Python directories inside an install prefix, in the layouts catkin and Debian use."""


def _has_rospy(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "rospy", "__init__.py"))


def _prefix_python_dirs(prefix: str) -> list[str]:
    return [
        os.path.join(prefix, sub)
        for sub in _PREFIX_PYTHON_DIRS
        if os.path.isdir(os.path.join(prefix, sub))
    ]


def _workspace_dirs(env: Mapping[str, str]) -> list[str]:
    """Python directories of the catkin workspaces named in ``$CMAKE_PREFIX_PATH``.

    Sourcing a workspace's ``setup.bash`` puts its devel or install space on
    ``CMAKE_PREFIX_PATH``; catkin marks each such prefix with a ``.catkin`` file. Overlays come
    first, as in the variable.
    """
    found: list[str] = []
    for prefix in env.get("CMAKE_PREFIX_PATH", "").split(os.pathsep):
        if prefix and os.path.isfile(os.path.join(prefix, ".catkin")):
            found.extend(d for d in _prefix_python_dirs(prefix) if d not in found)
    return found


def _base_dir(env: Mapping[str, str]) -> str | None:
    """The directory holding ROS 1's own ``rospy``, by the search order of :func:`find_ros1`."""
    distro = env.get("ROS_DISTRO", "")
    if distro and os.sep not in distro:
        for directory in _prefix_python_dirs(os.path.join(OPT_ROS, distro)):
            if _has_rospy(directory):
                return directory
    for prefix in sorted(glob.glob(os.path.join(OPT_ROS, "*")), reverse=True):
        for directory in _prefix_python_dirs(prefix):
            if _has_rospy(directory):
                return directory
    if _has_rospy(SYSTEM_DIST_PACKAGES):
        return SYSTEM_DIST_PACKAGES
    return None


def find_ros1(environ: Mapping[str, str] | None = None) -> list[str]:
    """Return the directories to add to ``sys.path`` to import ROS 1 (``rospy``).

    Looks, in order, in:

    1. the Python directories of catkin workspaces on ``$CMAKE_PREFIX_PATH`` (sourced
       overlays, each marked by a ``.catkin`` file);
    2. ``/opt/ros/$ROS_DISTRO/lib/python3/dist-packages`` if ``$ROS_DISTRO`` is set and that
       directory holds ``rospy`` (a ROS 2 distro there is skipped);
    3. any ``/opt/ros/*/lib/python3/dist-packages`` that holds ``rospy`` (the last in name
       order wins: ``noetic`` over ``melodic``);
    4. ``/usr/lib/python3/dist-packages`` if it holds ``rospy`` (Debian's ``python3-rospy``).

    Args:
        environ: the environment to read (``ROS_DISTRO``, ``CMAKE_PREFIX_PATH``); defaults to
            ``os.environ``.

    Returns:
        Existing directories, overlays first; the list holds at least one directory with
        ``rospy`` in it, or is empty when ROS 1 is not found anywhere.
    """
    env = os.environ if environ is None else environ
    found = _workspace_dirs(env)
    base = _base_dir(env)
    if base is not None and base not in found:
        found.append(base)
    if not any(_has_rospy(directory) for directory in found):
        return []
    return found


def setup_ros1(environ: Mapping[str, str] | None = None) -> list[str]:
    """Append ROS 1's Python directories to ``sys.path`` so that ``import rospy`` works.

    Idempotent: directories already on ``sys.path`` are not added again.

    Args:
        environ: the environment to read; defaults to ``os.environ`` (see :func:`find_ros1`).

    Returns:
        The directories this call appended (empty when all were already there).

    Raises:
        SpawnError: ROS 1 is not installed where :func:`find_ros1` looks; the message lists
            the places and the packages to install.
    """
    env = os.environ if environ is None else environ
    directories = find_ros1(env)
    if not directories:
        distro = env.get("ROS_DISTRO", "")
        opt_distro = os.path.join(OPT_ROS, distro or "$ROS_DISTRO", _PREFIX_PYTHON_DIRS[0])
        raise SpawnError(
            "ROS 1 (rospy) not found; looked in $CMAKE_PREFIX_PATH workspaces, "
            f"{opt_distro}, {os.path.join(OPT_ROS, '*', _PREFIX_PYTHON_DIRS[0])} and "
            f"{SYSTEM_DIST_PACKAGES}. Install it: on Debian 12 "
            "'apt-get install python3-rospy python3-rosmaster python3-std-msgs "
            "python3-std-srvs' (plus the python3-*-msgs packages you use); on Ubuntu 20.04 "
            "with the ROS apt repository 'apt-get install ros-noetic-ros-base'"
        )
    added = [directory for directory in directories if directory not in sys.path]
    sys.path.extend(added)
    return added
