"""EngineFollower's event handling: a lone change rebuilds at once, a burst coalesces.

The rebuild itself is replaced by one the test releases step by step (the Engine calls are
covered by test_watch.py against the real daemon); what is checked here is the scheduling.
"""

from __future__ import annotations

import asyncio
from typing import Any

from vhostd.config.model import DockerSettings
from vhostd.providers.docker.watch import EngineFollower


def event(action: str, cid: str = "c1", **attributes: str) -> dict[str, Any]:
    return {"Type": "container", "Action": action, "Actor": {"ID": cid, "Attributes": attributes}}


async def _scenario() -> list[str]:
    follower = EngineFollower(DockerSettings(enabled=True), publish=lambda snapshot: None)
    steps: list[str] = []
    release = asyncio.Queue[None]()

    async def controlled_rebuild() -> None:
        steps.append("rebuild")
        await release.get()

    follower.rebuild = controlled_rebuild  # type: ignore[method-assign]
    runner = asyncio.ensure_future(follower._rebuild_forever())

    async def settle() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    follower.handle_event(event("start"))
    await settle()
    steps.append("lone event handled")
    for action in ("die", "start", "health_status: healthy", "restart"):
        follower.handle_event(event(action))
    follower.handle_event(event("exec_create: /bin/true"))  # irrelevant: ignored
    await settle()
    steps.append("burst handled")
    await release.put(None)
    await settle()
    await release.put(None)
    await settle()
    steps.append("idle")
    follower.handle_event(event("kill", signal="1"))  # a reload signal: not a change
    await settle()
    runner.cancel()
    return steps


def test_lone_change_rebuilds_at_once_and_a_burst_leaves_one_pending() -> None:
    assert asyncio.run(_scenario()) == [
        "rebuild",  # started by the first event, before anything else ran
        "lone event handled",
        "burst handled",  # four events during that rebuild...
        "rebuild",  # ...make exactly one more
        "idle",
    ]
