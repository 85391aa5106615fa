"""Finding ROS 2 (pyros_ros.environment.find_ros2/setup_ros2), on fake trees and for real.

The fake trees run in this process (nothing is imported from them); the real set-up runs in
a subprocess, so that this test process never loads rclpy's libraries.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pyros_ros.environment as environment
from pyros.exceptions import SpawnError

SUFFIX = ".cpython-{}{}-x86_64-linux-gnu.so".format(*sys.version_info[:2])
TAG = "python{}.{}".format(*sys.version_info[:2])


def make_rclpy(directory: Path, suffix: str = SUFFIX) -> Path:
    (directory / "rclpy").mkdir(parents=True)
    (directory / "rclpy" / "__init__.py").write_text("")
    (directory / "rclpy" / f"_rclpy_pybind11{suffix}").write_text("")
    return directory


@pytest.fixture
def fake_opt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the /opt/ros search at an empty directory; hide the real rclpy."""
    (tmp_path / "opt_ros").mkdir()
    monkeypatch.setattr(environment, "OPT_ROS", str(tmp_path / "opt_ros"))
    monkeypatch.setattr(environment, "_INSTALLATION", None)  # set up by an earlier test?
    real_find_spec = environment.importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "rclpy" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(environment.importlib.util, "find_spec", find_spec)
    return tmp_path


def test_nothing_installed_is_none_and_says_what_to_install(fake_opt: Path) -> None:
    assert environment.find_ros2({}) is None
    with pytest.raises(SpawnError) as info:
        environment.setup_ros2({})
    message = str(info.value)
    assert "pip install 'pyros[ros2]'" in message and "ros-rclpy" in message
    assert "/opt/ros/<distro>/setup.bash" in message


def test_an_opt_ros_install_for_this_python_is_found(fake_opt: Path) -> None:
    jazzy = fake_opt / "opt_ros" / "jazzy"
    site = make_rclpy(jazzy / "lib" / TAG / "site-packages")
    (jazzy / "lib" / "librcl.so").write_text("")
    found = environment.find_ros2({})
    assert found is not None
    assert (found.kind, found.distro, found.python_dirs) == ("prefix", "jazzy", [str(site)])
    assert found.prefixes == [str(jazzy)] and found.library_dirs == [str(jazzy / "lib")]
    assert (
        found.install_hint("std_msgs")
        == "apt-get install ros-jazzy-std-msgs (or build it in your workspace)"
    )


def test_ros_distro_comes_first_and_other_pythons_are_skipped(fake_opt: Path) -> None:
    make_rclpy(fake_opt / "opt_ros" / "rolling" / "lib" / TAG / "site-packages")
    make_rclpy(fake_opt / "opt_ros" / "humble" / "lib" / TAG / "site-packages")
    make_rclpy(
        fake_opt / "opt_ros" / "zzz" / "lib" / "python3.99" / "site-packages",
        ".cpython-399-x86_64-linux-gnu.so",
    )
    assert environment.find_ros2({"ROS_DISTRO": "humble"}).distro == "humble"  # type: ignore[union-attr]
    assert environment.find_ros2({}).distro == "rolling"  # type: ignore[union-attr]


def test_a_build_for_another_python_is_named_in_the_error(fake_opt: Path) -> None:
    make_rclpy(
        fake_opt / "opt_ros" / "jazzy" / "lib" / "python3.99" / "site-packages",
        ".cpython-399-x86_64-linux-gnu.so",
    )
    assert environment.find_ros2({}) is None
    with pytest.raises(SpawnError, match="built for another Python"):
        environment.setup_ros2({})


def test_sourced_workspaces_on_ament_prefix_path_come_first(fake_opt: Path) -> None:
    overlay = fake_opt / "ws" / "install"
    (overlay / "lib" / TAG / "site-packages" / "my_msgs").mkdir(parents=True)
    base = fake_opt / "opt_ros" / "jazzy"
    base_site = make_rclpy(base / "lib" / TAG / "site-packages")
    env = {"AMENT_PREFIX_PATH": f"{overlay}:{base}", "ROS_DISTRO": "jazzy"}
    found = environment.find_ros2(env)
    assert found is not None and found.kind == "sourced"
    assert found.prefixes == [str(overlay), str(base)]
    assert found.python_dirs == [str(overlay / "lib" / TAG / "site-packages"), str(base_site)]


def test_wheels_are_recognised_with_their_distro(tmp_path: Path) -> None:
    site = tmp_path / "venv" / "lib" / TAG / "site-packages"
    make_rclpy(site)
    (site / "ros_jazzy_rclpy-7.1.1.dist-info").mkdir()
    (site / "ros_jazzy_rcl.libs").mkdir()
    (tmp_path / "venv" / "lib" / "librcl.so").write_text("")
    found = environment._wheel_installation(str(site))
    assert (found.kind, found.distro, found.pip_prefix) == ("wheels", "jazzy", "ros-jazzy-")
    assert found.prefixes == [str(tmp_path / "venv")]
    assert found.library_dirs == [str(tmp_path / "venv" / "lib"), str(site / "ros_jazzy_rcl.libs")]
    assert found.install_hint("std_msgs") == "pip install ros-jazzy-std-msgs"


def test_a_missing_library_names_its_package(tmp_path: Path) -> None:
    found = environment.Ros2Installation(
        "wheels", "kilted", library_dirs=[str(tmp_path)], pip_prefix="ros-", preload=True
    )
    with pytest.raises(SpawnError, match="pip install ros-geometry-msgs"):
        found.load_library("libgeometry_msgs__rosidl_typesupport_c.so")
    found.preload = False
    found.load_library("libgeometry_msgs__rosidl_typesupport_c.so")  # the loader's business


def test_this_machine_has_the_wheels() -> None:
    found = environment.find_ros2()
    assert found is not None and found.kind == "wheels", found
    assert found.distro in ("kilted", "jazzy")
    assert any(Path(d, "librcl.so").is_file() for d in found.library_dirs)


SETUP = """
import os, sys
from pyros_ros.environment import setup_ros2
found = setup_ros2()
import rclpy, std_msgs.msg
ament = os.environ.get("AMENT_PREFIX_PATH", "")
print(found.preload, bool(ament), sys.prefix in ament.split(os.pathsep))
"""


@pytest.mark.parametrize("bootstrap", [True, False])
def test_setup_makes_rclpy_importable(bootstrap: bool) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "AMENT_PREFIX_PATH")}
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    if not bootstrap:
        env["_ROS_WHEELS_BOOTSTRAP_COMPLETE"] = "1"  # the wheels' .pth does not re-execute
    out = subprocess.run(
        [sys.executable, "-c", SETUP], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(not bootstrap), "True", "True"]


def test_the_ros2_extra_installs_the_wheels_the_errors_name() -> None:
    setup_py = (Path(__file__).resolve().parents[2] / "setup.py").read_text()
    listed = setup_py[
        setup_py.index("ROS2_REQUIRE = [") : setup_py.index("]", setup_py.index("ROS2_REQUIRE = ["))
    ]
    assert sorted(line.strip().strip('",') for line in listed.splitlines()[1:]) == sorted(
        f"ros-{name}" for name in environment.ROS2_WHEELS
    )
