"""Find an installed ROS and make it importable in this process (the pyros-setup idea).

ROS 1
-----
ROS installs its Python packages outside any virtualenv: ROS 1 Noetic from the ROS apt
repository lives in ``/opt/ros/noetic/lib/python3/dist-packages``; Debian's own ROS 1 packages
(``python3-rospy`` and friends) live in ``/usr/lib/python3/dist-packages``. Users normally
``source /opt/ros/<distro>/setup.bash`` before starting Python; a pyros node process cannot rely
on that (it is spawned from a web worker or a task queue), so it finds ROS itself.

Only the node process (and test peers) call :func:`setup_ros1`. Importing this module, or
:mod:`pyros_ros`, never changes ``sys.path`` and never imports a ROS library.

Directories are *appended* to ``sys.path``, so packages installed in the virtualenv (PyYAML,
rospkg, ...) win over the system copies, except ROS 1's message packages: where the virtualenv
holds ROS 2's wheels too, their ``std_msgs``... would shadow ROS 1's, so a finder first on
``sys.meta_path`` looks those names up in ROS 1's directories first. The system directory is
meant for the system Python's version (Debian 12: 3.11); its pure-Python packages work from any
Python 3, its C extensions only from the same minor version.

ROS 2
-----
rclpy comes either from PyPI wheels installed in the virtualenv (``pip install ros-rclpy
ros-std-msgs ...`` gives Kilted, ``ros-jazzy-rclpy ...`` Jazzy; ``pip install 'pyros[ros2]'``
installs the set pyros needs) or from a ROS 2 install prefix (``/opt/ros/<distro>`` or a colcon
workspace), normally sourced (``setup.bash`` sets ``PYTHONPATH``, ``AMENT_PREFIX_PATH`` and
``LD_LIBRARY_PATH``). What rclpy needs at run time, and how :func:`setup_ros2` provides it in
the node process only:

- ``sys.path``: the prefix's ``lib/pythonX.Y/site-packages`` (wheels: already there);
- ``AMENT_PREFIX_PATH``: the prefixes, whose ``share/<package>/`` hold the ``.msg``/``.srv``/
  ``.action`` files and the ament resource index (wheels install them under the venv's prefix);
- the shared libraries of rcl, the RMW and every message package: the wheels put them in
  ``<venv>/lib`` and ``site-packages/ros_*.libs``, an install in ``<prefix>/lib``, none with an
  RPATH to the others, so the dynamic loader finds them only through ``LD_LIBRARY_PATH`` as it
  was when the interpreter started. The wheels' own ``ros-wheels-bootstrapper`` handles that
  with a ``.pth`` file that re-executes *every* interpreter of the venv once with
  ``LD_LIBRARY_PATH`` set (client processes included; it is not pyros's doing, and
  ``_ROS_WHEELS_BOOTSTRAP_COMPLETE=1`` in the environment turns it off). pyros does not rely on
  it: when the loader cannot find a library, :meth:`Ros2Installation.load_missing` opens it by
  its full path (``RTLD_GLOBAL``), its own dependencies first, so that later lookups by soname
  find it already loaded. ``LD_LIBRARY_PATH`` is still extended in ``os.environ`` because
  rcpputils looks up type support libraries through it at run time;
- ``RMW_IMPLEMENTATION``, when set, must name an installed RMW (the wheels bring Fast DDS).
"""

from __future__ import annotations

import ctypes
import glob
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyros.exceptions import SpawnError

__all__ = [
    "OPT_ROS",
    "SYSTEM_DIST_PACKAGES",
    "ROS2_WHEELS",
    "find_ros1",
    "setup_ros1",
    "Ros2Installation",
    "find_ros2",
    "setup_ros2",
    "ros2_installation",
]

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
    _prefer_ros1_messages(directories)
    return added


class _Ros1MessagesFirst(importlib.abc.MetaPathFinder):
    """Finds ROS 1's message packages in ROS 1's directories before anywhere else.

    ROS 1's directories are appended to ``sys.path`` so that the venv's own packages win;
    but where the venv also holds ROS 2's wheels, their ``std_msgs``, ``rosgraph_msgs``...
    (generated for rclpy) would shadow ROS 1's genpy ones, and ``import rospy`` would fail.
    This finder, first on ``sys.meta_path``, looks up exactly those names (top-level packages
    of ROS 1's directories that hold ``msg/`` or ``srv/``) in ROS 1's directories.
    """

    def __init__(self) -> None:
        self.packages: dict[str, str] = {}

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        directory = self.packages.get(fullname)
        if directory is None:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [directory])


