"""Packaging for pyros: one file that serves both pip and catkin.

pip (``pip install -e '.[test,ros1]'``) runs this through setuptools as usual.

catkin's ``catkin_python_setup()`` runs it with ``setuptools.setup`` replaced by a recorder
(catkin's ``interrogate_setup_dot_py.py``) that reads only the keyword arguments ``version``,
``packages``, ``package_dir``, ``scripts`` and ``py_modules``. So those stay plain keyword
arguments here, not in setup.cfg, and the version is read from ``package.xml`` so the two can
never disagree (catkin refuses a setup.py whose version differs from package.xml's).
catkin warns that ``entry_points`` are not supported in its devel space: the ``pyros`` command
is made by pip and by ``catkin_make install`` (in ``install/bin``), not in ``devel/``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _package_xml_version() -> str:
    """Return the ``<version>`` of this repository's package.xml (the one version source)."""
    version = ET.parse(os.path.join(HERE, "package.xml")).getroot().findtext("version")
    if not version:
        raise RuntimeError("package.xml has no <version>")
    return version.strip()


def _long_description() -> str:
    """README.rst for the package index page, without its images.

    The README's images are files of this repository (``benchmarks/results/*.png``), which a
    package index page cannot show; the documentation site has them.
    """
    path = os.path.join(HERE, "README.rst")
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    kept: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith(".. image:: ") and "://" not in line:
            skipping = True
            continue
        if skipping and (line.startswith("   ") or not line.strip()):
            if not line.strip():
                skipping = False
            continue
        skipping = False
        kept.append(line)
    return "\n".join(kept) + "\n"


DISTRIBUTION = "pyros-robot"
"""The name on the package index. ``pyros`` there is the original Pyros (0.1.0 to 0.4.3, the
same import name): ``pip install -U pyros`` would replace this project with it. The import
name stays ``pyros``."""

REPOSITORY_URL = ""
"""The public repository, once there is one (project URLs are added when this is set)."""

PROJECT_URLS = {
    "Original Pyros (0.4.3)": "https://github.com/asmodehn/pyros",
    **(
        {
            "Source": REPOSITORY_URL,
            "Issues": f"{REPOSITORY_URL}/issues",
            "Documentation": f"{REPOSITORY_URL}#readme",
        }
        if REPOSITORY_URL
        else {}
    ),
}


ROS2_REQUIRE = [
    "ros-rclpy",
    "ros-rmw-fastrtps-cpp",
    "ros-std-msgs",
    "ros-std-srvs",
    "ros-geometry-msgs",
    "ros-action-msgs",
    "ros-rcl-interfaces",
    "ros-test-msgs",
]

# The examples/ apps; the tests run them for real (gunicorn workers, a Celery prefork pool).
EXAMPLES_REQUIRE = ["flask", "gunicorn", "celery", "redis"]
# The fleet dashboard (pyros dashboard, pyros relay --dashboard): NiceGUI for the pages, httpx
# for GET /api/devices, Pillow to show sensor_msgs/Image. The relay alone needs none of them.
DASHBOARD_REQUIRE = ["nicegui>=3.0", "httpx", "pillow"]
# The relay's optional encodings and scale-out: cbor2 (compression "cbor"), Pillow ("png"),
# redis-py with hiredis, its C parser (pyros relay --redis). Loaded only when used.
RELAY_REQUIRE = ["cbor2", "pillow", "redis", "hiredis"]
# selenium drives Debian's chromium (apt: chromium, chromium-driver) in tests/dashboard.
TEST_REQUIRE = [
    "pytest",
    "pytest-timeout",
    "hypothesis",
    "setuptools",  # tests/unit/test_packaging.py reads setup.py (venvs of 3.12+ lack it)
    "roslibpy",
    "selenium",
    *EXAMPLES_REQUIRE,
    *RELAY_REQUIRE,
]

setup(
    name=DISTRIBUTION,
    version=_package_xml_version(),
    description="Use a ROS robot from ordinary Python (web servers, task queues, scripts) "
    "through one isolated ROS-side node process; a cloud relay and connector for fleets",
    long_description=_long_description(),
    long_description_content_type="text/x-rst",
    license="BSD-3-Clause",
    maintainer="pyros maintainers",
    maintainer_email="maintainers@users.noreply.b-seed-dd7570ec.example",
    project_urls=PROJECT_URLS,
    keywords=[
        "ros",
        "ros1",
        "ros2",
        "rospy",
        "rclpy",
        "rosbridge",
        "robotics",
        "zeromq",
        "robot",
        "fleet",
        "websocket",
        "flask",
        "celery",
        "asyncio",
    ],
    python_requires=">=3.10",
    packages=find_packages(
        include=["pyros", "pyros.*", "pyros_ros", "pyros_ros.*"],
        exclude=["tests", "tests.*", "benchmarks", "benchmarks.*"],
    ),
    package_data={"pyros": ["py.typed"]},
    # What an ament_python package installs besides its code (colcon on ROS 2): its marker in
    # the ament resource index and its package.xml, so that `ros2 pkg` finds it.
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/pyros"]),
        ("share/pyros", ["package.xml"]),
    ],
    install_requires=[
        "pyzmq",
        "msgpack",
        "psutil",
        "click",
        "websockets>=14",
        "pyyaml",  # the pyros command reads YAML messages and parameter files
        "prometheus-client",  # the relay's GET /metrics
        'exceptiongroup; python_version < "3.11"',
    ],
    extras_require={
        # ROS 1 itself (rospy, rosmaster, message packages) comes from Debian's apt packages
        # in /usr/lib/python3/dist-packages, which the pyros node appends to its own sys.path.
        # These are the pure-Python libraries that Debian's rospy/rosmaster import and that a
        # venv would otherwise take from dist-packages only by accident of path order:
        # rospkg (-> distro), catkin_pkg (-> python-dateutil, docutils, pyparsing), yaml,
        # and defusedxml (rosmaster.util). netifaces stays Debian's C extension.
        "ros1": ["rospkg", "catkin_pkg", "pyyaml", "defusedxml"],
        # ROS 2 Kilted as PyPI wheels (the ros-jazzy-* names give Jazzy instead): rclpy, the
        # Fast DDS RMW, and the interface packages the ros2 backend and its tests use
        # (pyros_ros.environment.ROS2_WHEELS). Only the node process imports them.
        "ros2": ROS2_REQUIRE,
        # The rosbridge backend: websockets (a core dependency) plus CBOR frames, which carry
        # uint8[] as bytes (rosbridge protocol 3.1.3).
        "rosbridge": ["cbor2"],
        "examples": EXAMPLES_REQUIRE,
        "dashboard": DASHBOARD_REQUIRE,
        "relay": RELAY_REQUIRE,
        "bench": ["matplotlib", "roslibpy"],  # benchmarks/: plots; the roslibpy contender
        # docs/: the documentation site (scripts/docs builds it with warnings as errors).
        "docs": ["sphinx>=7", "furo", "sphinx-click"],
        "test": TEST_REQUIRE,
        "dev": [*TEST_REQUIRE, *DASHBOARD_REQUIRE, "ruff", "mypy", "tox"],
    },
    entry_points={"console_scripts": ["pyros = pyros._cli.entry:main"]},
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Developers",
        "Intended Audience :: Science/Research",
        "License :: OSI Approved :: BSD License",
        "Framework :: AsyncIO",
        "Framework :: Flask",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Operating System :: POSIX :: Linux",
        "Topic :: Scientific/Engineering",
        "Topic :: Software Development :: Libraries :: Python Modules",
        "Topic :: System :: Distributed Computing",
        "Typing :: Typed",
    ],
)
