"""Hot reload under load, SIGHUP, graceful shutdown and the access log, end to end."""

from __future__ import annotations

import json
import signal
import threading
import time

from tests.support.vhostd import build_request, read_response, wait_for


def site_file(name: str, host: str, url: str, path: str = "/") -> str:
    return (
        f'[[site]]\nname = "{name}"\nhosts = ["{host}"]\npath = "{path}"\n'
        f'backends = ["{url}"]\n'
    )


class LoadLoop:
    """Keep-alive requests in a bounded loop on another thread; counts every failure."""

    def __init__(self, proxy, host: str, path: str = "/name", limit_s: float = 30) -> None:
        self.proxy, self.host, self.path, self.limit_s = proxy, host, path, limit_s
        self.ok = 0
        self.failures: list[str] = []
        self.bodies: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        sock = self.proxy.connect()
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                sock.sendall(build_request("GET", self.path, self.host))
                response = read_response(sock)
                if response.status == 200:
                    self.ok += 1
                    self.bodies.add(response.body)
                else:
                    self.failures.append(f"{response.status} {response.body[:80]!r}")
        except OSError as exc:
            self.failures.append(repr(exc))
        finally:
            sock.close()

    def __enter__(self) -> LoadLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_site_files_add_change_remove_under_load_without_failures(make_origin, make_proxy):
    one, two = make_origin("one"), make_origin("two")
    proxy = make_proxy(
        [{"name": "steady", "hosts": ["steady.test"], "backends": [one.url]}]
    )
    sites = proxy.workdir / "sites.d"
    with LoadLoop(proxy, "steady.test") as load:
        (sites / "new.toml").write_text(site_file("new", "new.test", one.url))
        wait_for(lambda: proxy.request("/name", host="new.test").body == b"one", timeout=5)
        (sites / "new.toml").write_text(site_file("new", "new.test", two.url))
        wait_for(lambda: proxy.request("/name", host="new.test").body == b"two", timeout=5)
        (sites / "new.toml").unlink()
        wait_for(lambda: proxy.request("/name", host="new.test").status == 503, timeout=5)
        wait_for(lambda: load.ok > 50, timeout=10)
    assert load.failures == []
    assert load.bodies == {b"one"}


def test_broken_site_file_keeps_the_last_good_routes(origin, make_proxy):
    proxy = make_proxy()
    path = proxy.workdir / "sites.d" / "a.toml"
    path.write_text(site_file("a", "a.test", origin.url))
    wait_for(lambda: proxy.request("/name", host="a.test").status == 200, timeout=5)
    path.write_text('[[site]]\nname = "a"\nhosts = ["a.test"\n')  # syntax error
    wait_for(lambda: "a.toml:3" in proxy.log() or "a.toml:2" in proxy.log(), timeout=5)
    assert proxy.request("/name", host="a.test").status == 200


def test_sighup_reloads_the_main_config(make_origin, make_proxy):
    one, two = make_origin("one"), make_origin("two")
    proxy = make_proxy([{"name": "a", "hosts": ["a.test"], "backends": [one.url]}])
    text = proxy.config_path.read_text().replace(one.url, two.url)
    proxy.config_path.write_text(text)
    proxy.process.send_signal(signal.SIGHUP)
    wait_for(lambda: proxy.request("/name").body == b"two", timeout=5)
    proxy.config_path.write_text(text + "\n[[site]]\nname = \n")  # broken: keep running
    proxy.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in proxy.log(), timeout=5)
    assert proxy.request("/name").body == b"two"


def test_sigterm_lets_in_flight_requests_finish(origin, make_proxy):
    proxy = make_proxy([{"name": "a", "hosts": ["a.test"], "backends": [origin.url]}])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/slow?ms=700"))
        wait_for(lambda: any(r.target.startswith("/slow") for r in origin.received))
        proxy.process.send_signal(signal.SIGTERM)
        response = read_response(sock)
        assert response.status == 200 and response.body == b"slow"
        assert response.header("Connection") == "close"
    assert proxy.process.wait(10) == 0
    try:
        proxy.connect(timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused


def test_access_log_json_lines(origin, make_proxy, tmp_path):
    log_path = tmp_path / "access.log"
    proxy = make_proxy(
        [{"name": "a", "hosts": ["a.test"], "backends": [origin.url]}],
        server={"access_log": str(log_path), "access_log_format": "json"},
    )
    proxy.request("/echo?x=1", headers={"User-Agent": "pytest"})
    proxy.request("/echo", host="nowhere.test")
    lines = wait_for(
        lambda: log_path.exists() and len(log_path.read_text().splitlines()) >= 2 and
        log_path.read_text().splitlines(), timeout=5
    )
    first, second = (json.loads(line) for line in lines[:2])
    assert first["status"] == 200 and first["target"] == "/echo?x=1"
    assert first["user_agent"] == "pytest" and first["site"] == "a"
    assert second["status"] == 503


def test_access_log_combined_format(origin, make_proxy, tmp_path):
    log_path = tmp_path / "access.log"
    proxy = make_proxy(
        [{"name": "a", "hosts": ["a.test"], "backends": [origin.url]}],
        server={"access_log": str(log_path)},
    )
    proxy.request("/echo", headers={"Referer": "http://r.test/"})
    line = wait_for(lambda: log_path.exists() and log_path.read_text().strip(), timeout=5)
    assert line.startswith("127.0.0.1 - - [")
    assert '"GET /echo HTTP/1.1" 200 ' in line and '"http://r.test/"' in line
