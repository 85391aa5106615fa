"""Finding ROS 1 and putting it on sys.path (pyros_ros.environment), on fake and real trees."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import pyros_ros.environment as environment
from pyros.exceptions import SpawnError

DIST = "lib/python3/dist-packages"


def make_python_dir(prefix: Path, module: str | None = "rospy", sub: str = DIST) -> Path:
    directory = prefix / sub
    directory.mkdir(parents=True, exist_ok=True)
    if module:
        (directory / module).mkdir()
        (directory / module / "__init__.py").write_text("")
    return directory


@pytest.fixture
def fake_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the search at empty /opt/ros and system dist-packages under ``tmp_path``."""
    (tmp_path / "opt_ros").mkdir()
    (tmp_path / "system").mkdir()
    monkeypatch.setattr(environment, "OPT_ROS", str(tmp_path / "opt_ros"))
    monkeypatch.setattr(environment, "SYSTEM_DIST_PACKAGES", str(tmp_path / "system"))
    return tmp_path


def test_ros_distro_is_looked_up_first(fake_roots: Path) -> None:
    melodic = make_python_dir(fake_roots / "opt_ros" / "melodic")
    noetic = make_python_dir(fake_roots / "opt_ros" / "noetic")
    make_python_dir(fake_roots, sub="system")
    assert environment.find_ros1({"ROS_DISTRO": "melodic"}) == [str(melodic)]
    assert environment.find_ros1({}) == [str(noetic)]  # without ROS_DISTRO: the last by name


def test_a_ros2_distro_is_skipped(fake_roots: Path) -> None:
    make_python_dir(fake_roots / "opt_ros" / "humble", "rclpy", "lib/python3.10/site-packages")
    system = make_python_dir(fake_roots, sub="system")
    assert environment.find_ros1({"ROS_DISTRO": "humble"}) == [str(system)]


def test_debian_dist_packages_is_the_fallback(fake_roots: Path) -> None:
    assert environment.find_ros1({}) == []
    make_python_dir(fake_roots / "system", sub="other")  # rospy, but not where it counts
    assert environment.find_ros1({}) == []
    make_python_dir(fake_roots, sub="system")
    assert environment.find_ros1({}) == [str(fake_roots / "system")]


def test_sourced_workspaces_come_first(fake_roots: Path) -> None:
    base = make_python_dir(fake_roots / "opt_ros" / "noetic")
    overlay = fake_roots / "ws" / "devel"
    overlay_dir = make_python_dir(overlay, module="my_msgs")
    (overlay / ".catkin").write_text("")
    not_catkin = fake_roots / "elsewhere"
    make_python_dir(not_catkin, module="other")
    env = {"CMAKE_PREFIX_PATH": os.pathsep.join([str(overlay), str(not_catkin), ""])}
    assert environment.find_ros1(env) == [str(overlay_dir), str(base)]


def test_a_workspace_without_rospy_anywhere_is_not_ros1(fake_roots: Path) -> None:
    overlay = fake_roots / "ws" / "install"
    make_python_dir(overlay, module="my_msgs")
    (overlay / ".catkin").write_text("")
    assert environment.find_ros1({"CMAKE_PREFIX_PATH": str(overlay)}) == []


def test_setup_appends_once(fake_roots: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    noetic = make_python_dir(fake_roots / "opt_ros" / "noetic")
    path = list(sys.path)
    monkeypatch.setattr(sys, "path", path)
    assert environment.setup_ros1({}) == [str(noetic)]
    assert path[-1] == str(noetic)  # appended: the virtualenv's packages win
    assert environment.setup_ros1({}) == []
    assert path.count(str(noetic)) == 1


def test_setup_without_ros_says_where_it_looked(fake_roots: Path) -> None:
    with pytest.raises(SpawnError) as info:
        environment.setup_ros1({"ROS_DISTRO": "noetic"})
    message = str(info.value)
    assert str(fake_roots / "opt_ros" / "noetic") in message
    assert str(fake_roots / "system") in message
    assert "apt-get install" in message


def test_this_machine_has_ros1() -> None:
    found = environment.find_ros1()
    assert any(Path(d, "rospy", "__init__.py").is_file() for d in found)
