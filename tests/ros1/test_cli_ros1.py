"""The ``pyros`` command against a real rosmaster and rospy peers (the twins of
``tests/process/test_cli.py``).

Every command spawns its own ros1 node: the backend comes from ``ROS_MASTER_URI`` in the
environment (issue 8: the CLI follows the ROS environment), so state such as parameters lives
in the master across commands.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ros1_support import Peer, Ros1Master, limit

from tests.process.cli_support import run, run_on_terminal, start


def _cli(master: Ros1Master) -> Callable[..., Any]:
    def cli(*args: str, timeout: float = 40.0) -> Any:
        return run(*args, env=master.env, timeout=timeout)

    return cli


def _json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_lists_follow_the_ros_environment(
    ros1_master: Ros1Master, ros1_peer: Callable[..., Peer]
) -> None:
    ros1_peer("talker", "--topic", "/cli_chatter", "--node-name", "cli_talker")
    ros1_peer("setbool_server", "--name", "/cli_flag")
    cli = _cli(ros1_master)
    result = cli("topics")
    assert result.returncode == 0, result.stderr
    assert "using backend ros1 (ROS_MASTER_URI is set" in result.stderr
    assert json.loads(result.stdout)["/cli_chatter"] == "std_msgs/String"
    code, shown = run_on_terminal("services", env=ros1_master.env)
    assert code == 0 and ["/cli_flag", "std_srvs/SetBool"] in [
        line.split() for line in shown.splitlines()
    ]
    nodes = cli("nodes")
    assert nodes.returncode == 0, nodes.stderr
    assert "/cli_talker" in json.loads(nodes.stdout)


def test_echo_field_filter_once(ros1_master: Ros1Master, ros1_peer: Callable[..., Peer]) -> None:
    ros1_peer("talker", "--topic", "/cli_chatter", "--rate", "20")
    cli = _cli(ros1_master)
    result = cli("echo", "/cli_chatter", "-n", "3")
    assert result.returncode == 0, result.stderr
    messages = _json_lines(result.stdout)
    assert len(messages) == 3 and all(m["data"].startswith("hello ") for m in messages)
    result = cli("echo", "/cli_chatter/data", "--once")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout).startswith("hello ")
    result = cli("echo", "/cli_chatter", "--field", "data", "--filter", "data.endswith('0')")
    assert result.returncode == 2  # methods are not in the filter language
    result = cli("echo", "/cli_chatter", "--field", "data", "--filter", "'5' in data", "-n", "2")
    assert result.returncode == 0, result.stderr
    assert all("5" in value for value in _json_lines(result.stdout))


def test_hz_bw_delay(ros1_master: Ros1Master, ros1_peer: Callable[..., Peer]) -> None:
    ros1_peer("talker", "--topic", "/cli_chatter", "--rate", "20")
    ros1_peer("stamped_talker", "--topic", "/cli_stamped", "--rate", "20", "--age", "0.5")
    cli = _cli(ros1_master)
    result = cli("hz", "/cli_chatter", "--duration", "3", "--json")
    assert result.returncode == 0, result.stderr
    summary = _json_lines(result.stdout)[-1]["summary"]
    assert 14 < summary["rate_hz"] < 26, summary
    result = cli("bw", "/cli_chatter", "-n", "20", "--json")
    assert result.returncode == 0, result.stderr
    summary = _json_lines(result.stdout)[-1]["summary"]
    assert summary["messages"] == 20 and summary["min_bytes"] > 5
    result = cli("delay", "/cli_stamped", "-n", "10", "--json")
    assert result.returncode == 0, result.stderr
    summary = _json_lines(result.stdout)[-1]["summary"]
    assert 0.45 < summary["mean_s"] < 0.5 + limit(0.5), summary
    result = cli("delay", "/cli_chatter", "-n", "1")
    assert result.returncode == 1 and "no header.stamp" in result.stderr


def test_pub_reaches_a_rospy_listener(
    ros1_master: Ros1Master, ros1_peer: Callable[..., Peer]
) -> None:
    listener = ros1_peer("listener", "--topic", "/cli_in", "--type", "std_msgs/String")
    cli = _cli(ros1_master)
    result = cli("pub", "/cli_in", "data: from the cli", "--type", "std_msgs/String")
    assert result.returncode == 0, result.stderr
    assert listener.read_json(limit(10))["msg"] == {"data": "from the cli"}
    result = cli("pub", "/cli_in", '{"data": "json"}', "-r", "10", "-n", "3")
    assert result.returncode == 0, result.stderr
    received = [listener.read_json(limit(10))["msg"]["data"] for _ in range(2)]
    assert received == ["json", "json"]  # the first of a new publisher may precede the link


def test_pub_latch_reaches_a_late_listener(
    ros1_master: Ros1Master, ros1_peer: Callable[..., Peer]
) -> None:
    publisher = start(
        "pub", "/cli_latched", "data: kept", "--type", "std_msgs/String", "--latch",
        env=ros1_master.env,
    )  # fmt: skip
    try:
        ros1_master.wait_for(
            lambda: any(topic == "/cli_latched" for topic, _ in ros1_master.state()[0]),
            limit(15),
            "the latched publisher",
        )
        listener = ros1_peer("listener", "--topic", "/cli_latched", "--type", "std_msgs/String")
        assert listener.read_json(limit(10))["msg"] == {"data": "kept"}
    finally:
        publisher.send_signal(signal.SIGINT)
        _, err = publisher.communicate(timeout=limit(15))
    assert publisher.returncode == 130, err


def test_call_info_type_show(ros1_master: Ros1Master, ros1_peer: Callable[..., Peer]) -> None:
    ros1_peer("setbool_server", "--name", "/cli_flag", "--node-name", "cli_flag_server")
    ros1_peer("talker", "--topic", "/cli_chatter", "--node-name", "cli_talker")
    cli = _cli(ros1_master)
    result = cli("call", "/cli_flag", "data: true")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["success"] is True
    assert cli("type", "/cli_chatter").stdout.strip() == "std_msgs/String"
    assert cli("type", "/cli_flag").stdout.strip() == "std_srvs/SetBool"
    described = cli("info", "/cli_chatter")
    assert described.returncode == 0, described.stderr
    info = json.loads(described.stdout)
    assert info["type"] == "std_msgs/String" and "/cli_talker" in info["publishers"]
    described = json.loads(cli("info", "/cli_flag").stdout)
    assert described["type"] == "std_srvs/SetBool"
    described = cli("info", "/cli_talker")
    assert described.returncode == 0, described.stderr
    assert "/cli_chatter" in json.loads(described.stdout)["publishes"]
    node = cli("node", "info", "/cli_flag_server")
    assert node.returncode == 0, node.stderr
    assert "/cli_flag" in json.loads(node.stdout)["services"]
    shown = cli("show", "geometry_msgs/Twist")
    assert shown.returncode == 0, shown.stderr
    assert [line.split() for line in shown.stdout.splitlines()][-2:] == [
        ["Vector3", "linear"],
        ["Vector3", "angular"],
    ]  # the .msg text as installed (rosmsg show's spacing)
    assert "bool data" in cli("show", "std_srvs/SetBool").stdout


def test_params_persist_in_the_master(ros1_master: Ros1Master, tmp_path: Path) -> None:
    cli = _cli(ros1_master)
    assert cli("param", "set", "/gains", "{p: 1.5, i: 0.25}").returncode == 0
    got = cli("param", "get", "/gains")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"p": 1.5, "i": 0.25}
    assert ros1_master.call("getParam", "/gains") == {"p": 1.5, "i": 0.25}  # in the master
    listed = json.loads(cli("param", "list", "/gains").stdout)
    assert listed == ["/gains/i", "/gains/p"]
    dumped = cli("param", "dump", "-", "/gains")
    assert yaml.safe_load(dumped.stdout) == {"i": 0.25, "p": 1.5}
    path = tmp_path / "robot.yaml"
    path.write_text("robot:\n  name: r2\n  speeds: [1, 2]\n")
    assert cli("param", "load", str(path)).returncode == 0
    assert json.loads(cli("param", "get", "/robot/speeds").stdout) == [1, 2]
    deleted = cli("param", "delete", "/gains")
    assert deleted.returncode == 0, deleted.stderr
    missing = cli("param", "get", "/gains/p")
    assert missing.returncode == 1
    assert missing.stderr.splitlines()[-1].startswith("error: ParamNotSetError")


def test_action_list_info_send(ros1_master: Ros1Master, ros1_peer: Callable[..., Peer]) -> None:
    server = ros1_peer("cli_action_server", "--name", "/cli_test_action")
    cli = _cli(ros1_master)
    listed = cli("action", "list")
    assert listed.returncode == 0, listed.stderr
    actions = json.loads(listed.stdout)
    assert "/cli_test_action" in actions, actions
    described = cli("action", "info", "/cli_test_action")
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["type"] == actions["/cli_test_action"]
    sent = cli("action", "send", "/cli_test_action", "goal: 3", "--feedback")
    assert sent.returncode == 0, sent.stderr
    lines = _json_lines(sent.stdout)
    assert [line["feedback"]["feedback"] for line in lines[:-1]] == [1, 2, 3]
    assert lines[-1] == {"status": "succeeded", "result": {"result": 6}}
    assert server.read_json(limit(5)) == {"goal": 3}
    refused = cli("action", "send", "/cli_test_action", "goal: -1")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1].startswith("error: ActionError")


def test_one_shot_topics_time(ros1_master: Ros1Master) -> None:
    """Not a timed assertion (the benchmark measures speed): the command answers and exits 0,
    and leaves no pyros node registered in the master."""
    started = time.monotonic()
    result = _cli(ros1_master)("topics", "--backend", "ros1")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < limit(20)
    assert not [node for node in ros1_master.node_names() if node.startswith("/pyros_")]


@pytest.mark.parametrize("command", [("echo", "/cli_nothing"), ("hz", "/cli_nothing")])
def test_ctrl_c_exits_130_on_ros1(ros1_master: Ros1Master, command: tuple[str, ...]) -> None:
    proc = start(*command, env=ros1_master.env)
    assert proc.stderr is not None
    # Interrupt once the command runs (it has subscribed and warned that the topic is
    # missing). An interrupt while the node is still starting is issue 11's startup case.
    for line in proc.stderr:
        if "does not exist yet" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=limit(15))
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    ros1_master.wait_for(
        lambda: not [node for node in ros1_master.node_names() if node.startswith("/pyros_")],
        limit(10),
        "the node to unregister",
    )


def test_shared_node_on_ros1(ros1_master: Ros1Master) -> None:
    cli = _cli(ros1_master)
    started = cli("node", "start", "cli_ros1_shared", "--topics", "/cli_*", "--params", "*")
    assert started.returncode == 0, started.stderr
    try:
        assert "/pyros_cli_ros1_shared" in ros1_master.node_names()
        assert cli("param", "set", "/cli_shared", "7", "--name", "cli_ros1_shared").returncode == 0
        assert ros1_master.call("getParam", "/cli_shared") == 7
        listed = json.loads(cli("node", "list").stdout)
        assert any(entry["name"] == "cli_ros1_shared" and entry["backend"] == "ros1"
                   for entry in listed)  # fmt: skip
    finally:
        stopped = cli("node", "stop", "cli_ros1_shared")
    assert stopped.returncode == 0, stopped.stderr
    ros1_master.wait_for(
        lambda: "/pyros_cli_ros1_shared" not in ros1_master.node_names(),
        limit(10),
        "the shared node to unregister",
    )
