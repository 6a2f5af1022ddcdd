"""--workers N: several processes share the port and follow the same route changes."""

from __future__ import annotations

import os
import signal

from tests.support.vhostd import wait_for


def children_of(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    return [int(p) for p in open(path).read().split()] if os.path.exists(path) else []


def test_workers_share_the_port_and_all_follow_a_new_site(origin, make_proxy):
    proxy = make_proxy(
        [{"name": "a", "hosts": ["a.test"], "backends": [origin.url]}], server={"workers": 2}
    )
    workers = wait_for(lambda: len(children_of(proxy.process.pid)) == 2 and
                       children_of(proxy.process.pid))
    (proxy.workdir / "sites.d" / "b.toml").write_text(
        f'[[site]]\nname = "b"\nhosts = ["b.test"]\nbackends = ["{origin.url}"]\n'
    )
    # New connections land on either worker: all of them must route b.test.
    wait_for(lambda: all(proxy.request("/name", host="b.test").status == 200 for _ in range(20)))
    assert [proxy.request("/name").status for _ in range(20)] == [200] * 20
    proxy.process.send_signal(signal.SIGTERM)
    assert proxy.process.wait(15) == 0
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
