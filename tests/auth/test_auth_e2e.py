"""Basic auth through a real `vhostd serve` in front of a real origin, over loopback sockets.

Client addresses vary inside 127.0.0.0/8 (source_address) to show per-client throttling
and the allowed-networks bypass.
"""

from __future__ import annotations

import base64
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

from tests.support.vhostd import build_request, read_response, wait_for

from .conftest import HTPASSWD_FORMATS, htpasswd_line

HOST = "preview.test"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def get(proxy, path="/echo", host=HOST, auth=None, source="127.0.0.1", sock=None):
    headers = {"Authorization": auth} if auth else {}
    if sock is not None:
        sock.sendall(build_request("GET", path, host, headers))
        return read_response(sock)
    with socket.create_connection(("127.0.0.1", proxy.port), 10, (source, 0)) as conn:
        conn.sendall(build_request("GET", path, host, headers, close=True))
        return read_response(conn)


def site(origin, **extra):
    return {"name": "preview", "hosts": [HOST], "backends": [origin.url], **extra}


def write_htpasswd(proxy, name: str, lines: list[str]) -> None:
    """Write a file the way an editor would not: atomically, so the watcher sees it whole."""
    path = proxy.workdir / "htpasswd" / name
    temp = path.with_name(f".{name}.tmp")
    temp.write_text("".join(line + "\n" for line in lines))
    os.replace(temp, path)


def vhostd_auth(proxy, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "vhostd.cli.main", "auth", *args, "--config", str(proxy.config_path)],
        input=stdin, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_every_htpasswd_format_logs_in_and_the_header_is_stripped(origin, make_proxy):
    proxy = make_proxy([site(origin)])
    users = {fmt: f"user-{fmt}" for fmt in HTPASSWD_FORMATS}
    write_htpasswd(
        proxy, HOST, [htpasswd_line(HTPASSWD_FORMATS[f], u, f"pw {f}") for f, u in users.items()]
    )
    wait_for(lambda: get(proxy).status == 401)
    for fmt, user in users.items():
        ok = get(proxy, auth=basic(user, f"pw {fmt}"))
        assert ok.status == 200, fmt
        assert "Authorization" not in dict(ok.json()["headers"]), "stripped before the origin"
        assert get(proxy, auth=basic(user, "wrong"), source="127.0.0.2").status == 401, fmt


def test_pipelined_bodies_wait_for_a_slow_password_check(origin, make_proxy):
    """bcrypt is checked off the event loop: the bodies read with the heads are held."""
    proxy = make_proxy([site(origin)])
    write_htpasswd(proxy, HOST, [htpasswd_line(["-B", "-C", "5"], "alice", "pw")])
    wait_for(lambda: get(proxy).status == 401)
    auth = {"Authorization": basic("alice", "pw")}
    with socket.create_connection(("127.0.0.1", proxy.port), 10) as sock:
        sock.sendall(
            build_request("POST", "/echo?1", HOST, auth, body=b"one")
            + build_request("PUT", "/echo?2", HOST, auth, body=b"two")
        )
        seen = [read_response(sock).json() for _ in range(2)]
    assert [(s["method"], s["body"]) for s in seen] == [("POST", "one"), ("PUT", "two")]


def test_401_challenge_page_and_nothing_reaches_the_origin(origin, make_proxy):
    proxy = make_proxy([site(origin, auth_realm="Preview of Zol")])
    write_htpasswd(proxy, HOST, [htpasswd_line(["-B", "-C", "4"], "alice", "pw")])
    wait_for(lambda: get(proxy).status == 401)
    before = len(origin.received)
    denied = get(proxy)
    assert denied.status == 401
    assert denied.header("WWW-Authenticate").startswith('Basic realm="Preview of Zol"')
    assert "text/html" in (denied.header("Content-Type") or "")
    assert get(proxy, auth=basic("alice", "nope")).status == 401
    assert get(proxy, auth="Bearer token").status == 401
    assert len(origin.received) == before


def test_brute_force_gets_429_for_that_client_only(origin, make_proxy):
    proxy = make_proxy([site(origin)])
    write_htpasswd(proxy, HOST, [htpasswd_line(["-B", "-C", "4"], "alice", "right")])
    wait_for(lambda: get(proxy).status == 401)
    with socket.create_connection(("127.0.0.1", proxy.port), 10, ("127.0.0.20", 0)) as sock:
        for attempt in range(10):  # keep-alive: a 401 leaves the connection open
            assert get(proxy, auth=basic("alice", f"guess{attempt}"), sock=sock).status == 401
    assert get(proxy, auth=basic("alice", "right"), source="127.0.0.20").status == 429
    assert get(proxy, auth=basic("alice", "guess"), source="127.0.0.20").status == 429
    assert get(proxy, auth=basic("alice", "right"), source="127.0.0.21").status == 200
    # The credential is now verified: its holder passes even from the throttled address.
    assert get(proxy, auth=basic("alice", "right"), source="127.0.0.20").status == 200


def test_allowed_networks_pass_without_login(origin, make_proxy):
    proxy = make_proxy([site(origin, auth_allow=["127.0.0.8/30"])])
    write_htpasswd(proxy, HOST, [htpasswd_line(["-m"], "alice", "pw")])
    wait_for(lambda: get(proxy, source="127.0.0.12").status == 401)
    assert get(proxy, source="127.0.0.9").status == 200
    assert get(proxy, source="127.0.0.11").status == 200
    assert get(proxy, source="127.0.0.12").status == 401


