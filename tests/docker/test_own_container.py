"""providers/docker/own_container.py: finding vhostd's own container id (pure parsing)."""

from __future__ import annotations

from vhostd.providers.docker.own_container import candidate_ids

FULL = "810659d3438aa559501aaf6b64c5ca157cda1818ce280e7ee12795084479b67d"
MOUNTINFO = (
    f"89 72 254:0 /var/lib/docker/containers/{FULL}/resolv.conf /etc/resolv.conf rw - ext4\n"
    f"90 72 254:0 /var/lib/docker/containers/{FULL}/hostname /etc/hostname rw - ext4\n"
)
CGROUP_V1 = f"9:name=systemd:/docker/{FULL}\n8:pids:/docker/{FULL}\n"
CGROUP_SYSTEMD = f"0::/system.slice/docker-{FULL}.scope\n"


def test_mountinfo_and_cgroup_give_the_full_id_once() -> None:
    assert candidate_ids(MOUNTINFO, CGROUP_V1, FULL[:12]) == [FULL]
    assert candidate_ids("", CGROUP_SYSTEMD, "web") == [FULL]


def test_short_hostname_is_a_last_resort() -> None:
    assert candidate_ids("", "0::/\n", "3ba19aba0121") == ["3ba19aba0121"]


def test_on_the_host_there_is_no_candidate() -> None:
    assert candidate_ids("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "0::/init.scope\n", "vm") == []
