"""Original Pyros 0.4.3 from PyPI, made to run on Python 3 in a scratch venv.

Pyros 0.4.3 (2017) was written for Python 2.7 and ROS Indigo. :func:`ensure` installs it with
``pip install 'pyros[ros]==0.4.3'`` (and the exact dependency versions it resolves to today)
into ``<cache>/pyros-0.4.3/venv``, never into this repository, then patches that venv's copy:

1. ``2to3`` (the standard library's ``lib2to3``, all default fixers) over the five packages
   that run: ``pyros``, ``pyros_interfaces_ros``, ``pyros_interfaces_common``, ``pyros_common``,
   ``pyzmp`` (``long``/``unicode``/``iteritems``/``Queue``/``ifilter``... and ``print``);
2. the hand patches in :data:`PATCHES`, each with its reason: what 2to3 cannot know
   (``pyros_utils`` is not on PyPI; rosbuild manifests Debian does not ship; Python 2's
   ``list < int``; ``str`` vs ``bytes`` at the rospy boundary);
3. a ``.pth`` file that appends Debian's ``/usr/lib/python3/dist-packages`` (where ROS 1
   Noetic lives) to the venv's path, the job pyros-setup did on ROS Indigo.

The complete result is written as a unified diff (``pyros-0.4.3-py3.patch`` in the output
folder), so the results say exactly what was changed. Pyros also imports ``rosparam``, which
needs Debian's ``python3-rosparam``; :func:`ensure` installs it with apt-get when running as
root, and otherwise reports why the contender is skipped.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.setup_log import run_logged

__all__ = ["PATCHES", "REQUIREMENTS", "Installed", "ensure"]

REQUIREMENTS = [
    "pyros[ros]==0.4.3",
    "pyros-interfaces-ros==0.4.2",
    "pyros-common==0.5.4",
    "pyros-config==0.2.1",
    "pyros-setup==0.3.0",
    "pyzmp==0.0.17",
]
"""What is installed: Pyros 0.4.3 and the newest releases of its own packages it accepts."""

PACKAGES = ["pyros", "pyros_interfaces_ros", "pyros_interfaces_common", "pyros_common", "pyzmp"]
"""The packages converted with 2to3 (the ones Pyros's ROS node and client run)."""

_CONNECTIONS = "if self.pool.get_impl_connections(self.name) < 1:"
_NO_MANIFEST = "(rosbuild only; Debian's ROS 1 packages ship no manifest, the import works)"
_CLIENT_ENCODE = ".encode('ascii', 'ignore')"

PATCHES: list[tuple[str, str, str, str]] = [
    (
        "pyros_interfaces_ros/ros_interface.py",
        "from collections import namedtuple, MutableMapping",
        "from collections import namedtuple\nfrom collections.abc import MutableMapping",
        "MutableMapping moved to collections.abc (gone from collections in Python 3.10)",
    ),
    (
        "pyros_interfaces_ros/ros_interface.py",
        "import pyros_utils",
        "import rosgraph",
        "pyros_utils is not on PyPI; only its get_master() was used, rosgraph.Master does that",
    ),
    (
        "pyros_interfaces_ros/ros_interface.py",
        "m, _ = pyros_utils.get_master(spawn=False)",
        "m = rosgraph.Master(node_name)",
        "as above (the object is used only for m.is_online())",
    ),
    *[
        (
            f"pyros_interfaces_ros/{module}.py",
            line,
            f"pass  # {line}",
            "ABC.register() of a class on its own base: a no-op in Python 2 (the base's "
            "__metaclass__ attribute made it an ABC there); AttributeError in Python 3",
        )
        for module, line in (
            ("pyros_ros", "PyrosBase.register(PyrosROS)"),
            ("service_if_pool", "TransientIfPool.register(RosServiceIfPool)"),
            ("publisher_if_pool", "TransientIfPool.register(RosPublisherIfPool)"),
            ("param_if_pool", "TransientIfPool.register(RosParamIfPool)"),
            ("subscriber_if_pool", "TransientIfPool.register(RosSubscriberIfPool)"),
        )
    ],
    *[
        (
            f"pyros_interfaces_ros/{module}.py",
            call,
            f"pass  # {call}",
            f"roslib load_manifest {_NO_MANIFEST}",
        )
        for module, call in (
            ("service_if", "roslib.load_manifest(service_type_module)"),
            ("topicbase", "roslib.load_manifest(topic_type_module)"),
            ("message_conversion", "roslib.load_manifest(modname)"),
            ("ros_loader", "roslib.launcher.load_manifest(modname)"),
        )
    ],
    *[
        (
            f"pyros_interfaces_ros/{module}.py",
            _CONNECTIONS,
            "if False:  # " + _CONNECTIONS,
            "compares a list with an int: always False in Python 2 (never raised), TypeError "
            "in Python 3; kept never raising",
        )
        for module in ("publisher_if", "subscriber_if")
    ],
    (
        "pyros_interfaces_ros/message_conversion.py",
        'return msg.encode("ascii", "ignore")',
        "return msg",
        "genpy wants str for ROS string fields in Python 3 (Python 2's str was bytes)",
    ),
    (
        "pyros_interfaces_ros/message_conversion.py",
        "return str(bytearray(msg))",
        "return bytes(bytearray(msg))",
        "uint8[] from a list: bytes in Python 3 (Python 2's str was bytes)",
    ),
    (
        "pyros/client/client.py",
        _CLIENT_ENCODE,
        "",
        "the client turned unicode names into byte strings; after 2to3 every str is "
        "'unicode', and a bytes name matches no topic or service (6 places)",
    ),
    (
        "pyros_interfaces_ros/pyros_ros.py",
        "unicodedata.normalize('NFKD', arg).encode('ascii', 'ignore') if isinstance(arg, str) "
        "else str(arg)",
        "str(arg)",
        "the same for the node's argv (it goes to rospy.init_node, which wants str)",
    ),
]
"""Hand patches applied after 2to3: ``(file, old text, new text, why)``; every occurrence of
the old text in the file is replaced, and a patch that matches nothing is an error."""


@dataclass
class Installed:
    """A ready Pyros 0.4.3.

    Attributes:
        python: the venv's interpreter.
        patch: the unified diff of everything changed after ``pip install``.
        description: what was installed and patched, for ``results.json``.
    """

    python: str
    patch: str
    description: dict[str, object]


def _stamp() -> str:
    text = repr((REQUIREMENTS, PACKAGES, PATCHES)).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def _site_packages(venv: Path) -> Path:
    return (
        venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )


def _rosparam_missing() -> bool:
    return not Path("/usr/lib/python3/dist-packages/rosparam/__init__.py").exists()


def ensure(cache: Path, *, install: bool, log: Path) -> Installed:
    """Return a patched Pyros 0.4.3, installing it into ``cache`` if needed.

    Args:
        cache: the folder holding ``pyros-0.4.3/`` (kept between runs).
        install: whether a missing venv may be made now (pip downloads from PyPI).
        log: file receiving pip's, 2to3's and apt-get's output.

    Raises:
        RuntimeError: it is not installed and may not be, or a step failed (the message says
            which).
    """
    root = cache / "pyros-0.4.3"
    venv = root / "venv"
    stamp = root / "stamp"
    if _rosparam_missing():
        if not install:
            raise RuntimeError("Debian's python3-rosparam is missing and installs are disabled")
        if os.geteuid() != 0:
            raise RuntimeError("needs Debian's python3-rosparam (apt-get, as root)")
        run_logged(["apt-get", "install", "-y", "python3-rosparam"], log)
    if not (stamp.exists() and stamp.read_text() == _stamp()):
        if not install:
            raise RuntimeError(f"not installed in {root} and installs are disabled (--no-install)")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        run_logged([sys.executable, "-m", "venv", str(venv)], log)
        run_logged([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *REQUIREMENTS], log)
        site = _site_packages(venv)
        pristine = root / "pristine"
        for package in PACKAGES:
            shutil.copytree(site / package, pristine / package, ignore=_no_pycache)
        run_logged(
            [str(venv / "bin" / "python"), "-W", "ignore", "-m", "lib2to3", "-w", "-n"]
            + [str(site / package) for package in PACKAGES],
            log,
        )
        for relative, old, new, why in PATCHES:
            path = site / relative
            text = path.read_text(encoding="utf-8")
            if old not in text:
                raise RuntimeError(f"patch for {relative} no longer applies ({why})")
            path.write_text(text.replace(old, new), encoding="utf-8")
        (site / "zz_debian_ros1.pth").write_text("/usr/lib/python3/dist-packages\n")
        (root / "pyros-0.4.3-py3.patch").write_text(_diff(pristine, site), encoding="utf-8")
        stamp.write_text(_stamp())
    return Installed(
        python=str(venv / "bin" / "python"),
        patch=(root / "pyros-0.4.3-py3.patch").read_text(encoding="utf-8"),
        description={
            "pip": REQUIREMENTS,
            "venv": str(venv),
            "2to3": f"python -m lib2to3 -w -n (all default fixers) over {', '.join(PACKAGES)}",
            "hand_patches": [
                {"file": relative, "old": old, "new": new, "why": why}
                for relative, old, new, why in PATCHES
            ],
            "pth": "zz_debian_ros1.pth appends /usr/lib/python3/dist-packages (ROS 1 Noetic)",
            "apt": "python3-rosparam (Pyros imports rosparam)",
            "patch_file": "pyros-0.4.3-py3.patch",
        },
    )


def _no_pycache(directory: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__"]


def _diff(pristine: Path, site: Path) -> str:
    chunks = []
    for before in sorted(pristine.rglob("*.py")):
        relative = before.relative_to(pristine)
        after = site / relative
        old = before.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        new = after.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        chunks.extend(difflib.unified_diff(old, new, f"a/{relative}", f"b/{relative}"))
    return "".join(chunks)