def test_forwarding_the_authorization_header_when_the_site_asks(origin, make_proxy):
    proxy = make_proxy([site(origin, auth_forward=True)])
    write_htpasswd(proxy, "preview", [htpasswd_line(["-s"], "alice", "pw")])  # by site name
    wait_for(lambda: get(proxy).status == 401)
    response = get(proxy, auth=basic("alice", "pw"))
    assert response.status == 200
    assert dict(response.json()["headers"])["Authorization"] == basic("alice", "pw")


def test_explicit_auth_file_and_per_host_precedence(make_origin, make_proxy, tmp_path):
    origin = make_origin()
    team = tmp_path / "team.htpasswd"
    team.write_text(htpasswd_line(["-5"], "dev", "team pw") + "\n")
    proxy = make_proxy(
        [{"name": "shop", "hosts": ["shop.test", "admin.shop.test"], "backends": [origin.url],
          "auth": str(team)}]
    )  # fmt: skip
    assert get(proxy, host="shop.test").status == 401
    assert get(proxy, host="shop.test", auth=basic("dev", "team pw")).status == 200
    # A file named after one host is more specific than the site's explicit file.
    write_htpasswd(proxy, "admin.shop.test", [htpasswd_line(["-2"], "boss", "boss pw")])
    wait_for(
        lambda: get(proxy, host="admin.shop.test", auth=basic("boss", "boss pw")).status == 200
    )
    assert get(proxy, host="admin.shop.test", auth=basic("dev", "team pw")).status == 401
    assert get(proxy, host="shop.test", auth=basic("dev", "team pw")).status == 200


def test_live_add_change_remove_while_a_client_loops(origin, make_proxy):
    proxy = make_proxy([site(origin)])
    alice = basic("alice", "first pw")
    statuses: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def client_loop() -> None:
        try:
            with proxy.connect() as sock:
                for _ in range(20000):  # bounded; stopped by the test well before
                    if stop.is_set():
                        return
                    statuses.append(get(proxy, auth=alice, sock=sock).status)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    loop = threading.Thread(target=client_loop)
    loop.start()
    try:
        wait_for(lambda: len(statuses) > 20)
        vhostd_auth(proxy, "add", "--password-stdin", HOST, "alice", stdin="first pw\n")
        assert wait_for(lambda: get(proxy).status == 401, timeout=5)
        count = len(statuses)
        wait_for(lambda: len(statuses) > count + 20)
        vhostd_auth(proxy, "add", HOST, "bob")  # another user: alice must be unaffected
        count = len(statuses)
        wait_for(lambda: len(statuses) > count + 20)
        assert set(statuses) == {200}, "no request failed while protection was switched on"
        assert not errors
        vhostd_auth(proxy, "rm", HOST, "alice")
        started = time.monotonic()
        wait_for(lambda: statuses[-1] == 401, timeout=5)
        print(f"user removal took effect in {time.monotonic() - started:.3f}s")
    finally:
        stop.set()
        loop.join(10)
    assert not errors


def test_a_changed_password_invalidates_the_cached_login(origin, make_proxy):
    proxy = make_proxy([site(origin)])
    vhostd_auth(proxy, "add", "--password-stdin", HOST, "alice", stdin="old pw\n")
    wait_for(lambda: get(proxy).status == 401)
    with proxy.connect() as sock:
        assert get(proxy, auth=basic("alice", "old pw"), sock=sock).status == 200
        assert get(proxy, auth=basic("alice", "old pw"), sock=sock).status == 200  # cached
        vhostd_auth(proxy, "add", "--password-stdin", HOST, "alice", stdin="new pw\n")
        wait_for(lambda: get(proxy, auth=basic("alice", "old pw"), sock=sock).status == 401)
        assert get(proxy, auth=basic("alice", "new pw"), sock=sock).status == 200


def test_unknown_users_are_answered_as_slowly_as_known_ones(origin, make_proxy):
    proxy = make_proxy([site(origin)])
    write_htpasswd(proxy, HOST, [htpasswd_line(["-B", "-C", "10"], "alice", "pw")])
    wait_for(lambda: get(proxy).status == 401)

    def timed(auth: str, source: str) -> float:
        start = time.perf_counter()
        assert get(proxy, auth=auth, source=source).status == 401
        return time.perf_counter() - start

    known, unknown = [], []
    for attempt in range(4):  # 4 failures per address: below the throttle
        known.append(timed(basic("alice", f"wrong{attempt}"), "127.0.0.30"))
        unknown.append(timed(basic(f"nobody{attempt}", "wrong"), "127.0.0.31"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.6 < ratio < 1.6, (known, unknown)


def test_a_per_path_file_protects_only_that_path(origin, make_proxy):
    from vhostd.auth.gate import path_credentials_name

    proxy = make_proxy([site(origin, paths=["/", "/admin"])])
    name = path_credentials_name(HOST, "/admin")  # nginx-proxy: <host>_<sha1(path)>
    write_htpasswd(proxy, name, [htpasswd_line(["-B", "-C", "4"], "root", "pw")])
    wait_for(lambda: get(proxy, path="/admin/x").status == 401)
    assert get(proxy, path="/echo").status == 200
    assert get(proxy, path="/admin/x", auth=basic("root", "pw")).status == 404  # the origin's
    assert origin.received[-1].target == "/admin/x"
