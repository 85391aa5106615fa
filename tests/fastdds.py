"""Fast DDS settings that the ROS 2 tests give some of their rclpy peers (the ros2 tier's
Kilted wheels and the rosbridge tier's Jazzy venv alike)."""

from __future__ import annotations

__all__ = ["SHORT_LEASE"]

SHORT_LEASE = """\
<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <participant profile_name="short_lease" is_default_profile="true">
      <rtps>
        <builtin>
          <discovery_config>
            <leaseDuration><sec>1</sec><nanosec>0</nanosec></leaseDuration>
            <leaseAnnouncement><sec>0</sec><nanosec>250000000</nanosec></leaseAnnouncement>
          </discovery_config>
        </builtin>
      </rtps>
    </participant>
  </profiles>
</dds>
"""
"""A Fast DDS participant profile (the default one of the process that loads the file) that
announces itself every 0.25 s and is dropped by its peers after 1 s of silence (Fast DDS's
defaults: 3 s and 20 s), so a killed peer leaves the graph quickly. Give a peer its file in
``FASTDDS_DEFAULT_PROFILES_FILE`` (Fast DDS 3.x) or ``FASTRTPS_DEFAULT_PROFILES_FILE`` (2.x)."""