_ROS1_FINDER = _Ros1MessagesFirst()


def _prefer_ros1_messages(directories: list[str]) -> None:
    """Let ROS 1's message packages win over same-named ones earlier on ``sys.path``."""
    for directory in directories:
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            if entry in _ROS1_FINDER.packages:
                continue
            if any(
                os.path.isfile(os.path.join(directory, entry, kind, "__init__.py"))
                for kind in ("msg", "srv")
            ):
                _ROS1_FINDER.packages[entry] = directory
    if _ROS1_FINDER.packages and _ROS1_FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _ROS1_FINDER)


# --- ROS 2 -------------------------------------------------------------------------------------

ROS2_WHEELS = (
    "rclpy",
    "rmw-fastrtps-cpp",
    "std-msgs",
    "std-srvs",
    "geometry-msgs",
    "action-msgs",
    "rcl-interfaces",
    "test-msgs",
)
"""The ROS 2 wheels of the ``ros2`` extra (setup.py), as ``ros-<name>`` (Kilted) or
``ros-<distro>-<name>`` (``ros-jazzy-rclpy``) on PyPI. Only the node process imports them."""

_PYTHON_TAG = f"python{sys.version_info.major}.{sys.version_info.minor}"

_ROS2_PREFIX_PYTHON_DIRS = (
    f"lib/{_PYTHON_TAG}/site-packages",
    f"local/lib/{_PYTHON_TAG}/dist-packages",
    f"lib/{_PYTHON_TAG}/dist-packages",
    "lib/python3/dist-packages",
)
"""Python directories inside a ROS 2 install prefix (colcon; Ubuntu's ROS packages)."""

_RCLPY_DISTROS = {7: "jazzy", 9: "kilted"}
"""rclpy major version -> ROS 2 distribution, for the unprefixed (``ros-rclpy``) wheels."""

_MISSING_LIBRARY = re.compile(r"([^\s:/]+\.so[^\s:/]*): cannot open shared object file")
"""What the dynamic loader says when it cannot find a library by soname."""

_REQUIRED_PACKAGES = (
    "rcl_interfaces",
    "action_msgs",
    "unique_identifier_msgs",
    "builtin_interfaces",
)
"""Interface packages the ``ros2`` backend itself uses (parameters, actions, time)."""


