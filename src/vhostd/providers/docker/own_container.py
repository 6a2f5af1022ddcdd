"""Is vhostd itself running in a container, and which one? (pure parsing + a tiny reader)

When it is, only the networks it shares with a container reach that container, so the
builder must pick an address on one of them. Docker leaves the container id in
/proc/self/mountinfo (the bind-mounted /etc/hostname, resolv.conf: works with cgroup v1
and v2) and /proc/self/cgroup (v1), and uses its short id as the default hostname.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

_FULL_ID = re.compile(r"(?:/docker/|/containers/|docker-)([0-9a-f]{64})\b")
_SHORT_ID = re.compile(r"^[0-9a-f]{12}$")


def candidate_ids(mountinfo: str, cgroup: str, hostname: str) -> list[str]:
    """Container ids that could be ours, most reliable first (each to be confirmed by inspect)."""
    found: list[str] = []
    for text in (mountinfo, cgroup):
        for match in _FULL_ID.finditer(text):
            if match.group(1) not in found:
                found.append(match.group(1))
    if _SHORT_ID.match(hostname) and not any(i.startswith(hostname) for i in found):
        found.append(hostname)
    return found


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def local_candidate_ids() -> list[str]:
    """candidate_ids() for this process."""
    return candidate_ids(
        _read("/proc/self/mountinfo"), _read("/proc/self/cgroup"), socket.gethostname()
    )
