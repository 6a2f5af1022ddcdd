"""Vagrant projects routed by a running `vhostd serve`, with real `vagrant up/halt/destroy`.

VAGRANT_HOME does not exist when vhostd starts: the machine index appears, changes and
empties while it runs, and every change must reach the route table within 2 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.vhostd import VhostdProcess, toml_table, wait_for
from tests.vagrant.conftest import VagrantProject, needs_vagrant

pytestmark = [needs_vagrant, __import__("pytest").mark.docker]

REFLECTED_WITHIN_S = 2.0


def vagrant_proxy(workdir: Path, vagrant_home: Path) -> VhostdProcess:
    """vhostd with the Vagrant provider on (the support helper turns it off by default)."""
    proxy = VhostdProcess(workdir)
    text = proxy.config_path.read_text()
    off = toml_table("vagrant", {"enabled": False})
    assert off in text
    on = toml_table("vagrant", {"enabled": True, "home": str(vagrant_home)})
    proxy.config_path.write_text(text.replace(off, on))
    return proxy


def answers(proxy: VhostdProcess, host: str, status: int, body: str) -> Callable[[], Any]:
    def check() -> bool:
        response = proxy.request("/", host=host)
        return response.status == status and body in response.body.decode(errors="replace")

    return check


def timed(condition: Callable[[], Any], limit: float = REFLECTED_WITHIN_S) -> float:
    """How long until `condition` holds (polled); fails past `limit` seconds."""
    started = time.monotonic()
    wait_for(condition, timeout=limit)
    elapsed = time.monotonic() - started
    print(f"reflected through vhostd {elapsed:.3f}s after the vagrant command returned")
    return elapsed


def test_up_halt_up_destroy_follow_the_machine_index(
    tmp_path: Path, vagrant_home: Path, make_vagrant_project: Callable[[str], VagrantProject]
) -> None:
    shop = make_vagrant_project("shop")
    shop.declare('hosts = ["shop.test", "*.shop.test"]\nport = 80\n')
    undeclared = make_vagrant_project("quiet")  # no vhost.toml: never routed
    workdir = tmp_path / "proxy"
    workdir.mkdir()
    with vagrant_proxy(workdir, vagrant_home) as proxy:
        assert proxy.request("/", host="shop.test").status == 503  # nothing known yet
        assert not vagrant_home.exists()

        shop.vagrant("up")  # creates VAGRANT_HOME and the index while vhostd runs
        timed(answers(proxy, "shop.test", 200, "shop /"))
        assert proxy.request("/", host="www.shop.test").status == 200

        shop.vagrant("halt")
        timed(answers(proxy, "shop.test", 503, "project stopped"))

        undeclared.vagrant("up")  # another project in the index changes nothing for shop
        shop.vagrant("up")
        timed(answers(proxy, "shop.test", 200, "shop /"))
        routes = proxy.admin_json("/api/routes")
        assert "quiet" not in str(routes) and "vagrant:" in str(routes)

        shop.vagrant("destroy", "-f")  # gone from the index: no route at all any more
        timed(lambda: "vagrant:" not in str(proxy.admin_json("/api/routes")))
        assert proxy.request("/", host="shop.test").status == 503


def test_declaration_edits_apply_live_and_mistakes_are_reported(
    tmp_path: Path, vagrant_home: Path, make_vagrant_project: Callable[[str], VagrantProject]
) -> None:
    blog = make_vagrant_project("blog")
    blog.vagrant("up")  # up before vhostd starts and before it declares anything
    workdir = tmp_path / "proxy"
    workdir.mkdir()
    with vagrant_proxy(workdir, vagrant_home) as proxy:
        assert proxy.request("/", host="blog.test").status == 503
        blog.declare('hosts = "blog.test"\nport = 80\n')
        timed(answers(proxy, "blog.test", 200, "blog /"))

        blog.declare('hosts = "blog.test"\nport = \n')  # broken: reported by name
        timed(lambda: "invalid TOML" in str(proxy.admin_json("/api/problems")))

        blog.declare('hosts = "news.test"\nport = 80\n')
        timed(answers(proxy, "news.test", 200, "blog /"))
        assert proxy.request("/", host="blog.test").status == 503