@dataclass
class Ros2Installation:
    """Where ROS 2 (rclpy) is installed, as :func:`find_ros2` found it.

    Attributes:
        kind: ``"wheels"`` (PyPI wheels in this interpreter's environment), ``"sourced"``
            (rclpy already importable from ``PYTHONPATH``, prefixes from
            ``AMENT_PREFIX_PATH``) or ``"prefix"`` (an unsourced ``/opt/ros/<distro>``).
        distro: ``"kilted"``, ``"jazzy"``..., or ``""`` when unknown.
        python_dirs: directories to append to ``sys.path`` (empty when rclpy is importable).
        prefixes: install prefixes, overlays first; ``share/<package>/`` in them holds the
            interface files.
        library_dirs: directories holding the shared libraries rclpy loads.
        pip_prefix: how the wheels of this distribution are named on PyPI (``"ros-"``,
            ``"ros-jazzy-"``), or ``""`` for an install from apt or source.
        preload: True when the dynamic loader cannot find these libraries by itself
            (:attr:`library_dirs` were not on ``LD_LIBRARY_PATH`` when this interpreter
            started), so that :meth:`load_package` loads them by path. Set by
            :func:`setup_ros2`.
    """

    kind: str
    distro: str
    python_dirs: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    library_dirs: list[str] = field(default_factory=list)
    pip_prefix: str = ""
    preload: bool = False
    _loaded_packages: set[str] = field(default_factory=set, repr=False)
    _loaded_paths: set[str] = field(default_factory=set, repr=False)

    def install_hint(self, package: str) -> str:
        """Say how to install the ROS 2 package ``package`` (``"std_msgs"``) here."""
        dashed = package.replace("_", "-")
        if self.pip_prefix:
            return f"pip install {self.pip_prefix}{dashed}"
        distro = self.distro or "$ROS_DISTRO"
        return f"apt-get install ros-{distro}-{dashed} (or build it in your workspace)"

    def find_library(self, soname: str) -> str | None:
        """Return the path of the shared library ``soname`` in :attr:`library_dirs`."""
        for directory in self.library_dirs:
            path = os.path.join(directory, soname)
            if os.path.isfile(path):
                return path
        return None

    def load_package(self, package: str) -> None:
        """Load the shared libraries behind a ROS 2 Python package, if the loader cannot.

        A no-op unless :attr:`preload` is set (the library directories were not on
        ``LD_LIBRARY_PATH`` when this interpreter started). Then the package's libraries in
        :attr:`library_dirs` (``lib<package>__*.so``: the type support libraries that the
        RMW opens by soname) and every C extension in the package's Python directory (rclpy
        itself, or a message package's type support modules) are opened by their full paths
        with ``RTLD_GLOBAL``, each after the libraries it needs in turn, found in
        :attr:`library_dirs` by the soname in the loader's error. Once a library is loaded,
        the loader resolves its soname for every later library and import without a search
        path. Idempotent.

        Args:
            package: a top-level Python package (``"rclpy"``, ``"std_msgs"``).

        Raises:
            SpawnError: a library is in none of :attr:`library_dirs` (the message names the
                package to install), or the loader refused it.
        """
        if not self.preload or package in self._loaded_packages:
            return
        paths = [
            path
            for directory in self.library_dirs
            for path in sorted(glob.glob(os.path.join(directory, f"lib{package}__*.so")))
        ]
        spec = importlib.util.find_spec(package)
        for directory in (spec.submodule_search_locations or []) if spec else []:
            paths.extend(sorted(glob.glob(os.path.join(directory, "*.so"))))
        for path in paths:
            self._load_path(path, set())
        self._loaded_packages.add(package)

    def load_library(self, soname: str) -> None:
        """Load the library ``soname`` from :attr:`library_dirs` (see :meth:`load_package`).

        A no-op unless :attr:`preload` is set.

        Raises:
            SpawnError: as :meth:`load_package`.
        """
        if self.preload:
            self._load_soname(soname, set())

    def _load_soname(self, soname: str, loading: set[str]) -> None:
        path = self.find_library(soname)
        if path is None:
            package = re.sub(r"^lib|\.so.*$", "", soname).split("__")[0]
            raise SpawnError(
                f"ROS 2 needs the library {soname}, which is in none of "
                f"{', '.join(self.library_dirs) or 'no library directory'}; install its "
                f"package ({self.install_hint(package)})"
            )
        self._load_path(path, loading | {soname})

    def _load_path(self, path: str, loading: set[str]) -> None:
        if path in self._loaded_paths:
            return
        for _ in range(1024):  # each round loads one more missing dependency
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                match = _MISSING_LIBRARY.search(str(exc))
                if match is None or match.group(1) in loading:
                    raise SpawnError(f"cannot load {path}: {exc}") from exc
                self._load_soname(match.group(1), loading)
            else:
                self._loaded_paths.add(path)
                return
        raise SpawnError(f"cannot load {path}: too many missing dependencies")


def _has_rclpy(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "rclpy", "__init__.py"))


def _rclpy_matches_python(directory: str) -> bool:
    """True if the rclpy in ``directory`` has a C extension this interpreter can load."""
    pattern = os.path.join(directory, "rclpy", "_rclpy_pybind11*")
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    for path in glob.glob(pattern):
        suffix = os.path.basename(path)[len("_rclpy_pybind11") :]
        # A tagged build (.cpython-312-x86_64-linux-gnu.so) must carry this interpreter's tag.
        if suffix.startswith(".cpython-") and suffix != suffixes[0]:
            continue
        if suffix in suffixes:
            return True
    return False


def _split_path(value: str) -> list[str]:
    return [part for part in value.split(os.pathsep) if part]


def _wheel_installation(site: str) -> Ros2Installation:
    """Describe the wheels whose rclpy is in the site directory ``site``."""
    prefix = os.path.normpath(os.path.join(site, os.pardir, os.pardir, os.pardir))
    distro, pip_prefix = "", "ros-"
    for info in sorted(glob.glob(os.path.join(site, "ros_*rclpy-*.dist-info"))):
        name, _, version = os.path.basename(info)[: -len(".dist-info")].partition("-")
        middle = name[len("ros_") : -len("rclpy")].strip("_")
        if middle:
            distro, pip_prefix = middle, f"ros-{middle.replace('_', '-')}-"
        elif version.split(".")[0].isdigit():
            distro = _RCLPY_DISTROS.get(int(version.split(".")[0]), "")
    libraries = [os.path.join(prefix, "lib"), *sorted(glob.glob(os.path.join(site, "ros_*.libs")))]
    return Ros2Installation(
        kind="wheels",
        distro=distro,
        prefixes=[prefix],
        library_dirs=[d for d in libraries if os.path.isdir(d)],
        pip_prefix=pip_prefix,
    )


