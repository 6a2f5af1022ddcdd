"""Site files through a real vhostd process: edits are live without a restart or a failure."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.origin import Origin
from tests.support.vhostd import (
    VHOSTD,
    Response,
    VhostdProcess,
    build_request,
    free_port,
    read_response,
    wait_for,
)

RELOAD_DEADLINE = 2.0  # the contract is 1 s; margin for a loaded CI machine
REPO = Path(__file__).resolve().parents[2]


def site(name: str, host: str, origin: Origin) -> str:
    return f'[[site]]\nname = "{name}"\nhosts = ["{host}"]\nbackends = ["{origin.url}"]\n'


def status_of(proxy: VhostdProcess, host: str, path: str = "/name") -> int:
    return proxy.request(path, host=host).status


def test_add_change_remove_a_site_under_load_with_zero_failures(
    make_proxy: Callable[..., VhostdProcess], make_origin: Callable[..., Origin]
) -> None:
    one, two = make_origin("one"), make_origin("two")
    proxy = make_proxy(sites=[{"name": "stable", "hosts": ["stable.test"], "backends": [one.url]}])
    sites_dir = proxy.workdir / "sites.d"
    failures: list[str] = []
    done = threading.Event()
    sent = 0

    def load_loop() -> None:  # bounded: stops when the scenario ends, or after 60 s
        nonlocal sent
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            response = proxy.request("/name", host="stable.test")
            sent += 1
            if response.status != 200 or response.body != b"one":
                failures.append(f"{response.status} {response.body[:80]!r}")

    loader = threading.Thread(target=load_loop)
    loader.start()
    try:
        assert status_of(proxy, "new.test") == 503
        start = time.monotonic()
        (sites_dir / "new.toml").write_text(site("new", "new.test", one))
        wait_for(lambda: status_of(proxy, "new.test") == 200, timeout=RELOAD_DEADLINE)
        added = time.monotonic() - start

        start = time.monotonic()
        (sites_dir / "new.toml").write_text(site("new", "new.test", two))
        wait_for(lambda: proxy.request("/name", host="new.test").body == b"two", timeout=RELOAD_DEADLINE)
        changed = time.monotonic() - start

        start = time.monotonic()
        (sites_dir / "new.toml").unlink()
        wait_for(lambda: status_of(proxy, "new.test") == 503, timeout=RELOAD_DEADLINE)
        removed = time.monotonic() - start
    finally:
        done.set()
        loader.join(30)
    print(f"live after: add {added:.3f}s, change {changed:.3f}s, remove {removed:.3f}s; "
          f"{sent} requests under load")
    assert sent > 0
    assert failures == []


def test_broken_file_keeps_serving_the_last_good_version(
    make_proxy: Callable[..., VhostdProcess], make_origin: Callable[..., Origin]
) -> None:
    one = make_origin("one")
    proxy = make_proxy()
    path = proxy.workdir / "sites.d" / "a.toml"
    path.write_text(site("a", "a.test", one))
    wait_for(lambda: status_of(proxy, "a.test") == 200, timeout=RELOAD_DEADLINE)
    path.write_text(site("a", "a.test", one) + 'connect_timeout = "soon"\n')

    def reported() -> list[dict[str, str]]:
        return [p for p in proxy.admin_json("/api/problems") if "invalid duration" in p["reason"]]

    (problem,) = wait_for(reported, timeout=RELOAD_DEADLINE)
    assert problem["where"] == "sites.d/a.toml:5"
    assert status_of(proxy, "a.test") == 200  # still routed by the last good version
    assert proxy.log().count("invalid duration 'soon'") == 1  # reported once


def test_demo_example_serves_its_page(tmp_path: Path) -> None:
    """examples/demo as `make run` serves it, moved to free ports."""
    demo = tmp_path / "demo"
    shutil.copytree(REPO / "examples" / "demo", demo)
    port, admin = free_port(), free_port()
    for path in (demo / "vhostd.toml", demo / "sites.d" / "demo.toml"):
        text = path.read_text().replace("8080", str(port)).replace("8081", str(admin))
        path.write_text(re.sub(r'enabled = "auto"', "enabled = false", text))
    log = open(tmp_path / "log", "wb")
    process = subprocess.Popen(
        [VHOSTD, "serve", "--config", str(demo / "vhostd.toml")], stdout=log, stderr=log, cwd=tmp_path
    )

    def get(host: str, path: str = "/") -> Response:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(build_request("GET", path, host, close=True))
            return read_response(sock)

    try:
        wait_for(lambda: get("demo.localhost").status == 200, timeout=15)
        page = get("demo.localhost")
        assert b"vhostd is running" in page.body and b"demo.localhost" in page.body
        assert get("demo.localhost", "/any/path").status == 200
        assert get("unknown.localhost").status == 503
    finally:
        process.terminate()
        process.wait(20)
        log.close()
