"""The Docker daemon going away and coming back: routes keep serving, then a full resync.

Restarting the shared dockerd would break every other Docker test running at that moment,
so this test starts a private dockerd of its own (own socket, data root, exec root, bridge
and cgroup parent; --live-restore so containers outlive it) and restarts only that one.
Its containers use the host network, reached on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.conftest import DockerCli
from tests.support.docker_images import responder_image
from tests.support.vhostd import VhostdProcess, free_port, wait_for

pytestmark = pytest.mark.docker


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


class PrivateDockerd:
    """A dockerd started (and only ever stopped) by this test, by its process id."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="vhd-dockerd-", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        self.host = f"unix://{self.socket}"
        # Also on loopback TCP (DOCKER_HOST style), which is what vhostd is pointed at here.
        self.tcp_host = f"tcp://127.0.0.1:{free_port()}"
        tag = os.getpid() % 100000
        # Its own bridge: `--bridge none` would delete the shared docker0.
        self.bridge = f"vhdt{tag}"
        self.bridge_address = f"10.232.{tag % 250}.1/24"
        self.cgroup_parent = f"vhostd-test-{os.getpid()}"
        self.process: subprocess.Popen[bytes] | None = None

    def create_bridge(self) -> None:
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", self.bridge_address, "dev", self.bridge], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)

    def start(self) -> None:
        log = open(self.root / "dockerd.log", "ab")
        self.process = subprocess.Popen(
            [
                "dockerd",
                "-H",
                self.host,
                "-H",
                self.tcp_host,
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "docker.pid"),
                "--bridge",
                self.bridge,
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--live-restore",
                "--cgroup-parent",
                f"/{self.cgroup_parent}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(self._answers, timeout=60, interval=0.1)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"private dockerd exited:\n{log}")
        probe = subprocess.run(["docker", "-H", self.host, "info"], capture_output=True)
        return probe.returncode == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def remove(self) -> None:
        self.stop()
        if _link_exists(self.bridge):
            subprocess.run(["ip", "link", "del", self.bridge], check=False)
        # dockerd leaves its data root bind-mounted and the default netns mounted.
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        points = [line.split()[1] for line in mounts if len(line.split()) > 1]
        for point in sorted((p for p in points if p.startswith(f"{self.root}/")), reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        self._remove_cgroup_parent()

    def _remove_cgroup_parent(self) -> None:
        """dockerd leaves the (empty) cgroup parent in every hierarchy; rmdir them, deepest first."""
        cgroups = Path("/sys/fs/cgroup")
        tops = [cgroups / self.cgroup_parent, *cgroups.glob(f"*/{self.cgroup_parent}")]
        for top in (t for t in tops if t.is_dir()):
            # still busy (a container outlived a dead dockerd): leave it, the test's own
            # failure is the one to report
            with contextlib.suppress(OSError):
                for path in sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True):
                    path.rmdir()
                top.rmdir()


@pytest.fixture
def private_dockerd(docker_ready: None) -> Iterator[PrivateDockerd]:
    had_docker0 = _link_exists("docker0")
    daemon = PrivateDockerd()
    try:
        daemon.create_bridge()
        daemon.start()
        yield daemon
    finally:
        cli = DockerCli("", daemon.host)
        if daemon.process is not None and daemon.process.poll() is None:
            ids = cli("ps", "-aq", check=False).split()
            if ids:
                cli("rm", "-f", *ids, check=False)
        daemon.remove()
    assert _link_exists("docker0") == had_docker0, "the private dockerd touched docker0"


def test_daemon_restart_keeps_routes_then_resyncs(
    private_dockerd: PrivateDockerd, tmp_path: Path
) -> None:
    cli = DockerCli("vhd-restart-", private_dockerd.host)
    image = responder_image(tuple(cli.base))

    def run_on_loopback(name: str, host: str) -> tuple[str, int]:
        port = free_port()
        env = {"VIRTUAL_HOST": host, "VIRTUAL_PORT": str(port), "PORT": str(port)}
        return cli.run(name, image, env, extra=("--network", "host")), port

    first, _ = run_on_loopback("first", "first.restart.test")
    proxy = VhostdProcess(tmp_path, docker=True)
    config = proxy.config_path.read_text()
    assert "[docker]\nenabled = true\n" in config
    proxy.config_path.write_text(
        config.replace("[docker]\n", f'[docker]\nhost = "{private_dockerd.tcp_host}"\n', 1)
    )
    with proxy:
        wait_for(lambda: proxy.request("/", host="first.restart.test").status == 200)

        private_dockerd.stop()
        wait_for(lambda: "reconnecting" in proxy.log(), timeout=15)
        # The daemon is gone; the container (live-restored) and its route are not.
        for _ in range(5):
            assert proxy.request("/", host="first.restart.test").body == b"first /\n"

        private_dockerd.start()
        run_on_loopback("second", "second.restart.test")
        wait_for(lambda: proxy.request("/", host="second.restart.test").status == 200, timeout=20)
        cli("rm", "-f", first)
        wait_for(lambda: proxy.request("/", host="first.restart.test").status == 503)
        started = time.monotonic()
        assert proxy.request("/", host="second.restart.test").body == b"second /\n"
        assert time.monotonic() - started < 5