def _prefix_installation(
    kind: str, prefixes: list[str], distro: str, python_dirs: list[str]
) -> Ros2Installation:
    libraries = []
    for prefix in prefixes:
        libraries.append(os.path.join(prefix, "lib"))
        libraries.extend(sorted(glob.glob(os.path.join(prefix, "opt", "*", "lib"))))
    return Ros2Installation(
        kind=kind,
        distro=distro,
        python_dirs=python_dirs,
        prefixes=prefixes,
        library_dirs=[d for d in libraries if os.path.isdir(d)],
    )


def _ros2_python_dirs(prefix: str) -> list[str]:
    return [
        os.path.join(prefix, sub)
        for sub in _ROS2_PREFIX_PYTHON_DIRS
        if os.path.isdir(os.path.join(prefix, sub))
    ]


def find_ros2(environ: Mapping[str, str] | None = None) -> Ros2Installation | None:
    """Find ROS 2 (rclpy) for this interpreter, without importing it.

    Looks, in order, for:

    1. rclpy already importable (``sys.path``): the PyPI wheels when a ``ros_*rclpy``
       distribution sits beside it, else a sourced install whose prefixes are on
       ``$AMENT_PREFIX_PATH``;
    2. the prefixes on ``$AMENT_PREFIX_PATH`` (overlays first) whose Python directory holds
       rclpy built for this Python version;
    3. ``/opt/ros/$ROS_DISTRO``, then any ``/opt/ros/*`` (the last in name order first) with
       such an rclpy.

    Args:
        environ: the environment to read (``AMENT_PREFIX_PATH``, ``ROS_DISTRO``); defaults
            to ``os.environ``.

    Returns:
        Where ROS 2 is, or None when no rclpy usable by this interpreter was found.
    """
    env = os.environ if environ is None else environ
    distro = env.get("ROS_DISTRO", "")
    ament = _split_path(env.get("AMENT_PREFIX_PATH", ""))
    spec = importlib.util.find_spec("rclpy")
    if spec is not None and spec.origin:
        site = os.path.dirname(os.path.dirname(spec.origin))
        if glob.glob(os.path.join(site, "ros_*rclpy-*.dist-info")):
            found = _wheel_installation(site)
            found.prefixes += [p for p in ament if p not in found.prefixes]
            return found
        return _prefix_installation("sourced", ament, distro, [])
    python_dirs: list[str] = []
    with_rclpy: list[str] = []
    for prefix in ament:
        for directory in _ros2_python_dirs(prefix):
            python_dirs.append(directory)
            if _has_rclpy(directory) and _rclpy_matches_python(directory):
                with_rclpy.append(directory)
    if with_rclpy:
        return _prefix_installation("sourced", ament, distro, python_dirs)
    candidates = []
    if distro and os.sep not in distro:
        candidates.append(os.path.join(OPT_ROS, distro))
    candidates += sorted(glob.glob(os.path.join(OPT_ROS, "*")), reverse=True)
    for prefix in candidates:
        directories = _ros2_python_dirs(prefix)
        if any(_has_rclpy(d) and _rclpy_matches_python(d) for d in directories):
            return _prefix_installation("prefix", [prefix], os.path.basename(prefix), directories)
    return None


def _ros2_not_found(env: Mapping[str, str]) -> SpawnError:
    other_python = [
        d
        for prefix in glob.glob(os.path.join(OPT_ROS, "*"))
        for d in glob.glob(os.path.join(prefix, "lib", "python3*", "site-packages"))
        if _has_rclpy(d) and not _rclpy_matches_python(d)
    ]
    built_for = (
        f" ({', '.join(other_python)} is built for another Python than this "
        f"{sys.version_info.major}.{sys.version_info.minor}: run pyros with that Python)"
        if other_python
        else ""
    )
    wheels = " ".join(f"ros-{name}" for name in ROS2_WHEELS)
    return SpawnError(
        "ROS 2 (rclpy) not found for this Python; looked for the PyPI wheels in this "
        f"environment ({sys.prefix}), on $AMENT_PREFIX_PATH and in "
        f"{os.path.join(OPT_ROS, '*')}{built_for}. Install it into this environment: "
        f"pip install 'pyros[ros2]' (or: pip install {wheels}; ros-jazzy-* names give "
        "Jazzy), or source /opt/ros/<distro>/setup.bash before starting"
    )


def _prepend(env_name: str, values: list[str]) -> None:
    current = _split_path(os.environ.get(env_name, ""))
    new = [value for value in values if value not in current]
    if new:
        os.environ[env_name] = os.pathsep.join(new + current)


_INSTALLATION: Ros2Installation | None = None
"""What :func:`setup_ros2` set up in this process."""

_RCLPY_PACKAGES = (
    "rclpy",
    "builtin_interfaces",
    "unique_identifier_msgs",
    "action_msgs",
    "rcl_interfaces",
    "rosgraph_msgs",
    "service_msgs",
    "type_description_interfaces",
    "rmw_dds_common",
)
"""Packages whose libraries rclpy and the RMW load for any node (see :func:`setup_ros2`)."""


def setup_ros2(environ: Mapping[str, str] | None = None) -> Ros2Installation:
    """Make ``import rclpy`` work in this process, and check that it does.

    Appends the install's Python directories to ``sys.path``; prepends its prefixes to
    ``AMENT_PREFIX_PATH`` and its library directories to ``LD_LIBRARY_PATH`` in
    ``os.environ`` (for the lookups rcpputils and ament_index make at run time); if those
    library directories were not on ``LD_LIBRARY_PATH`` when the interpreter started, loads
    rclpy's libraries by path (:meth:`Ros2Installation.load_package`); then imports rclpy and
    checks the interface packages the backend uses. Idempotent: a second call returns the
    first one's result. Call it only in a node process or a test peer: it changes this
    process's environment and loads ROS 2's libraries.

    Args:
        environ: the environment to read; defaults to ``os.environ`` (see :func:`find_ros2`).

    Returns:
        Where ROS 2 was found; :func:`ros2_installation` returns it from then on.

    Raises:
        SpawnError: ROS 2 is not installed for this interpreter; ``RMW_IMPLEMENTATION`` names
            an RMW that is not installed; or a library or interface package is missing. The
            message says what to install.
    """
    global _INSTALLATION
    if _INSTALLATION is not None:
        return _INSTALLATION
    env = os.environ if environ is None else environ
    found = find_ros2(env)
    if found is None:
        raise _ros2_not_found(env)
    sys.path.extend(d for d in found.python_dirs if d not in sys.path)
    searched = _split_path(os.environ.get("LD_LIBRARY_PATH", ""))
    found.preload = any(d not in searched for d in found.library_dirs)
    _prepend("AMENT_PREFIX_PATH", found.prefixes)
    _prepend("LD_LIBRARY_PATH", found.library_dirs)
    _check_rmw(found, env)
    for package in _REQUIRED_PACKAGES:
        if importlib.util.find_spec(package) is None:
            hint = found.install_hint(package)
            raise SpawnError(f"ROS 2 interface package {package} is not installed ({hint})")
    rmw = env.get("RMW_IMPLEMENTATION") or "rmw_fastrtps_cpp"
    if found.find_library(f"lib{rmw}.so"):
        found.load_library(f"lib{rmw}.so")
    for package in _RCLPY_PACKAGES:
        found.load_package(package)
    try:
        importlib.import_module("rclpy.impl.implementation_singleton")
    except ImportError as exc:
        raise SpawnError(
            f"rclpy from {found.kind} ({', '.join(found.prefixes)}) cannot be imported: {exc}"
        ) from exc
    _INSTALLATION = found
    return found


def ros2_installation() -> Ros2Installation:
    """Return what :func:`setup_ros2` set up in this process.

    Raises:
        SpawnError: :func:`setup_ros2` was not called (or failed).
    """
    if _INSTALLATION is None:
        raise SpawnError("ROS 2 is not set up in this process (call setup_ros2() first)")
    return _INSTALLATION


def _check_rmw(found: Ros2Installation, env: Mapping[str, str]) -> None:
    wanted = env.get("RMW_IMPLEMENTATION", "")
    if not wanted:
        return
    index = os.path.join("share", "ament_index", "resource_index", "rmw_typesupport", "*")
    installed = sorted(
        {
            os.path.basename(path)
            for prefix in found.prefixes
            for path in glob.glob(os.path.join(prefix, index))
            if os.path.basename(path).startswith("rmw_")
            and os.path.basename(path) != "rmw_implementation"
        }
    )
    if installed and wanted not in installed:
        raise SpawnError(
            f"RMW_IMPLEMENTATION={wanted} is not installed (installed: {', '.join(installed)}); "
            f"install it ({found.install_hint(wanted)}) or unset RMW_IMPLEMENTATION"
        )
